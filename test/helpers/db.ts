import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import type { Test } from 'tap';

/**
 * Databases for tests. SQLite needs only a directory; PostgreSQL is the server the development
 * and CI machines run (127.0.0.1:5432, trust auth, database `test`), and each test gets a
 * database of its own, with its tables in a named schema. A database, not only a schema: the
 * catalog queries kysely's introspection and migrator run read every schema of the database,
 * and fail when a parallel test drops its schema in the middle of one.
 */

/** Where the PostgreSQL test server is; override to point at another one. */
export const postgresTestUrl =
  process.env.BLUEGREEN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A `sqlite:` db URL for a file in `dir`. */
export function sqliteUrl(dir: string, file = 'sa.sqlite'): string {
  return `sqlite:${join(dir, file)}`;
}

/**
 * A `postgres://` db URL naming a fresh database and schema, dropped when `t` ends. When the server cannot
 * be reached the test is skipped with the reason, except under CI=true where a missing server
 * is a failure. Returns null in both cases: the caller returns at once. Call it before `t`
 * makes any assertion, since skipping is done with `t.plan(0, reason)`.
 */
export async function postgresUrlOrSkip(t: Test): Promise<string | null> {
  const client = new pg.Client({
    connectionString: postgresTestUrl,
    connectionTimeoutMillis: 3_000,
  });
  try {
    await client.connect();
  } catch (err) {
    const reason = `PostgreSQL unreachable at ${postgresTestUrl}: ${(err as Error).message}`;
    if (process.env.CI === 'true') t.fail(`${reason} (CI=true, so a missing server fails the run)`);
    else t.plan(0, reason);
    return null;
  }

  const id = randomBytes(6).toString('hex');
  const database = `sa_test_${id}`;
  const schema = `sa_${id}`;
  try {
    await client.query(`create database ${database}`);
  } finally {
    await client.end();
  }

  // Registered first, so it runs after the test's own teardowns have closed their pools.
  t.teardown(async () => {
    const dropper = new pg.Client({ connectionString: postgresTestUrl });
    await dropper.connect();
    try {
      await dropper.query(`drop database if exists ${database} with (force)`);
    } finally {
      await dropper.end();
    }
  });

  const url = new URL(postgresTestUrl);
  url.pathname = `/${database}`;
  const inside = new pg.Client({ connectionString: url.toString() });
  await inside.connect();
  try {
    await inside.query(`create schema ${schema}`);
  } finally {
    await inside.end();
  }
  url.searchParams.set('schema', schema);
  return url.toString();
}
