import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { pidAlive } from './state-lock.js';
import type { Component } from './configs.js';
import {
  lastLogLine,
  repoRoot,
  spawnComponent,
  stopProcess,
  waitHealthy,
  type ComponentProcess,
} from './processes.js';

/**
 * Keeps one color's components running: a long-lived process of its own (it outlives the
 * command that deployed the color), starting components tier by tier from a release and
 * restarting any that dies. SIGTERM stops them in reverse order.
 */

export const supervisorConfig = z.strictObject({
  color: z.enum(['blue', 'green']),
  /** A built release; null runs the components from the source tree (tests, `npm start`). */
  releaseDir: z.string().nullable(),
  logDir: z.string(),
  statusFile: z.string(),
  tiers: z.array(z.array(z.string())),
  components: z.record(z.string(), z.strictObject({ configFile: z.string(), adminPort: z.number() })),
  /** Restarts allowed per component within a minute before the supervisor gives up on it. */
  maxRestartsPerMinute: z.number().int().min(0).default(5),
});
export type SupervisorConfig = z.input<typeof supervisorConfig>;

export interface SupervisorStatus {
  pid: number;
  state: 'starting' | 'running' | 'failed' | 'stopping' | 'stopped';
  detail?: string;
  updatedAt: string;
  components: Record<string, { pid: number | null; restarts: number }>;
}

function writeStatus(file: string, status: SupervisorStatus): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(status, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readSupervisorStatus(file: string): SupervisorStatus | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SupervisorStatus;
  } catch {
    return null;
  }
}

async function supervise(config: z.output<typeof supervisorConfig>): Promise<void> {
  const running = new Map<string, ComponentProcess>();
  const restarts = new Map<string, number[]>();
  let state: SupervisorStatus['state'] = 'starting';
  let detail: string | undefined;

  const report = () =>
    writeStatus(config.statusFile, {
      pid: process.pid,
      state,
      ...(detail ? { detail } : {}),
      updatedAt: new Date().toISOString(),
      components: Object.fromEntries(
        Object.keys(config.components).map((c) => [
          c,
          { pid: running.get(c)?.child.pid ?? null, restarts: restarts.get(c)?.length ?? 0 },
        ]),
      ),
    });

  const start = (name: string): ComponentProcess => {
    const spec = config.components[name];
    const p = spawnComponent(name as Component, spec.configFile, config.logDir, config.releaseDir ?? undefined);
    running.set(name, p);
    p.child.once('exit', () => {
      if (state !== 'running') return;
      const now = Date.now();
      const recent = (restarts.get(name) ?? []).filter((t) => now - t < 60_000);
      if (recent.length >= config.maxRestartsPerMinute) {
        detail = `${name} keeps dying: ${lastLogLine(p.logFile)}`;
        state = 'failed';
        report();
        return;
      }
      restarts.set(name, [...recent, now]);
      setTimeout(() => {
        if (state !== 'running') return;
        const again = start(name);
        waitHealthy(again, spec.adminPort).then(report, () => report());
      }, 250);
    });
    return p;
  };

  const stopAll = async () => {
    state = 'stopping';
    report();
    for (const tier of [...config.tiers].reverse()) {
      await Promise.all(tier.map((c) => (running.has(c) ? stopProcess(running.get(c)!) : undefined)));
    }
    state = 'stopped';
    report();
  };

  // The drain before a teardown: the public HTTP servers start closing keep-alive connections.
  process.on('SIGUSR2', () => {
    for (const name of ['wfe', 'ocsp-responder']) running.get(name)?.child.kill('SIGUSR2');
  });
  process.once('SIGTERM', () => void stopAll().then(() => process.exit(0)));
  process.once('SIGINT', () => void stopAll().then(() => process.exit(0)));
  report();

  try {
    for (const tier of config.tiers) {
      await Promise.all(tier.map((c) => waitHealthy(start(c), config.components[c].adminPort)));
    }
    state = 'running';
    report();
  } catch (err) {
    detail = (err as Error).message;
    await stopAll();
    state = 'failed';
    report();
    process.exit(1);
  }
}

/** Starts a supervisor as a detached process and waits until its color runs or fails. */
export async function launchSupervisor(configFile: string, timeoutMs = 90_000): Promise<SupervisorStatus> {
  const config = supervisorConfig.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  const out = join(config.logDir, '..', 'supervisor.log');
  mkdirSync(config.logDir, { recursive: true });
  const fd = openSync(out, 'a');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'pipelines', 'local', 'supervisor.ts'), '--config', configFile],
    { cwd: repoRoot, detached: true, stdio: ['ignore', fd, fd] },
  );
  child.unref();

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = readSupervisorStatus(config.statusFile);
    if (status && status.pid === child.pid && (status.state === 'running' || status.state === 'failed')) {
      return status;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const status = readSupervisorStatus(config.statusFile);
  throw new Error(
    `the ${config.color} supervisor did not come up: ${status?.detail ?? lastLogLine(out) ?? 'no status'}`,
  );
}

/** Stops a color's supervisor (and so its components); kills the group if it hangs. */
export async function stopSupervisor(statusFile: string, timeoutMs = 30_000): Promise<void> {
  const status = readSupervisorStatus(statusFile);
  if (!status) return;
  if (!alive(status.pid)) {
    // A supervisor killed hard leaves its components behind in its process group.
    try {
      process.kill(-status.pid, 'SIGTERM');
    } catch {
      // none left
    }
    return;
  }
  process.kill(status.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (alive(status.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(status.pid)) {
    // The supervisor leads its own process group: take the components with it.
    try {
      process.kill(-status.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Whether a supervisor or component process still runs (a zombie does not). */
export function alive(pid: number): boolean {
  return pidAlive(pid);
}

if (process.argv[1] && process.argv[1].endsWith('supervisor.ts')) {
  const i = process.argv.indexOf('--config');
  const file = process.argv[i + 1];
  try {
    await supervise(supervisorConfig.parse(JSON.parse(readFileSync(file, 'utf8'))));
  } catch (err) {
    process.stderr.write(`supervisor: ${(err as Error).message.split('\n')[0]}\n`);
    process.exit(2);
  }
}
