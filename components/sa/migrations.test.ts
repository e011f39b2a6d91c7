import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely, type Migration } from 'kysely';
import t, { type Test } from 'tap';
import { postgresUrlOrSkip, sqliteUrl } from '../../test/helpers/db.js';
import { openDatabase, type SaDatabase } from './db.js';
import { migrateToLatest, migrationNames, migrationState, migrations } from './migrations.js';

/**
 * Migrations apply once, and each one only expands the schema: the release before it must keep
 * working on what it leaves. The expand-only check compares the schema before and after every
 * step, and is itself shown to catch a dropped column, a renamed column, a dropped index, a
 * new unique index on an existing table and a NOT NULL column without a default.
 */

const dir = mkdtempSync(join(tmpdir(), 'sa-migrations-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const freshSqlite = () => sqliteUrl(dir, `m${++files}.sqlite`);

t.test('sqlite', (t) => behaviour(t, freshSqlite));

t.test('postgres', async (t) => {
  const first = await postgresUrlOrSkip(t);
  if (!first) return;
  // Each case needs an empty schema; the helper makes one per (sub)test.
  let handedOut = false;
  await behaviour(t, async (sub) => {
    if (!handedOut) {
      handedOut = true;
      return first;
    }
    return (await postgresUrlOrSkip(sub))!;
  });
});

type FreshUrl = (t: Test) => string | Promise<string>;

interface ColumnShape {
  type: string;
  nullable: boolean;
  hasDefault: boolean;
}

interface SchemaShape {
  tables: Map<string, Map<string, ColumnShape>>;
  /** Index name → table and uniqueness. */
  indexes: Map<string, { table: string; unique: boolean }>;
}

async function open(t: Test, url: string): Promise<SaDatabase> {
  const sadb = openDatabase(url);
  t.teardown(() => sadb.destroy());
  return sadb;
}

/** The parts of a schema the previous release depends on. */
async function schemaShape(sadb: SaDatabase): Promise<SchemaShape> {
  const tables = new Map<string, Map<string, ColumnShape>>();
  for (const table of await sadb.db.introspection.getTables()) {
    if (sadb.schema && table.schema !== sadb.schema) continue;
    tables.set(
      table.name,
      new Map(
        table.columns.map((c) => [
          c.name,
          { type: c.dataType, nullable: c.isNullable, hasDefault: c.hasDefaultValue },
        ]),
      ),
    );
  }

  const indexes = new Map<string, { table: string; unique: boolean }>();
  if (sadb.dialect === 'sqlite') {
    const { rows } = await sql<{ name: string; tbl_name: string; sql: string | null }>`
      select name, tbl_name, sql from sqlite_master where type = 'index'`.execute(sadb.db);
    for (const row of rows) {
      // Automatic indexes back PRIMARY KEY and UNIQUE constraints: they carry no SQL.
      const unique = row.sql === null || /^create unique/i.test(row.sql);
      indexes.set(row.name, { table: row.tbl_name, unique });
    }
  } else {
    const { rows } = await sql<{ indexname: string; tablename: string; indexdef: string }>`
      select indexname, tablename, indexdef from pg_indexes
      where schemaname = current_schema()`.execute(sadb.db);
    for (const row of rows) {
      const unique = /unique index/i.test(row.indexdef);
      indexes.set(row.indexname, { table: row.tablename, unique });
    }
  }
  return { tables, indexes };
}

/** Every way `after` fails to keep what `before` offered; empty when the step is expand-only. */
function expandOnlyViolations(before: SchemaShape, after: SchemaShape): string[] {
  const out: string[] = [];
  for (const [table, columns] of before.tables) {
    const now = after.tables.get(table);
    if (!now) {
      out.push(`table ${table} was dropped or renamed`);
      continue;
    }
    for (const [column, shape] of columns) {
      const next = now.get(column);
      if (!next) out.push(`column ${table}.${column} was dropped or renamed`);
      else if (next.type !== shape.type || next.nullable !== shape.nullable) {
        out.push(`column ${table}.${column} changed from ${describe(shape)} to ${describe(next)}`);
      }
    }
    for (const [column, shape] of now) {
      if (!columns.has(column) && !shape.nullable && !shape.hasDefault) {
        out.push(`column ${table}.${column} was added NOT NULL without a default`);
      }
    }
  }

  for (const name of before.indexes.keys()) {
    if (!after.indexes.has(name)) out.push(`index ${name} was dropped`);
  }
  for (const [name, index] of after.indexes) {
    if (!before.indexes.has(name) && index.unique && before.tables.has(index.table)) {
      out.push(`unique index ${name} was added to existing table ${index.table}`);
    }
  }
  return out;
}

const describe = (c: ColumnShape) => `${c.type}${c.nullable ? '' : ' not null'}`;

/** The first `n` released migrations. */
const firstMigrations = (n: number) =>
  Object.fromEntries(migrationNames.slice(0, n).map((name) => [name, migrations[name]]));

async function behaviour(t: Test, freshUrl: FreshUrl) {
  t.test('migrating twice applies everything once', async (t) => {
    const sadb = await open(t, await freshUrl(t));
    t.same((await migrationState(sadb)).pending, migrationNames, 'a new database lacks everything');

    t.same(await migrateToLatest(sadb), migrationNames);
    const shape = await schemaShape(sadb);
    t.same(await migrateToLatest(sadb), [], 'the second run applies nothing');
    t.same(await schemaShape(sadb), shape, 'and changes nothing');
    t.same(await migrationState(sadb), { applied: migrationNames, pending: [], newer: [] });
  });

  t.test('every released migration only expands the schema', async (t) => {
    const sadb = await open(t, await freshUrl(t));
    let before = await schemaShape(sadb);
    for (let n = 1; n <= migrationNames.length; n++) {
      await migrateToLatest(sadb, firstMigrations(n));
      const after = await schemaShape(sadb);
      t.same(expandOnlyViolations(before, after), [], `${migrationNames[n - 1]} is expand-only`);
      before = after;
    }
  });

  t.test('the expand-only check catches a contracting migration', async (t) => {
    const contracting: Record<string, Migration['up']> = {
      '9001_drop_column': (db) =>
        db.schema.alterTable('accounts').dropColumn('eab_key_id').execute(),
      '9002_rename_column': (db) =>
        db.schema.alterTable('orders').renameColumn('replaces', 'replaced_id').execute(),
      '9003_drop_index': (db) => db.schema.dropIndex('certificates_not_after_idx').execute(),
      '9004_unique_index': (db) =>
        db.schema
          .createIndex('orders_replaces_uniq')
          .unique()
          .on('orders')
          .column('replaces')
          .execute(),
    };

    for (const [name, up] of Object.entries(contracting)) {
      const sadb = await open(t, await freshUrl(t));
      await migrateToLatest(sadb);
      const before = await schemaShape(sadb);
      await migrateToLatest(sadb, { ...migrations, [name]: { up } });
      t.not(expandOnlyViolations(before, await schemaShape(sadb)), [], `${name} is flagged`);
    }

    // SQLite itself refuses a NOT NULL column without a default, so only PostgreSQL shows it.
    const sadb = await open(t, await freshUrl(t));
    if (sadb.dialect === 'postgres') {
      await migrateToLatest(sadb);
      const before = await schemaShape(sadb);
      await migrateToLatest(sadb, {
        ...migrations,
        '9005_not_null': {
          up: (db: Kysely<any>) =>
            db.schema.alterTable('orders').addColumn('color', 'text', (c) => c.notNull()).execute(),
        },
      });
      const violations = expandOnlyViolations(before, await schemaShape(sadb));
      t.match(violations, [/NOT NULL without a default/]);
    }
  });

  t.test('a database a newer release migrated is left alone', async (t) => {
    const sadb = await open(t, await freshUrl(t));
    const future: Migration = {
      up: (db: Kysely<any>) => db.schema.alterTable('orders').addColumn('note', 'text').execute(),
    };
    await migrateToLatest(sadb, { ...migrations, '9999_future': future });

    t.same(await migrationState(sadb), {
      applied: migrationNames,
      pending: [],
      newer: ['9999_future'],
    });
    t.same(await migrateToLatest(sadb), [], 'the older release has nothing to do, and no error');
  });

  t.test('a migration failing half-way leaves nothing behind', async (t) => {
    const sadb = await open(t, await freshUrl(t));
    const broken: Migration = {
      async up(db: Kysely<any>) {
        await db.schema.createTable('half_done').addColumn('id', 'text').execute();
        throw new Error('boom');
      },
    };

    await t.rejects(migrateToLatest(sadb, { ...migrations, '9998_broken': broken }), {
      message: /9998_broken failed: boom/,
    });
    const tables = (await sadb.db.introspection.getTables()).map((table) => table.name);
    t.notOk(tables.includes('half_done'), 'the broken migration’s table is gone');
    // PostgreSQL rolls the whole run back, SQLite only the failed step; either way a rerun of
    // the fixed release completes.
    await migrateToLatest(sadb);
    t.same((await migrationState(sadb)).pending, [], 'a rerun without the broken step completes');
  });
}
