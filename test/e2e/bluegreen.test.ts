import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { deploy } from '../../pipelines/deploy.js';
import { flipColor } from '../../pipelines/flip-color.js';
import { repoRoot } from '../../pipelines/local/processes.js';
import { rollback } from '../../pipelines/rollback.js';
import { buildRelease } from '../../pipelines/release.js';
import { smokeTest } from '../../pipelines/smoke.js';
import { status } from '../../pipelines/status.js';
import { teardown } from '../../pipelines/teardown.js';
import { LocalTarget } from '../../pipelines/targets/local.js';
import { issueOverHttp01, startHttp01Server } from '../helpers/challenge-servers.js';
import { lockFixedPorts } from '../helpers/fixed-ports.js';
import { buildNextRelease, nextMigration } from '../helpers/releases.js';
import { ocspGetUrl, publicLoad } from '../helpers/public-load.js';

// The whole blue/green cycle of the local target, every component a real process started from
// a built release, with clients hammering the public endpoints through every flip.
const run = promisify(execFile);
const ports = await lockFixedPorts({ test: t });
t.teardown(() => ports.release());
const stateDir = mkdtempSync(join(tmpdir(), 'bluegreen-cycle-'));
const target = new LocalTarget({ stateDir, settings: { allowedDomains: ['test'], logLevel: 'warn' } });
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', join(repoRoot, 'pipelines/cli.ts'), '--state', stateDir, ...args], {
    cwd: repoRoot,
  });

t.teardown(async () => {
  for (const c of ['blue', 'green'] as const) await target.destroy(c).catch(() => undefined);
  await target.stopLoadBalancer().catch(() => undefined);
  if (process.env.KEEP_TEST_STATE !== '1') rmSync(stateDir, { recursive: true, force: true });
});

// Release A is this checkout; release B is the next one, with one more expand-only migration.
const { version } = await buildRelease({ repoRoot, outDir: target.releasesDir });
const next = await buildNextRelease(repoRoot, target.releasesDir);

/** Whether the shared database has release B's migration, its column and its table. */
async function hasNextMigration(): Promise<boolean> {
  const shared = await target.sharedState();
  const db = new Database(shared.dbUrl.replace(/^sqlite:/, ''), { readonly: true });
  try {
    const applied = db.prepare('select name from kysely_migration where name = ?').get(nextMigration.name);
    const columns = db.prepare('select name from pragma_table_info(?)').all('certificates') as { name: string }[];
    const table = db.prepare("select name from sqlite_master where type = 'table' and name = ?").get(nextMigration.table);
    return Boolean(applied) && columns.some((c) => c.name === nextMigration.column) && Boolean(table);
  } finally {
    db.close();
  }
}

/** One certificate from a fresh account through the public ACME port. */
async function issueThroughPublicPort(t: Test, name: string): Promise<string> {
  const agent = new Agent({ ca: readFileSync(target.trustBundle(), 'utf8'), keepAlive: true });
  acme.axios.defaults.httpsAgent = agent;
  const http01 = await startHttp01Server(5002);
  t.teardown(async () => {
    await http01.close();
    agent.destroy();
  });
  const client = new acme.Client({
    directoryUrl: target.publicEndpoints().acme,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffMin: 50,
    backoffMax: 500,
  });
  const [, csr] = await acme.crypto.createCsr({ commonName: name });
  return issueOverHttp01(client, http01.tokens, csr);
}

async function deployAndSmoke(color: 'blue' | 'green', release = version) {
  await deploy({ target, color, release });
  const record = await smokeTest({ target, color });
  return record;
}

t.test('deploys blue, smoke-tests it and flips to it', async (t) => {
  const record = await deployAndSmoke('blue');
  t.ok(record.passed, record.steps.map((s) => `${s.name}:${s.status}`).join(' '));
  t.same(record.steps.filter((s) => s.status !== 'passed').map((s) => s.name), [], 'no check skipped');
  await flipColor({ target, to: 'blue' });
  const s = await status({ target });
  t.equal(s.active, 'blue');
  t.equal((s.colors.blue as { state: string }).state, 'running');
});

t.test('flips to green, running release B, under load with zero failed requests and an order in flight', async (t) => {
  const record = await deployAndSmoke('green', next.version);
  t.ok(record.passed, record.steps.map((s) => `${s.name}:${s.status}`).join(' '));
  t.ok(await hasNextMigration(), "B's migration job extended the shared schema");

  const trust = readFileSync(target.trustBundle(), 'utf8');
  const agent = new Agent({ ca: trust, keepAlive: true, maxSockets: 8 });
  acme.axios.defaults.httpsAgent = agent;
  const http01 = await startHttp01Server(5002);
  t.teardown(() => http01.close());

  // The order starts on blue and finishes on green: nonces and URLs cross the flip.
  const client = new acme.Client({
    directoryUrl: target.publicEndpoints().acme,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffMin: 50,
    backoffMax: 500,
  });
  await client.createAccount({ termsOfServiceAgreed: true });
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'inflight.test' }] });

  const shared = await target.sharedState();
  const issuerDer = new X509Certificate(readFileSync(shared.issuers[0].certFile)).raw;
  const ocsp = ocspGetUrl(target.publicEndpoints().ocsp[0], issuerDer, '7f'.repeat(16));
  const traffic = publicLoad(target.publicEndpoints(), agent, ocsp);
  await new Promise((r) => setTimeout(r, 500));
  await flipColor({ target, to: 'green' });
  await new Promise((r) => setTimeout(r, 500));

  const [authz] = await client.getAuthorizations(order);
  const challenge = authz.challenges.find((c) => c.type === 'http-01')!;
  http01.tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
  await client.completeChallenge(challenge);
  await client.waitForValidStatus(challenge);
  const [, csr] = await acme.crypto.createCsr({ commonName: 'inflight.test' });
  const finalized = await client.finalizeOrder(order, csr);
  const pem = await client.getCertificate(finalized);
  const counts = await traffic.stop();
  agent.destroy();

  t.match(pem, /BEGIN CERTIFICATE/, 'the order begun on blue completes on green');
  t.ok(counts.ok > 20, `requests served during the flip: ${counts.ok}`);
  t.equal(counts.failed, 0, `failed requests: ${counts.errors.slice(0, 3).join('; ')}`);
  t.equal((await status({ target })).active, 'green');
});

t.test('refuses to tear down the active color', async (t) => {
  const err = await teardown({ target, color: 'green' }).catch((e: Error) => e);
  t.match(String(err), /green is the active color/);
});

t.test('tears down blue after its drain', async (t) => {
  await teardown({ target, color: 'blue', drainSeconds: 2 });
  const s = await status({ target });
  t.equal((s.colors.blue as { state: string }).state, 'absent');
  t.equal((await target.runtime('blue')).state, 'absent');
});

t.test('rolls back: release A redeployed to blue runs on the schema B extended', async (t) => {
  const result = await rollback({ target });
  t.same(result, { color: 'blue', release: version });
  const s = await status({ target });
  t.equal(s.active, 'blue');
  t.match(s.colors.blue, { state: 'running', release: version, smoke: { passed: true } });
  t.ok(await hasNextMigration(), 'the newer schema is left as it was');

  // The rollback's smoke test issued and revoked on A; one more issuance through the public
  // port writes a certificate row that has B's new column.
  const pem = await issueThroughPublicPort(t, 'after-rollback.test');
  t.match(pem, /BEGIN CERTIFICATE/, 'A issues on the newer schema');
});

t.test('refuses to flip to a color without a passing smoke record', async (t) => {
  await deploy({ target, color: 'green', release: next.version });
  const err = await flipColor({ target, to: 'green' }).catch((e: Error) => e);
  t.match(String(err), /no passing smoke record/);
  t.equal((await status({ target })).active, 'blue');
});

t.test('refuses a second pipeline run while one holds the lock', async (t) => {
  const results = await Promise.allSettled([cli('smoke', '--color', 'green'), cli('smoke', '--color', 'green')]);
  const refused = results.filter(
    (r) => r.status === 'rejected' && /in progress|lock|held/i.test(String((r.reason as { stderr?: string }).stderr)),
  );
  t.equal(refused.length, 1, 'exactly one of two concurrent runs is refused');
});

t.test('status --json reports the contract', async (t) => {
  const { stdout } = await cli('status', '--json');
  const s = JSON.parse(stdout);
  t.equal(s.target, 'local');
  t.equal(s.active, 'blue');
  t.equal(s.previous, 'green');
  t.match(s.public, { acme: 'https://127.0.0.1:14000/directory', trustBundle: /roots\.pem$/ });
  t.same(s.validation, { httpPort: 5002, tlsAlpnPort: 5001, allowedDomains: ['test'] });
  t.match(s.colors.blue, { state: 'running', release: version, smoke: { passed: true } });
  t.match(s.colors.green, { state: 'running', release: next.version });
});

/** Starts a CLI run that stops at `step`, waits for it to get there, and kills it with SIGKILL. */
async function killAt(step: string, ...args: string[]) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'pipelines/cli.ts'), '--state', stateDir, ...args], {
    cwd: repoRoot,
    env: { ...process.env, BLUEGREEN_PAUSE_AT_STEP: step },
    stdio: 'ignore',
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const state = JSON.parse(readFileSync(join(stateDir, 'deployment.json'), 'utf8'));
    if (state.operation?.step === step && state.operation?.pid === child.pid) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
}

t.test('reports a flip killed with SIGKILL truthfully, and a later run finishes it', async (t) => {
  const record = await smokeTest({ target, color: 'green' });
  t.ok(record.passed);

  // Killed after the load balancer switched, before the state file recorded it.
  await killAt('checking', 'flip-color', '--to', 'green');
  const { stdout } = await cli('status', '--json');
  const s = JSON.parse(stdout);
  t.equal(s.active, 'green', 'status reports what the load balancer serves');
  t.equal(s.operation.op, 'flip');
  t.equal(s.operation.interrupted, true);
  t.match(s.operation.mismatch, /state file says blue/);

  await cli('flip-color', '--to', 'green');
  const after = JSON.parse((await cli('status', '--json')).stdout);
  t.equal(after.active, 'green');
  t.equal(after.operation, null, 'nothing is left half-done');
});
