import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, verify, webcrypto } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pkcs11js from 'pkcs11js';
import t, { type Test } from 'tap';
import { CertificateAuthorityImpl } from '../ca/ca.js';
import { defaultProfiles } from '../ca/config.js';
import { createHierarchy, rootCertFile } from '../ca/hierarchy.js';
import { loadIssuer } from '../ca/issuer.js';
import { CaError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import {
  encodeSct,
  issuerKeyHashOf,
  logIdOf,
  precertTbsOf,
  sctSignedData,
  signDigitally,
} from '../lib/sct.js';
import { certificateToPem, inspectCertificate } from '../lib/x509.js';
import { requireTool } from '../../test/helpers/tools.js';
import { signatureHashOf } from './algorithms.js';
import { Pkcs11KeyStore, type Pkcs11KeyStoreOptions } from './pkcs11-store.js';
import { initSoftHsmToken, type SoftHsmKeyStoreConfig } from './softhsm.js';
import type { KeyAlgorithm, SigningKey } from './types.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'pkcs11-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const urls = {
  ocspBase: 'http://127.0.0.1:4002/ocsp',
  crlBase: 'http://127.0.0.1:4002/crl',
  caIssuersBase: 'http://127.0.0.1:4002/issuer',
};

if (requireTool(t, 'softhsm2-util', 'apt-get install softhsm2')) {
  // One token folder for the whole file: SoftHSM2 reads its config once per process.
  const token = await initSoftHsmToken({ dir: join(dir, 'hsm'), label: 'test' });
  process.env.TEST_HSM_PIN = readFileSync(token.pin.file, 'utf8').trim();
  suite(token);
}

/** A store on the test token, closed when `t` ends. */
function openStore(
  t: Test,
  token: SoftHsmKeyStoreConfig,
  extra: Partial<Pkcs11KeyStoreOptions> = {},
) {
  const store = new Pkcs11KeyStore({ ...token, ...extra });
  t.teardown(() => store.close());
  return store;
}

function verifies(key: SigningKey, data: Buffer, signature: Buffer): boolean {
  const publicKey = createPublicKey({ key: key.publicKeySpki, format: 'der', type: 'spki' });
  const hash = signatureHashOf(key.algorithm);
  return verify(hash, data, { key: publicKey, dsaEncoding: 'der' }, signature);
}

/**
 * A PKCS#11 session of the test's own on the token, beside the store's: the module is one per
 * process, so it shares the store's login. It leaves the module initialized for the store.
 */
function inspector(token: SoftHsmKeyStoreConfig) {
  const p11 = new pkcs11js.PKCS11();
  p11.load(token.module);
  try {
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if ((err as Error).message !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw err;
  }
  const slot = p11
    .C_GetSlotList(true)
    .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === token.tokenLabel)!;
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);

  const find = (id: string, keyClass: number) => {
    p11.C_FindObjectsInit(session, [
      { type: pkcs11js.CKA_CLASS, value: keyClass },
      { type: pkcs11js.CKA_LABEL, value: id },
    ]);
    const found = p11.C_FindObjects(session, 10);
    p11.C_FindObjectsFinal(session);
    return found;
  };
  const done = () => {
    p11.C_CloseSession(session);
    p11.close();
  };
  return { p11, slot, session, find, done };
}

function suite(token: SoftHsmKeyStoreConfig): void {
  const algorithms: KeyAlgorithm[] = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072'];
  for (const algorithm of algorithms) {
    t.test(`signs with ${algorithm} and node:crypto verifies with its SPKI`, async (t) => {
      const store = openStore(t, token);
      const data = Buffer.from(`to be signed by ${algorithm}`);

      const key = await store.generate(`sign-${algorithm}`, algorithm);
      t.equal(key.algorithm, algorithm);
      t.ok(verifies(key, data, await key.sign(data)), 'signature verifies');

      const loaded = await store.load(`sign-${algorithm}`);
      t.equal(loaded.algorithm, algorithm);
      t.ok(loaded.publicKeySpki.equals(key.publicKeySpki), 'load reads the same public key');
      t.ok(verifies(loaded, data, await loaded.sign(data)), 'a loaded key signs too');
    });
  }

  t.test('keeps private keys on the token, sensitive and never extractable', async (t) => {
    const store = openStore(t, token);
    await store.generate('attributes', 'ecdsa-p256');
    const look = inspector(token);
    t.teardown(look.done);

    const [privateKey] = look.find('attributes', pkcs11js.CKO_PRIVATE_KEY);
    t.ok(privateKey, 'the private key is an object on the token');
    const flags = [
      ['CKA_TOKEN', pkcs11js.CKA_TOKEN, true],
      ['CKA_PRIVATE', pkcs11js.CKA_PRIVATE, true],
      ['CKA_SENSITIVE', pkcs11js.CKA_SENSITIVE, true],
      ['CKA_ALWAYS_SENSITIVE', pkcs11js.CKA_ALWAYS_SENSITIVE, true],
      ['CKA_EXTRACTABLE', pkcs11js.CKA_EXTRACTABLE, false],
      ['CKA_NEVER_EXTRACTABLE', pkcs11js.CKA_NEVER_EXTRACTABLE, true],
      ['CKA_SIGN', pkcs11js.CKA_SIGN, true],
    ] as const;
    for (const [name, type, expected] of flags) {
      const [{ value }] = look.p11.C_GetAttributeValue(look.session, privateKey, [{ type }]);
      t.equal(value[0] === 1, expected, `${name} is ${expected}`);
    }

    const [label, id] = look.p11.C_GetAttributeValue(look.session, privateKey, [
      { type: pkcs11js.CKA_LABEL },
      { type: pkcs11js.CKA_ID },
    ]);
    t.equal(label.value.toString(), 'attributes');
    t.equal(id.value.toString(), 'attributes');

    t.throws(
      () => look.p11.C_GetAttributeValue(look.session, privateKey, [{ type: pkcs11js.CKA_VALUE }]),
      { message: 'CKR_ATTRIBUTE_SENSITIVE' },
      'the private value cannot be read',
    );
  });

  t.test('signs 50 requests at once and every signature verifies', async (t) => {
    const store = openStore(t, token, { maxSessions: 3 });
    const key = await store.generate('concurrent', 'ecdsa-p256');

    const inputs = Array.from({ length: 50 }, (_, i) => Buffer.from(`message ${i}`));
    const signatures = await Promise.all(inputs.map((data) => key.sign(data)));
    const good = signatures.filter((signature, i) => verifies(key, inputs[i], signature));
    t.equal(good.length, 50);
  });

  t.test('lists the ids of the keys on the token', async (t) => {
    const store = openStore(t, token);
    await store.generate('listed', 'ecdsa-p256');
    const ids = await store.list();
    t.ok(ids.includes('listed'));
    t.same(ids, [...ids].sort());
  });

  t.test('rejects a wrong PIN with one error that names the token and not the PIN', async (t) => {
    process.env.TEST_WRONG_PIN = 'not-the-pin-1234';
    const store = openStore(t, token, { pin: { env: 'TEST_WRONG_PIN' } });

    const err = (await store.list().catch((e: unknown) => e)) as CaError;
    t.type(err, CaError);
    t.equal(err.kind, 'unavailable');
    t.match(err.message, /token test with the PIN from environment variable TEST_WRONG_PIN/);
    t.match(err.message, /CKR_PIN_INCORRECT/);
    t.notMatch(err.message, /not-the-pin-1234/);
    t.notMatch(String((err.cause as Error | undefined)?.message), /not-the-pin-1234/);

    const again = await store.list().catch((e: unknown) => e);
    t.equal(again, err, 'the refused PIN is not offered to the token again');
    process.env.TEST_WRONG_PIN = process.env.TEST_HSM_PIN;
    t.ok((await store.list()).length > 0, 'a corrected PIN is read and used on the next call');
  });

  t.test('rejects a PIN other than the one this process is logged in with', async (t) => {
    const good = openStore(t, token);
    await good.list();
    process.env.TEST_WRONG_PIN = 'not-the-pin-5678';
    const bad = openStore(t, token, { pin: { env: 'TEST_WRONG_PIN' } });

    await t.rejects(bad.list(), { kind: 'unavailable', message: /CKR_PIN_INCORRECT/ });
    t.ok((await good.list()).length > 0, 'the store logged in first goes on working');
  });

  t.test('fails with the PIN source named when the PIN is missing', async (t) => {
    delete process.env.TEST_NO_PIN;
    const store = openStore(t, token, { pin: { env: 'TEST_NO_PIN' } });
    await t.rejects(store.list(), {
      kind: 'unavailable',
      message: /environment variable TEST_NO_PIN, which is unset/,
    });
  });

  t.test('fails to load a key that is not on the token, naming it', async (t) => {
    const store = openStore(t, token);
    await t.rejects(store.load('no-such-key'), {
      kind: 'notFound',
      message: /no key no-such-key on HSM token test/,
    });
  });

  t.test('rejects generating a key whose id is taken', async (t) => {
    const store = openStore(t, token);
    await store.generate('taken', 'ecdsa-p256');
    await t.rejects(store.generate('taken', 'ecdsa-p256'), { kind: 'conflict', message: /taken/ });
  });

  t.test('fails with unavailable when the module cannot be loaded', async (t) => {
    const store = openStore(t, token, { module: join(dir, 'missing-module.so') });
    await t.rejects(store.list(), {
      kind: 'unavailable',
      message: /the HSM module .*missing-module\.so could not be loaded/,
    });
  });

  t.test('fails with unavailable when no token has the label', async (t) => {
    const store = openStore(t, token, { tokenLabel: 'absent' });
    await t.rejects(store.list(), {
      kind: 'unavailable',
      message: /has no token labelled absent \(tokens: test\)/,
    });
  });

  t.test('fails with unavailable after it is closed', async (t) => {
    const store = new Pkcs11KeyStore(token);
    const key = await store.generate('closed', 'ecdsa-p256');
    await store.close();
    await t.rejects(key.sign(Buffer.from('x')), { kind: 'unavailable', message: /is closed/ });
  });

  t.test('opens new sessions after the module drops them and signs again', async (t) => {
    const store = openStore(t, token);
    const key = await store.generate('reconnect', 'ecdsa-p256');
    await key.sign(Buffer.from('before'));

    const look = inspector(token);
    look.p11.C_CloseAllSessions(look.slot);
    look.p11.close();

    const data = Buffer.from('after');
    t.ok(verifies(key, data, await key.sign(data)));
  });

  t.test('initializes the module again after something else finalized it', async (t) => {
    const store = openStore(t, token);
    const key = await store.generate('reinitialize', 'ecdsa-p384');

    const look = inspector(token);
    look.p11.C_Finalize();
    look.p11.close();

    const data = Buffer.from('after finalize');
    t.ok(verifies(key, data, await key.sign(data)));
  });

  // SoftHSM2 marks a token whose folder vanished as broken until the module is initialized
  // again; moving the folder away is how an unmounted volume or a lost HSM looks to the store.
  t.test('fails while the token is gone and signs again once it is back', async (t) => {
    const store = openStore(t, token);
    const key = await store.generate('comes-back', 'ecdsa-p256');
    await key.sign(Buffer.from('before'));

    const tokens = join(dir, 'hsm', 'tokens');
    renameSync(tokens, `${tokens}.away`);
    t.teardown(() => {
      if (existsSync(`${tokens}.away`)) renameSync(`${tokens}.away`, tokens);
    });

    const first = (await key.sign(Buffer.from('gone')).catch((e: unknown) => e)) as CaError;
    t.type(first, CaError);
    t.equal(first.kind, 'unavailable');
    t.match(first.message, /the HSM token test does not answer/);
    t.notMatch(first.message, /no longer holds key/, 'a missing token is not a deleted key');
    await t.rejects(key.sign(Buffer.from('still gone')), { kind: 'unavailable', message: /HSM/ });

    renameSync(`${tokens}.away`, tokens);
    const data = Buffer.from('back');
    t.ok(verifies(key, data, await key.sign(data)), 'the same key object signs again');
  });

  t.test('creates a hierarchy on the token that OpenSSL verifies', async (t) => {
    const store = openStore(t, token);
    const caDir = join(dir, 'hierarchy');
    const issuer = await createHierarchy({
      keyStore: store,
      dir: caDir,
      algorithm: 'ecdsa-p384',
      rootName: 'hsm root',
      issuerName: 'hsm issuer',
      urls,
    });

    const { stdout } = await run('openssl', [
      'verify',
      '-x509_strict',
      '-CAfile',
      rootCertFile(caDir),
      issuer.certFile,
    ]);
    t.match(stdout, /: OK/);
    t.same(
      (await store.list()).filter((id) => id === 'root' || id === 'issuer-1'),
      ['issuer-1', 'root'],
    );
  });

  t.test('issues a certificate with a token-held issuer key that OpenSSL verifies', async (t) => {
    const store = openStore(t, token);
    const ca = await caOn(store, join(dir, 'hierarchy'));
    const issued = await issue(ca.ca, ['hsm.example.test']);

    const leaf = join(dir, 'leaf.pem');
    writeFileSync(leaf, certificateToPem(Buffer.from(issued.der, 'base64')));
    const { stdout } = await run('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      ca.rootFile,
      '-untrusted',
      ca.issuerFile,
      leaf,
    ]);
    t.match(stdout, /: OK/);
    t.ok(ca.logs.some((l) => l.msg === 'certificate signed' && l.serial === issued.serial));
  });

  // Destroys the hierarchy's issuer key, so it runs last.
  t.test('fails an issuance, naming the key, when the token no longer holds it', async (t) => {
    const store = openStore(t, token);
    const ca = await caOn(store, join(dir, 'hierarchy'));
    const look = inspector(token);
    for (const handle of look.find('issuer-1', pkcs11js.CKO_PRIVATE_KEY)) {
      look.p11.C_DestroyObject(look.session, handle);
    }
    look.done();

    const err = (await issue(ca.ca, ['gone.example.test']).catch((e: unknown) => e)) as CaError;
    t.type(err, CaError);
    t.equal(err.kind, 'unavailable', 'the RA can tell the client the HSM failed');
    t.match(err.message, /signing .* with issuer [0-9a-f]{8} failed: the signing key store/);
    t.equal((err.cause as CaError).kind, 'unavailable');
    t.match((err.cause as CaError).message, /the HSM token test no longer holds key issuer-1/);
    t.ok(ca.logs.some((l) => /signing failed$/.test(String(l.msg)) && l.audit === true));
  });
}

/** A CA over the hierarchy in `caDir`, its issuer key loaded from `store`. */
async function caOn(store: Pkcs11KeyStore, caDir: string) {
  const description = await createHierarchy({
    keyStore: store,
    dir: caDir,
    rootName: 'hsm root',
    issuerName: 'hsm issuer',
    urls,
  });
  const issuer = await loadIssuer(description, store);
  const logs: Record<string, unknown>[] = [];
  const log = createLogger('ca', {
    destination: { write: (line: string) => void logs.push(JSON.parse(line)) },
  });
  const ca = new CertificateAuthorityImpl({
    issuers: [issuer],
    activeIssuerId: issuer.id,
    profiles: defaultProfiles,
    sa: { addSerial: async () => undefined },
    log,
  });
  return { ca, issuer, logs, rootFile: rootCertFile(caDir), issuerFile: description.certFile };
}

const logKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/**
 * Both signing steps of an issuance: the precertificate, an SCT for it from a stand-in log
 * (RFC 6962 §3.2), and the certificate with the SCT embedded.
 */
async function issue(ca: CertificateAuthorityImpl, names: string[]) {
  const req = await request(names);
  const precert = await ca.issuePrecertificate(req);
  const precertDer = Buffer.from(precert.precertificate, 'base64');
  const issuerDer = Buffer.from(precert.issuerCertificate, 'base64');

  const unsigned = { version: 0, timestamp: Date.now(), extensions: Buffer.alloc(0) };
  const entry = {
    type: 'precert' as const,
    issuerKeyHash: issuerKeyHashOf(inspectCertificate(issuerDer).spki),
    tbsCertificate: precertTbsOf(precertDer),
  };
  const sct = encodeSct({
    ...unsigned,
    logId: logIdOf(logKey.privateKey),
    signature: signDigitally(sctSignedData(unsigned, entry), logKey.privateKey),
  });

  return ca.issueCertificateForPrecertificate({
    serial: precert.serial,
    precertificate: precert.precertificate,
    scts: [sct.toString('base64')],
    accountId: req.accountId,
    orderId: req.orderId,
    profile: req.profile,
  });
}

/** An issue request with a CSR from a fresh P-256 key. */
async function request(names: string[]) {
  const params = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
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
  return {
    csr: Buffer.from(csr.rawData).toString('base64'),
    names,
    accountId: 'acct-1',
    orderId: 'order-1',
    profile: 'default',
    notBefore: null,
    notAfter: null,
  };
}
