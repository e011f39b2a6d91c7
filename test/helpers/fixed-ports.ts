import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { pidAlive as alive } from '../../pipelines/local/state-lock.js';

/**
 * A lock shared by every test process that starts the local target, whose ports are fixed
 * (load balancer 8090, 14000–14002, 4002–4004, colors 20000+ and 21000+, validation 5001/5002):
 * tap runs test files in parallel, and two of them on those ports would fail each other.
 *
 * The lock is a directory (mkdir is atomic) holding the holder's pid. A lock whose holder is
 * dead is taken over, so a test killed half-way never blocks the next run for good.
 */
export interface FixedPortsLock {
  /** Removes the lock if this process still holds it. */
  release(): void;
}

export interface LockFixedPortsOptions {
  /** A test whose timeout restarts once the lock is taken, so that waiting does not count. */
  readonly test?: Test;
  /** How long to wait for another holder. @default 20 minutes */
  readonly timeoutMs?: number;
  /** @default <os tmpdir>/bluegreen-ca-fixed-ports.lock */
  readonly dir?: string;
}

const pollMs = 250;
/** How long a lock directory may exist without a pid file before it counts as abandoned. */
const ownerlessGraceMs = 10_000;

export async function lockFixedPorts(o: LockFixedPortsOptions = {}): Promise<FixedPortsLock> {
  const dir = o.dir ?? join(tmpdir(), 'bluegreen-ca-fixed-ports.lock');
  const timeoutMs = o.timeoutMs ?? 20 * 60_000;
  const deadline = Date.now() + timeoutMs;

  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), `${process.pid}\n`);
      const budget = o.test?.options.timeout;
      if (o.test && budget) o.test.setTimeout(budget);
      return { release: () => release(dir) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }

    if (abandoned(dir)) {
      // Move it aside first: of two processes taking over at once, only one rename succeeds.
      const aside = `${dir}.stale-${process.pid}-${Date.now()}`;
      try {
        renameSync(dir, aside);
        rmSync(aside, { recursive: true, force: true });
      } catch {
        // Someone else took it over or released it; try again.
      }
      continue;
    }

    if (Date.now() >= deadline) {
      throw new Error(
        `the fixed ports of the local target are still locked by pid ${holder(dir) ?? 'unknown'} after ${Math.round(timeoutMs / 1000)} s (${dir})`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function holder(dir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function abandoned(dir: string): boolean {
  const pid = holder(dir);
  if (pid !== null) return !alive(pid);

  // The holder may be between its mkdir and writing the pid file.
  try {
    return Date.now() - statSync(dir).mtimeMs > ownerlessGraceMs;
  } catch {
    return false;
  }
}

function release(dir: string): void {
  if (holder(dir) === process.pid) rmSync(dir, { recursive: true, force: true });
}
