import { parseArgs } from 'node:util';
import { openDatabase, redactUrl } from './db.js';
import { migrateToLatest } from './migrations.js';

/**
 * `tsx components/sa/migrate.ts --db <url>`: applies this release's pending migrations. Progress
 * goes to stderr; a failure is one line and a non-zero exit (2 for usage, 1 for the database),
 * which is what a color's migration job reports.
 */

function fail(code: number, message: string): never {
  process.stderr.write(`migrate: ${message.split('\n')[0]}\n`);
  process.exit(code);
}

let url: string | undefined;
try {
  url = parseArgs({ options: { db: { type: 'string' } }, strict: true }).values.db;
} catch (err) {
  fail(2, (err as Error).message);
}
if (!url) fail(2, 'missing --db <url> (sqlite:<path> or postgres://…)');

let sadb;
try {
  sadb = openDatabase(url);
} catch (err) {
  fail(2, (err as Error).message);
}

try {
  const applied = await migrateToLatest(sadb);
  for (const name of applied) process.stderr.write(`migrate: applied ${name}\n`);
  if (applied.length === 0) process.stderr.write(`migrate: ${redactUrl(url)} is up to date\n`);
  await sadb.destroy();
} catch (err) {
  await sadb.destroy().catch(() => undefined);
  fail(1, `${redactUrl(url)}: ${(err as Error).message}`);
}
