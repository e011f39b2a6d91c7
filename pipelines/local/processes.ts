import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Component } from './configs.js';

/** The repository root, where components/ and node_modules/ are. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface ComponentProcess {
  readonly component: Component;
  readonly child: ChildProcess;
  readonly logFile: string;
}

/**
 * Starts one component as its own Node process, logs to `<logDir>/<component>.log`. Runs from
 * the source tree through tsx; releases (a later step) run from their bundle.
 */
export function spawnComponent(
  component: Component,
  configFile: string,
  logDir: string,
  releaseDir?: string,
): ComponentProcess {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${component}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  // BLUEGREEN_NODE_ARGS passes extra Node flags (for example --cpu-prof) to every component.
  const extra = process.env.BLUEGREEN_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  // A release runs its own bundle, with no access to the source tree; else tsx runs the source.
  const entry = releaseDir
    ? [join(releaseDir, 'components', `${component}.mjs`)]
    : ['--import', 'tsx', join(repoRoot, 'components', component, 'main.ts')];
  const child = spawn(process.execPath, [...extra, ...entry, '--config', configFile], {
    cwd: releaseDir ?? repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env },
  });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return { component, child, logFile };
}

/** The last line a component wrote, for a one-line failure message. */
export function lastLogLine(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}

/** Polls a component's health endpoint until it answers 200, its process exits, or time runs out. */
export async function waitHealthy(p: ComponentProcess, adminPort: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(`${p.component} exited during start-up: ${lastLogLine(p.logFile)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/health`, {
        signal: AbortSignal.timeout(1000),
      });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${p.component} did not become healthy within ${timeoutMs} ms: ${lastLogLine(p.logFile)}`);
}

/** Sends SIGTERM and waits for exit; SIGKILL after the grace period. */
export async function stopProcess(p: ComponentProcess, graceMs = 10_000): Promise<void> {
  const { child } = p;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
