import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pkcs11js from 'pkcs11js';
import { CaError } from '../lib/errors.js';
import { isKeyAlgorithm, signatureHashOf } from './algorithms.js';
import { ecdsaRawToDer } from './ecdsa.js';
import { checkKeyId } from './file-store.js';
import {
  curves,
  digestInfo,
  ecAlgorithmOf,
  ecSpki,
  isEcAlgorithm,
  readUlong,
  rsaAlgorithmOf,
  rsaSpki,
  unwrapEcPoint,
} from './pkcs11-encoding.js';
import {
  acquireModule,
  hsmError,
  isConnectionLost,
  isTokenGone,
  markUninitialized,
  pkcs11CodeOf,
  releaseModule,
  resetModule,
  type Pkcs11,
  type Pkcs11Module,
} from './pkcs11-module.js';
import { TokenConnection } from './pkcs11-sessions.js';
import type { KeyAlgorithm, KeyStore, SigningKey } from './types.js';

/**
 * A key store on a PKCS#11 token (SoftHSM2, or a hardware HSM): keys are generated on the token,
 * sensitive and never extractable, and every signature is made by the token. Hashing happens
 * here and only the digest is sent (CKM_ECDSA, CKM_RSA_PKCS), which every token implements;
 * SoftHSM2 has no CKM_ECDSA_SHA256.
 */

/** Where the user PIN is read from at each login; the PIN itself never appears in config. */
export type PinSource = { env: string } | { file: string };

export interface Pkcs11KeyStoreOptions {
  /** Path of the module's shared library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string;
  /** CKA_LABEL of the token (at most 32 bytes, PKCS#11 §3.2 CK_TOKEN_INFO). */
  tokenLabel: string;
  pin: PinSource;
  /** Set as SOFTHSM2_CONF before the module is initialized. */
  softhsmConf?: string;
  /**
   * Sessions signing at once. Signatures run on libuv's thread pool (UV_THREADPOOL_SIZE,
   * default 4), so more sessions than threads add no throughput.
   * @default 4
   */
  maxSessions?: number;
}

/** Login failures that the same PIN would only repeat, and a real HSM counts toward a lockout. */
const pinRefusedCodes = new Set([
  'CKR_PIN_INCORRECT',
  'CKR_PIN_INVALID',
  'CKR_PIN_LEN_RANGE',
  'CKR_PIN_EXPIRED',
  'CKR_PIN_LOCKED',
]);

/** Return codes after which one more attempt on a fresh connection may succeed. */
const handleLostCodes = new Set(['CKR_KEY_HANDLE_INVALID', 'CKR_OBJECT_HANDLE_INVALID']);

function isHandleLost(err: unknown): boolean {
  return handleLostCodes.has(pkcs11CodeOf(err) ?? '');
}

interface PublicKey {
  algorithm: KeyAlgorithm;
  spki: Buffer;
}

function findObjects(p11: Pkcs11, session: Buffer, template: pkcs11js.Template): Buffer[] {
  p11.C_FindObjectsInit(session, template);
  try {
    const found: Buffer[] = [];
    for (;;) {
      const batch = p11.C_FindObjects(session, 64);
      found.push(...batch);
      if (batch.length < 64) return found;
    }
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

function attributes(p11: Pkcs11, session: Buffer, handle: Buffer, types: number[]): Buffer[] {
  const values = p11.C_GetAttributeValue(
    session,
    handle,
    types.map((type) => ({ type })),
  );
  return values.map((v) => v.value);
}

/** The public key a public key object holds, as SPKI, with its algorithm. */
function readPublicKey(p11: Pkcs11, session: Buffer, handle: Buffer, id: string): PublicKey {
  const [keyType] = attributes(p11, session, handle, [pkcs11js.CKA_KEY_TYPE]);

  switch (readUlong(keyType)) {
    case pkcs11js.CKK_EC: {
      const [params, point] = attributes(p11, session, handle, [
        pkcs11js.CKA_EC_PARAMS,
        pkcs11js.CKA_EC_POINT,
      ]);
      const algorithm = ecAlgorithmOf(params);
      if (!algorithm) {
        throw new CaError(
          'internal',
          `key ${id} is on a curve this CA does not sign with (CKA_EC_PARAMS ` +
            `${params.toString('hex')}); expected P-256 or P-384`,
        );
      }
      return { algorithm, spki: ecSpki(unwrapEcPoint(point, algorithm), algorithm) };
    }

    case pkcs11js.CKK_RSA: {
      const [modulus, exponent] = attributes(p11, session, handle, [
        pkcs11js.CKA_MODULUS,
        pkcs11js.CKA_PUBLIC_EXPONENT,
      ]);
      const algorithm = rsaAlgorithmOf(modulus, exponent);
      if (!algorithm) {
        throw new CaError(
          'internal',
          `key ${id} is RSA of ${modulus.length * 8} bits, e = 0x${exponent.toString('hex')}; ` +
            'expected 2048, 3072 or 4096 bits with e = 65537',
        );
      }
      return { algorithm, spki: rsaSpki(modulus, exponent) };
    }

    default:
      throw new CaError(
        'internal',
        `key ${id} is of CKK type ${readUlong(keyType)}, not EC or RSA`,
      );
  }
}

/** Key-pair templates: both halves on the token; the private half sensitive, never extractable. */
function keyPairTemplates(id: string, algorithm: KeyAlgorithm) {
  const common = [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: id },
    { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'utf8') },
  ];

  const publicTemplate: pkcs11js.Template = [
    ...common,
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_PRIVATE, value: false },
    { type: pkcs11js.CKA_VERIFY, value: true },
  ];
  const privateTemplate: pkcs11js.Template = [
    ...common,
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
  ];

  if (isEcAlgorithm(algorithm)) {
    publicTemplate.push({ type: pkcs11js.CKA_EC_PARAMS, value: curves[algorithm].params });
    privateTemplate.push({ type: pkcs11js.CKA_DERIVE, value: false });
    return {
      mechanism: { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
      publicTemplate,
      privateTemplate,
    };
  }

  const bits = Number(algorithm.slice('rsa-'.length));
  publicTemplate.push(
    { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
    { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
  );
  // A CA key signs and does nothing else.
  privateTemplate.push(
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
  );
  return {
    mechanism: { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
    publicTemplate,
    privateTemplate,
  };
}

/** Reads the PIN; returns it with a description of its source that errors may show. */
async function readPin(source: PinSource): Promise<{ pin: string; from: string }> {
  if ('env' in source) {
    const from = `environment variable ${source.env}`;
    const pin = process.env[source.env];
    if (!pin) {
      throw new CaError('unavailable', `the HSM PIN is expected in ${from}, which is unset`);
    }
    return { pin, from };
  }

  const from = `file ${source.file}`;
  const text = await readFile(source.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new CaError('unavailable', `the HSM PIN cannot be read from ${from}: ${err.code}`);
  });
  // One trailing newline is how editors and `echo` leave a file; it is not part of the PIN.
  const pin = text.replace(/\r?\n$/, '');
  if (!pin) throw new CaError('unavailable', `the HSM PIN ${from} is empty`);
  return { pin, from };
}

class Pkcs11SigningKey implements SigningKey {
  readonly id: string;
  readonly algorithm: KeyAlgorithm;
  readonly publicKeySpki: Buffer;
  readonly #sign: (data: Buffer) => Promise<Buffer>;

  constructor(id: string, key: PublicKey, sign: (data: Buffer) => Promise<Buffer>) {
    this.id = id;
    this.algorithm = key.algorithm;
    this.publicKeySpki = key.spki;
    this.#sign = sign;
  }

  sign(data: Buffer): Promise<Buffer> {
    return this.#sign(data);
  }
}

/** A key store on one token of a PKCS#11 module; connects on first use. */
export class Pkcs11KeyStore implements KeyStore {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly #pin: PinSource;
  readonly #softhsmConf: string | undefined;
  readonly #maxSessions: number;
  readonly #inFlight = new Set<Promise<unknown>>();
  #module: Pkcs11Module | null = null;
  #connection: TokenConnection | null = null;
  #connecting: Promise<TokenConnection> | null = null;
  #closed = false;
  /** The login refusal of the last PIN tried, and a digest of that PIN, so it is not retried. */
  #refused: { pinDigest: Buffer; error: unknown } | null = null;
  /**
   * Set when the token went away under a live connection; the next connection then starts on
   * a freshly initialized module, since some modules never see a token again otherwise.
   */
  #tokenGone = false;

  constructor(options: Pkcs11KeyStoreOptions) {
    const { module, tokenLabel, pin, maxSessions = 4 } = options;
    if (typeof module !== 'string' || module.length === 0) {
      throw new Error(`expected module to be a shared library path, got ${JSON.stringify(module)}`);
    }
    if (typeof tokenLabel !== 'string' || !tokenLabel || Buffer.byteLength(tokenLabel) > 32) {
      const shown = JSON.stringify(tokenLabel);
      throw new Error(`expected tokenLabel of 1 to 32 bytes, got ${shown}`);
    }
    const pinOk = pin && (('env' in pin && pin.env) || ('file' in pin && pin.file));
    if (!pinOk) throw new Error('expected pin to be { env: <variable> } or { file: <path> }');
    if (!Number.isInteger(maxSessions) || maxSessions < 1 || maxSessions > 64) {
      throw new Error(`expected maxSessions to be an integer from 1 to 64, got ${maxSessions}`);
    }

    this.modulePath = module;
    this.tokenLabel = tokenLabel;
    this.#pin = pin;
    this.#softhsmConf = options.softhsmConf;
    this.#maxSessions = maxSessions;
  }

  async generate(id: string, algorithm: KeyAlgorithm): Promise<SigningKey> {
    checkKeyId(id);
    if (!isKeyAlgorithm(algorithm)) {
      throw new CaError('malformed', `expected a key algorithm, got ${JSON.stringify(algorithm)}`);
    }

    // Not retried: a first attempt that created the key and then lost the session would turn
    // the retry into a conflict with itself.
    const action = `generate key ${id} on token ${this.tokenLabel}`;
    const key = await this.#run(action, false, async (conn, session) => {
      const { p11 } = conn;
      const existing = findObjects(p11, session, [{ type: pkcs11js.CKA_LABEL, value: id }]);
      if (existing.length > 0) {
        throw new CaError('conflict', `key ${id} already exists on HSM token ${this.tokenLabel}`);
      }

      const t = keyPairTemplates(id, algorithm);
      const pair = await p11.C_GenerateKeyPairAsync(
        session,
        t.mechanism,
        t.publicTemplate,
        t.privateTemplate,
      );
      conn.handles.set(id, pair.privateKey);
      return readPublicKey(p11, session, pair.publicKey, id);
    });

    return new Pkcs11SigningKey(id, key, (data) => this.#sign(id, key.algorithm, data));
  }

  async load(id: string): Promise<SigningKey> {
    checkKeyId(id);

    const action = `load key ${id} from token ${this.tokenLabel}`;
    const key = await this.#run(action, true, (conn, session) => {
      const { p11 } = conn;
      const privateKey = this.#findKey(p11, session, id, pkcs11js.CKO_PRIVATE_KEY);
      if (!privateKey) {
        throw new CaError('notFound', `no key ${id} on HSM token ${this.tokenLabel}`);
      }
      const publicKey = this.#findKey(p11, session, id, pkcs11js.CKO_PUBLIC_KEY);
      if (!publicKey) {
        throw new CaError(
          'internal',
          `key ${id} on HSM token ${this.tokenLabel} has no public key object to read it from`,
        );
      }

      conn.handles.set(id, privateKey);
      return readPublicKey(p11, session, publicKey, id);
    });

    return new Pkcs11SigningKey(id, key, (data) => this.#sign(id, key.algorithm, data));
  }

  async list(): Promise<string[]> {
    const action = `list the keys on token ${this.tokenLabel}`;
    return this.#run(action, true, (conn, session) => {
      const { p11 } = conn;
      const template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }];
      const labels = findObjects(p11, session, template).map((handle) =>
        attributes(p11, session, handle, [pkcs11js.CKA_LABEL])[0].toString('utf8'),
      );
      return [...new Set(labels)].filter((label) => /^[a-z0-9-]{1,64}$/.test(label)).sort();
    });
  }

  /**
   * Waits for signatures under way, then logs out (when no other store of this process still
   * relies on the login) and finalizes the module (when no other store uses it).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;

    await Promise.allSettled([...this.#inFlight]);
    await this.#connecting?.catch(() => undefined);
    this.#connection?.close();
    this.#connection = null;
    if (this.#module) releaseModule(this.#module);
    this.#module = null;
  }

  /** Hashes here, then has the token sign the digest: CKM_ECDSA, or CKM_RSA_PKCS on DigestInfo. */
  #sign(id: string, algorithm: KeyAlgorithm, data: Buffer): Promise<Buffer> {
    const hash = signatureHashOf(algorithm);
    const digest = createHash(hash).update(data).digest();

    return this.#run(`sign with key ${id} on token ${this.tokenLabel}`, true, async (conn, s) => {
      const { p11 } = conn;
      const handle = this.#handleOf(conn, s, id);

      if (isEcAlgorithm(algorithm)) {
        p11.C_SignInit(s, { mechanism: pkcs11js.CKM_ECDSA }, handle);
        const raw = await p11.C_SignAsync(s, digest, Buffer.alloc(2 * curves[algorithm].size));
        return ecdsaRawToDer(raw);
      }

      p11.C_SignInit(s, { mechanism: pkcs11js.CKM_RSA_PKCS }, handle);
      const modulusBytes = Number(algorithm.slice('rsa-'.length)) / 8;
      return p11.C_SignAsync(s, digestInfo(hash, digest), Buffer.alloc(modulusBytes));
    });
  }

  #findKey(p11: Pkcs11, session: Buffer, id: string, keyClass: number): Buffer | undefined {
    const found = findObjects(p11, session, [
      { type: pkcs11js.CKA_CLASS, value: keyClass },
      { type: pkcs11js.CKA_LABEL, value: id },
    ]);
    if (found.length > 1) {
      throw new CaError(
        'internal',
        `HSM token ${this.tokenLabel} holds ${found.length} objects labelled ${id} of one ` +
          'class; labels must be unique',
      );
    }
    return found[0];
  }

  /** The private key's handle in this connection, looked up once per connection. */
  #handleOf(conn: TokenConnection, session: Buffer, id: string): Buffer {
    const cached = conn.handles.get(id);
    if (cached) return cached;

    const handle = this.#findKey(conn.p11, session, id, pkcs11js.CKO_PRIVATE_KEY);
    if (!handle) {
      // A token that vanished finds no objects rather than failing (SoftHSM2 does so when its
      // token folder goes away), so ask the token itself before saying the key was removed.
      this.#checkTokenPresent(conn);
      const detail = `the HSM token ${this.tokenLabel} no longer holds key ${id}`;
      throw new CaError('unavailable', detail);
    }
    conn.handles.set(id, handle);
    return handle;
  }

  /** Throws `unavailable`, and drops the connection, when the token no longer answers. */
  #checkTokenPresent(conn: TokenConnection): void {
    try {
      conn.p11.C_GetTokenInfo(conn.slot);
    } catch (err) {
      conn.lost = true;
      this.#tokenGone = true;
      const code = pkcs11CodeOf(err) ?? (err as Error).message;
      throw new CaError(
        'unavailable',
        `the HSM token ${this.tokenLabel} does not answer (C_GetTokenInfo: ${code})`,
        { cause: err },
      );
    }
  }

  /**
   * Runs `work` on a pooled session. A connection the module reports lost (session closed,
   * logged out, device removed, module finalized) is replaced, and `work` tried once more when
   * `retry` allows. Whatever still fails becomes a CaError naming `action`.
   */
  #run<T>(
    action: string,
    retry: boolean,
    work: (conn: TokenConnection, session: Buffer) => T | Promise<T>,
  ): Promise<T> {
    if (this.#closed) {
      const closed = `the HSM key store for token ${this.tokenLabel} is closed`;
      return Promise.reject(new CaError('unavailable', closed));
    }

    const attempt = async () => {
      const conn = await this.#connect();
      try {
        return await conn.use((session) => work(conn, session));
      } catch (err) {
        this.#noteFailure(conn, err);
        throw err;
      }
    };

    const running = attempt()
      .catch((err: unknown) => {
        const again = retry && (isConnectionLost(err) || isHandleLost(err));
        if (!again || this.#closed) throw err;
        return attempt();
      })
      .catch((err: unknown) => {
        throw hsmError(action, err);
      });

    this.#inFlight.add(running);
    const forget = () => this.#inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  #noteFailure(conn: TokenConnection, err: unknown): void {
    if (isHandleLost(err)) conn.handles.clear();
    if (!isConnectionLost(err)) return;

    conn.lost = true;
    if (isTokenGone(err)) this.#tokenGone = true;
    if (pkcs11CodeOf(err) === 'CKR_CRYPTOKI_NOT_INITIALIZED' && this.#module) {
      markUninitialized(this.#module);
    }
  }

  /** The live connection, opening one (module, token, login) when there is none. */
  #connect(): Promise<TokenConnection> {
    if (this.#connection && !this.#connection.lost) return Promise.resolve(this.#connection);
    if (this.#connecting) return this.#connecting;

    this.#connecting = (async () => {
      const { pin, from } = await readPin(this.#pin);
      if (this.#closed) throw new CaError('unavailable', `the HSM key store is closed`);

      // A refused PIN is not offered again until its source holds another one: every order
      // would otherwise spend one of the token's failed-login attempts.
      const pinDigest = createHash('sha256').update(pin, 'utf8').digest();
      if (this.#refused?.pinDigest.equals(pinDigest)) throw this.#refused.error;

      this.#connection?.close();
      this.#connection = null;
      if (this.#tokenGone && this.#module) resetModule(this.#module);
      this.#module ??= acquireModule(this.modulePath, this.#softhsmConf);
      try {
        this.#connection = TokenConnection.open({
          module: this.#module,
          tokenLabel: this.tokenLabel,
          pin,
          pinSource: from,
          maxSessions: this.#maxSessions,
        });
      } catch (err) {
        const code = pkcs11CodeOf((err as Error).cause);
        if (code && pinRefusedCodes.has(code)) this.#refused = { pinDigest, error: err };
        throw err;
      }
      this.#refused = null;
      this.#tokenGone = false;
      return this.#connection;
    })().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }
}
