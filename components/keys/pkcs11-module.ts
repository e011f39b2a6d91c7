import { createHash, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { CaError } from '../lib/errors.js';

/**
 * PKCS#11 modules as a process holds them. A module's shared library is loaded once per
 * process whatever the number of `PKCS11` objects (dlopen hands back the same handle), and
 * its C_Initialize, C_Finalize and login state are process-wide; so every key store of the
 * process goes through one record per module path, counted, and finalized by the last one.
 */

export type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;

/** Return codes after which a session, a login or the module itself has to be set up again. */
const connectionLostCodes = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
]);

/** A loaded module, shared by every key store of this process that names its path. */
export interface Pkcs11Module {
  readonly path: string;
  /** The SOFTHSM2_CONF it was initialized under, when one was given. */
  readonly softhsmConf: string | undefined;
  readonly p11: Pkcs11;
  /** Key stores holding this record. */
  users: number;
  initialized: boolean;
  /** Per slot: how many stores rely on the user login, and a digest of the PIN that made it. */
  readonly logins: Map<string, { users: number; pinDigest: Buffer }>;
}

const modules = new Map<string, Pkcs11Module>();

/** The CKR_* name of a PKCS#11 error, or undefined for anything else. */
export function pkcs11CodeOf(err: unknown): string | undefined {
  const message = err instanceof Error ? err.message : '';
  return /^CKR_[A-Z0-9_]+$/.test(message) ? message : undefined;
}

/** True when `err` means the session, login or module must be set up again before a retry. */
export function isConnectionLost(err: unknown): boolean {
  const code = pkcs11CodeOf(err);
  return code !== undefined && connectionLostCodes.has(code);
}

/**
 * Turns what a module threw into the error the CA reports: `unavailable`, naming what was being
 * done and the PKCS#11 return code. CaErrors pass through unchanged.
 */
export function hsmError(action: string, err: unknown): CaError {
  if (err instanceof CaError) return err;
  const reason = pkcs11CodeOf(err) ?? (err instanceof Error ? err.message : String(err));
  return new CaError('unavailable', `the HSM could not ${action}: ${reason}`, { cause: err });
}

/** Runs one synchronous module call, turning its failure into `hsmError(action, …)`. */
export function call<T>(action: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw hsmError(action, err);
  }
}

/**
 * The module at `path`, loaded and initialized. SOFTHSM2_CONF is set first when `softhsmConf`
 * is given, since SoftHSM2 reads it only in C_Initialize; a module already initialized under
 * another one is refused rather than silently serving the wrong tokens.
 */
export function acquireModule(path: string, softhsmConf: string | undefined): Pkcs11Module {
  let module = modules.get(path);
  if (module && module.softhsmConf !== softhsmConf) {
    throw new CaError(
      'internal',
      `the HSM module ${path} is already in use in this process with SOFTHSM2_CONF=` +
        `${module.softhsmConf ?? '(unset)'}; a key store asking for ` +
        `${softhsmConf ?? '(unset)'} must wait until the other is closed`,
    );
  }

  if (!module) {
    const p11 = new pkcs11js.PKCS11();
    try {
      p11.load(path);
    } catch (err) {
      throw new CaError(
        'unavailable',
        `the HSM module ${path} could not be loaded: ${(err as Error).message.split('\n')[0]}`,
        { cause: err },
      );
    }
    module = { path, softhsmConf, p11, users: 0, initialized: false, logins: new Map() };
    modules.set(path, module);
  }

  module.users++;
  try {
    ensureInitialized(module);
  } catch (err) {
    releaseModule(module);
    throw err;
  }
  return module;
}

/** Calls C_Initialize unless done; OS locking, since signatures run on libuv's threads. */
export function ensureInitialized(module: Pkcs11Module): void {
  if (module.initialized) return;
  if (module.softhsmConf !== undefined) process.env.SOFTHSM2_CONF = module.softhsmConf;

  try {
    module.p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    // Another PKCS11 object of this process (a tool, a test) initialized it first.
    if (pkcs11CodeOf(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      throw hsmError(`initialize module ${module.path}`, err);
    }
  }
  module.initialized = true;
}

/**
 * Return codes that say the token or the device behind it went away, not just a session. Some
 * modules (SoftHSM2 among them) keep a vanished token unusable until they are initialized
 * again, so a store that sees one starts its next connection on a fresh C_Initialize.
 */
const tokenGoneCodes = new Set([
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
]);

/** True when `err` says the token or its device is gone (see `tokenGoneCodes`). */
export function isTokenGone(err: unknown): boolean {
  return tokenGoneCodes.has(pkcs11CodeOf(err) ?? '');
}

/**
 * Finalizes the module so that its next use initializes it again and finds its tokens afresh.
 * Sessions and logins of every store on the module end with it; those stores see
 * CKR_CRYPTOKI_NOT_INITIALIZED or an invalid session next and reconnect.
 */
export function resetModule(module: Pkcs11Module): void {
  if (module.initialized) {
    try {
      module.p11.C_Finalize();
    } catch {
      // A module that lost its device may refuse to finalize; it is initialized again anyway.
    }
  }
  markUninitialized(module);
}

/** Forgets the module's initialization and logins, after it reported them gone. */
export function markUninitialized(module: Pkcs11Module): void {
  module.initialized = false;
  module.logins.clear();
}

/** Drops one user; the last one finalizes and unloads the module. */
export function releaseModule(module: Pkcs11Module): void {
  module.users--;
  if (module.users > 0) return;

  modules.delete(module.path);
  try {
    if (module.initialized) module.p11.C_Finalize();
  } catch {
    // Finalizing a module that already lost its device: nothing left to release.
  }
  try {
    module.p11.close();
  } catch {
    // As above: the library is going away either way.
  }
}

function slotKey(slot: Buffer): string {
  return slot.toString('hex');
}

function digestOf(pin: string): Buffer {
  return createHash('sha256').update(pin, 'utf8').digest();
}

/**
 * Logs the user in on the slot of `session`; `action` names the token and where the PIN came
 * from, for the error. A login is per process and slot, so when another store of this process
 * already made it, the PIN given must be the one it used.
 */
export function login(
  module: Pkcs11Module,
  slot: Buffer,
  session: Buffer,
  pin: string,
  action: string,
): void {
  const key = slotKey(slot);
  const pinDigest = digestOf(pin);
  const existing = module.logins.get(key);

  try {
    module.p11.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    if (pkcs11CodeOf(err) !== 'CKR_USER_ALREADY_LOGGED_IN') throw hsmError(action, err);
    if (existing && !timingSafeEqual(existing.pinDigest, pinDigest)) {
      // The token never saw this PIN; report what it would have said.
      throw new CaError('unavailable', `the HSM could not ${action}: CKR_PIN_INCORRECT`, {
        cause: new Error('CKR_PIN_INCORRECT'),
      });
    }
  }

  if (existing) existing.users++;
  else module.logins.set(key, { users: 1, pinDigest });
}

/** Drops one store's reliance on the login; the last one logs out. */
export function logout(module: Pkcs11Module, slot: Buffer, session: Buffer): void {
  const key = slotKey(slot);
  const entry = module.logins.get(key);
  if (!entry) return;

  entry.users--;
  if (entry.users > 0) return;
  module.logins.delete(key);
  try {
    module.p11.C_Logout(session);
  } catch {
    // A token that already dropped the login has nothing to log out of.
  }
}
