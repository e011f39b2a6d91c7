import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import t from 'tap';
import { FileKeyStore } from '../keys/file-store.js';
import { CaError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { encodeSct } from '../lib/sct.js';
import { certificateToPem, inspectCertificate, serialFromCertificate } from '../lib/x509.js';
import { CertificateAuthorityImpl, type CertificateAuthorityOptions } from './ca.js';
import { defaultProfiles } from './config.js';
import { createHierarchy, rootCertFile } from './hierarchy.js';
import { loadIssuer, type Issuer } from './issuer.js';
import type { IssuedCertificate, IssueRequest } from './service.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'ca-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const urls = {
  ocspBase: 'http://127.0.0.1:4002/ocsp',
  crlBase: 'http://127.0.0.1:4002/crl',
  caIssuersBase: 'http://127.0.0.1:4002/issuer',
};

/** A hierarchy of the given algorithm and its loaded issuer. */
async function hierarchy(name: string, algorithm: 'ecdsa-p256' | 'rsa-2048') {
  const keyStore = new FileKeyStore(join(dir, name, 'keys'));
  const caDir = join(dir, name, 'ca');
  const description = await createHierarchy({
    keyStore,
    dir: caDir,
    algorithm,
    rootName: `${name} root`,
    issuerName: `${name} issuer`,
    urls,
  });
  const issuer = await loadIssuer(description, keyStore);
  return { description, issuer, rootFile: rootCertFile(caDir) };
}

const ecdsa = await hierarchy('ecdsa', 'ecdsa-p256');

/**
 * Stands in for the SA's addSerial; the SA has its own suite. It keeps reserved serials in a
 * set, refuses a serial it already holds, and can be told to report the next ones as taken.
 */
class SerialReservations {
  readonly reserved = new Map<string, { accountId: string; expires: string }>();
  readonly attempts: string[] = [];
  collisions = 0;
  failure: CaError | null = null;

  async addSerial(req: { serial: string; accountId: string; expires: string }): Promise<void> {
    this.attempts.push(req.serial);
    if (this.failure) throw this.failure;
    if (this.collisions > 0 || this.reserved.has(req.serial)) {
      this.collisions = Math.max(0, this.collisions - 1);
      throw new CaError('duplicate', `serial ${req.serial} is already reserved`);
    }
    this.reserved.set(req.serial, { accountId: req.accountId, expires: req.expires });
  }
}

interface Setup {
  ca: CertificateAuthorityImpl;
  sa: SerialReservations;
  logs: Record<string, unknown>[];
  metrics: Registry;
}

function setup(
  issuer: Issuer = ecdsa.issuer,
  extra: Partial<CertificateAuthorityOptions> = {},
): Setup {
  const sa = new SerialReservations();
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('ca', {
    level: 'info',
    destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
  });
  const metrics = new Registry();
  const ca = new CertificateAuthorityImpl({
    issuers: [issuer],
    activeIssuerId: issuer.id,
    profiles: defaultProfiles,
    sa,
    log,
    metrics,
    ...extra,
  });
  return { ca, sa, logs, metrics };
}

const csrAlgorithms = {
  p256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  rsa2048: {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
  rsa1024: {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 1024,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
} as const;

/** A base64 DER CSR from a fresh WebCrypto key, CN = first name, SAN = every name. */
async function makeCsr(names: string[], algorithm: keyof typeof csrAlgorithms = 'p256') {
  const params = csrAlgorithms[algorithm];
  const usages = ['sign', 'verify'] as const;
  const keys = (await webcrypto.subtle.generateKey(params, true, usages)) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${names[0]}`,
    keys,
    signingAlgorithm: params,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        names.map((value) => ({ type: 'dns' as const, value })),
      ),
    ],
  });
  return Buffer.from(csr.rawData);
}

async function request(overrides: Partial<IssueRequest> = {}): Promise<IssueRequest> {
  const names = overrides.names ?? ['www.example.test', 'example.test'];
  return {
    csr: (await makeCsr(names)).toString('base64'),
    names,
    accountId: 'acct-1',
    orderId: 'order-1',
    profile: 'default',
    notBefore: null,
    notAfter: null,
    ...overrides,
  };
}

/** A stand-in SCT: the CA only checks that SCTs decode; the publisher verifies them. */
const standInSct = encodeSct({
  version: 0,
  logId: Buffer.alloc(32, 7),
  timestamp: Date.now(),
  extensions: Buffer.alloc(0),
  signature: { hashAlgorithm: 4, signatureAlgorithm: 3, signature: Buffer.alloc(70, 1) },
}).toString('base64');

/** Issues as the RA does: the precertificate, then the certificate with an SCT list. */
async function issue(ca: CertificateAuthorityImpl, req: IssueRequest): Promise<IssuedCertificate> {
  const precert = await ca.issuePrecertificate(req);
  return ca.issueCertificateForPrecertificate({
    serial: precert.serial,
    precertificate: precert.precertificate,
    scts: [standInSct],
    accountId: req.accountId,
    orderId: req.orderId,
    profile: req.profile,
  });
}

let files = 0;
function tempFile(content: string): string {
  const file = join(dir, `f${++files}.pem`);
  writeFileSync(file, content);
  return file;
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('openssl', args);
  return stdout + stderr;
}

const seconds = (a: string, b: string) => (Date.parse(b) - Date.parse(a)) / 1000;

t.test('issues a certificate that OpenSSL verifies through the issuer to the root', async (t) => {
  const { ca } = setup();
  const issued = await issue(ca, await request());
  const leaf = tempFile(certificateToPem(Buffer.from(issued.der, 'base64')));

  const verdict = await openssl(
    'verify',
    '-x509_strict',
    '-purpose',
    'sslserver',
    '-CAfile',
    ecdsa.rootFile,
    '-untrusted',
    ecdsa.description.certFile,
    leaf,
  );
  t.match(verdict, /: OK/);
  t.equal(issued.issuerId, ecdsa.issuer.id);
});

t.test('writes SAN, key usage, serverAuth, AIA, CRL DP and the DV policy', async (t) => {
  const { ca } = setup();
  const issued = await issue(ca, await request());
  const leaf = tempFile(certificateToPem(Buffer.from(issued.der, 'base64')));
  const text = await openssl('x509', '-in', leaf, '-text', '-noout');
  const { id } = ecdsa.issuer;

  t.match(text, /Subject: CN = www\.example\.test/);
  t.match(text, /Subject Alternative Name:\s+DNS:www\.example\.test, DNS:example\.test/);
  t.match(text, /Key Usage: critical\s+Digital Signature\n/);
  t.match(text, /Extended Key Usage:\s+TLS Web Server Authentication\n/);
  t.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  t.match(text, new RegExp(`OCSP - URI:http://127\\.0\\.0\\.1:4002/ocsp/${id}`));
  t.match(text, new RegExp(`CA Issuers - URI:http://127\\.0\\.0\\.1:4002/issuer/${id}\\.der`));
  const crl = `URI:http://127\\.0\\.0\\.1:4002/crl/${id}\\.crl`;
  t.match(text, new RegExp(`CRL Distribution Points:\\s+Full Name:\\s+${crl}`));
  t.match(text, /Policy: 2\.23\.140\.1\.2\.1/);
  t.match(text, /Subject Key Identifier/);
  t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);

  const akiHex = ecdsa.issuer.subjectKeyId.toString('hex').toUpperCase().match(/../g)!.join(':');
  t.match(text, new RegExp(`Authority Key Identifier:\\s+(keyid:)?${akiHex}`));
});

t.test('uses a positive serial of 32 hex digits that the SA reserved first', async (t) => {
  const { ca, sa } = setup();
  const issued = await issue(ca, await request());

  t.match(issued.serial, /^[0-7][0-9a-f]{31}$/);
  t.not(issued.serial.slice(0, 2), '00');
  t.equal(serialFromCertificate(Buffer.from(issued.der, 'base64')), issued.serial);
  t.same(sa.reserved.get(issued.serial), { accountId: 'acct-1', expires: issued.notAfter });
});

t.test('retries a serial the SA reports as a duplicate and never uses it', async (t) => {
  const { ca, sa, logs } = setup();
  sa.collisions = 2;
  const issued = await issue(ca, await request());

  t.equal(sa.attempts.length, 3);
  t.equal(new Set(sa.attempts).size, 3, 'each attempt draws a new serial');
  t.equal(issued.serial, sa.attempts[2]);
  t.notOk(sa.reserved.has(sa.attempts[0]));
  t.equal(logs.filter((l) => l.msg === 'serial already reserved').length, 2);
});

t.test('fails with internal after five duplicates, signing nothing', async (t) => {
  const { ca, sa, logs } = setup();
  sa.collisions = 5;

  await t.rejects(issue(ca, await request()), {
    kind: 'internal',
    message: /no unused serial after 5 attempts/,
  });
  t.equal(sa.attempts.length, 5);
  t.notOk(logs.some((l) => l.msg === 'certificate signed'));
});

t.test('fails with the SA error when the SA is unavailable', async (t) => {
  const { ca, sa } = setup();
  sa.failure = new CaError('unavailable', 'sa down');
  await t.rejects(issue(ca, await request()), { name: 'CaError', kind: 'unavailable' });
});

t.test('writes an audit event for each certificate signed', async (t) => {
  const { ca, logs, metrics } = setup();
  const issued = await issue(ca, await request());
  const event = logs.find((l) => l.msg === 'certificate signed');

  t.match(event, {
    audit: true,
    component: 'ca',
    serial: issued.serial,
    issuer: ecdsa.issuer.id,
    acct: 'acct-1',
    order: 'order-1',
    names: ['www.example.test', 'example.test'],
    profile: 'default',
  });
  const counter = await metrics.getSingleMetricAsString('ca_certificates_signed_total');
  t.match(counter, new RegExp(`profile="default",issuer="${ecdsa.issuer.id}"} 1`));
});

t.test('rejects a CSR whose signature does not verify as badCSR', async (t) => {
  const { ca, sa } = setup();
  const req = await request();
  const der = Buffer.from(req.csr, 'base64');
  der[der.length - 1] ^= 0x01;

  await t.rejects(issue(ca, { ...req, csr: der.toString('base64') }), {
    kind: 'badCSR',
    message: /signature does not verify/,
  });
  t.equal(sa.attempts.length, 0, 'no serial is reserved');
});

t.test('rejects an RSA-1024 CSR as badPublicKey', async (t) => {
  const { ca } = setup();
  const names = ['rsa.example.test'];
  const csr = (await makeCsr(names, 'rsa1024')).toString('base64');

  await t.rejects(issue(ca, await request({ names, csr })), {
    kind: 'badPublicKey',
    message: /1024 bits/,
  });
});

t.test('rejects a CSR that asks for a name not in the request as badCSR', async (t) => {
  const { ca } = setup();
  const csr = (await makeCsr(['a.example.test', 'evil.example.test'])).toString('base64');

  await t.rejects(issue(ca, await request({ names: ['a.example.test'], csr })), {
    kind: 'badCSR',
    message: /evil\.example\.test/,
  });
});

t.test('rejects an unknown profile as malformed', async (t) => {
  const { ca } = setup();
  await t.rejects(issue(ca, await request({ profile: 'forever' })), {
    kind: 'malformed',
    message: /unknown profile "forever"; expected one of default, shortlived/,
  });
});

t.test('rejects no names, over 100 names, and names that are not DNS names', async (t) => {
  const { ca } = setup();
  const base = await request();
  const many = Array.from({ length: 101 }, (_, i) => `n${i}.example.test`);

  await t.rejects(issue(ca, { ...base, names: [] }), {
    kind: 'malformed',
    message: /at least one name/,
  });
  await t.rejects(issue(ca, { ...base, names: many }), {
    kind: 'malformed',
    message: /101 names; at most 100/,
  });
  await t.rejects(issue(ca, { ...base, names: ['Upper.example.test'] }), {
    kind: 'malformed',
    message: /"Upper\.example\.test"/,
  });
});

t.test('honours the shortlived profile lifetime', async (t) => {
  const { ca } = setup();
  const issued = await issue(ca, await request({ profile: 'shortlived' }));
  const facts = inspectCertificate(Buffer.from(issued.der, 'base64'));

  // RFC 5280 counts both ends of the validity period, so the span is one second short.
  t.equal(seconds(issued.notBefore, issued.notAfter) + 1, 160 * 3600);
  t.equal(facts.notAfter.toISOString(), issued.notAfter);
  t.equal(facts.notBefore.toISOString(), issued.notBefore);
});

t.test('uses the default profile of 90 days when the request names none', async (t) => {
  const { ca, logs } = setup();
  const issued = await issue(ca, await request({ profile: '' }));

  t.equal(seconds(issued.notBefore, issued.notAfter) + 1, 90 * 86_400);
  t.match(logs.find((l) => l.msg === 'certificate signed'), { profile: 'default' });
});

t.test('backdates notBefore by an hour', async (t) => {
  const now = new Date('2030-01-01T12:00:00.400Z');
  const { ca } = setup(ecdsa.issuer, { now: () => now });
  const issued = await issue(ca, await request());
  t.equal(issued.notBefore, '2030-01-01T11:00:00.000Z');
});

t.test('honours a requested validity inside the profile window', async (t) => {
  const now = new Date('2030-01-01T12:00:00Z');
  const { ca } = setup(ecdsa.issuer, { now: () => now });
  const issued = await issue(ca, 
    await request({ notBefore: '2030-01-02T00:00:00Z', notAfter: '2030-01-09T00:00:00Z' }),
  );

  t.equal(issued.notBefore, '2030-01-02T00:00:00.000Z');
  t.equal(issued.notAfter, '2030-01-09T00:00:00.000Z');
});

t.test('rejects a requested validity outside the profile window as malformed', async (t) => {
  const now = new Date('2030-01-01T12:00:00Z');
  const { ca } = setup(ecdsa.issuer, { now: () => now });

  await t.rejects(
    issue(ca, await request({ profile: 'shortlived', notAfter: '2030-01-20T00:00:00Z' })),
    { kind: 'malformed', message: /notAfter 2030-01-20T00:00:00\.000Z is after .* shortlived/ },
  );
  await t.rejects(issue(ca, await request({ notBefore: '2029-12-01T00:00:00Z' })), {
    kind: 'malformed',
    message: /notBefore 2029-12-01T00:00:00\.000Z is before/,
  });
  await t.rejects(
    issue(ca, 
      await request({ notBefore: '2030-01-05T00:00:00Z', notAfter: '2030-01-04T00:00:00Z' }),
    ),
    { kind: 'malformed', message: /is not after notBefore/ },
  );
  await t.rejects(issue(ca, await request({ notAfter: 'next week' })), {
    kind: 'malformed',
    message: /expected notAfter as an ISO 8601 time, got "next week"/,
  });
});

t.test('adds keyEncipherment for an RSA subscriber key', async (t) => {
  const { ca } = setup();
  const names = ['rsa.example.test'];
  const csr = (await makeCsr(names, 'rsa2048')).toString('base64');
  const issued = await issue(ca, await request({ names, csr }));
  const text = await openssl(
    'x509',
    '-in',
    tempFile(certificateToPem(Buffer.from(issued.der, 'base64'))),
    '-text',
    '-noout',
  );

  t.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment/);
});

t.test('leaves out the common name when the first name is over 64 characters', async (t) => {
  const { ca } = setup();
  const long = `${'a'.repeat(60)}.example.test`;
  const issued = await issue(ca, await request({ names: [long] }));
  const text = await openssl(
    'x509',
    '-in',
    tempFile(certificateToPem(Buffer.from(issued.der, 'base64'))),
    '-text',
    '-noout',
  );

  t.match(text, /Subject: \n|Subject:\s*$/m);
  t.match(text, /Subject Alternative Name: critical/);
});

t.test('issues under an RSA issuer, and OpenSSL verifies the chain', async (t) => {
  const rsa = await hierarchy('rsa', 'rsa-2048');
  const { ca } = setup(rsa.issuer);
  const issued = await issue(ca, await request());
  const leaf = tempFile(certificateToPem(Buffer.from(issued.der, 'base64')));

  const verdict = await openssl(
    'verify',
    '-x509_strict',
    '-CAfile',
    rsa.rootFile,
    '-untrusted',
    rsa.description.certFile,
    leaf,
  );
  t.match(verdict, /: OK/);
  t.match(await openssl('x509', '-in', leaf, '-text', '-noout'), /sha256WithRSAEncryption/);
  t.equal(issued.issuerId, rsa.issuer.id);
});

t.test('rejects an active issuer id it was not given', async (t) => {
  t.throws(() => setup(ecdsa.issuer, { activeIssuerId: 'nope' }), {
    message: new RegExp(`one of ${ecdsa.issuer.id}, got nope`),
  });
});
