import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ctFixture } from '../../test/helpers/precertificates.js';
import {
  decodeSct,
  decodeSctList,
  embeddedScts,
  encodeSct,
  encodeSctList,
  isPrecertificate,
  issuerKeyHashOf,
  logIdOf,
  precertTbsOf,
  sctFromResponse,
  sctListExtension,
  sctSignedData,
  sctToResponse,
  signDigitally,
  tbsOf,
  verifySct,
  type SignedCertificateTimestamp,
} from './sct.js';
import { certificateToPem } from './x509.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'sct-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const fixture = await ctFixture();
t.teardown(() => fixture.close());

const logKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherLogKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** An SCT as a log signs it over the precertificate entry (RFC 6962 §3.2). */
function signSct(precertDer: Buffer, key = logKey.privateKey, timestamp = 1_700_000_000_123) {
  const unsigned = { version: 0, timestamp, extensions: Buffer.alloc(0) };
  const entry = {
    type: 'precert' as const,
    issuerKeyHash: issuerKeyHashOf(fixture.issuerSpki),
    tbsCertificate: precertTbsOf(precertDer),
  };
  const sct: SignedCertificateTimestamp = {
    ...unsigned,
    logId: logIdOf(key),
    signature: signDigitally(sctSignedData(unsigned, entry), key),
  };
  return sct;
}

t.test('encodes an SCT in its TLS form and decodes it back', async (t) => {
  const sct = signSct(await fixture.precertificate());
  const encoded = encodeSct(sct);

  // version 1 + log id 32 + timestamp 8 + extensions 2 + algorithms 2 + signature 2 + n
  t.equal(encoded.length, 47 + sct.signature.signature.length);
  t.equal(encoded[0], 0);
  t.same(encoded.subarray(1, 33), sct.logId);
  t.equal(encoded.readBigUInt64BE(33), 1_700_000_000_123n);
  t.same(decodeSct(encoded), sct);
});

t.test('encodes a list of SCTs with two-byte lengths and decodes it back', async (t) => {
  const a = encodeSct(signSct(await fixture.precertificate()));
  const b = encodeSct(signSct(await fixture.precertificate(), otherLogKey.privateKey));
  const list = encodeSctList([a, b]);

  t.equal(list.readUInt16BE(0), list.length - 2);
  t.equal(list.readUInt16BE(2), a.length);
  t.same(decodeSctList(list), [a, b]);
});

t.test('rejects an empty list, a truncated SCT and trailing bytes', async (t) => {
  const sct = encodeSct(signSct(await fixture.precertificate()));

  t.throws(() => encodeSctList([]), { kind: 'malformed', message: /at least one SCT/ });
  t.throws(() => decodeSctList(Buffer.from([0, 0])), { message: /at least one SCT/ });
  t.throws(() => decodeSct(sct.subarray(0, 40)), { kind: 'malformed', message: /SCT ends inside/ });
  t.throws(() => decodeSct(Buffer.concat([sct, Buffer.from([1])])), {
    message: /1 bytes after its end/,
  });
  const v2 = Buffer.from(sct);
  v2[0] = 1;
  t.throws(() => decodeSct(v2), { message: /expected SCT version 0 \(v1\), got 1/ });
});

t.test('round-trips the JSON of an add-chain response', async (t) => {
  const sct = signSct(await fixture.precertificate());
  const json = sctToResponse(sct);

  t.equal(json.id, sct.logId.toString('base64'));
  t.same(sctFromResponse(JSON.parse(JSON.stringify(json))), sct);
  const badId = { ...json, id: 'not base64!' };
  t.throws(() => sctFromResponse(badId), { message: /expected id as base64/ });
  t.throws(() => sctFromResponse({ ...json, sct_version: 1 }), { message: /sct_version 0, got 1/ });
});

t.test('verifies an SCT against the precertificate and the final certificate', async (t) => {
  const precert = await fixture.precertificate();
  const sct = signSct(precert);
  const final = await fixture.finalCertificate(precert, sctListExtension([encodeSct(sct)]));
  const logPublicKey = logKey.publicKey;

  const { issuerSpki, issuerDer } = fixture;
  t.ok(verifySct(sct, { precertificateDer: precert, issuerSpki, logPublicKey }));
  t.ok(verifySct(encodeSct(sct), { finalCertDer: final, issuerCertDer: issuerDer, logPublicKey }));
  t.same(precertTbsOf(final), precertTbsOf(precert), 'the rest of the TBS is unchanged');
  t.same(embeddedScts(final), [encodeSct(sct)]);
  t.same(embeddedScts(precert), []);
});

t.test('fails to verify against another log key, issuer or certificate', async (t) => {
  const precert = await fixture.precertificate();
  const sct = signSct(precert);
  const other = await fixture.precertificate('other.example.test');
  const base = { precertificateDer: precert, issuerSpki: fixture.issuerSpki };

  t.notOk(verifySct(sct, { ...base, logPublicKey: otherLogKey.publicKey }), 'another log');
  t.notOk(verifySct(sct, { ...base, precertificateDer: other, logPublicKey: logKey.publicKey }));
  const wrongIssuer = otherLogKey.publicKey.export({ type: 'spki', format: 'der' });
  t.notOk(verifySct(sct, { ...base, issuerSpki: wrongIssuer, logPublicKey: logKey.publicKey }));

  const tampered = { ...sct, timestamp: sct.timestamp + 1 };
  t.notOk(verifySct(tampered, { ...base, logPublicKey: logKey.publicKey }), 'another timestamp');
});

t.test('tells a precertificate from a certificate by its critical poison', async (t) => {
  t.ok(isPrecertificate(await fixture.precertificate()));
  t.notOk(isPrecertificate(await fixture.certificate()));
  const junk = Buffer.from('not a certificate');
  t.throws(() => tbsOf(junk), { kind: 'malformed', message: /not DER/ });
});

t.test('writes extensions that OpenSSL reads as poison and as SCTs', async (t) => {
  const precert = await fixture.precertificate();
  const sct = signSct(precert);
  const final = await fixture.finalCertificate(precert, sctListExtension([encodeSct(sct)]));
  writeFileSync(join(dir, 'precert.pem'), certificateToPem(precert));
  writeFileSync(join(dir, 'final.pem'), certificateToPem(final));

  const pre = (await run('openssl', ['x509', '-in', join(dir, 'precert.pem'), '-text', '-noout']))
    .stdout;
  const fin = (await run('openssl', ['x509', '-in', join(dir, 'final.pem'), '-text', '-noout']))
    .stdout;

  t.match(pre, /CT Precertificate Poison: critical\s+NULL/);
  t.match(fin, /CT Precertificate SCTs:\s+Signed Certificate Timestamp:\s+Version\s+: v1 \(0x0\)/);
  const logIdHex = sct.logId.toString('hex').toUpperCase().match(/../g)!.join(':');
  t.match(fin.replace(/\s+/g, ''), logIdHex.replace(/\s+/g, ''));
  t.notMatch(fin, /Poison/);
});
