import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import { openDatabase } from './db.js';
import { migrationNames, migrationState } from './migrations.js';

/**
 * The migration job as a color runs it: `--db <url>`, or `--config <sa config file>`, which
 * keeps the database password out of process lists and pod specs. Each case runs the script
 * as its own process against a fresh SQLite file.
 */

const script = fileURLToPath(new URL('./migrate.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sa-migrate-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const migrate = (...args: string[]) => execa(process.execPath, ['--import', 'tsx', script, ...args], { reject: false });

/** An SA config file as the stacks write it, naming `url` as its database. */
function saConfigFile(name: string, url: string): string {
  const file = join(dir, name);
  const tls = { certFile: '/etc/bluegreen-ca/pki/sa.pem', keyFile: '/etc/bluegreen-ca/pki/sa.key', caFile: '/etc/bluegreen-ca/pki/root.pem' };
  writeFileSync(file, JSON.stringify({ adminListen: '0.0.0.0:8014', log: { level: 'info' }, listen: '0.0.0.0:9095', tls, db: { url } }));
  return file;
}

async function pending(url: string): Promise<string[]> {
  const sadb = openDatabase(url);
  try {
    return (await migrationState(sadb)).pending;
  } finally {
    await sadb.destroy();
  }
}

t.test('--config applies every migration to the database the SA config names', async (t) => {
  const url = `sqlite:${join(dir, 'config.sqlite')}`;
  const file = saConfigFile('sa.json', url);

  const first = await migrate('--config', file);
  t.equal(first.exitCode, 0, first.stderr);
  t.same(first.stderr.trim().split('\n'), migrationNames.map((n) => `migrate: applied ${n}`));
  t.same(await pending(url), []);

  const again = await migrate('--config', file);
  t.equal(again.exitCode, 0, again.stderr);
  t.equal(again.stderr.trim(), `migrate: ${url} is up to date`);
});

t.test('--db still applies the migrations to the URL it names', async (t) => {
  const url = `sqlite:${join(dir, 'db.sqlite')}`;
  const r = await migrate('--db', url);
  t.equal(r.exitCode, 0, r.stderr);
  t.same(await pending(url), []);
});

t.test('--config never prints the password its database URL holds', async (t) => {
  // Nothing listens on port 1, so the job fails at once, naming the database without its password.
  const file = saConfigFile('secret.json', 'postgres://bluegreen:s3cret-pass@127.0.0.1:1/bluegreen');
  const r = await migrate('--config', file);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, /^migrate: postgres:\/\/bluegreen:\*\*\*@127\.0\.0\.1:1\/bluegreen: /);
  t.notMatch(r.stderr, /s3cret-pass/);
});

const failures: Array<[string, () => string[], RegExp]> = [
  ['rejects --db and --config together', () => ['--db', 'sqlite:x', '--config', 'sa.json'], /^migrate: expected exactly one of --db <url> or --config <sa config file>, got both$/],
  ['rejects neither --db nor --config', () => [], /^migrate: missing --db <url> .* or --config <sa config file>$/],
  ['rejects a config file it cannot read', () => ['--config', join(dir, 'absent.json')], /^migrate: config .*absent\.json: cannot read: /],
  ['rejects a config file without a database URL', () => {
    const file = join(dir, 'no-db.json');
    writeFileSync(file, JSON.stringify({ listen: '0.0.0.0:9095' }));
    return ['--config', file];
  }, /^migrate: config .*no-db\.json: .*db/],
];
// The refusals need no database; they run at once, each test awaiting its own.
const refused = failures.map(([, args]) => migrate(...args()));
failures.forEach(([name, , message], i) => {
  t.test(name, async (t) => {
    const r = await refused[i];
    t.equal(r.exitCode, 2);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.match(r.stderr.trim(), message);
  });
});
