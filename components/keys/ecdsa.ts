/**
 * ECDSA signature encodings. A PKCS#11 token returns a raw `r || s` (CKM_ECDSA, PKCS#11 §2.3.1),
 * while X.509, OCSP and CRLs carry a DER `Ecdsa-Sig-Value` (RFC 5480 §2.2.3, RFC 3279 §2.2.3).
 */

/** DER definite length: short form below 128, else long form. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);

  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A non-negative big-endian integer as a minimal DER INTEGER. */
function derUnsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let content = magnitude.subarray(start);

  // A set top bit would read as negative, so a zero byte keeps the value positive.
  if (content[0] & 0x80) content = Buffer.concat([Buffer.from([0]), content]);

  return Buffer.concat([Buffer.from([0x02]), derLength(content.length), content]);
}

/**
 * Converts a raw ECDSA signature (`r || s`, both padded to the curve's size, as PKCS#11 and
 * IEEE P1363 give it) into the DER `SEQUENCE { r INTEGER, s INTEGER }` that X.509 carries.
 */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new Error(
      `expected a raw ECDSA signature of even, non-zero length, got ${raw.length} bytes`,
    );
  }

  const half = raw.length / 2;
  const r = raw.subarray(0, half);
  const s = raw.subarray(half);
  if (r.every((b) => b === 0) || s.every((b) => b === 0)) {
    throw new Error('expected a raw ECDSA signature with non-zero r and s');
  }

  const body = Buffer.concat([derUnsignedInteger(r), derUnsignedInteger(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}
