import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, splitAddress } from '../../../components/lib/config.js';
import { pidAlive as alive } from '../state-lock.js';
import { proxyConfig } from './config.js';
import { defaultPidFile } from './route-file.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainFile = fileURLToPath(new URL('./main.ts', import.meta.url));

export interface LaunchedProxy {
  readonly pid: number;
  readonly adminUrl: string;
  readonly pidFile: string;
}

/**
 * Starts the load balancer as a detached process that outlives the caller, logging to
 * `logFile`, and waits until its `/health` answers. The config must name a fixed admin port,
 * since a later command finds the proxy through it.
 */
export async function launchProxy(o: {
  configFile: string;
  logFile: string;
  timeoutMs?: number;
}): Promise<LaunchedProxy> {
  const config = loadConfig(proxyConfig, o.configFile);
  const { host, port } = splitAddress(config.adminListen);
  if (port === 0) {
    throw new Error(`lb config ${o.configFile}: adminListen must name a port, got ${config.adminListen}`);
  }

  mkdirSync(dirname(o.logFile), { recursive: true });
  const out = openSync(o.logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', mainFile, '--config', o.configFile], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();

  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));

  const adminUrl = `http://${host}:${port}`;
  const deadline = Date.now() + (o.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`load balancer ${exited}: ${lastLine(o.logFile)}`);
    try {
      const res = await fetch(`${adminUrl}/health`, { signal: AbortSignal.timeout(500) });
      const status = (await (await fetch(`${adminUrl}/status`)).json()) as { pid: number };
      // Another process may hold the admin port; only our child counts as started.
      if (res.ok && status.pid === child.pid) {
        const pidFile = config.pidFile ?? defaultPidFile(config.routeFile);
        return { pid: child.pid!, adminUrl, pidFile };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`load balancer did not become healthy at ${adminUrl}: ${lastLine(o.logFile)}`);
}

/**
 * Sends SIGTERM to the proxy named in `pidFile` and waits for it to exit (it drains first);
 * SIGKILL once `timeoutMs` has passed. Returns false when no proxy was running.
 */
export async function stopProxy(pidFile: string, timeoutMs = 35_000): Promise<boolean> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }

  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    return lines[lines.length - 1] ?? '';
  } catch {
    return '';
  }
}
