import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { ctFixture } from '../../test/helpers/precertificates.js';
import { ensureLogKeyFiles, loadLogKey, type LogKey } from '../ct-log/log-key.js';
import { startCtLogServer } from '../ct-log/server.js';
import { EntryStore } from '../ct-log/store.js';
import { freePort } from '../../pipelines/local/ports.js';
import { createLogger } from '../lib/log.js';
import { decodeSct, sctToResponse, verifySct } from '../lib/sct.js';
import { PublisherImpl, type CtLogTarget } from './publisher.js';

const dir = mkdtempSync(join(tmpdir(), 'publisher-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const fixture = await ctFixture();
t.teardown(() => fixture.close());
const silent = createLogger('publisher', { level: 'silent' });

/** A real CT log stub, in this process, with its own key. */
async function realLog(name: string): Promise<{ target: CtLogTarget; key: LogKey }> {
  const keyFile = join(dir, `${name}.key`);
  ensureLogKeyFiles(keyFile, `${keyFile}.pub`);
  const key = await loadLogKey(keyFile);
  const store = await EntryStore.open(join(dir, `${name}.entries`), silent);
  const server = await startCtLogServer({
    listen: '127.0.0.1:0',
    key,
    store,
    maxBodyBytes: 64 * 1024,
    log: silent,
  });
  t.teardown(async () => {
    await server.close();
    await store.close();
  });
  return { target: { name, url: `http://127.0.0.1:${server.port}`, publicKey: key.publicKey }, key };
}

/** A log that answers every request with `answer`, or never answers when it is null. */
async function fakeLog(answer: ((body: string) => [number, unknown]) | null): Promise<string> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (!answer) return;
      const [status, json] = answer(body);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

const logA = await realLog('log-a');
const logB = await realLog('log-b');

function publisher(logs: CtLogTarget[], minimumScts = 1, timeoutMs = 2_000) {
  const metrics = new Registry();
  return {
    publisher: new PublisherImpl({ logs, timeoutMs, minimumScts, log: silent, metrics }),
    metrics,
  };
}

async function submission() {
  const precertificate = await fixture.precertificate();
  return {
    precertificate,
    request: {
      precertificate: precertificate.toString('base64'),
      issuer: fixture.issuerDer.toString('base64'),
    },
  };
}

const verifies = (sct: string, precertificateDer: Buffer, logPublicKey: KeyObject) =>
  verifySct(Buffer.from(sct, 'base64'), {
    precertificateDer,
    issuerCertDer: fixture.issuerDer,
    logPublicKey,
  });

t.test('returns one verified SCT from each log', async (t) => {
  const { publisher: p, metrics } = publisher([logA.target, logB.target], 2);
  const { precertificate, request } = await submission();
  const { scts } = await p.submitPrecertificate(request);

  t.equal(scts.length, 2);
  t.ok(verifies(scts[0], precertificate, logA.key.publicKey), 'log-a signed the first');
  t.ok(verifies(scts[1], precertificate, logB.key.publicKey), 'log-b signed the second');
  const counter = await metrics.getSingleMetricAsString('publisher_submissions_total');
  t.match(counter, /log="log-a",outcome="ok"} 1/);
});

t.test('returns the SCTs it has when the minimum is met', async (t) => {
  const down = { ...logB.target, url: `http://127.0.0.1:${await freePort()}` };
  const { publisher: p } = publisher([logA.target, down], 1);
  const { scts } = await p.submitPrecertificate((await submission()).request);
  t.equal(scts.length, 1);
});

t.test('fails with unavailable when fewer logs than the minimum answer', async (t) => {
  const down = { ...logB.target, url: `http://127.0.0.1:${await freePort()}` };
  const { publisher: p, metrics } = publisher([logA.target, down], 2);

  await t.rejects(p.submitPrecertificate((await submission()).request), {
    name: 'CaError',
    kind: 'unavailable',
    message:
      /only 1 of 2 CT logs returned an SCT; certificate not issued \(2 required; log-b: cannot connect \(ECONNREFUSED\)\)/,
  });
  const counter = await metrics.getSingleMetricAsString('publisher_submissions_total');
  t.match(counter, /log="log-b",outcome="failed"} 1/);
});

t.test('fails after the timeout against a log that never answers', async (t) => {
  const silentLog = { ...logA.target, name: 'silent', url: await fakeLog(null) };
  const { publisher: p } = publisher([silentLog], 1, 300);

  const started = Date.now();
  await t.rejects(p.submitPrecertificate((await submission()).request), {
    kind: 'unavailable',
    message: /only 0 of 1 CT logs .* silent: no answer within 300 ms/,
  });
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 250 && elapsed < 2_000, `gave up after ${elapsed} ms`);
});

t.test('rejects an SCT whose signature does not verify', async (t) => {
  // A log that answers with a real SCT of log-a, for another precertificate.
  const other = await submission();
  const { scts } = await publisher([logA.target]).publisher.submitPrecertificate(other.request);
  const replay = sctToResponse(decodeSct(Buffer.from(scts[0], 'base64')));
  const liar = { ...logA.target, name: 'liar', url: await fakeLog(() => [200, replay]) };

  await t.rejects(publisher([liar]).publisher.submitPrecertificate((await submission()).request), {
    kind: 'unavailable',
    message: /liar: returned an SCT whose signature does not verify/,
  });
});

t.test('rejects an SCT from a log other than the one configured', async (t) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const impostor = { ...logA.target, name: 'impostor', publicKey: privateKey };

  const { publisher: p } = publisher([impostor]);
  await t.rejects(p.submitPrecertificate((await submission()).request), {
    kind: 'unavailable',
    message: /impostor: answered with log id \S+, not its own/,
  });
});

t.test('rejects an error status or an answer that is not an SCT', async (t) => {
  const diskFull = await fakeLog(() => [500, { error: 'disk full' }]);
  const failing = { ...logA.target, name: 'failing', url: diskFull };
  const garbled = { ...logA.target, name: 'garbled', url: await fakeLog(() => [200, { id: 1 }]) };
  const { publisher: p } = publisher([failing, garbled], 1);

  await t.rejects(p.submitPrecertificate((await submission()).request), {
    kind: 'unavailable',
    message:
      /failing: answered HTTP 500: \{"error":"disk full"\}; garbled: answered with something that is not an SCT/,
  });
});

t.test('rejects a request without a precertificate as malformed', async (t) => {
  const { publisher: p } = publisher([logA.target]);
  const issuer = fixture.issuerDer.toString('base64');
  const certificate = (await fixture.certificate()).toString('base64');

  await t.rejects(p.submitPrecertificate({ precertificate: '!!', issuer }), {
    kind: 'malformed',
    message: /expected precertificate as base64/,
  });
  await t.rejects(p.submitPrecertificate({ precertificate: certificate, issuer }), {
    kind: 'malformed',
    message: /no critical poison/,
  });
});

t.test('rejects a minimum above the number of logs', async (t) => {
  t.throws(() => publisher([logA.target], 2), { message: /minimumScts from 1 to 1, got 2/ });
});
