import { z } from 'zod';
import { FileKeyStore } from './file-store.js';
import type { KeyStore } from './types.js';

export type { KeyAlgorithm, KeyStore, SigningKey } from './types.js';
export { keyAlgorithms } from './types.js';
export { FileKeyStore } from './file-store.js';
export { ecdsaRawToDer } from './ecdsa.js';
export { isKeyAlgorithm, keyAlgorithmOf, signatureHashOf } from './algorithms.js';

/** The embedded default: PKCS#8 PEM files in one directory. */
export const fileKeyStoreConfig = z.strictObject({
  type: z.literal('file'),
  /** Created with mode 0700 when absent; refused when group or others may read it. */
  dir: z.string().min(1),
});

/**
 * Where the CA's signing keys live, chosen by `type`. A `{ type: 'pkcs11', module, token, pin }`
 * arm joins this union with the PKCS#11 store; a config written for the file store stays valid.
 */
export const keyStoreConfig = z.discriminatedUnion('type', [fileKeyStoreConfig]);
export type KeyStoreConfig = z.output<typeof keyStoreConfig>;

/** Opens the key store a validated config describes. */
export function openKeyStore(config: KeyStoreConfig): KeyStore {
  switch (config.type) {
    case 'file':
      return new FileKeyStore(config.dir);
  }
}
