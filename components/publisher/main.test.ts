import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { ctFixture } from '../../test/helpers/precertificates.js';
import { ensureLogKeyFiles } from '../ct-log/log-key.js';
import { ensureIdentity, serverNameOf } from '../lib/pki.js';
import { createRpcClient } from '../lib/rpc.js';
import { verifySct } from '../lib/sct.js';
import { publisherService } from './service.js';

// The ct-log and publisher mains as processes: config errors, start-up, mTLS, health.
const dir = mkdtempSync(join(tmpdir(), 'publisher-main-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const fixture = await ctFixture();
t.teardown(() => fixture.close());

const main = (component: string) => new URL(`../${component}/main.ts`, import.meta.url).pathname;
const pki = join(dir, 'pki');
const publisherTls = await ensureIdentity(pki, 'publisher');
const raTls = await ensureIdentity(pki, 'ra');
const wfeTls = await ensureIdentity(pki, 'wfe');
const keyFile = join(dir, 'ct-log', 'log.key');
const publicKeyFile = join(dir, 'ct-log', 'log.pub.pem');
ensureLogKeyFiles(keyFile, publicKeyFile);

function writeConfig(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

/** Runs a main to its end, for configs it must refuse. */
interface Exit {
  code: number | null;
  stderr: string;
}

function runToEnd(component: string, file: string): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main(component), '--config', file]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** Starts a main and resolves with its `<component> started` log line. */
function start(component: string, file: string): Promise<{ child: ChildProcess; line: any }> {
  const child = spawn(process.execPath, ['--import', 'tsx', main(component), '--config', file]);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text);
      if (line.msg === `${component} started`) resolve({ child, line });
    });
    child.on('close', (code) => reject(new Error(`${component} exited with ${code}`)));
  });
}

const ctLogConfig = {
  listen: '127.0.0.1:0',
  adminListen: '127.0.0.1:0',
  logKeyFile: keyFile,
  dataFile: join(dir, 'ct-log', 'entries.log'),
};

t.test('fails with one line naming the field when a config is invalid', async (t) => {
  const badCtLog = writeConfig('bad-ct.json', { ...ctLogConfig, maxBodyBytes: 10 });
  const ctLog = await runToEnd('ct-log', badCtLog);
  t.equal(ctLog.code, 2);
  t.match(ctLog.stderr, /^ct-log: config .*: maxBodyBytes: expected at least 1024 bytes\n$/);

  const publisher = await runToEnd(
    'publisher',
    writeConfig('bad-publisher.json', {
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      tls: publisherTls,
      logs: [{ name: 'a', url: 'http://127.0.0.1:1', publicKeyFile }],
      minimumScts: 2,
    }),
  );
  t.equal(publisher.code, 2);
  t.match(publisher.stderr, /^publisher: config .*: minimumScts: expected at most .*\(1\), got 2\n$/);
});

t.test('fails to start with one line when the log key is missing', async (t) => {
  const file = writeConfig('no-key.json', { ...ctLogConfig, logKeyFile: join(dir, 'absent.key') });
  const result = await runToEnd('ct-log', file);
  t.equal(result.code, 2);
  t.match(result.stderr, /^ct-log: logKeyFile: .*absent\.key: cannot read \(ENOENT\)\n$/);
});

t.test('serves SCTs to the RA over mTLS through a running CT log', async (t) => {
  const ctLog = await start('ct-log', writeConfig('ct.json', ctLogConfig));
  const publisher = await start(
    'publisher',
    writeConfig('publisher.json', {
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      tls: publisherTls,
      logs: [{ name: 'local', url: `http://127.0.0.1:${ctLog.line.port}`, publicKeyFile }],
    }),
  );
  const health = await fetch(`http://127.0.0.1:${ctLog.line.adminPort}/health`);
  t.equal(health.status, 200, 'the ct-log is healthy');

  const peer = {
    address: `127.0.0.1:${publisher.line.port}`,
    serverName: serverNameOf('publisher'),
    timeoutMs: 10_000,
  };
  const precertificate = await fixture.precertificate();
  const request = {
    precertificate: precertificate.toString('base64'),
    issuer: fixture.issuerDer.toString('base64'),
  };

  const ra = createRpcClient(publisherService, peer, raTls);
  t.teardown(() => ra.close());
  const { scts } = await ra.submitPrecertificate(request);
  t.equal(scts.length, 1);
  t.ok(
    verifySct(Buffer.from(scts[0], 'base64'), {
      precertificateDer: precertificate,
      issuerCertDer: fixture.issuerDer,
      logPublicKey: readFileSync(publicKeyFile, 'utf8'),
    }),
  );

  const wfe = createRpcClient(publisherService, peer, wfeTls);
  t.teardown(() => wfe.close());
  await t.rejects(wfe.submitPrecertificate(request), { message: /client wfe may not call/ });

  const metrics = await (await fetch(`http://127.0.0.1:${publisher.line.adminPort}/metrics`)).text();
  t.match(metrics, /publisher_submissions_total\{log="local",outcome="ok",[^}]*\} 1/);

  const exited = new Promise((resolve) => publisher.child.on('close', resolve));
  publisher.child.kill('SIGTERM');
  t.equal(await exited, 0, 'the publisher stops cleanly');
});
