import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import { execFile } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ctFixture } from '../../test/helpers/precertificates.js';
import { FileKeyStore } from '../keys/file-store.js';
import { childrenOf, readWhole, type Tlv } from '../lib/der.js';
import { createLogger } from '../lib/log.js';
import { embeddedScts, encodeSct, precertTbsOf, tbsOf } from '../lib/sct.js';
import { certificateToPem, oids } from '../lib/x509.js';
import { CertificateAuthorityImpl } from './ca.js';
import { defaultProfiles } from './config.js';
import { createHierarchy, rootCertFile } from './hierarchy.js';
import { loadIssuer } from './issuer.js';
import type { IssueRequest } from './service.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'precert-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const keyStore = new FileKeyStore(join(dir, 'keys'));
const caDir = join(dir, 'ca');
const description = await createHierarchy({
  keyStore,
  dir: caDir,
  rootName: 'precert test root',
  issuerName: 'precert test issuer',
  urls: {
    ocspBase: 'http://127.0.0.1:4002/ocsp',
    crlBase: 'http://127.0.0.1:4002/crl',
    caIssuersBase: 'http://127.0.0.1:4002/issuer',
  },
});
const issuer = await loadIssuer(description, keyStore);

function setup() {
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
  return { ca, logs };
}

async function request(names = ['www.example.test', 'example.test']): Promise<IssueRequest> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const usages = ['sign', 'verify'] as const;
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, usages)) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${names[0]}`,
    keys,
    signingAlgorithm: algorithm,
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

/** Two SCTs that decode; the CA does not verify them (the publisher does). */
const scts = [7, 8].map((fill) =>
  encodeSct({
    version: 0,
    logId: Buffer.alloc(32, fill),
    timestamp: 1_700_000_000_000 + fill,
    extensions: Buffer.alloc(0),
    signature: { hashAlgorithm: 4, signatureAlgorithm: 3, signature: Buffer.alloc(71, fill) },
  }),
);

const der = (b64: string) => Buffer.from(b64, 'base64');

/** The TBSCertificate's fields, and its extensions, each as its exact bytes. */
function tbsParts(certDer: Buffer) {
  const tbs = tbsOf(certDer);
  const bytes = (tlv: Tlv) => tbs.subarray(tlv.start, tlv.end);
  const fields = childrenOf(tbs, readWhole(tbs, 'TBS'));
  const extensions = childrenOf(tbs, childrenOf(tbs, fields[fields.length - 1])[0]);
  return { fields: fields.slice(0, -1).map(bytes), extensions: extensions.map(bytes) };
}

const oidBytes = (oid: string) => Buffer.from(new asn1js.ObjectIdentifier({ value: oid }).toBER());

t.test('signs a certificate equal to its precertificate but for poison and SCT list', async (t) => {
  const { ca } = setup();
  const req = await request();
  const precert = await ca.issuePrecertificate(req);
  const issued = await ca.issueCertificateForPrecertificate({
    serial: precert.serial,
    precertificate: precert.precertificate,
    scts: scts.map((s) => s.toString('base64')),
    accountId: req.accountId,
    orderId: req.orderId,
    profile: req.profile,
  });

  const pre = tbsParts(der(precert.precertificate));
  const fin = tbsParts(der(issued.der));
  t.equal(fin.fields.length, pre.fields.length);
  pre.fields.forEach((field, i) => t.same(fin.fields[i], field, `TBS field ${i} is the same`));

  t.equal(fin.extensions.length, pre.extensions.length, 'one extension swapped for one');
  const poison = oidBytes(oids.ctPoison);
  const sctList = oidBytes(oids.sctList);
  pre.extensions.forEach((ext, i) => {
    if (ext.includes(poison)) {
      t.ok(fin.extensions[i].includes(sctList), `extension ${i}: poison became the SCT list`);
    } else {
      t.same(fin.extensions[i], ext, `extension ${i} is the same`);
    }
  });
  t.ok(pre.extensions.some((e) => e.includes(poison)), 'the precertificate is poisoned');
  t.same(
    precertTbsOf(der(issued.der)),
    precertTbsOf(der(precert.precertificate)),
    'without poison and SCT list the two TBS are the same bytes',
  );
  t.same(embeddedScts(der(issued.der)), scts, 'the SCTs are embedded in order');

  t.equal(issued.serial, precert.serial);
  t.equal(issued.notBefore, precert.notBefore);
  t.equal(precert.issuerCertificate, issuer.certDer.toString('base64'));
});

t.test('shows the poison and the SCTs to OpenSSL, which verifies the certificate', async (t) => {
  const { ca } = setup();
  const req = await request(['openssl.example.test']);
  const precert = await ca.issuePrecertificate(req);
  const issued = await ca.issueCertificateForPrecertificate({
    ...precert,
    scts: [scts[0].toString('base64')],
    accountId: 'acct-1',
    orderId: 'order-1',
    profile: 'default',
  });
  const preFile = join(dir, 'pre.pem');
  const finFile = join(dir, 'final.pem');
  writeFileSync(preFile, certificateToPem(der(precert.precertificate)));
  writeFileSync(finFile, certificateToPem(der(issued.der)));

  const text = async (file: string) =>
    (await run('openssl', ['x509', '-in', file, '-text', '-noout'])).stdout;
  t.match(await text(preFile), /CT Precertificate Poison: critical/);
  t.match(await text(finFile), /CT Precertificate SCTs:\s+Signed Certificate Timestamp:/);

  const { stdout } = await run('openssl', [
    'verify',
    '-x509_strict',
    '-CAfile',
    rootCertFile(caDir),
    '-untrusted',
    description.certFile,
    finFile,
  ]);
  t.match(stdout, /: OK/);
});

t.test('writes an audit event for each of the two signings', async (t) => {
  const { ca, logs } = setup();
  const req = await request();
  const precert = await ca.issuePrecertificate(req);
  await ca.issueCertificateForPrecertificate({
    ...precert,
    scts: scts.map((s) => s.toString('base64')),
    accountId: 'acct-1',
    orderId: 'order-1',
    profile: 'default',
  });

  t.match(logs.find((l) => l.msg === 'precertificate signed'), {
    audit: true,
    serial: precert.serial,
    issuer: issuer.id,
    acct: 'acct-1',
    order: 'order-1',
  });
  t.match(logs.find((l) => l.msg === 'certificate signed'), {
    audit: true,
    serial: precert.serial,
    names: ['www.example.test', 'example.test'],
    scts: 2,
    ctLogs: [Buffer.alloc(32, 7).toString('base64'), Buffer.alloc(32, 8).toString('base64')],
  });
});

t.test('rejects a completion without SCTs or with an SCT that does not decode', async (t) => {
  const { ca, logs } = setup();
  const precert = await ca.issuePrecertificate(await request());
  const base = { ...precert, accountId: 'acct-1', orderId: 'order-1', profile: 'default' };

  await t.rejects(ca.issueCertificateForPrecertificate({ ...base, scts: [] }), {
    kind: 'malformed',
    message: /at least one SCT/,
  });
  await t.rejects(ca.issueCertificateForPrecertificate({ ...base, scts: ['AAAA'] }), {
    kind: 'malformed',
    message: /scts\[0\]: SCT ends inside/,
  });
  t.notOk(logs.some((l) => l.msg === 'certificate signed'), 'nothing was signed');
});

t.test('rejects a precertificate this CA did not sign, or under another serial', async (t) => {
  const { ca } = setup();
  const precert = await ca.issuePrecertificate(await request());
  const base = {
    ...precert,
    scts: [scts[0].toString('base64')],
    accountId: 'acct-1',
    orderId: 'order-1',
    profile: '',
  };
  const stranger = await ctFixture();
  t.teardown(() => stranger.close());
  const foreign = (await stranger.precertificate()).toString('base64');

  await t.rejects(ca.issueCertificateForPrecertificate({ ...base, precertificate: foreign }), {
    kind: 'malformed',
    message: /not signed by any issuer of this CA/,
  });
  await t.rejects(ca.issueCertificateForPrecertificate({ ...base, serial: '7f'.repeat(16) }), {
    kind: 'malformed',
    message: new RegExp(`serial ${precert.serial}, not "${'7f'.repeat(16)}"`),
  });
});

t.test('rejects a finished certificate in place of a precertificate', async (t) => {
  const { ca } = setup();
  const issued = await ca.issueCertificate(await request());
  await t.rejects(
    ca.issueCertificateForPrecertificate({
      serial: issued.serial,
      precertificate: issued.der,
      scts: [scts[0].toString('base64')],
      accountId: 'acct-1',
      orderId: 'order-1',
      profile: 'default',
    }),
    { kind: 'malformed', message: /expected one poison extension in the precertificate, got 0/ },
  );
});

t.test('issues in one call in process, with neither poison nor SCT list', async (t) => {
  const { ca } = setup();
  const issued = await ca.issueCertificate(await request());
  const { extensions } = tbsParts(der(issued.der));
  t.notOk(extensions.some((e) => e.includes(oidBytes(oids.ctPoison))));
  t.same(embeddedScts(der(issued.der)), []);
});
