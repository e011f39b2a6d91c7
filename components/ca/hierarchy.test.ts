import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { FileKeyStore } from '../keys/file-store.js';
import { inspectCertificate, pemToDer, pemToDers } from '../lib/x509.js';
import { addIssuer, createHierarchy, listIssuers, rootCertFile } from './hierarchy.js';
import { issuerIdOf, loadIssuer } from './issuer.js';

const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'hierarchy-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const urls = {
  ocspBase: 'http://127.0.0.1:4002/ocsp',
  crlBase: 'http://127.0.0.1:4002/crl/',
  caIssuersBase: 'http://127.0.0.1:4002/issuer',
};

let n = 0;
/** A fresh key store and certificate directory for one test. */
function fresh() {
  const base = join(dir, `h${++n}`);
  return { keyStore: new FileKeyStore(join(base, 'keys')), dir: join(base, 'ca') };
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('openssl', args);
  return stdout + stderr;
}

t.test('creates a root and an intermediate that OpenSSL verifies against it', async (t) => {
  const where = fresh();
  const issuer = await createHierarchy({
    ...where,
    rootName: 'test root',
    issuerName: 'test issuer',
    urls,
  });
  const root = rootCertFile(where.dir);

  t.match(await openssl('verify', '-x509_strict', '-CAfile', root, issuer.certFile), /: OK/);
  t.match(issuer.id, /^[0-9a-f]{8}$/);
  t.equal(issuer.keyId, 'issuer-1');
  t.equal(issuer.certFile, join(where.dir, `issuer-${issuer.id}.pem`));
  t.equal(issuer.ocspUrl, `http://127.0.0.1:4002/ocsp/${issuer.id}`);
  t.equal(issuer.crlUrl, `http://127.0.0.1:4002/crl/${issuer.id}.crl`);
  t.equal(issuer.caIssuersUrl, `http://127.0.0.1:4002/issuer/${issuer.id}.der`);

  const text = await openssl('x509', '-in', issuer.certFile, '-text', '-noout');
  t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  t.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  t.match(text, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  t.match(text, /Extended Key Usage:\s+TLS Web Server Authentication/);
  t.match(text, /Subject Key Identifier/);
  t.match(text, /Authority Key Identifier/);
  t.match(text, /Issuer: CN = test root/);
  t.match(text, /Subject: CN = test issuer/);

  const rootText = await openssl('x509', '-in', root, '-text', '-noout');
  t.match(rootText, /Basic Constraints: critical\s+CA:TRUE\s/);
  t.match(rootText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
});

t.test('derives the issuer id from the intermediate key and gives 10 and 5 years', async (t) => {
  const where = fresh();
  const issuer = await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });
  const intermediate = inspectCertificate(pemToDer(readFileSync(issuer.certFile, 'utf8')));
  const root = inspectCertificate(pemToDer(readFileSync(rootCertFile(where.dir), 'utf8')));

  t.equal(issuer.id, issuerIdOf(intermediate.spki));
  const years = (f: { notBefore: Date; notAfter: Date }) =>
    f.notAfter.getUTCFullYear() - f.notBefore.getUTCFullYear();
  t.equal(years(root), 10);
  t.equal(years(intermediate), 5);
});

t.test('writes a chain file of the intermediate then the root', async (t) => {
  const where = fresh();
  const issuer = await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });
  const chain = pemToDers(readFileSync(issuer.chainFile, 'utf8'));

  t.equal(chain.length, 2);
  t.ok(chain[0].equals(pemToDer(readFileSync(issuer.certFile, 'utf8'))));
  t.ok(chain[1].equals(pemToDer(readFileSync(rootCertFile(where.dir), 'utf8'))));
});

t.test('changes nothing when run again', async (t) => {
  const where = fresh();
  const options = { ...where, rootName: 'r', issuerName: 'i', urls };
  const first = await createHierarchy(options);
  const rootPem = readFileSync(rootCertFile(where.dir), 'utf8');
  const issuerPem = readFileSync(first.certFile, 'utf8');

  const second = await createHierarchy(options);
  t.same(second, first);
  t.equal(readFileSync(rootCertFile(where.dir), 'utf8'), rootPem);
  t.equal(readFileSync(first.certFile, 'utf8'), issuerPem);
  t.same(await where.keyStore.list(), ['issuer-1', 'root']);
});

t.test('gives the issuer the URLs of the current run', async (t) => {
  const where = fresh();
  const options = { ...where, rootName: 'r', issuerName: 'i', urls };
  const first = await createHierarchy(options);
  const moved = await createHierarchy({
    ...options,
    urls: { ...urls, ocspBase: 'http://ocsp.example.test' },
  });

  t.equal(moved.id, first.id);
  t.equal(moved.ocspUrl, `http://ocsp.example.test/${first.id}`);
});

t.test('creates an RSA hierarchy that OpenSSL verifies', async (t) => {
  const where = fresh();
  const issuer = await createHierarchy({
    ...where,
    algorithm: 'rsa-2048',
    rootName: 'rsa root',
    issuerName: 'rsa issuer',
    urls,
  });

  const root = rootCertFile(where.dir);
  t.match(await openssl('verify', '-x509_strict', '-CAfile', root, issuer.certFile), /: OK/);
  const text = await openssl('x509', '-in', issuer.certFile, '-text', '-noout');
  t.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
  t.match(text, /Public-Key: \(2048 bit\)/);
  t.equal((await where.keyStore.load(issuer.keyId)).algorithm, 'rsa-2048');
});

t.test('rejects a re-run that asks for another algorithm', async (t) => {
  const where = fresh();
  await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });

  await t.rejects(
    createHierarchy({ ...where, algorithm: 'rsa-2048', rootName: 'r', issuerName: 'i', urls }),
    { message: /uses ecdsa-p256, not rsa-2048/ },
  );
});

t.test('adds a second issuer under the same root for a rotation', async (t) => {
  const where = fresh();
  const first = await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });
  const second = await addIssuer({ ...where, issuerName: 'i', urls });

  t.not(second.id, first.id);
  t.equal(second.keyId, 'issuer-2');
  const root = rootCertFile(where.dir);
  t.match(await openssl('verify', '-CAfile', root, second.certFile), /: OK/);

  t.same(await listIssuers(where.dir, urls), [first, second]);
  t.same(await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls }), second);
});

t.test('reuses a key an interrupted run left behind', async (t) => {
  const where = fresh();
  const orphan = await where.keyStore.generate('root', 'ecdsa-p256');
  await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });

  const root = inspectCertificate(pemToDer(readFileSync(rootCertFile(where.dir), 'utf8')));
  t.ok(root.spki.equals(orphan.publicKeySpki), 'the root certifies the key found in the store');
});

t.test('loads an issuer it created, pairing the certificate with its key', async (t) => {
  const where = fresh();
  const description = await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });
  const issuer = await loadIssuer(description, where.keyStore);

  t.equal(issuer.id, description.id);
  t.equal(issuer.key.id, 'issuer-1');
  t.equal(issuer.crlUrl, description.crlUrl);
});

t.test('rejects an issuer whose key is not the certified one', async (t) => {
  const where = fresh();
  const description = await createHierarchy({ ...where, rootName: 'r', issuerName: 'i', urls });

  await t.rejects(loadIssuer({ ...description, keyId: 'root' }, where.keyStore), {
    message: new RegExp(`issuer ${description.id}: key root is not the key`),
  });
  await t.rejects(loadIssuer({ ...description, id: 'deadbeef' }, where.keyStore), {
    message: /issuer deadbeef: its certificate's key has id/,
  });
});

t.test('rejects URLs that are not http://', async (t) => {
  const where = fresh();
  await t.rejects(
    createHierarchy({
      ...where,
      rootName: 'r',
      issuerName: 'i',
      urls: { ...urls, crlBase: 'https://crl.example.test' },
    }),
    { message: /urls\.crlBase to be an http:\/\/ URL, got "https:\/\/crl\.example\.test"/ },
  );
});
