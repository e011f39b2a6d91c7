import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';

/**
 * The route file: the one thing a flip changes. The proxy reads it at start, on SIGHUP and
 * when it changes on disk; the pipeline writes it whole, atomically, and never edits it.
 */

export const colors = ['blue', 'green'] as const;
export type Color = (typeof colors)[number];

/** What the route file holds. Unknown fields are refused, so a typo cannot pass silently. */
export const routeFileSchema = z.strictObject({
  /** The color public routes send new connections to; null refuses them all. */
  active: z.enum(colors).nullable(),
  /** Colors whose preview routes accept connections. @default both */
  preview: z.array(z.enum(colors)).default([...colors]),
  /** Set by each write, echoed by the proxy's /status once applied. */
  revision: z.string().min(1).optional(),
});
export type RouteFile = z.output<typeof routeFileSchema>;

/** Reads and validates the route file; throws one line naming the file and the bad field. */
export function readRouteFile(file: string): RouteFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`route file ${file}: cannot read: ${(err as Error).message}`);
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`route file ${file}: not valid JSON: ${(err as Error).message}`);
  }

  const parsed = routeFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length ? issue.path.join('.') : '(root)';
    throw new Error(`route file ${file}: ${where}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Writes the route file whole: a temp file beside it, fsync, rename. A reader sees the old or
 * the new content, never a mix, and a crash leaves the old one. Returns the revision written.
 */
export function writeRouteFile(file: string, routes: Omit<RouteFile, 'revision'>): string {
  const revision = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const content: RouteFile = { active: routes.active, preview: [...routes.preview], revision };
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', 0o644);
  try {
    writeSync(fd, JSON.stringify(content, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  return revision;
}

/** Where the proxy writes its pid unless its config names another file. */
export function defaultPidFile(routeFile: string): string {
  return join(dirname(routeFile), 'lb.pid');
}

export interface FlipResult {
  readonly revision: string;
  /** Whether a live proxy was sent SIGHUP; it also notices the file change by itself. */
  readonly signalled: boolean;
  readonly previous: Color | null;
}

/**
 * Points public routes at `color` (null: at nothing) by rewriting the route file, keeping its
 * preview list, then sends SIGHUP to the proxy named in the pid file. Connections already open
 * stay on their backend; only new ones follow. Wait with `waitForRoutes` before relying on it.
 */
export function flip(
  routeFile: string,
  color: Color | null,
  options: { pidFile?: string } = {},
): FlipResult {
  let current: RouteFile | undefined;
  try {
    current = readRouteFile(routeFile);
  } catch {
    // A missing file is a first flip; a corrupt one is replaced whole, preview list reset.
  }

  const preview = current?.preview ?? [...colors];
  const revision = writeRouteFile(routeFile, { active: color, preview });
  const signalled = signalProxy(options.pidFile ?? defaultPidFile(routeFile));
  return { revision, signalled, previous: current?.active ?? null };
}

/** Sends SIGHUP to the pid in `pidFile`; false when there is no such file or process. */
export function signalProxy(pidFile: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;

  try {
    process.kill(pid, 'SIGHUP');
    return true;
  } catch {
    return false;
  }
}

/** The proxy's answer on `/status`, as far as waiting for a flip needs it. */
export interface AppliedRoutes {
  readonly active: Color | null;
  readonly revision: string | null;
}

/**
 * Polls the proxy's `/status` until it reports `revision` (or, without one, `active`) as
 * applied; throws one line naming what the proxy still serves when time runs out.
 */
export async function waitForRoutes(
  adminUrl: string,
  want: { active?: Color | null; revision?: string },
  timeoutMs = 5_000,
): Promise<AppliedRoutes> {
  const deadline = Date.now() + timeoutMs;
  let last: AppliedRoutes | null = null;
  let lastError = '';

  while (Date.now() < deadline) {
    try {
      const res = await fetch(new URL('/status', adminUrl), { signal: AbortSignal.timeout(1_000) });
      last = (await res.json()) as AppliedRoutes;
      const revisionOk = want.revision === undefined || last.revision === want.revision;
      const activeOk = want.active === undefined || last.active === want.active;
      if (revisionOk && activeOk) return last;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 25));
  }

  const seen = last
    ? `it serves active=${last.active} revision=${last.revision}`
    : `it did not answer (${lastError})`;
  throw new Error(
    `load balancer at ${adminUrl} did not apply ${JSON.stringify(want)} within ${timeoutMs} ms: ${seen}`,
  );
}
