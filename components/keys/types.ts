/**
 * Signing keys. The CA signs certificates (and later OCSP responses and CRLs) only through
 * this interface, so a file key store and a PKCS#11 token are interchangeable.
 */

export const keyAlgorithms = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyAlgorithm = (typeof keyAlgorithms)[number];

export interface SigningKey {
  /** The key's label in its store. */
  readonly id: string;
  readonly algorithm: KeyAlgorithm;
  /** SubjectPublicKeyInfo, DER. */
  readonly publicKeySpki: Buffer;
  /**
   * Signs `data` with the algorithm's hash (SHA-256, or SHA-384 for P-384): ECDSA returns a
   * DER Ecdsa-Sig-Value and RSA a PKCS#1 v1.5 signature, as X.509 carries them.
   */
  sign(data: Buffer): Promise<Buffer>;
}

export interface KeyStore {
  /** Creates a key that never leaves the store; fails if `id` exists. */
  generate(id: string, algorithm: KeyAlgorithm): Promise<SigningKey>;
  /** Loads an existing key; fails naming `id` when absent. */
  load(id: string): Promise<SigningKey>;
  list(): Promise<string[]>;
  close(): Promise<void>;
}
