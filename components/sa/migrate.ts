import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.js';
import { saConfig } from './config.js';
import { openDatabase, redactUrl } from './db.js';
import { migrateToLatest } from './migrations.js';

/**
 * `tsx components/sa/migrate.ts --db <url> | --config <sa config file>`: applies this release's
 * pending migrations. `--config` reads the database URL from the SA's own config file, so that
 * the password never appears in a process list or a pod spec. Progress goes to stderr; a
 * failure is one line and a non-zero exit (2 for usage or config, 1 for the database), which
 * is what a color's migration job reports.
 */

function fail(code: number, message: string): never {
  process.stderr.write(`migrate: ${message.split('\n')[0]}\n`);
  process.exit(code);
}

let args: { db?: string; config?: string } = {};
try {
  args = parseArgs({ options: { db: { type: 'string' }, config: { type: 'string' } }, strict: true }).values;
} catch (err) {
  fail(2, (err as Error).message);
}
if (args.db !== undefined && args.config !== undefined) {
  fail(2, 'expected exactly one of --db <url> or --config <sa config file>, got both');
}
if (!args.db && !args.config) {
  fail(2, 'missing --db <url> (sqlite:<path> or postgres://…) or --config <sa config file>');
}

let url = args.db;
if (args.config) {
  try {
    url = loadConfig(saConfig, args.config).db.url;
  } catch (err) {
    fail(2, (err as Error).message);
  }
}

let sadb;
try {
  sadb = openDatabase(url!);
} catch (err) {
  fail(2, (err as Error).message);
}

try {
  const applied = await migrateToLatest(sadb);
  for (const name of applied) process.stderr.write(`migrate: applied ${name}\n`);
  if (applied.length === 0) process.stderr.write(`migrate: ${redactUrl(url!)} is up to date\n`);
  await sadb.destroy();
} catch (err) {
  await sadb.destroy().catch(() => undefined);
  fail(1, `${redactUrl(url!)}: ${(err as Error).message}`);
}
