import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { FileKeyStore } from '../keys/file-store.js';
import type { KeyAlgorithm, SigningKey } from '../keys/types.js';
import {
  authorityInfoAccessExtension,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildCertificate,
  certificatePoliciesExtension,
  certificateToPem,
  checkKeyPolicy,
  crlDistributionPointsExtension,
  extKeyUsageExtension,
  inspectCertificate,
  keyIdentifierOf,
  keyUsageExtension,
  nameFromCommonName,
  oids,
  parseCsr,
  pemToDer,
  pemToDers,
  randomSerialHex,
  serialFromCertificate,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  type KeyUsage,
} from './x509.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'x509-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const keyStore = new FileKeyStore(join(dir, 'keys'));

let files = 0;
/** Writes `content` to a fresh file in the test directory and returns its path. */
function tempFile(content: string | Buffer, suffix = '.pem'): string {
  const file = join(dir, `f${++files}${suffix}`);
  writeFileSync(file, content);
  return file;
}

async function openssl(...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('openssl', args);
  return stdout + stderr;
}

const csrAlgorithms = {
  p256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  p384: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' },
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

/** A CSR from a fresh WebCrypto key, with a CN and a SAN extension request. */
async function makeCsr(
  algorithm: keyof typeof csrAlgorithms,
  names: string[],
  commonName = names[0],
): Promise<{ der: Buffer; spki: Buffer }> {
  const params = csrAlgorithms[algorithm];
  const usages = ['sign', 'verify'] as const;
  const keys = (await webcrypto.subtle.generateKey(params, true, usages)) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: params,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        names.map((value) => ({ type: 'dns' as const, value })),
      ),
    ],
  });
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey as webcrypto.CryptoKey);
  return { der: Buffer.from(csr.rawData), spki: Buffer.from(spki) };
}

function spkiOf(key: { export(o: { type: 'spki'; format: 'der' }): Buffer }): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

t.test('parseCsr', async (t) => {
  t.test('reads the key, common name and SAN names of an ECDSA CSR', async (t) => {
    const { der, spki } = await makeCsr('p256', ['a.example.test', '*.b.example.test']);
    const csr = parseCsr(der);

    t.equal(csr.keyType, 'ecdsa-p256');
    t.equal(csr.commonName, 'a.example.test');
    t.same(csr.dnsNames, ['a.example.test', '*.b.example.test']);
    t.ok(csr.publicKeySpki.equals(spki), 'the SPKI is the key the CSR was made with');
    t.equal(csr.signatureValid, true);
    const file = tempFile(der);
    const verdict = await openssl('req', '-verify', '-noout', '-inform', 'DER', '-in', file);
    t.match(verdict, /OK/);
  });

  t.test('reads P-384 and RSA keys with their size', async (t) => {
    t.equal(parseCsr((await makeCsr('p384', ['x.test'])).der).keyType, 'ecdsa-p384');

    const rsa = parseCsr((await makeCsr('rsa2048', ['x.test'])).der);
    t.equal(rsa.keyType, 'rsa');
    t.equal(rsa.rsaBits, 2048);
    t.equal(rsa.signatureValid, true);
  });

  t.test('reports a signature that does not verify, as OpenSSL does', async (t) => {
    const { der } = await makeCsr('p256', ['a.test']);
    // The CSR's last octet is the end of the signature's s.
    der[der.length - 1] ^= 0x01;

    t.equal(parseCsr(der).signatureValid, false);
    const file = tempFile(der);
    const verdict = await openssl('req', '-verify', '-noout', '-inform', 'DER', '-in', file).catch(
      (err: { stdout: string; stderr: string }) => err.stdout + err.stderr,
    );
    t.notMatch(verdict, /verify OK/i, 'OpenSSL refuses it too');
  });

  t.test('rejects bytes that are not a CSR as badCSR', async (t) => {
    t.throws(() => parseCsr(Buffer.from('not a csr')), { name: 'CaError', kind: 'badCSR' });
    t.throws(() => parseCsr(Buffer.alloc(0)), { name: 'CaError', kind: 'badCSR' });

    const { der } = await makeCsr('p256', ['a.test']);
    t.throws(() => parseCsr(Buffer.concat([der, Buffer.from([0])])), {
      kind: 'badCSR',
      message: /1 bytes after its end/,
    });
  });

  t.test('rejects a CSR signed with SHA-1 as badCSR', async (t) => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = tempFile(privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const out = join(dir, 'sha1.csr');
    const subject = ['-subj', '/CN=a.test'];
    const output = ['-outform', 'DER', '-out', out];
    await openssl('req', '-new', '-key', keyFile, ...subject, '-sha1', ...output);

    t.throws(() => parseCsr(readFileSync(out)), {
      kind: 'badCSR',
      message: /1\.2\.840\.113549\.1\.1\.5 is not supported/,
    });
  });
});

t.test('checkKeyPolicy', async (t) => {
  t.test('accepts RSA 2048 to 4096 with e = 65537, and P-256 and P-384', async (t) => {
    for (const [type, options] of [
      ['rsa', { modulusLength: 2048 }],
      ['rsa', { modulusLength: 4096 }],
      ['ec', { namedCurve: 'P-256' }],
      ['ec', { namedCurve: 'P-384' }],
    ] as const) {
      const { publicKey } = generateKeyPairSync(type as 'rsa', options as { modulusLength: 2048 });
      t.doesNotThrow(() => checkKeyPolicy(spkiOf(publicKey)), JSON.stringify(options));
    }
  });

  t.test('rejects an RSA key of 1024 bits as badPublicKey', async (t) => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    t.throws(() => checkKeyPolicy(spkiOf(publicKey)), {
      kind: 'badPublicKey',
      message: /1024 bits; expected 2048 to 4096/,
    });
  });

  t.test('rejects an RSA key with e = 3', async (t) => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 });
    t.throws(() => checkKeyPolicy(spkiOf(publicKey)), {
      kind: 'badPublicKey',
      message: /exponent 3/,
    });
  });

  t.test('rejects P-521, Ed25519 and a point off the curve', async (t) => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey;
    t.throws(() => checkKeyPolicy(spkiOf(p521)), {
      kind: 'badPublicKey',
      message: /1\.3\.132\.0\.35/,
    });

    const ed = generateKeyPairSync('ed25519').publicKey;
    t.throws(() => checkKeyPolicy(spkiOf(ed)), { kind: 'badPublicKey', message: /1\.3\.101\.112/ });

    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const offCurve = Buffer.from(spkiOf(p256));
    offCurve[offCurve.length - 1] ^= 0x01;
    t.throws(() => checkKeyPolicy(offCurve), { kind: 'badPublicKey', message: /not a point/ });
  });

  t.test('rejects bytes that are not a public key', async (t) => {
    t.throws(() => checkKeyPolicy(Buffer.from('junk')), { name: 'CaError', kind: 'badPublicKey' });
  });
});

/** A self-signed CA certificate carrying one of every extension helper. */
async function everyExtension(signer: SigningKey, notAfter: Date): Promise<Buffer> {
  return buildCertificate(
    {
      serialHex: randomSerialHex(),
      issuerName: 'self',
      subject: 'x509 test root',
      spki: signer.publicKeySpki,
      notBefore: new Date(Date.now() - 60_000),
      notAfter,
      extensions: [
        basicConstraintsExtension(true, 0),
        keyUsageExtension(['digitalSignature', 'keyCertSign', 'cRLSign']),
        extKeyUsageExtension([oids.serverAuth]),
        subjectKeyIdentifierExtension(signer.publicKeySpki),
        authorityKeyIdentifierExtension(keyIdentifierOf(signer.publicKeySpki)),
        authorityInfoAccessExtension({
          ocsp: 'http://ocsp.example.test/abc',
          caIssuers: 'http://ca.example.test/abc.der',
        }),
        crlDistributionPointsExtension('http://crl.example.test/abc.crl'),
        certificatePoliciesExtension([oids.domainValidated]),
        subjectAltNameExtension(['root.example.test']),
      ],
    },
    signer,
  );
}

t.test('buildCertificate', async (t) => {
  const signatures: Record<KeyAlgorithm, RegExp> = {
    'ecdsa-p256': /Signature Algorithm: ecdsa-with-SHA256/,
    'ecdsa-p384': /Signature Algorithm: ecdsa-with-SHA384/,
    'rsa-2048': /Signature Algorithm: sha256WithRSAEncryption/,
    'rsa-3072': /Signature Algorithm: sha256WithRSAEncryption/,
    'rsa-4096': /Signature Algorithm: sha256WithRSAEncryption/,
  };

  for (const algorithm of ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048'] as const) {
    t.test(`signs a certificate with an ${algorithm} key that OpenSSL verifies`, async (t) => {
      const signer = await keyStore.generate(`self-${algorithm}`, algorithm);
      const der = await everyExtension(signer, new Date(Date.now() + 86_400_000));
      const file = tempFile(certificateToPem(der));

      const text = await openssl('x509', '-in', file, '-text', '-noout');
      t.match(text, signatures[algorithm]);
      t.match(await openssl('verify', '-x509_strict', '-CAfile', file, file), /: OK/);
    });
  }

  t.test('writes every extension so that OpenSSL reads it back', async (t) => {
    const signer = await keyStore.generate('all-extensions', 'ecdsa-p256');
    const der = await everyExtension(signer, new Date(Date.now() + 86_400_000));
    const text = await openssl('x509', '-in', tempFile(certificateToPem(der)), '-text', '-noout');

    t.match(text, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    t.match(text, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    t.match(text, /Extended Key Usage:\s+TLS Web Server Authentication/);
    t.match(text, /Subject Key Identifier:/);
    t.match(text, /Authority Key Identifier:/);
    t.match(text, /OCSP - URI:http:\/\/ocsp\.example\.test\/abc/);
    t.match(text, /CA Issuers - URI:http:\/\/ca\.example\.test\/abc\.der/);
    t.match(text, /CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/crl\.example\.test\//);
    t.match(text, /Policy: 2\.23\.140\.1\.2\.1/);
    t.match(text, /Subject Alternative Name:\s+DNS:root\.example\.test/);
    t.match(text, /Subject: CN = x509 test root/);
  });

  t.test('keeps the serial, names and key as given', async (t) => {
    const signer = await keyStore.generate('facts', 'ecdsa-p256');
    const der = await everyExtension(signer, new Date(Date.now() + 86_400_000));
    const facts = inspectCertificate(der);

    t.equal(facts.serialHex, serialFromCertificate(der));
    t.match(facts.serialHex, /^[0-7][0-9a-f]{31}$/);
    const file = tempFile(certificateToPem(der));
    const shown = await openssl('x509', '-in', file, '-noout', '-serial');
    t.equal(shown.trim(), `serial=${facts.serialHex.toUpperCase()}`);
    t.ok(facts.spki.equals(signer.publicKeySpki), 'the SPKI is encoded as given');
    t.ok(facts.subjectDer.equals(nameFromCommonName('x509 test root')));
    t.ok(facts.issuerDer.equals(facts.subjectDer), 'a self-signed issuer is its subject');
    t.ok(facts.subjectKeyId?.equals(keyIdentifierOf(signer.publicKeySpki)));
    t.equal(facts.isCa, true);
  });

  t.test('uses GeneralizedTime from 2050 on', async (t) => {
    const signer = await keyStore.generate('far-future', 'ecdsa-p256');
    const der = await everyExtension(signer, new Date('2051-06-01T12:00:00.750Z'));
    const parsed = await openssl('asn1parse', '-inform', 'DER', '-in', tempFile(der, '.der'));

    t.match(parsed, /GENERALIZEDTIME\s+:20510601120000Z/, 'whole seconds, no fraction');
    t.equal(inspectCertificate(der).notAfter.toISOString(), '2051-06-01T12:00:00.000Z');
  });

  t.test('writes an empty subject and a critical SAN when no common name is given', async (t) => {
    const ca = await keyStore.generate('empty-subject-ca', 'ecdsa-p256');
    const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const der = await buildCertificate(
      {
        serialHex: randomSerialHex(),
        issuerName: nameFromCommonName('some issuer'),
        spki: spkiOf(leaf),
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 3_600_000),
        extensions: [subjectAltNameExtension(['x.test'], true)],
      },
      ca,
    );
    const text = await openssl('x509', '-in', tempFile(certificateToPem(der)), '-text', '-noout');

    t.ok(inspectCertificate(der).subjectDer.equals(Buffer.from('3000', 'hex')));
    t.match(text, /Subject Alternative Name: critical/);
  });

  t.test('encodes KeyUsage as DER, without trailing zero bits', async (t) => {
    const valueOf = (usages: KeyUsage[]) =>
      Buffer.from(keyUsageExtension(usages).extnValue.valueBlock.valueHexView).toString('hex');
    t.equal(valueOf(['digitalSignature']), '03020780');
    t.equal(valueOf(['keyCertSign', 'cRLSign']), '03020106');
  });

  t.test('rejects serials that are not positive, minimal, lower-case hex', async (t) => {
    const signer = await keyStore.generate('serials', 'ecdsa-p256');
    for (const serialHex of ['', '00', '0001', '80', 'ABCD', 'abc', '7f'.repeat(21)]) {
      const template = {
        serialHex,
        issuerName: 'self' as const,
        spki: signer.publicKeySpki,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 1000),
        extensions: [],
      };
      const wanted = { message: /expected serialHex/ };
      await t.rejects(buildCertificate(template, signer), wanted, serialHex);
    }
  });

  t.test('rejects a signer whose signature does not verify', async (t) => {
    const real = await keyStore.generate('faulty', 'ecdsa-p256');
    const faulty: SigningKey = {
      id: 'faulty',
      algorithm: real.algorithm,
      publicKeySpki: real.publicKeySpki,
      sign: async (data) => {
        const signature = await real.sign(data);
        signature[signature.length - 1] ^= 0x01;
        return signature;
      },
    };
    await t.rejects(everyExtension(faulty, new Date(Date.now() + 1000)), {
      message: /key faulty returned a signature that does not verify/,
    });
  });
});

t.test('converts between PEM and DER, one block or a chain', async (t) => {
  const signer = await keyStore.generate('pem', 'ecdsa-p256');
  const a = await everyExtension(signer, new Date(Date.now() + 1000));
  const b = await everyExtension(signer, new Date(Date.now() + 2000));
  const chain = certificateToPem(a) + certificateToPem(b);

  t.ok(pemToDer(certificateToPem(a)).equals(a));
  t.same(pemToDers(chain).map((d) => d.toString('hex')), [a.toString('hex'), b.toString('hex')]);
  t.ok(certificateToPem(a).split('\n').every((line) => line.length <= 64));
  t.throws(() => pemToDer('nothing here'), /found none/);
});

t.test('draws serials of 32 hex digits with the top bit clear', async (t) => {
  for (let i = 0; i < 500; i++) {
    const serial = randomSerialHex();
    if (!/^[0-7][0-9a-f]{31}$/.test(serial) || serial.startsWith('00')) {
      t.fail(`serial ${serial}`);
      return;
    }
  }
  t.pass('500 serials');
});
