import type { KeyObject } from 'node:crypto';
import { keyAlgorithms, type KeyAlgorithm } from './types.js';

/**
 * Facts about each key algorithm that every key store shares: which hash it signs with, and
 * how to recognise it from a key.
 */

/** True when `value` names one of the supported key algorithms. */
export function isKeyAlgorithm(value: unknown): value is KeyAlgorithm {
  return typeof value === 'string' && (keyAlgorithms as readonly string[]).includes(value);
}

/**
 * The hash a key signs with, as node:crypto names it. P-384 pairs with SHA-384 so that the
 * hash is as strong as the curve; every other algorithm uses SHA-256.
 */
export function signatureHashOf(algorithm: KeyAlgorithm): 'sha256' | 'sha384' {
  return algorithm === 'ecdsa-p384' ? 'sha384' : 'sha256';
}

const curveAlgorithms: Record<string, KeyAlgorithm> = {
  prime256v1: 'ecdsa-p256',
  secp384r1: 'ecdsa-p384',
};

/** The algorithm of a node:crypto key, or undefined when it is not one this CA signs with. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails ?? {};

  if (key.asymmetricKeyType === 'ec') {
    return details.namedCurve ? curveAlgorithms[details.namedCurve] : undefined;
  }

  // Only e = 65537: a signing key with another exponent was not made by this toolkit.
  if (key.asymmetricKeyType === 'rsa' && details.publicExponent === 65537n) {
    const name = `rsa-${details.modulusLength}`;
    return isKeyAlgorithm(name) ? name : undefined;
  }

  return undefined;
}
