import pkcs11js from 'pkcs11js';
import { CaError } from '../lib/errors.js';
import {
  call,
  ensureInitialized,
  login,
  logout,
  type Pkcs11,
  type Pkcs11Module,
} from './pkcs11-module.js';

/**
 * One key store's hold on a token: a login session kept open for as long as the store is
 * (PKCS#11 §5.6: closing the last session ends the login), and a pool of sessions for work.
 * A session carries at most one operation at a time (PKCS#11 §5.2), so each is lent to one
 * caller until it gives it back; callers beyond the pool's size wait in line.
 */

const sessionFlags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;

export interface TokenConnectionOptions {
  module: Pkcs11Module;
  tokenLabel: string;
  pin: string;
  /** Where the PIN came from, for errors: never the PIN itself. */
  pinSource: string;
  maxSessions: number;
}

/** The slot holding the token labelled `label`; fails listing the labels there are. */
function findSlot(module: Pkcs11Module, label: string): Buffer {
  const { p11 } = module;
  const slots = call('list its slots', () => p11.C_GetSlotList(true));
  const labels = slots.map((slot) =>
    call('read token information', () => p11.C_GetTokenInfo(slot).label.trimEnd()),
  );

  const matching = slots.filter((_, i) => labels[i] === label);
  if (matching.length === 1) return matching[0];

  const present = labels.filter(Boolean).join(', ') || 'none';
  throw new CaError(
    'unavailable',
    matching.length === 0
      ? `the HSM module ${module.path} has no token labelled ${label} (tokens: ${present})`
      : `the HSM module ${module.path} has ${matching.length} tokens labelled ${label}; ` +
        'labels must be unique',
  );
}

export class TokenConnection {
  readonly module: Pkcs11Module;
  readonly slot: Buffer;
  /** Private key handles by key id; handles are valid only within this connection. */
  readonly handles = new Map<string, Buffer>();
  /** Set when the module reported the sessions or login gone; the store then reconnects. */
  lost = false;
  readonly #loginSession: Buffer;
  readonly #maxSessions: number;
  readonly #idle: Buffer[] = [];
  readonly #waiting: ((session: Buffer | null) => void)[] = [];
  #open = 0;

  private constructor(module: Pkcs11Module, slot: Buffer, loginSession: Buffer, max: number) {
    this.module = module;
    this.slot = slot;
    this.#loginSession = loginSession;
    this.#maxSessions = max;
  }

  /** Finds the token, opens the login session and logs the user in once. */
  static open(options: TokenConnectionOptions): TokenConnection {
    const { module, tokenLabel } = options;
    ensureInitialized(module);
    const slot = findSlot(module, tokenLabel);

    const session = call(`open a session on token ${tokenLabel}`, () =>
      module.p11.C_OpenSession(slot, sessionFlags),
    );
    try {
      const action = `log in to token ${tokenLabel} with the PIN from ${options.pinSource}`;
      login(module, slot, session, options.pin, action);
    } catch (err) {
      closeQuietly(module.p11, session);
      throw err;
    }
    return new TokenConnection(module, slot, session, options.maxSessions);
  }

  get p11(): Pkcs11 {
    return this.module.p11;
  }

  /**
   * Lends a session to `work` and takes it back after. A session whose work failed is closed
   * rather than reused: a failed call can leave an operation active on it.
   */
  async use<T>(work: (session: Buffer) => T | Promise<T>): Promise<T> {
    const session = await this.#acquire();
    let healthy = false;
    try {
      const result = await work(session);
      healthy = true;
      return result;
    } finally {
      this.#release(session, healthy);
    }
  }

  /** Closes every idle session and the login session; the last user of the login logs out. */
  close(): void {
    for (const session of this.#idle.splice(0)) closeQuietly(this.p11, session);
    logout(this.module, this.slot, this.#loginSession);
    closeQuietly(this.p11, this.#loginSession);
    this.lost = true;
    for (const waiter of this.#waiting.splice(0)) waiter(null);
  }

  async #acquire(): Promise<Buffer> {
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#open < this.#maxSessions) return this.#openSession();

    const handed = await new Promise<Buffer | null>((resolve) => this.#waiting.push(resolve));
    return handed ?? this.#openSession();
  }

  #openSession(): Buffer {
    this.#open++;
    try {
      return this.p11.C_OpenSession(this.slot, sessionFlags);
    } catch (err) {
      this.#open--;
      throw err;
    }
  }

  /** Hands the session to the next caller in line, or back to the pool. */
  #release(session: Buffer, healthy: boolean): void {
    if (healthy && !this.lost) {
      const next = this.#waiting.shift();
      if (next) next(session);
      else this.#idle.push(session);
      return;
    }

    closeQuietly(this.p11, session);
    this.#open--;
    // The waiter opens a session of its own in the place freed.
    this.#waiting.shift()?.(null);
  }
}

function closeQuietly(p11: Pkcs11, session: Buffer): void {
  try {
    p11.C_CloseSession(session);
  } catch {
    // A session the module already dropped needs no closing.
  }
}
