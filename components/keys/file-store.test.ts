import { createPublicKey, verify } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CaError } from '../lib/errors.js';
import { signatureHashOf } from './algorithms.js';
import { FileKeyStore } from './file-store.js';
import { openKeyStore } from './index.js';
import { keyAlgorithms } from './types.js';

const root = mkdtempSync(join(tmpdir(), 'file-store-test-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
const newDir = () => join(root, `store-${++dirs}`);

t.test('keeps keys in files of mode 0600 in a directory of mode 0700', async (t) => {
  const dir = newDir();
  const store = new FileKeyStore(dir);
  await store.generate('issuer-1', 'ecdsa-p256');

  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.equal(statSync(join(dir, 'issuer-1.key')).mode & 0o777, 0o600);
  t.same(await store.list(), ['issuer-1']);
});

for (const algorithm of keyAlgorithms) {
  t.test(`signs with an ${algorithm} key that verifies with node:crypto`, async (t) => {
    const store = new FileKeyStore(newDir());
    const generated = await store.generate('k', algorithm);
    const loaded = await store.load('k');
    const data = Buffer.from('to be signed');

    t.equal(loaded.algorithm, algorithm);
    t.ok(loaded.publicKeySpki.equals(generated.publicKeySpki), 'load returns the same key');

    const signature = await loaded.sign(data);
    const key = createPublicKey({ key: loaded.publicKeySpki, format: 'der', type: 'spki' });
    const ok = verify(signatureHashOf(algorithm), data, { key, dsaEncoding: 'der' }, signature);
    t.ok(ok, 'the signature verifies');
    if (algorithm.startsWith('ecdsa')) t.equal(signature[0], 0x30, 'ECDSA signatures are DER');
  });
}

t.test('fails to load a missing key and names it', async (t) => {
  const store = new FileKeyStore(newDir());
  await store.generate('present', 'ecdsa-p256');

  const err = await store.load('absent').catch((e: unknown) => e);
  t.type(err, CaError);
  t.equal((err as CaError).kind, 'notFound');
  t.match((err as CaError).message, /absent/);
});

t.test('rejects generating over an existing key', async (t) => {
  const store = new FileKeyStore(newDir());
  const first = await store.generate('root', 'ecdsa-p256');

  await t.rejects(store.generate('root', 'ecdsa-p384'), { kind: 'conflict', message: /root/ });
  const kept = await store.load('root');
  t.ok(kept.publicKeySpki.equals(first.publicKeySpki), 'the first key is untouched');
});

t.test('rejects ids outside [a-z0-9-]', async (t) => {
  const store = new FileKeyStore(newDir());
  for (const id of ['../escape', 'Upper', 'a.b', '', 'x'.repeat(65)]) {
    const wanted = { name: 'CaError', kind: 'malformed' };
    await t.rejects(store.generate(id, 'ecdsa-p256'), wanted, JSON.stringify(id));
  }
});

t.test('rejects a key file that others may read', async (t) => {
  const dir = newDir();
  const store = new FileKeyStore(dir);
  await store.generate('loose', 'ecdsa-p256');
  chmodSync(join(dir, 'loose.key'), 0o644);

  await t.rejects(store.load('loose'), { message: /mode 0644; expected 0600/ });
});

t.test('rejects a key directory that others may read', async (t) => {
  const dir = newDir();
  const store = new FileKeyStore(dir);
  await store.generate('k', 'ecdsa-p256');
  chmodSync(dir, 0o755);

  await t.rejects(store.load('k'), { message: /mode 0755/ });
});

t.test('rejects a key of an algorithm it does not sign with', async (t) => {
  const dir = newDir();
  const store = new FileKeyStore(dir);
  await store.generate('k', 'ecdsa-p256');
  // An Ed25519 key, PKCS#8 PEM, placed by hand.
  const { generateKeyPairSync } = await import('node:crypto');
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' });
  writeFileSync(join(dir, 'ed.key'), pem, { mode: 0o600 });

  await t.rejects(store.load('ed'), { message: /key ed is ed25519/ });
});

t.test('fails to sign once the store is closed', async (t) => {
  const store = new FileKeyStore(newDir());
  const key = await store.generate('k', 'ecdsa-p256');
  await store.close();

  await t.rejects(key.sign(Buffer.from('x')), { message: /closed/ });
  await t.rejects(store.load('k'), { message: /closed/ });
});

t.test('opens a file store from its config', async (t) => {
  const dir = newDir();
  const store = openKeyStore({ type: 'file', dir });
  t.type(store, FileKeyStore);
  t.equal((store as FileKeyStore).dir, dir);
});
