import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  beginOperation,
  emptyState,
  endOperation,
  interruptedOperation,
  readState,
  StateFileError,
  StateLockedError,
  statePath,
  updateState,
  withLock,
  writeState,
} from './state.js';

/**
 * The deployment state under real concurrency and real crashes: second processes (tsx, see
 * fixtures/state-child.ts) hold the lock, die by SIGKILL before a rename, or die inside a flip.
 */

const root = mkdtempSync(join(tmpdir(), 'state-test-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childFile = fileURLToPath(new URL('./fixtures/state-child.ts', import.meta.url));

let dirs = 0;
function stateDir(): string {
  const dir = join(root, `s${++dirs}`);
  mkdirSync(dir);
  return dir;
}

interface Child {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | string>;
  waitFor(line: string): Promise<void>;
}

function child(...args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', childFile, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffered = '';
  const waiters: Array<() => void> = [];
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(code ?? signal!)),
  );
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });

  const waitFor = async (line: string) => {
    while (!lines.some((l) => l.startsWith(line))) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`child exited before printing ${line}: ${lines.join(' | ')}`);
      }
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
  };
  return { child: proc, lines, exited, waitFor };
}

t.test('of two processes taking the lock at once, one is refused with the holder named', async (t) => {
  const dir = stateDir();
  const go = join(dir, 'go');
  const a = child('lock', dir, go);
  const b = child('lock', dir, go);
  await Promise.all([a.waitFor('ready'), b.waitFor('ready')]);
  writeFileSync(go, '');
  t.same(await Promise.all([a.exited, b.exited]), [0, 0]);

  const results = [...a.lines, ...b.lines].filter((l) => l !== 'ready').sort();
  t.equal(results.length, 2);
  t.equal(results[0], 'acquired');
  const holder = results[0] === 'acquired' && a.lines.includes('acquired') ? a : b;
  t.match(
    results[1],
    new RegExp(`^refused: state is locked by deploy \\(pid ${holder.child.pid} on .*\\); wait`),
  );
  t.notOk(existsSync(join(dir, 'lock')), 'the holder released the lock');
});

t.test('a run in this process is refused while another process holds the lock', async (t) => {
  const dir = stateDir();
  const holder = child('crash-inside', dir);
  await holder.waitFor('inside');

  const err = await withLock(dir, 'teardown', () => 'never').catch((e: unknown) => e);
  t.type(err, StateLockedError);
  t.match((err as Error).message, `state is locked by flip (pid ${holder.child.pid} on`);
  t.notMatch((err as Error).message, /\n/, 'one line');
  t.equal((err as StateLockedError).holder?.op, 'flip');
});

t.test('a lock whose pid is dead is taken over, and the result says so', async (t) => {
  const dir = stateDir();
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.once('exit', r));
  const stale = {
    op: 'deploy',
    pid: dead.pid,
    host: hostname(),
    startedAt: '2020-01-01T00:00:00.000Z',
    token: 'stale',
  };
  writeFileSync(join(dir, 'lock'), JSON.stringify(stale));

  let inside: unknown;
  const result = await withLock(dir, 'flip', (held) => {
    inside = held.tookOver;
    return 42;
  });
  t.equal(result.value, 42);
  t.same(result.tookOver, stale);
  t.same(inside, stale, 'the function is told too');
  t.equal(result.lock.op, 'flip');
  t.notOk(existsSync(join(dir, 'lock')));
});

t.test('a free lock is taken without a takeover and released after an error', async (t) => {
  const dir = stateDir();
  const result = await withLock(dir, 'smoke', () => 'ok');
  t.equal(result.tookOver, null);
  await t.rejects(
    withLock(dir, 'smoke', () => {
      throw new Error('smoke failed');
    }),
    /smoke failed/,
  );
  t.notOk(existsSync(join(dir, 'lock')));
});

t.test('a crash between the temp write and the rename leaves the old state intact', async (t) => {
  const dir = stateDir();
  const before = emptyState();
  before.active = 'blue';
  writeState(dir, before);

  const crasher = child('crash-write', dir);
  t.equal(await crasher.exited, 'SIGKILL');
  t.ok(
    readdirSync(dir).some((f) => f.endsWith('.tmp')),
    'the new content was written to a temp file',
  );
  t.equal(readState(dir).active, 'blue', 'the state file still holds the old content');

  updateState(dir, (s) => void (s.active = 'green'));
  t.equal(readState(dir).active, 'green');
  t.same(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'the next write removes the leftover',
  );
});

t.test('a run killed inside a flip leaves a marker the next run sees and can finish', async (t) => {
  const dir = stateDir();
  const victim = child('crash-inside', dir);
  await victim.waitFor('inside');
  victim.child.kill('SIGKILL');
  t.equal(await victim.exited, 'SIGKILL');

  const state = readState(dir);
  t.match(state.operation, {
    op: 'flip',
    pid: victim.child.pid,
    from: 'blue',
    to: 'green',
    step: 'route file written',
  });
  t.same(interruptedOperation(state), state.operation, 'reported as interrupted');

  const result = await withLock(dir, 'flip', () =>
    updateState(dir, (s) => {
      endOperation(s, 'interrupted', 'finished by the next run');
      s.active = 'green';
      s.previous = 'blue';
    }),
  );
  t.equal(result.tookOver?.pid, victim.child.pid, 'the dead run’s lock was taken over');
  t.equal(result.value.operation, null);
  t.match(result.value.history.at(-1), {
    op: 'flip',
    outcome: 'interrupted',
    from: 'blue',
    to: 'green',
    detail: 'finished by the next run',
  });
});

t.test('beginOperation refuses while another live process is marked in progress', async (t) => {
  const state = emptyState();
  state.operation = {
    op: 'deploy',
    pid: process.ppid,
    startedAt: new Date().toISOString(),
  };
  t.throws(() => beginOperation(state, { op: 'flip' }), /deploy \(pid \d+\) is in progress/);
  t.equal(interruptedOperation(state), null, 'a live marker is not interrupted');
});

t.test('rejects a corrupt state file with one line naming the file', async (t) => {
  const dir = stateDir();
  writeFileSync(statePath(dir), '{"schema": 1, "active": ');
  t.throws(() => readState(dir), StateFileError);
  t.equal(messageOf(() => readState(dir)).split('\n').length, 1, 'one line');
  t.match(messageOf(() => readState(dir)), `state file ${statePath(dir)}: not valid JSON: `);

  const colors = { blue: { state: 'running' }, green: { state: 'absent' } };
  const state = { ...emptyState(), colors };
  writeFileSync(statePath(dir), JSON.stringify(state));
  t.equal(
    messageOf(() => readState(dir)),
    `state file ${statePath(dir)}: colors.blue.release: required when state is running`,
  );
});

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return '(no error)';
}

t.test('rejects an invalid state before writing it', async (t) => {
  const dir = stateDir();
  const state = emptyState();
  (state as { active: unknown }).active = 'purple';
  t.throws(() => writeState(dir, state));
  t.notOk(existsSync(statePath(dir)));
});

t.test('keeps fields it does not know, for a newer toolkit’s sake', async (t) => {
  const dir = stateDir();
  writeFileSync(statePath(dir), JSON.stringify({ ...emptyState(), futureField: { x: 1 } }));
  updateState(dir, (s) => void (s.active = 'blue'));
  t.same((readState(dir) as Record<string, unknown>).futureField, { x: 1 });
});
