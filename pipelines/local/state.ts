import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { pidAlive, processStart } from './state-lock.js';

export {
  lockFileName,
  pidAlive,
  StateLockedError,
  withLock,
  type HeldLock,
  type LockHolder,
} from './state-lock.js';

/**
 * The deployment state of the local target: which color is active, what each color runs, what
 * happened, and which operation is under way. One JSON file under the state directory,
 * replaced whole (never edited in place) by a process holding the state lock.
 */

export const colors = ['blue', 'green'] as const;
export type Color = (typeof colors)[number];

/** Verbs that change the state; each takes the lock and leaves a marker while it runs. */
export const operations = [
  'deploy',
  'smoke',
  'flip',
  'teardown',
  'rollback',
  'rotate-ca-key',
] as const;
export type Operation = (typeof operations)[number];

const color = z.enum(colors);
const isoTime = z.iso.datetime();

// Objects are loose: fields written by a newer toolkit survive a rewrite by an older one.

/** Where one color's preview endpoints answer, as `status --json` shows them. */
export const previewSchema = z.looseObject({
  acme: z.string().min(1),
  ocsp: z.array(z.string()).default([]),
});

/** The smoke tests' verdict on one deployment; a flip needs a passing one for the same id. */
export const smokeSchema = z.looseObject({
  passed: z.boolean(),
  at: isoTime,
  deploymentId: z.string().min(1),
});

export const deploymentStates = ['absent', 'deploying', 'running', 'stopping'] as const;

/** One color's deployment: which release runs there, under which id. */
export const deploymentSchema = z
  .looseObject({
    state: z.enum(deploymentStates),
    release: z.string().min(1).optional(),
    deploymentId: z.string().min(1).optional(),
    preview: previewSchema.optional(),
    smoke: smokeSchema.optional(),
    deployedAt: isoTime.optional(),
    /** What the target started for this deployment (local: pids, ports, directory). */
    resources: z.record(z.string(), z.unknown()).optional(),
  })
  .superRefine((d, ctx) => {
    if (d.state === 'absent') return;
    for (const field of ['release', 'deploymentId'] as const) {
      if (!d[field]) {
        const message = `required when state is ${d.state}`;
        ctx.addIssue({ code: 'custom', path: [field], message });
      }
    }
  });
export type Deployment = z.output<typeof deploymentSchema>;

/** The marker of an operation in progress; a crash leaves it behind for the next run to see. */
export const operationSchema = z.looseObject({
  op: z.enum(operations),
  pid: z.number().int().positive(),
  /** Kernel start time of the pid (Linux): tells a reused pid from the marker's process. */
  pidStart: z.string().optional(),
  host: z.string().optional(),
  startedAt: isoTime,
  from: color.nullable().optional(),
  to: color.optional(),
  color: color.optional(),
  release: z.string().optional(),
  deploymentId: z.string().optional(),
  /** The last step the operation reached, for a truthful report after a crash. */
  step: z.string().optional(),
});
export type OperationMarker = z.output<typeof operationSchema>;

export const outcomes = ['succeeded', 'failed', 'interrupted'] as const;

export const historySchema = z.looseObject({
  at: isoTime,
  op: z.enum(operations),
  outcome: z.enum(outcomes),
  startedAt: isoTime.optional(),
  from: color.nullable().optional(),
  to: color.optional(),
  color: color.optional(),
  release: z.string().optional(),
  deploymentId: z.string().optional(),
  detail: z.string().optional(),
});
export type HistoryEntry = z.output<typeof historySchema>;

/** The state file's schema. */
export const stateSchema = z.looseObject({
  schema: z.literal(1),
  target: z.string().min(1),
  active: color.nullable(),
  previous: color.nullable(),
  /** Release versions ever deployed, oldest first. */
  releases: z.array(z.string().min(1)).default([]),
  colors: z.strictObject({ blue: deploymentSchema, green: deploymentSchema }),
  history: z.array(historySchema).default([]),
  operation: operationSchema.nullable().default(null),
  updatedAt: isoTime,
});
export type DeploymentState = z.output<typeof stateSchema>;

/** History entries kept; older ones are dropped on write. */
export const historyLimit = 500;

export const stateFileName = 'deployment.json';

export function statePath(stateDir: string): string {
  return join(stateDir, stateFileName);
}

/** A state with nothing deployed, for a state directory with no state file yet. */
export function emptyState(target = 'local'): DeploymentState {
  return {
    schema: 1,
    target,
    active: null,
    previous: null,
    releases: [],
    colors: { blue: { state: 'absent' }, green: { state: 'absent' } },
    history: [],
    operation: null,
    updatedAt: new Date().toISOString(),
  };
}

/** Raised for a state file that cannot be read, parsed or validated; the message is one line. */
export class StateFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`state file ${file}: ${reason}`);
    this.name = 'StateFileError';
  }
}

/** Reads the state; a missing file is the empty state, an unreadable one a StateFileError. */
export function readState(stateDir: string, target = 'local'): DeploymentState {
  const file = statePath(stateDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState(target);
    throw new StateFileError(file, `cannot read: ${(err as Error).message}`);
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StateFileError(file, `not valid JSON: ${(err as Error).message}`);
  }

  const parsed = stateSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : '(root)';
    throw new StateFileError(file, `${where}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Writes the state atomically: validated first, so an invalid state is never written, then
 * temp file, fsync, rename, fsync of the directory. Call it while holding the lock.
 */
export function writeState(stateDir: string, state: DeploymentState): DeploymentState {
  const next = stateSchema.parse({
    ...state,
    history: state.history.slice(-historyLimit),
    updatedAt: new Date().toISOString(),
  });
  writeFileAtomic(statePath(stateDir), JSON.stringify(next, null, 2) + '\n');
  return next;
}

/** Reads, changes and writes the state in one step; returns what was written. */
export function updateState(
  stateDir: string,
  change: (state: DeploymentState) => void,
): DeploymentState {
  const state = readState(stateDir);
  change(state);
  return writeState(stateDir, state);
}

/**
 * Replaces `file` with `text` so that a reader, or a crash at any point, sees the old content
 * or the new, never a mix. `beforeRename` runs between the temp write and the rename (tests
 * crash there). Temp files a crashed writer left behind are removed.
 */
export function writeFileAtomic(
  file: string,
  text: string,
  hooks: { beforeRename?: () => void } = {},
): void {
  const dir = dirname(file);
  const prefix = `.${basename(file)}.`;
  const temp = join(dir, `${prefix}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);

  for (const name of readdirSync(dir)) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
  }

  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }

  hooks.beforeRename?.();
  renameSync(temp, file);
  fsyncDir(dir);
}

function fsyncDir(dir: string): void {
  // Makes the rename itself durable; some file systems refuse fsync on a directory.
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** What a verb says about itself when it starts; the process fields are filled in. */
export type OperationStart = Pick<OperationMarker, 'op'> &
  Partial<Pick<OperationMarker, 'from' | 'to' | 'color' | 'release' | 'deploymentId' | 'step'>>;

/** Marks `op` as in progress in `state` (write it after); refuses while another is marked live. */
export function beginOperation(state: DeploymentState, marker: OperationStart): OperationMarker {
  const current = state.operation;
  if (current && current.pid !== process.pid && pidAlive(current.pid, current.pidStart)) {
    throw new Error(
      `${current.op} (pid ${current.pid}) is in progress since ${current.startedAt}; wait for it to finish`,
    );
  }
  if (current) endOperation(state, 'interrupted', `superseded by ${marker.op}`);

  const pidStart = processStart(process.pid);
  const started: OperationMarker = {
    ...marker,
    pid: process.pid,
    ...(pidStart ? { pidStart } : {}),
    host: hostname(),
    startedAt: new Date().toISOString(),
  };
  state.operation = started;
  return started;
}

/** Clears the in-progress marker and records how the operation ended in the history. */
export function endOperation(
  state: DeploymentState,
  outcome: (typeof outcomes)[number],
  detail?: string,
): void {
  const marker = state.operation;
  if (!marker) return;

  const { op, startedAt, from, to, color: c, release, deploymentId } = marker;
  const entry: HistoryEntry = { at: new Date().toISOString(), op, outcome, startedAt };
  Object.assign(
    entry,
    Object.fromEntries(
      Object.entries({ from, to, color: c, release, deploymentId, detail }).filter(
        ([, v]) => v !== undefined,
      ),
    ),
  );
  state.history.push(entry);
  state.operation = null;
}

/**
 * The marker of an operation whose process is gone: a run killed mid-way. Status reports it;
 * the next run of that verb finishes or undoes it, then calls `endOperation`.
 */
export function interruptedOperation(state: DeploymentState): OperationMarker | null {
  const marker = state.operation;
  if (!marker) return null;
  if (marker.host && marker.host !== hostname()) return null;
  return pidAlive(marker.pid, marker.pidStart) ? null : marker;
}

/** Adds a release version to the known list, once. */
export function rememberRelease(state: DeploymentState, version: string): void {
  if (!state.releases.includes(version)) state.releases.push(version);
}
