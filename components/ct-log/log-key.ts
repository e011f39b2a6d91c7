import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import { logIdOf } from '../lib/sct.js';

/**
 * The CT log's signing key: ECDSA P-256 (RFC 6962 §2.1.4), a PKCS#8 PEM file of mode 0600 in
 * shared state, so that every color's log instance signs with one key and has one log id.
 */

export interface LogKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** RFC 6962 §3.2: SHA-256 of the SubjectPublicKeyInfo. */
  readonly logId: Buffer;
}

/**
 * Creates the log key at `keyFile` unless one is there, never replacing one, and writes its
 * public half as PEM to `publicKeyFile` for the publishers that verify its SCTs.
 */
export function ensureLogKeyFiles(keyFile: string, publicKeyFile: string): void {
  if (!existsSync(keyFile)) {
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    // `wx`: a key created by another process meanwhile wins, and this one is dropped.
    try {
      writeFileSync(keyFile, pem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }

  if (!existsSync(publicKeyFile)) {
    const publicKey = createPublicKey(createPrivateKey(readFileSync(keyFile, 'utf8')));
    writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  }
}

/**
 * Loads the log key. A missing or unreadable file, a file others may read, or a key that is
 * not ECDSA P-256 is a config error naming `logKeyFile`.
 */
export async function loadLogKey(file: string): Promise<LogKey> {
  const fail = (reason: string) => new ConfigError(`logKeyFile: ${file}: ${reason}`);

  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw fail(`cannot read (${err.code ?? err.message})`);
  });
  if (info.mode & 0o077) {
    throw fail(`mode ${(info.mode & 0o777).toString(8)} lets others read the key; expected 600`);
  }

  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(file, 'utf8'));
  } catch (err) {
    throw fail(`not a PEM private key (${(err as Error).message})`);
  }

  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const type = privateKey.asymmetricKeyType;
    const found = type === 'ec' ? `EC ${curve}` : type;
    throw fail(`expected an ECDSA P-256 key, got ${found}`);
  }

  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, logId: logIdOf(publicKey) };
}
