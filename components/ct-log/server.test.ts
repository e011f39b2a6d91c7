import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { ctFixture } from '../../test/helpers/precertificates.js';
import { createLogger } from '../lib/log.js';
import {
  decodeDigitallySigned,
  issuerKeyHashOf,
  merkleTreeLeaf,
  precertTbsOf,
  sctFromResponse,
  sctSignedData,
  treeHeadSignedData,
  verifyDigitallySigned,
  verifySct,
} from '../lib/sct.js';
import { ensureLogKeyFiles, loadLogKey } from './log-key.js';
import { startCtLogServer, type CtLogServer } from './server.js';
import { EntryStore } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'ct-log-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const fixture = await ctFixture();
t.teardown(() => fixture.close());

const keyFile = join(dir, 'shared', 'ct-log.key');
ensureLogKeyFiles(keyFile, `${keyFile}.pub`);
const key = await loadLogKey(keyFile);
const dataFile = join(dir, 'shared', 'ct-log.entries');
const log = createLogger('ct-log', { level: 'silent' });

/** A log instance over the shared key and entry file, as each color runs one. */
async function startLog(): Promise<{ server: CtLogServer; store: EntryStore; url: string }> {
  const store = await EntryStore.open(dataFile, log);
  const server = await startCtLogServer({
    listen: '127.0.0.1:0',
    key,
    store,
    maxBodyBytes: 64 * 1024,
    log,
    metrics: new Registry(),
  });
  t.teardown(async () => {
    await server.close();
    await store.close();
  });
  return { server, store, url: `http://127.0.0.1:${server.port}` };
}

const blue = await startLog();

const b64 = (der: Buffer) => der.toString('base64');

async function post(path: string, body: unknown, base = blue.url) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function sth(base = blue.url) {
  const res = await fetch(`${base}/ct/v1/get-sth`);
  return (await res.json()) as {
    tree_size: number;
    timestamp: number;
    sha256_root_hash: string;
    tree_head_signature: string;
  };
}

t.test('returns an SCT for add-pre-chain that verifies against the log key', async (t) => {
  const precert = await fixture.precertificate();
  const res = await post('/ct/v1/add-pre-chain', { chain: [b64(precert), b64(fixture.issuerDer)] });
  t.equal(res.status, 200);

  const sct = sctFromResponse(res.json);
  t.same(sct.logId, key.logId, 'the id is the SHA-256 of the log key');
  t.ok(
    verifySct(sct, {
      precertificateDer: precert,
      issuerCertDer: fixture.issuerDer,
      logPublicKey: key.publicKey,
    }),
  );
});

t.test('returns an SCT for add-chain signed over the whole certificate', async (t) => {
  const cert = await fixture.certificate();
  const res = await post('/ct/v1/add-chain', { chain: [b64(cert), b64(fixture.issuerDer)] });
  t.equal(res.status, 200);

  const sct = sctFromResponse(res.json);
  const signed = sctSignedData(sct, { type: 'x509', certificate: cert });
  t.ok(verifyDigitallySigned(sct.signature, signed, key.publicKey));
});

t.test('grows the tree with each entry and signs a head over the leaves', async (t) => {
  const before = await sth();
  const precert = await fixture.precertificate();
  const res = await post('/ct/v1/add-pre-chain', { chain: [b64(precert), b64(fixture.issuerDer)] });
  const after = await sth();
  t.equal(after.tree_size, before.tree_size + 1);

  const signed = treeHeadSignedData({
    timestamp: after.timestamp,
    treeSize: after.tree_size,
    rootHash: Buffer.from(after.sha256_root_hash, 'base64'),
  });
  const signature = decodeDigitallySigned(Buffer.from(after.tree_head_signature, 'base64'));
  t.ok(verifyDigitallySigned(signature, signed, key.publicKey), 'the tree head signature verifies');

  // The last leaf is the entry just added, timestamped as its SCT says (RFC 6962 §3.4).
  const leaf = merkleTreeLeaf(
    sctFromResponse(res.json).timestamp,
    {
      type: 'precert',
      issuerKeyHash: issuerKeyHashOf(fixture.issuerSpki),
      tbsCertificate: precertTbsOf(precert),
    },
    Buffer.alloc(0),
  );
  const lines = readFileSync(dataFile, 'utf8').trimEnd().split('\n');
  t.equal(lines[lines.length - 1], leaf.toString('base64'), 'the leaf is the last line');

  const reopened = await EntryStore.open(dataFile, log);
  t.teardown(() => reopened.close());
  const head = await reopened.head();
  t.equal(head.treeSize, after.tree_size, 'a restarted log reads every entry back');
  t.equal(head.rootHash.toString('base64'), after.sha256_root_hash);
});

t.test('shares one tree between two instances on the same entry file', async (t) => {
  const green = await startLog();
  const precert = await fixture.precertificate();
  const added = await post('/ct/v1/add-pre-chain', {
    chain: [b64(precert), b64(fixture.issuerDer)],
  }, green.url);
  t.equal(added.status, 200);

  const [fromBlue, fromGreen] = [await sth(blue.url), await sth(green.url)];
  t.equal(fromBlue.tree_size, fromGreen.tree_size);
  t.equal(fromBlue.sha256_root_hash, fromGreen.sha256_root_hash);
});

t.test('rejects bad input with 4xx and a JSON error', async (t) => {
  const precert = b64(await fixture.precertificate());
  const cert = b64(await fixture.certificate());
  const issuer = b64(fixture.issuerDer);
  const stranger = await ctFixture();
  t.teardown(() => stranger.close());

  const cases: [string, string, unknown, RegExp][] = [
    ['not JSON', '/ct/v1/add-chain', '{"chain": [', /expected a JSON body/],
    ['JSON null', '/ct/v1/add-chain', 'null', /expected chain as 1 to 10 .*, got undefined/],
    ['no chain', '/ct/v1/add-chain', {}, /expected chain as 1 to 10/],
    ['an empty chain', '/ct/v1/add-chain', { chain: [] }, /got 0 certificates/],
    ['a chain of numbers', '/ct/v1/add-chain', { chain: [1] }, /chain\[0\] as base64, got number/],
    ['bad base64', '/ct/v1/add-chain', { chain: ['%%%'] }, /chain\[0\] as base64/],
    ['not a certificate', '/ct/v1/add-chain', { chain: ['AAAA'] }, /chain\[0\] is not a DER X.509/],
    ['a precert to add-chain', '/ct/v1/add-chain', { chain: [precert, issuer] }, /pre-chain/],
    ['a certificate to add-pre-chain', '/ct/v1/add-pre-chain', { chain: [cert, issuer] }, /poison/],
    ['a precertificate alone', '/ct/v1/add-pre-chain', { chain: [precert] }, /expected chain\[1\]/],
    [
      'a chain that does not link',
      '/ct/v1/add-pre-chain',
      { chain: [precert, b64(stranger.issuerDer)] },
      /chain\[0\] is not signed by chain\[1\]/,
    ],
  ];
  for (const [what, path, body, message] of cases) {
    const res = await post(path, body);
    t.equal(res.status, 400, what);
    t.match(res.json.error, message, what);
  }
});

t.test('rejects an oversized body with 413', async (t) => {
  const res = await post('/ct/v1/add-chain', { chain: ['A'.repeat(100 * 1024)] });
  t.equal(res.status, 413);
  t.match(res.json.error, /at most 65536/);

  // Without a content-length, the limit is found while reading.
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = request(`${blue.url}/ct/v1/add-chain`, { method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 20; i++) req.write('x'.repeat(8 * 1024));
    req.end();
  });
  t.equal(chunked, 413);
  t.equal((await sth()).tree_size > 0, true, 'the log still answers');
});

t.test('rejects a wrong method with 405 and an unknown path with 404', async (t) => {
  const get = await fetch(`${blue.url}/ct/v1/add-chain`);
  t.equal(get.status, 405);
  t.equal(get.headers.get('allow'), 'POST');
  const unknown = await fetch(`${blue.url}/ct/v1/get-entries?start=0&end=1`);
  t.equal(unknown.status, 404);
  t.match(((await unknown.json()) as { error: string }).error, /no such endpoint/);
});

t.test('refuses a log key file that others may read', async (t) => {
  const loose = join(dir, 'loose.key');
  ensureLogKeyFiles(loose, `${loose}.pub`);
  chmodSync(loose, 0o644);
  await t.rejects(loadLogKey(loose), { message: /logKeyFile: .*mode 644 .*expected 600/ });
  await t.rejects(loadLogKey(join(dir, 'absent.key')), { message: /cannot read \(ENOENT\)/ });
});
