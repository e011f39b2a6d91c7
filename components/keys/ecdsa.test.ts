import * as asn1js from 'asn1js';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import t from 'tap';
import { ecdsaRawToDer } from './ecdsa.js';

/** What a DER encoder gives for SEQUENCE { r, s }: the reference to compare against. */
function referenceDer(r: Buffer, s: Buffer): Buffer {
  const integer = (v: Buffer) =>
    new asn1js.Integer({ valueHex: v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v });
  const trim = (v: Buffer) => {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    return v.subarray(i);
  };
  return Buffer.from(
    new asn1js.Sequence({ value: [integer(trim(r)), integer(trim(s))] }).toBER(),
  );
}

for (const [curve, hash] of [
  ['P-256', 'sha256'],
  ['P-384', 'sha384'],
  ['P-521', 'sha512'],
] as const) {
  t.test(`turns node's ieee-p1363 ${curve} signatures into DER that node verifies`, async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    // Enough signatures that r or s with a high bit, and now and then a leading zero, occur.
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`);
      const raw = sign(hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const der = ecdsaRawToDer(raw);

      const half = raw.length / 2;
      if (!der.equals(referenceDer(raw.subarray(0, half), raw.subarray(half)))) {
        t.fail(`signature ${i} differs from the reference encoding`);
        return;
      }
      if (!verify(hash, data, { key: publicKey, dsaEncoding: 'der' }, der)) {
        t.fail(`signature ${i} does not verify as DER`);
        return;
      }
    }
    t.pass('200 signatures convert and verify');
  });
}

t.test('adds a zero octet when r has its top bit set', async (t) => {
  const r = Buffer.alloc(32, 0xff);
  const s = Buffer.alloc(32, 0x01);
  const der = ecdsaRawToDer(Buffer.concat([r, s]));
  t.equal(der.subarray(0, 5).toString('hex'), '3045022100');
});

t.test('drops leading zero octets of a short r', async (t) => {
  const r = Buffer.concat([Buffer.alloc(31), Buffer.from([0x05])]);
  const s = Buffer.alloc(32, 0x11);
  const der = ecdsaRawToDer(Buffer.concat([r, s]));
  t.equal(der.subarray(0, 5).toString('hex'), '3025020105');
});

t.test('uses a long-form length for P-521 sized signatures', async (t) => {
  // Two INTEGERs of 66 octets plus a zero octet each: 2 * (2 + 67) = 138 = 0x8a.
  const der = ecdsaRawToDer(Buffer.alloc(132, 0xff));
  t.equal(der.subarray(0, 3).toString('hex'), '30818a');
  t.equal(der.length, 3 + 138);
});

t.test('rejects input of odd or zero length, or a zero r or s', async (t) => {
  t.throws(() => ecdsaRawToDer(Buffer.alloc(63, 1)), /even, non-zero length, got 63/);
  t.throws(() => ecdsaRawToDer(Buffer.alloc(0)), /got 0 bytes/);
  t.throws(() => ecdsaRawToDer(Buffer.alloc(64)), /non-zero r and s/);
});
