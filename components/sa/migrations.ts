import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { SaDatabase } from './db.js';

/**
 * Versioned schema migrations, declared in code because a release is an esbuild bundle with no
 * migration files beside it. Blue and green share one database during a switch, so every
 * migration is expand-only: it creates tables or indexes, or adds a nullable or defaulted
 * column. Nothing is dropped, renamed or tightened here; that is a later, separate release.
 * migrations.test.ts checks this rule on the schema each step produces.
 *
 * Names sort in the order they apply. A migration never changes once released.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('jwk', 'text', (c) => c.notNull())
        .addColumn('key_thumbprint', 'text', (c) => c.notNull().unique())
        .addColumn('contact', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('terms_agreed', 'integer', (c) => c.notNull())
        .addColumn('eab_key_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('orders')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
        .addColumn('identifiers', 'text', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.notNull())
        .addColumn('not_before', 'text')
        .addColumn('not_after', 'text')
        .addColumn('expires', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('began_processing', 'integer', (c) => c.notNull())
        .addColumn('certificate_serial', 'text')
        .addColumn('replaces', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('orders_account_created_idx')
        .on('orders')
        .columns(['account_id', 'created_at', 'id'])
        .execute();

      await db.schema
        .createTable('authorizations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
        .addColumn('identifier_type', 'text', (c) => c.notNull())
        .addColumn('identifier_value', 'text', (c) => c.notNull())
        .addColumn('wildcard', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('expires', 'text', (c) => c.notNull())
        .addColumn('attempted_challenge', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('authorizations_account_identifier_idx')
        .on('authorizations')
        .columns(['account_id', 'identifier_value', 'status', 'expires'])
        .execute();

      await db.schema
        .createTable('challenges')
        .addColumn('authorization_id', 'text', (c) => c.notNull().references('authorizations.id'))
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('token', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('validated', 'text')
        .addColumn('error', 'text')
        .addColumn('validation_records', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('challenges_pk', ['authorization_id', 'type'])
        .execute();

      await db.schema
        .createTable('order_authorizations')
        .addColumn('order_id', 'text', (c) => c.notNull().references('orders.id'))
        .addColumn('authorization_id', 'text', (c) => c.notNull().references('authorizations.id'))
        .addColumn('position', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('order_authorizations_pk', ['order_id', 'authorization_id'])
        .execute();
      await db.schema
        .createIndex('order_authorizations_authorization_idx')
        .on('order_authorizations')
        .column('authorization_id')
        .execute();

      await db.schema
        .createTable('serials')
        .addColumn('serial', 'text', (c) => c.primaryKey())
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
        .addColumn('expires', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('certificates')
        .addColumn('serial', 'text', (c) => c.primaryKey().references('serials.serial'))
        .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
        .addColumn('order_id', 'text', (c) => c.references('orders.id'))
        .addColumn('issuer_id', 'text', (c) => c.notNull())
        .addColumn('der', 'text', (c) => c.notNull())
        .addColumn('not_before', 'text', (c) => c.notNull())
        .addColumn('not_after', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_reason', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('certificates_not_after_idx')
        .on('certificates')
        .column('not_after')
        .execute();
      await db.schema
        .createIndex('certificates_issuer_status_idx')
        .on('certificates')
        .columns(['issuer_id', 'status', 'not_after'])
        .execute();
    },
  },
  // The signed OCSP response per serial and the CRL per issuer; new tables only. Named to
  // sort after any 0002 migration, so either order of release keeps the applied list a prefix.
  '0003_ocsp-crl': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('ocsp_responses')
        .addColumn('serial', 'text', (c) => c.primaryKey().references('serials.serial'))
        .addColumn('issuer_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('der', 'text', (c) => c.notNull())
        .addColumn('this_update', 'text', (c) => c.notNull())
        .addColumn('next_update', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('ocsp_responses_this_update_idx')
        .on('ocsp_responses')
        .column('this_update')
        .execute();

      await db.schema
        .createTable('crls')
        .addColumn('issuer_id', 'text', (c) => c.primaryKey())
        .addColumn('number', 'bigint', (c) => c.notNull())
        .addColumn('der', 'text', (c) => c.notNull())
        .addColumn('this_update', 'text', (c) => c.notNull())
        .addColumn('next_update', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

/** The names of this release's migrations, in the order they apply. */
export const migrationNames: readonly string[] = Object.keys(migrations).sort();

const migrationTable = 'kysely_migration';

export interface MigrationState {
  /** This release's migrations already in the database. */
  applied: string[];
  /** This release's migrations not yet in the database: the schema is older than the code. */
  pending: string[];
  /** Migrations in the database this release does not know: a newer release expanded it. */
  newer: string[];
}

/**
 * Where the database stands against this release's migrations. A newer schema is fine (expand-
 * only); a pending migration means this release must not serve yet.
 */
export async function migrationState(
  sadb: SaDatabase,
  names: readonly string[] = migrationNames,
): Promise<MigrationState> {
  const schema = await tableSchema(sadb);
  const tables = await sadb.db.introspection.getTables({ withInternalKyselyTables: true });
  const exists = tables.some((t) => t.name === migrationTable && (!schema || t.schema === schema));

  const db = (schema ? sadb.db.withSchema(schema) : sadb.db) as unknown as Kysely<MigrationTables>;
  const done = exists ? (await db.selectFrom(migrationTable).select('name').execute()) : [];
  const recorded = new Set(done.map((row) => row.name));

  return {
    applied: names.filter((n) => recorded.has(n)),
    pending: names.filter((n) => !recorded.has(n)),
    newer: [...recorded].filter((n) => !names.includes(n)).sort(),
  };
}

interface MigrationTables {
  kysely_migration: { name: string; timestamp: string };
}

/**
 * Applies every pending migration and returns the names applied, in order. A database that a
 * newer release already migrated further is left alone when nothing of ours is pending, so a
 * rollback's migration job succeeds.
 */
export async function migrateToLatest(
  sadb: SaDatabase,
  set: Readonly<Record<string, Migration>> = migrations,
): Promise<string[]> {
  const names = Object.keys(set).sort();
  const state = await migrationState(sadb, names);
  if (state.pending.length === 0) return [];
  if (state.newer.length > 0) {
    throw new Error(
      `database has migrations this release does not know (${state.newer.join(', ')}) ` +
        `and lacks some it needs (${state.pending.join(', ')}); deploy the newer release`,
    );
  }

  const schema = await tableSchema(sadb);
  const migrator = new Migrator({
    db: sadb.db,
    provider: inCodeProvider(sadb.dialect === 'sqlite' ? inTransactions(set) : set),
    // Pin the bookkeeping tables to our schema: Kysely otherwise looks in every schema.
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(failed ? `migration ${failed} failed: ${message}` : message, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

function inCodeProvider(set: Readonly<Record<string, Migration>>): MigrationProvider {
  return { getMigrations: async () => ({ ...set }) };
}

/**
 * Kysely runs PostgreSQL migrations in a transaction but not SQLite ones, although SQLite's DDL
 * is transactional too; without this a migration failing half-way would leave its first
 * tables behind and every retry would fail on them.
 */
function inTransactions(set: Readonly<Record<string, Migration>>): Record<string, Migration> {
  const out: Record<string, Migration> = {};
  for (const [name, migration] of Object.entries(set)) {
    out[name] = { up: (db) => db.transaction().execute((trx) => migration.up(trx)) };
  }
  return out;
}

/** The PostgreSQL schema our tables resolve to; null on SQLite. */
async function tableSchema(sadb: SaDatabase): Promise<string | null> {
  if (sadb.dialect === 'sqlite') return null;
  if (sadb.schema) return sadb.schema;
  const current = sql<{ schema: string }>`select current_schema() as schema`;
  const { rows } = await current.execute(sadb.db);
  return rows[0]?.schema ?? 'public';
}
