import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { link, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CaError } from '../lib/errors.js';
import { isKeyAlgorithm, keyAlgorithmOf, signatureHashOf } from './algorithms.js';
import type { KeyAlgorithm, KeyStore, SigningKey } from './types.js';

/**
 * The embedded key store: one PKCS#8 PEM file per key, `<id>.key`, mode 0600, in a directory
 * of mode 0700. Keys are readable by whoever runs the CA, so this store suits a demo or a
 * single host; an HSM through PKCS#11 is the production choice.
 */

const idPattern = /^[a-z0-9-]{1,64}$/;
const keySuffix = '.key';

const generateKeyPairAsync = promisify(generateKeyPair);

/** Whether the store still serves its keys; shared with every key it handed out. */
interface StoreState {
  closed: boolean;
}

/** Throws unless `id` is a label this store can turn into a file name safely. */
export function checkKeyId(id: string): void {
  if (typeof id !== 'string' || !idPattern.test(id)) {
    throw new CaError(
      'malformed',
      `expected a key id of 1 to 64 characters [a-z0-9-], got ${JSON.stringify(id)}`,
    );
  }
}

async function newPrivateKey(algorithm: KeyAlgorithm): Promise<KeyObject> {
  switch (algorithm) {
    case 'ecdsa-p256':
    case 'ecdsa-p384': {
      const namedCurve = algorithm === 'ecdsa-p256' ? 'P-256' : 'P-384';
      return (await generateKeyPairAsync('ec', { namedCurve })).privateKey;
    }
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096': {
      const modulusLength = Number(algorithm.slice('rsa-'.length));
      return (await generateKeyPairAsync('rsa', { modulusLength, publicExponent: 0x10001 }))
        .privateKey;
    }
  }
}

class FileSigningKey implements SigningKey {
  readonly id: string;
  readonly algorithm: KeyAlgorithm;
  readonly publicKeySpki: Buffer;
  readonly #key: KeyObject;
  readonly #store: StoreState;

  constructor(id: string, algorithm: KeyAlgorithm, key: KeyObject, store: StoreState) {
    this.id = id;
    this.algorithm = algorithm;
    this.#key = key;
    this.#store = store;
    this.publicKeySpki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  }

  sign(data: Buffer): Promise<Buffer> {
    if (this.#store.closed) {
      return Promise.reject(new Error(`key ${this.id}: its key store is closed`));
    }

    // The callback form runs in libuv's thread pool, so an RSA-4096 signature does not stall
    // the event loop.
    return new Promise((resolve, reject) => {
      sign(
        signatureHashOf(this.algorithm),
        data,
        { key: this.#key, dsaEncoding: 'der' },
        (err, signature) => (err ? reject(err) : resolve(signature)),
      );
    });
  }
}

/** A key store over a directory of PKCS#8 PEM files. */
export class FileKeyStore implements KeyStore {
  readonly dir: string;
  readonly #state: StoreState = { closed: false };

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new Error(`expected a key directory path, got ${JSON.stringify(dir)}`);
    }
    this.dir = dir;
  }

  async generate(id: string, algorithm: KeyAlgorithm): Promise<SigningKey> {
    this.#checkOpen();
    checkKeyId(id);
    if (!isKeyAlgorithm(algorithm)) {
      throw new CaError('malformed', `expected a key algorithm, got ${JSON.stringify(algorithm)}`);
    }

    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.#checkDirMode();

    const key = await newPrivateKey(algorithm);
    const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
    await this.#writeExclusive(id, pem);

    return new FileSigningKey(id, algorithm, key, this.#state);
  }

  async load(id: string): Promise<SigningKey> {
    this.#checkOpen();
    checkKeyId(id);
    await this.#checkDirMode();

    const file = this.#fileOf(id);
    let pem: string;
    const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new CaError('notFound', `no key ${id} in key store ${this.dir}`);
      }
      throw err;
    });
    try {
      // Checked on the open file, so the mode read is the mode of the bytes read.
      const mode = (await handle.stat()).mode & 0o777;
      if (mode & 0o077) {
        throw new CaError(
          'internal',
          `key file ${file} has mode ${mode.toString(8).padStart(4, '0')}; expected 0600`,
        );
      }
      pem = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }

    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new CaError('internal', `key file ${file} is not a PEM private key`, { cause: err });
    }

    const algorithm = keyAlgorithmOf(key);
    if (!algorithm) {
      throw new CaError(
        'internal',
        `key ${id} is ${key.asymmetricKeyType} ${JSON.stringify(key.asymmetricKeyDetails)}, ` +
          'not one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096',
      );
    }
    return new FileSigningKey(id, algorithm, key, this.#state);
  }

  async list(): Promise<string[]> {
    this.#checkOpen();
    const entries = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    return entries
      .filter((name) => name.endsWith(keySuffix))
      .map((name) => name.slice(0, -keySuffix.length))
      .filter((id) => idPattern.test(id))
      .sort();
  }

  async close(): Promise<void> {
    this.#state.closed = true;
  }

  #fileOf(id: string): string {
    return join(this.dir, `${id}${keySuffix}`);
  }

  #checkOpen(): void {
    if (this.#state.closed) throw new Error(`key store ${this.dir} is closed`);
  }

  async #checkDirMode(): Promise<void> {
    const info = await stat(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new CaError('notFound', `key store directory ${this.dir} does not exist`);
      }
      throw err;
    });

    const mode = info.mode & 0o777;
    if (!info.isDirectory() || mode & 0o077) {
      throw new CaError(
        'internal',
        `key store directory ${this.dir} has mode ${mode.toString(8).padStart(4, '0')}; ` +
          'expected a directory of mode 0700',
      );
    }
  }

  /**
   * Writes a key file so that it appears complete or not at all, and never over another key:
   * a temporary file, synced, then hard-linked to its name (link fails if the name exists).
   */
  async #writeExclusive(id: string, pem: string): Promise<void> {
    const file = this.#fileOf(id);
    const temporary = join(this.dir, `.${id}.${randomBytes(6).toString('hex')}.tmp`);

    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(pem);
      // The umask can only narrow the mode given to open, but say it outright.
      await handle.chmod(0o600);
      await handle.sync();
    } finally {
      await handle.close();
    }

    try {
      await link(temporary, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new CaError('conflict', `key ${id} already exists in key store ${this.dir}`);
      }
      throw err;
    } finally {
      await unlink(temporary);
    }

    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
