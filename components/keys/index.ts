import { z } from 'zod';
import { FileKeyStore } from './file-store.js';
import { Pkcs11KeyStore } from './pkcs11-store.js';
import type { KeyStore } from './types.js';

export type { KeyAlgorithm, KeyStore, SigningKey } from './types.js';
export { keyAlgorithms } from './types.js';
export { FileKeyStore } from './file-store.js';
export { Pkcs11KeyStore, type PinSource, type Pkcs11KeyStoreOptions } from './pkcs11-store.js';
export { ecdsaRawToDer } from './ecdsa.js';
export { isKeyAlgorithm, keyAlgorithmOf, signatureHashOf } from './algorithms.js';

/** The embedded default: PKCS#8 PEM files in one directory. */
export const fileKeyStoreConfig = z.strictObject({
  type: z.literal('file'),
  /** Created with mode 0700 when absent; refused when group or others may read it. */
  dir: z.string().min(1),
});

/** Where an HSM PIN is read from: an environment variable, or a file (one trailing newline). */
export const pinSourceConfig = z.union([
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a variable name') }),
  z.strictObject({ file: z.string().min(1) }),
]);

/** Keys on a PKCS#11 token (SoftHSM2 or an HSM), generated there and never extractable. */
export const pkcs11KeyStoreConfig = z.strictObject({
  type: z.literal('pkcs11'),
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: z.string().min(1),
  /** The token's label; PKCS#11 allows at most 32 bytes. */
  tokenLabel: z
    .string()
    .min(1)
    .refine((v) => Buffer.byteLength(v) <= 32, 'expected a token label of at most 32 bytes'),
  pin: pinSourceConfig,
  /** Set as SOFTHSM2_CONF before the module loads: which token folder SoftHSM2 serves. */
  softhsmConf: z.string().min(1).optional(),
  /**
   * Sessions signing at once.
   * @default 4
   */
  maxSessions: z.number().int().min(1).max(64).optional(),
});

/**
 * Where the CA's signing keys live, chosen by `type`: the embedded file store, or a PKCS#11
 * token. A config written for the file store stays valid.
 */
export const keyStoreConfig = z.discriminatedUnion('type', [
  fileKeyStoreConfig,
  pkcs11KeyStoreConfig,
]);
export type KeyStoreConfig = z.output<typeof keyStoreConfig>;

/** Opens the key store a validated config describes. */
export function openKeyStore(config: KeyStoreConfig): KeyStore {
  switch (config.type) {
    case 'file':
      return new FileKeyStore(config.dir);
    case 'pkcs11':
      return new Pkcs11KeyStore(config);
  }
}
