import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { issuerFixture, ocspRequestDer, readOcspResponse } from '../../test/helpers/ocsp.js';
import { requireTool } from '../../test/helpers/tools.js';
import { buildCrl } from '../ca/crl.js';
import { buildOcspResponse } from '../ca/ocsp.js';
import { CaError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { issuerHashesOfCertificate, ocspOids, ocspResponseStatus } from '../lib/ocsp.js';
import type { CrlRecord, OcspResponseRecord } from '../lib/records.js';
import { createHttp1Server } from './http1.js';
import { createResponderHandler, type ResponderSource } from './server.js';

/**
 * The responder over real HTTP on loopback, with a stand-in SA holding responses the real
 * signer made: GET and POST, caching headers and revalidation, the cache's short life, and
 * every kind of bad input answered with an OCSP error status or a 4xx.
 */

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ocsp-responder-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const fixture = await issuerFixture(dir);
const other = await issuerFixture(join(dir, 'other'));
const { issuer } = fixture;
const hashes = issuerHashesOfCertificate(issuer.certDer);

// The system clock: openssl checks thisUpdate and nextUpdate against it.
const clock = { offsetMs: 0 };
const now = () => Date.now() + clock.offsetMs;
const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
const nextUpdate = new Date(thisUpdate.getTime() + 3 * 86_400_000);

const responses = new Map<string, OcspResponseRecord>();
const crls = new Map<string, CrlRecord>();
const sa = { calls: 0, down: false };
const source: ResponderSource = {
  async getOcspResponse({ issuerId, serial }) {
    sa.calls++;
    if (sa.down) throw new CaError('unavailable', 'database unavailable');
    const record = responses.get(`${issuerId}/${serial}`);
    if (!record) throw new CaError('notFound', `no OCSP response for serial ${serial}`);
    return record;
  },
  async getCrl({ issuerId }) {
    if (sa.down) throw new CaError('unavailable', 'database unavailable');
    const record = crls.get(issuerId);
    if (!record) throw new CaError('notFound', `no CRL stored for issuer ${issuerId}`);
    return record;
  },
};

async function store(
  serial: string,
  status: 'good' | 'revoked',
  next: Date = nextUpdate,
): Promise<Buffer> {
  const der = await buildOcspResponse(
    {
      serialHex: serial,
      status,
      ...(status === 'revoked' ? { revokedAt: thisUpdate, reason: 1 } : {}),
      thisUpdate,
      nextUpdate: next,
    },
    issuer,
  );
  responses.set(`${issuer.id}/${serial}`, {
    serial,
    issuerId: issuer.id,
    status,
    der: der.toString('base64'),
    thisUpdate: thisUpdate.toISOString(),
    nextUpdate: next.toISOString(),
    updatedAt: thisUpdate.toISOString(),
  });
  return der;
}

const maxRequestBytes = 1024;
const http = createHttp1Server({
  handler: createResponderHandler({
    issuers: [{ id: issuer.id, certDer: issuer.certDer }],
    sa: source,
    cacheSeconds: 5,
    maxAgeSeconds: 60,
    maxRequestBytes,
    cacheEntries: 1000,
    log: createLogger('ocsp-responder', { level: 'silent' }),
    now,
  }),
  maxBodyBytes: maxRequestBytes,
});
await new Promise<void>((resolve) => http.server.listen(0, '127.0.0.1', resolve));
t.teardown(() => http.close());
const address = http.server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
const ocspUrl = `${base}/ocsp/${issuer.id}`;

const get = (der: Buffer, init: RequestInit = {}) =>
  fetch(`${ocspUrl}/${encodeURIComponent(der.toString('base64'))}`, init);
const post = (body: Buffer, type = 'application/ocsp-request') =>
  fetch(ocspUrl, { method: 'POST', headers: { 'content-type': type }, body: new Uint8Array(body) });

async function statusOf(res: Response): Promise<number> {
  return readOcspResponse(Buffer.from(await res.arrayBuffer())).responseStatus;
}

t.test('GET answers the stored response with RFC 5019 caching headers', async (t) => {
  const stored = await store('7a01', 'good');
  const res = await get(ocspRequestDer(hashes, '7a01'));
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/ocsp-response');
  t.equal(res.headers.get('cache-control'), 'max-age=60, public, no-transform, must-revalidate');
  t.equal(res.headers.get('last-modified'), thisUpdate.toUTCString());
  t.equal(res.headers.get('expires'), nextUpdate.toUTCString());
  t.match(res.headers.get('etag'), /^"[A-Za-z0-9_-]{27}"$/);
  t.same(Buffer.from(await res.arrayBuffer()), stored, 'the CA-signed bytes, unchanged');
});

t.test('GET accepts the request unescaped and in base64url', async (t) => {
  await store('7a02', 'good');
  const der = ocspRequestDer(hashes, '7a02');
  for (const encoded of [der.toString('base64'), der.toString('base64url')]) {
    const res = await fetch(`${ocspUrl}/${encoded}`);
    t.equal(readOcspResponse(Buffer.from(await res.arrayBuffer())).certStatus, 'good');
  }
});

t.test('HEAD sends the headers without a body', async (t) => {
  await store('7a03', 'good');
  const res = await get(ocspRequestDer(hashes, '7a03'), { method: 'HEAD' });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/ocsp-response');
  t.equal((await res.arrayBuffer()).byteLength, 0);
});

t.test('POST answers the same response', async (t) => {
  const stored = await store('7a04', 'good');
  const res = await post(ocspRequestDer(hashes, '7a04'));
  t.equal(res.status, 200);
  t.same(Buffer.from(await res.arrayBuffer()), stored);
});

t.test('answers 304 to a matching If-None-Match or If-Modified-Since', async (t) => {
  await store('7a05', 'good');
  const der = ocspRequestDer(hashes, '7a05');
  const etag = (await get(der)).headers.get('etag')!;

  const byTag = await get(der, { headers: { 'if-none-match': etag } });
  t.equal(byTag.status, 304);
  t.equal(byTag.headers.get('etag'), etag);
  const byDate = await get(der, { headers: { 'if-modified-since': thisUpdate.toUTCString() } });
  t.equal(byDate.status, 304);
  const stale = await get(der, { headers: { 'if-none-match': '"other"' } });
  t.equal(stale.status, 200);
});

t.test('serves a revocation once the cached response is older than cacheSeconds', async (t) => {
  await store('7a06', 'good');
  const der = ocspRequestDer(hashes, '7a06');
  const read = async () => readOcspResponse(Buffer.from(await (await get(der)).arrayBuffer()));
  t.equal((await read()).certStatus, 'good');

  await store('7a06', 'revoked');
  const calls = sa.calls;
  t.equal((await read()).certStatus, 'good', 'from memory within cacheSeconds');
  t.equal(sa.calls, calls, 'no SA call for a cached response');

  clock.offsetMs += 5_000;
  t.match(await read(), { certStatus: 'revoked', reason: 1 });
});

t.test('answers a repeated GET from memory, max-age falling as nextUpdate nears', async (t) => {
  const next = new Date((Math.floor(now() / 1000) + 31) * 1000);
  const stored = await store('7a0c', 'good', next);
  const der = ocspRequestDer(hashes, '7a0c');
  const maxAgeOf = (res: Response) =>
    Number(/max-age=(\d+)/.exec(res.headers.get('cache-control')!)![1]);

  const calls = sa.calls;
  const answers = [await get(der), await get(der), await get(der)];
  t.equal(sa.calls, calls + 1, 'one SA read for the three');
  const [first] = answers;
  t.ok(maxAgeOf(first) >= 29 && maxAgeOf(first) <= 31, `max-age ${maxAgeOf(first)}`);
  for (const res of answers) {
    t.equal(res.headers.get('etag'), first.headers.get('etag'));
    t.same(Buffer.from(await res.arrayBuffer()), stored);
  }

  // Within cacheSeconds, so the document is still in memory; the max-age it gives is not.
  clock.offsetMs += 3_000;
  const later = maxAgeOf(await get(der));
  const last = maxAgeOf(answers[2]);
  t.ok(later <= last - 3 && later >= last - 4, `max-age ${last}, then ${later} 3 s on`);

  const head = await get(der, { method: 'HEAD' });
  t.equal(head.headers.get('content-length'), String(stored.length));
  t.equal((await head.arrayBuffer()).byteLength, 0, 'HEAD after GETs: still no body');
  const conditional = await get(der, { headers: { 'if-none-match': first.headers.get('etag')! } });
  t.equal(conditional.status, 304, 'a conditional GET is not given the remembered 200');
});

t.test('answers unauthorized for a serial without a response (RFC 5019 §2.2.3)', async (t) => {
  const res = await get(ocspRequestDer(hashes, '7f7f7f'));
  t.equal(res.status, 200);
  t.equal(res.headers.get('cache-control'), 'no-store');
  t.equal(await statusOf(res), ocspResponseStatus.unauthorized);
});

t.test('answers unauthorized for an unknown issuer, a CertID of another, or SHA-256', async (t) => {
  await store('7a07', 'good');
  const encoded = ocspRequestDer(hashes, '7a07').toString('base64url');
  const unknown = await fetch(`${base}/ocsp/0badf00d/${encoded}`);
  t.equal(await statusOf(unknown), ocspResponseStatus.unauthorized, 'unknown issuer id');

  const otherHashes = issuerHashesOfCertificate(other.issuer.certDer);
  const foreign = await get(ocspRequestDer(otherHashes, '7a07'));
  t.equal(await statusOf(foreign), ocspResponseStatus.unauthorized, 'CertID of another issuer');

  const sha256 = ocspRequestDer(hashes, '7a07', { hashAlgorithm: ocspOids.sha256 });
  t.equal(await statusOf(await get(sha256)), ocspResponseStatus.unauthorized);
});

t.test('answers malformedRequest to anything that is not one OCSP request', async (t) => {
  const certificate = issuer.certDer;
  const cases: [string, string | Buffer][] = [
    ['characters outside base64', `${ocspUrl}/not*base64`],
    ['a broken percent escape', `${ocspUrl}/%E0%A4%A`],
    ['no request at all', `${ocspUrl}/`],
    ['bytes that are not ASN.1', Buffer.from('hello, responder')],
    ['DER that is not an OCSPRequest', certificate],
    ['two requests in one', ocspRequestDer(hashes, '7a08', { copies: 2 })],
    ['trailing bytes', Buffer.concat([ocspRequestDer(hashes, '7a08'), Buffer.from([0])])],
  ];
  for (const [name, input] of cases) {
    const res = typeof input === 'string' ? await fetch(input) : await get(input);
    t.equal(res.status, 200, name);
    t.equal(await statusOf(res), ocspResponseStatus.malformedRequest, name);
  }

  const empty = await post(Buffer.alloc(0));
  t.equal(await statusOf(empty), ocspResponseStatus.malformedRequest, 'an empty POST');
});

t.test('rejects oversized requests with 413 or 414, a wrong type with 415', async (t) => {
  const big = Buffer.alloc(maxRequestBytes + 1, 0x30);
  t.equal((await post(big)).status, 413, 'declared length over the limit');

  const chunked = await new Promise<number>((resolve, reject) => {
    const headers = { 'content-type': 'application/ocsp-request' };
    const req = request(ocspUrl, { method: 'POST', headers });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 4; i++) req.write(Buffer.alloc(maxRequestBytes / 2));
    req.end();
  });
  t.equal(chunked, 413, 'chunked body over the limit');

  t.equal((await fetch(`${ocspUrl}/${'A'.repeat(8 * maxRequestBytes)}`)).status, 414);
  t.equal((await post(ocspRequestDer(hashes, '7a09'), 'text/plain')).status, 415);
});

t.test('answers 405 to other methods and 404 to other paths', async (t) => {
  t.equal((await fetch(ocspUrl, { method: 'PUT' })).status, 405);
  t.equal((await fetch(`${base}/crl/${issuer.id}.crl`, { method: 'POST' })).status, 405);
  t.equal((await fetch(`${base}/`)).status, 404);
  t.equal((await fetch(`${base}/ocsp-nope`)).status, 404);
});

t.test('answers tryLater while the SA is unavailable', async (t) => {
  sa.down = true;
  t.teardown(() => {
    sa.down = false;
  });
  const res = await get(ocspRequestDer(hashes, '7a0a'));
  t.equal(res.status, 200);
  t.equal(await statusOf(res), ocspResponseStatus.tryLater);
  t.equal((await fetch(`${base}/crl/${issuer.id}.crl`)).status, 503);
});

t.test('serves the issuer CRL with caching headers, 404 when there is none', async (t) => {
  t.equal((await fetch(`${base}/crl/${issuer.id}.crl`)).status, 404, 'none stored yet');
  clock.offsetMs += 5_000;

  const der = await buildCrl({ number: 1n, thisUpdate, nextUpdate, entries: [] }, issuer);
  crls.set(issuer.id, {
    issuerId: issuer.id,
    number: '1',
    der: der.toString('base64'),
    thisUpdate: thisUpdate.toISOString(),
    nextUpdate: nextUpdate.toISOString(),
    updatedAt: thisUpdate.toISOString(),
  });
  const res = await fetch(`${base}/crl/${issuer.id}.crl`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/pkix-crl');
  t.equal(res.headers.get('last-modified'), thisUpdate.toUTCString());
  t.match(res.headers.get('cache-control'), /^max-age=60, public/);
  t.same(Buffer.from(await res.arrayBuffer()), der);

  t.equal((await fetch(`${base}/crl/0badf00d.crl`)).status, 404);
  t.equal((await fetch(`${base}/crl/${issuer.id}`)).status, 404);
});

t.test('serves the issuer certificate as DER', async (t) => {
  const res = await fetch(`${base}/issuer/${issuer.id}.der`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/pkix-cert');
  t.same(Buffer.from(await res.arrayBuffer()), issuer.certDer);
  t.equal((await fetch(`${base}/issuer/0badf00d.der`)).status, 404);
});

t.test('openssl ocsp gets a verified good status over POST', async (t) => {
  if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
  await store('7a0b', 'good');
  const { stdout, stderr } = await run('openssl', [
    'ocsp',
    '-issuer',
    fixture.certFile,
    '-serial',
    '0x7a0b',
    '-url',
    ocspUrl,
    '-CAfile',
    fixture.rootFile,
    '-no_nonce',
  ]);
  t.match(stderr, /Response verify OK/);
  t.match(stdout, /0x7a0b: good/i);
});
