import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sqliteUrl } from '../../test/helpers/db.js';
import { CaError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { ensureIdentity, serverNameOf } from '../lib/pki.js';
import { createRpcClient } from '../lib/rpc.js';
import type { SaConfig } from './config.js';
import { openDatabase } from './db.js';
import { migrateToLatest } from './migrations.js';
import { startStorageAuthority } from './server.js';
import { saService } from './service.js';

/**
 * The SA as a server: in-process behind real mTLS to show error kinds survive the RPC hop, and
 * as the processes operators run (main.ts, migrate.ts) for their exit codes and one-line errors.
 */

const repoRoot = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sa-server-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const pki = join(dir, 'pki');
const saTls = await ensureIdentity(pki, 'sa');
const raTls = await ensureIdentity(pki, 'ra');
const silent = createLogger('sa', { level: 'silent' });

const configFor = (url: string, ports = { rpc: 0, admin: 0 }): SaConfig => ({
  listen: `127.0.0.1:${ports.rpc}`,
  adminListen: `127.0.0.1:${ports.admin}`,
  tls: saTls,
  log: { level: 'silent' },
  db: { url, poolSize: 2 },
});

async function migrated(file: string): Promise<string> {
  const url = sqliteUrl(dir, file);
  const sadb = openDatabase(url);
  await migrateToLatest(sadb);
  await sadb.destroy();
  return url;
}

t.test('errors keep their kind across the RPC hop', async (t) => {
  const sa = await startStorageAuthority(configFor(await migrated('rpc.sqlite')), silent);
  t.teardown(() => sa.stop());
  const client = createRpcClient(
    saService,
    { address: `127.0.0.1:${sa.rpcPort}`, serverName: serverNameOf('sa'), timeoutMs: 5_000 },
    raTls,
  );
  t.teardown(() => client.close());

  const request = {
    jwk: { kty: 'EC', x: 'x', y: 'y' },
    keyThumbprint: 'rpc-key',
    contact: [],
    termsOfServiceAgreed: true,
    eabKeyId: null,
  };
  const account = await client.newAccount(request);
  t.equal(account.keyThumbprint, 'rpc-key');
  t.same(await client.getAccount({ id: account.id }), account);

  const duplicate = await client.newAccount(request).catch((e: unknown) => e);
  t.type(duplicate, CaError);
  t.match(duplicate, { kind: 'duplicate', detail: /rpc-key/ });

  const missing = await client.getOrder({ id: 'no-such-order' }).catch((e: unknown) => e);
  t.match(missing, { kind: 'notFound', detail: /order no-such-order/ });

  const serial = '0123456789abcdef0123456789abcdef';
  const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
  await client.addSerial({ serial, accountId: account.id, expires: inAnHour });
  await client.addCertificate({
    serial,
    accountId: account.id,
    orderId: null,
    issuerId: 'issuer',
    der: 'AAAA',
    notBefore: new Date().toISOString(),
    notAfter: inAnHour,
  });
  await client.revokeCertificate({ serial, reason: 1, revokedAt: new Date().toISOString() });
  const again = await client
    .revokeCertificate({ serial, reason: 1, revokedAt: new Date().toISOString() })
    .catch((e: unknown) => e);
  t.match(again, { kind: 'alreadyRevoked' });

  const health = await fetch(`http://127.0.0.1:${sa.adminPort}/health`);
  t.equal(health.status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${sa.adminPort}/metrics`)).text();
  t.match(metrics, /sa_database_up\{component="sa"\} 1/);
});

t.test('refuses to start on a schema older than this release', async (t) => {
  const url = sqliteUrl(dir, 'empty.sqlite');
  await t.rejects(startStorageAuthority(configFor(url), silent), {
    message: /schema is older than this release \(missing 0001_initial[^)]*\); run: tsx .*migrate\.ts/,
  });
});

interface Exit {
  code: number | null;
  stderr: string;
}

function run(script: string, args: string[], until?: (stdout: string) => boolean): Promise<Exit> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, script), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (until?.(stdout)) child.kill('SIGTERM');
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

t.test('main.ts fails a bad config with one line and exit 2', async (t) => {
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ ...configFor('mysql://nope'), extra: true }));
  const { code, stderr } = await run('components/sa/main.ts', ['--config', file]);
  t.equal(code, 2);
  t.match(stderr, /^sa: config .*db\.url: expected sqlite:<path>/);
  t.equal(stderr.trimEnd().split('\n').length, 1, 'one line, no stack trace');
});

t.test('main.ts refuses an unmigrated database, saying to run migrate', async (t) => {
  const file = join(dir, 'unmigrated.json');
  writeFileSync(file, JSON.stringify(configFor(sqliteUrl(dir, 'unmigrated.sqlite'))));
  const { code, stderr } = await run('components/sa/main.ts', ['--config', file]);
  t.equal(code, 2);
  t.match(stderr, /^sa: cannot start: database schema is older .*migrate\.ts --db sqlite:/);
  t.equal(stderr.trimEnd().split('\n').length, 1);
});

t.test('main.ts serves until SIGTERM and then exits cleanly', async (t) => {
  const file = join(dir, 'good.json');
  const ports = { rpc: await freePort(), admin: await freePort() };
  writeFileSync(
    file,
    JSON.stringify({ ...configFor(await migrated('main.sqlite'), ports), log: { level: 'info' } }),
  );
  const { code, stderr } = await run('components/sa/main.ts', ['--config', file], (out) =>
    out.includes('"sa started"'),
  );
  t.equal(code, 0, stderr);
});

t.test('migrate.ts applies once, then reports the database up to date', async (t) => {
  const url = sqliteUrl(dir, 'cli.sqlite');
  const first = await run('components/sa/migrate.ts', ['--db', url]);
  t.equal(first.code, 0);
  t.match(first.stderr, /^migrate: applied 0001_initial$/m);

  const second = await run('components/sa/migrate.ts', ['--db', url]);
  t.equal(second.code, 0);
  t.match(second.stderr, /is up to date/);
});

t.test('migrate.ts fails with one line', async (t) => {
  const usage = await run('components/sa/migrate.ts', []);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /^migrate: missing --db/);

  const unreachable = await run('components/sa/migrate.ts', [
    '--db',
    'postgres://postgres:secret@127.0.0.1:1/test',
  ]);
  t.equal(unreachable.code, 1);
  t.equal(unreachable.stderr.trimEnd().split('\n').length, 1);
  t.notMatch(unreachable.stderr, /secret/, 'the password is not printed');
});
