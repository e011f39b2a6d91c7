import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { spawn } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { FileKeyStore } from '../keys/file-store.js';
import { CaError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { ensureIdentity, serverNameOf } from '../lib/pki.js';
import { createRpcClient, startRpcServer } from '../lib/rpc.js';
import { encodeSct } from '../lib/sct.js';
import { serialFromCertificate } from '../lib/x509.js';
import { saService, type StorageAuthority } from '../sa/service.js';
import { createHierarchy } from './hierarchy.js';
import { caService } from './service.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const dir = mkdtempSync(join(tmpdir(), 'ca-main-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const mainFile = new URL('./main.ts', import.meta.url).pathname;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `ca --config …` to its end. */
function runCa(args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', mainFile, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function writeConfig(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

const pkiDir = join(dir, 'pki');
const caTls = await ensureIdentity(pkiDir, 'ca');
const saTls = await ensureIdentity(pkiDir, 'sa');
const raTls = await ensureIdentity(pkiDir, 'ra');

const keyDir = join(dir, 'keys');
const issuer = await createHierarchy({
  keyStore: new FileKeyStore(keyDir),
  dir: join(dir, 'ca'),
  rootName: 'main test root',
  issuerName: 'main test issuer',
  urls: {
    ocspBase: 'http://127.0.0.1:4002/ocsp',
    crlBase: 'http://127.0.0.1:4002/crl',
    caIssuersBase: 'http://127.0.0.1:4002/issuer',
  },
});

// Stands in for the SA, which has its own suite: only addSerial answers.
const reserved: string[] = [];
const saImpl = Object.fromEntries(
  saService.methods.map((method) => [
    method,
    async () => {
      throw new CaError('internal', `${method} is not part of this test`);
    },
  ]),
) as unknown as StorageAuthority;
saImpl.addSerial = async ({ serial }) => {
  reserved.push(serial);
};
const sa = await startRpcServer({
  address: '127.0.0.1:0',
  tls: saTls,
  log: createLogger('sa', { level: 'silent' }),
  services: [{ def: saService, impl: saImpl }],
});
t.teardown(() => sa.close());

/** A stand-in SCT: the CA only checks that SCTs decode; the publisher verifies them. */
const standInSct = encodeSct({
  version: 0,
  logId: Buffer.alloc(32, 7),
  timestamp: Date.now(),
  extensions: Buffer.alloc(0),
  signature: { hashAlgorithm: 4, signatureAlgorithm: 3, signature: Buffer.alloc(70, 1) },
}).toString('base64');

const goodConfig = {
  listen: '127.0.0.1:0',
  adminListen: '127.0.0.1:0',
  tls: caTls,
  log: { level: 'info' },
  sa: { address: `127.0.0.1:${sa.port}`, serverName: serverNameOf('sa') },
  keyStore: { type: 'file', dir: keyDir },
  issuers: [issuer],
  activeIssuer: issuer.id,
};

t.test('fails with one line and exit 2 when --config is missing', async (t) => {
  const result = await runCa([]);
  t.equal(result.code, 2);
  t.equal(result.stderr, 'ca: missing --config <file>\n');
});

t.test('fails with one line and exit 2 when the config file cannot be read', async (t) => {
  const result = await runCa(['--config', join(dir, 'absent.json')]);
  t.equal(result.code, 2);
  t.match(result.stderr, /^ca: config .*absent\.json: cannot read: [^\n]*\n$/);
});

t.test('fails with one line naming the field when the config is invalid', async (t) => {
  const file = writeConfig('bad-active.json', { ...goodConfig, activeIssuer: 'nope' });
  const result = await runCa(['--config', file]);

  t.equal(result.code, 2);
  t.match(result.stderr, /^ca: config .*: activeIssuer: expected one of the issuers [^\n]*nope\n$/);
});

t.test('fails with one line and exit 2 when an issuer key is missing', async (t) => {
  const file = writeConfig('bad-key.json', {
    ...goodConfig,
    issuers: [{ ...issuer, keyId: 'absent-key' }],
  });
  const result = await runCa(['--config', file]);

  t.equal(result.code, 2);
  t.match(result.stderr, /^ca: issuers: [0-9a-f]{8}: .*absent-key[^\n]*\n$/);
});

t.test('serves issuance to the RA over mTLS and stops cleanly on SIGTERM', async (t) => {
  const file = writeConfig('good.json', goodConfig);
  const child = spawn(process.execPath, ['--import', 'tsx', mainFile, '--config', file]);
  const lines: Record<string, unknown>[] = [];
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'ca started') resolve(entry);
    });
    child.on('close', (code) => reject(new Error(`ca exited with ${code} before it started`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  t.teardown(() => child.kill('SIGKILL'));

  const { port, adminPort } = (await started) as { port: number; adminPort: number };
  t.match(lines.find((l) => l.msg === 'signing key loaded'), {
    audit: true,
    issuer: issuer.id,
    keyId: 'issuer-1',
  });

  const health = await fetch(`http://127.0.0.1:${adminPort}/health`);
  t.equal(health.status, 200);

  const keys = (await webcrypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=rpc.example.test',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  const client = createRpcClient(
    caService,
    { address: `127.0.0.1:${port}`, serverName: serverNameOf('ca'), timeoutMs: 10_000 },
    raTls,
  );
  t.teardown(() => client.close());

  const precert = await client.issuePrecertificate({
    csr: Buffer.from(csr.rawData).toString('base64'),
    names: ['rpc.example.test'],
    accountId: 'acct-9',
    orderId: 'order-9',
    profile: 'shortlived',
    notBefore: null,
    notAfter: null,
  });
  t.same(reserved, [precert.serial], 'the serial was reserved through the SA');
  const issued = await client.issueCertificateForPrecertificate({
    serial: precert.serial,
    precertificate: precert.precertificate,
    scts: [standInSct],
    accountId: 'acct-9',
    orderId: 'order-9',
    profile: 'shortlived',
  });
  t.equal(serialFromCertificate(Buffer.from(issued.der, 'base64')), precert.serial);

  const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  t.match(metrics, /ca_certificates_signed_total\{profile="shortlived",issuer="[0-9a-f]{8}"/);

  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.ok(lines.some((l) => l.msg === 'ca stopped'));
});
