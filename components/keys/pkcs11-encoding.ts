import { createPublicKey } from 'node:crypto';
import type { KeyAlgorithm } from './types.js';

/**
 * The byte formats between PKCS#11 attributes and what the CA needs: curve parameters, EC
 * points and RSA public values in, SubjectPublicKeyInfo and PKCS#1 DigestInfo out.
 */

export type EcAlgorithm = 'ecdsa-p256' | 'ecdsa-p384';
export type RsaAlgorithm = Exclude<KeyAlgorithm, EcAlgorithm>;

interface Curve {
  /** CKA_EC_PARAMS: the DER OBJECT IDENTIFIER of the named curve (RFC 5480 §2.1.1.1). */
  params: Buffer;
  /** JWK curve name, for building the SPKI. */
  jwkCurve: 'P-256' | 'P-384';
  /** Bytes of one coordinate, and of r and s in a raw signature. */
  size: number;
}

export const curves: Record<EcAlgorithm, Curve> = {
  // 1.2.840.10045.3.1.7 (secp256r1)
  'ecdsa-p256': {
    params: Buffer.from('06082a8648ce3d030107', 'hex'),
    jwkCurve: 'P-256',
    size: 32,
  },
  // 1.3.132.0.34 (secp384r1)
  'ecdsa-p384': { params: Buffer.from('06052b81040022', 'hex'), jwkCurve: 'P-384', size: 48 },
};

export function isEcAlgorithm(algorithm: KeyAlgorithm): algorithm is EcAlgorithm {
  return algorithm === 'ecdsa-p256' || algorithm === 'ecdsa-p384';
}

/** The algorithm whose CKA_EC_PARAMS these are, or undefined for any other curve. */
export function ecAlgorithmOf(params: Buffer): EcAlgorithm | undefined {
  return (Object.keys(curves) as EcAlgorithm[]).find((a) => curves[a].params.equals(params));
}

/**
 * The uncompressed point (`04 || x || y`) in a CKA_EC_POINT. PKCS#11 §2.3.3 says the attribute
 * holds a DER OCTET STRING around the point; some modules give the bare point, told apart here
 * by its exact length.
 */
export function unwrapEcPoint(value: Buffer, algorithm: EcAlgorithm): Buffer {
  const pointLength = 2 * curves[algorithm].size + 1;
  if (value.length === pointLength && value[0] === 0x04) return value;

  // OCTET STRING with a short-form length (a P-384 point is 97 bytes, under 128).
  if (value[0] === 0x04 && value[1] === pointLength && value.length === pointLength + 2) {
    const point = value.subarray(2);
    if (point[0] === 0x04) return point;
  }
  throw new Error(
    `expected CKA_EC_POINT to hold an uncompressed ${algorithm} point of ${pointLength} bytes, ` +
      `got ${value.length} bytes starting ${value.subarray(0, 4).toString('hex')}`,
  );
}

/** SubjectPublicKeyInfo, DER, of an EC public key given as its uncompressed point. */
export function ecSpki(point: Buffer, algorithm: EcAlgorithm): Buffer {
  const { size, jwkCurve } = curves[algorithm];
  const x = point.subarray(1, 1 + size).toString('base64url');
  const y = point.subarray(1 + size).toString('base64url');

  // node:crypto checks that the point is on the curve while importing it.
  return createPublicKey({ key: { kty: 'EC', crv: jwkCurve, x, y }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
}

/** SubjectPublicKeyInfo, DER, of an RSA public key given as big-endian modulus and exponent. */
export function rsaSpki(modulus: Buffer, exponent: Buffer): Buffer {
  const n = modulus.toString('base64url');
  const e = exponent.toString('base64url');
  return createPublicKey({ key: { kty: 'RSA', n, e }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
}

/** The RSA algorithm of a modulus with e = 65537, or undefined for anything else. */
export function rsaAlgorithmOf(modulus: Buffer, exponent: Buffer): RsaAlgorithm | undefined {
  let start = 0;
  while (start < exponent.length - 1 && exponent[start] === 0) start++;
  if (!exponent.subarray(start).equals(Buffer.from([1, 0, 1]))) return undefined;

  const bits = (modulus.length - (modulus[0] === 0 ? 1 : 0)) * 8;
  const name = `rsa-${bits}`;
  return name === 'rsa-2048' || name === 'rsa-3072' || name === 'rsa-4096' ? name : undefined;
}

/**
 * RFC 8017 §9.2 step 2: the DigestInfo prefixes that CKM_RSA_PKCS pads and signs, so that the
 * hash can be computed here and only its bytes sent to the token.
 */
const digestInfoPrefixes = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
};

export function digestInfo(hash: 'sha256' | 'sha384', digest: Buffer): Buffer {
  return Buffer.concat([digestInfoPrefixes[hash], digest]);
}

/** A CK_ULONG attribute value, in the platform's byte order (little-endian on x64 and arm64). */
export function readUlong(value: Buffer): number {
  if (value.length === 8) return Number(value.readBigUInt64LE(0));
  if (value.length === 4) return value.readUInt32LE(0);
  throw new Error(`expected a CK_ULONG of 4 or 8 bytes, got ${value.length}`);
}

/** A CK_BBOOL attribute value. */
export function readBool(value: Buffer): boolean {
  return value.length === 1 && value[0] !== 0;
}
