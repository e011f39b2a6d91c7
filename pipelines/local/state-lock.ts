import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';

/**
 * The state lock: one run at a time changes the deployment state. The lock is a file created
 * with O_EXCL that names its holder; a holder that died is detected and its lock taken over.
 */

export const lockFileName = 'lock';

/** Who holds the lock, as written in `<stateDir>/lock`. */
export interface LockHolder {
  readonly op: string;
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  /** Kernel start time of the pid (Linux), so a reused pid is not taken for the holder. */
  readonly pidStart?: string;
  readonly token: string;
}

/** Raised when another live run holds the lock; one line naming its op and pid. */
export class StateLockedError extends Error {
  constructor(
    readonly lockFile: string,
    readonly holder: LockHolder | null,
  ) {
    super(
      holder
        ? `state is locked by ${holder.op} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}); wait for it to finish, then run again`
        : `state lock ${lockFile} is being taken by another run; run again in a moment`,
    );
    this.name = 'StateLockedError';
  }
}

/** What `withLock` hands its function and returns. */
export interface HeldLock {
  readonly lock: LockHolder;
  /** The dead holder whose lock was taken over, or null for a free lock. */
  readonly tookOver: LockHolder | null;
}

/**
 * Runs `fn` holding `<stateDir>/lock`, created with O_EXCL: a concurrent run is refused with a
 * StateLockedError, never interleaved. A lock whose holder is dead is taken over, and
 * `tookOver` says whose it was. The lock is released when `fn` settles; a run killed inside
 * `fn` leaves it for the next run to take over.
 */
export async function withLock<T>(
  stateDir: string,
  op: string,
  fn: (held: HeldLock) => Promise<T> | T,
): Promise<HeldLock & { value: T }> {
  const held = acquire(join(stateDir, lockFileName), op);
  try {
    const value = await fn(held);
    return { ...held, value };
  } finally {
    release(join(stateDir, lockFileName), held.lock.token);
  }
}

/** A lock file older than this and still empty belongs to a run that died creating it. */
const partialLockMs = 5_000;
/** A takeover guard older than this belongs to a run that died taking over. */
const takeoverGuardMs = 10_000;

/**
 * The holder, once its creator has written it: a lock file is empty between its O_EXCL create
 * and the write that follows, so an empty one is read again for a moment before it counts as
 * partial (then its creator died, or is stuck).
 */
function settledHolder(lockFile: string): ReturnType<typeof readHolder> {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let holder = readHolder(lockFile);
  for (let i = 0; holder === 'partial' && i < 40; i++) {
    Atomics.wait(pause, 0, 0, 5);
    holder = readHolder(lockFile);
  }
  return holder;
}

function acquire(lockFile: string, op: string): HeldLock {
  const pidStart = processStart(process.pid);
  const lock: LockHolder = {
    op,
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    ...(pidStart ? { pidStart } : {}),
    token: randomBytes(8).toString('hex'),
  };

  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(lockFile, JSON.stringify(lock) + '\n')) return { lock, tookOver: null };

    const holder = settledHolder(lockFile);
    if (holder === 'missing') continue;
    if (holder === 'partial') {
      if (ageMs(lockFile) < partialLockMs) throw new StateLockedError(lockFile, null);
    } else if (holderAlive(holder)) {
      throw new StateLockedError(lockFile, holder);
    }

    // Only one run may remove a stale lock: two that both saw it dead must not both win.
    const guard = `${lockFile}.takeover`;
    if (!createExclusive(guard, `${process.pid}\n`)) {
      if (ageMs(guard) > takeoverGuardMs) rmSync(guard, { force: true });
      else throw new StateLockedError(lockFile, holder === 'partial' ? null : holder);
      continue;
    }
    try {
      const again = readHolder(lockFile);
      const same =
        again === holder ||
        (typeof again === 'object' && typeof holder === 'object' && again.token === holder.token);
      if (same) rmSync(lockFile, { force: true });
      if (createExclusive(lockFile, JSON.stringify(lock) + '\n')) {
        return { lock, tookOver: typeof holder === 'object' ? holder : null };
      }
    } finally {
      rmSync(guard, { force: true });
    }
  }
  throw new StateLockedError(lockFile, null);
}

function release(lockFile: string, token: string): void {
  // Remove only our own lock, never one a later run holds.
  const holder = readHolder(lockFile);
  if (typeof holder === 'object' && holder.token === token) rmSync(lockFile, { force: true });
}

function createExclusive(file: string, content: string): boolean {
  let fd: number;
  try {
    // The first run against a target makes its state directory (a cloud target's records).
    mkdirSync(dirname(file), { recursive: true });
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new Error(`cannot create lock ${file}: ${(err as Error).message}`);
  }
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

const holderSchema = z.object({
  op: z.string(),
  pid: z.number().int().positive(),
  host: z.string(),
  startedAt: z.string(),
  pidStart: z.string().optional(),
  token: z.string(),
});

/** The lock's holder; 'partial' while its creator has not finished writing it. */
function readHolder(lockFile: string): LockHolder | 'missing' | 'partial' {
  let text: string;
  try {
    text = readFileSync(lockFile, 'utf8');
  } catch {
    return 'missing';
  }
  try {
    return holderSchema.parse(JSON.parse(text));
  } catch {
    return 'partial';
  }
}

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function holderAlive(holder: LockHolder): boolean {
  // Limitation: a lock taken on another host (a shared state directory) is never seen as
  // stale, since its pid cannot be checked from here. See docs/limitations.md#state-lock.
  if (holder.host !== hostname()) return true;
  return pidAlive(holder.pid, holder.pidStart);
}

/**
 * Whether `pid` is a live process; with `pidStart`, also that it is the same process and not a
 * later one that got the pid. A zombie counts as dead.
 */
export function pidAlive(pid: number, pidStart?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (!stat) return true;
  if (stat.state === 'Z') return false;
  return pidStart === undefined || stat.start === pidStart;
}

/** The kernel's start time of `pid` (Linux), or undefined where /proc is missing. */
export function processStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

function procStat(pid: number): { state: string; start: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], start: fields[19] };
  } catch {
    return null;
  }
}
