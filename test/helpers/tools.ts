import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { Test } from 'tap';

/**
 * Whether an outside tool is installed. When it is not, the test is skipped with the reason,
 * except under CI=true, where .ci/run installs it and its absence is a failure.
 */
export function requireTool(t: Test, tool: string, install: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    const reason = `${tool} is not installed (${install})`;
    if (process.env.CI === 'true') t.fail(`${reason}; CI must have it`);
    else t.pass(reason, { skip: reason });
    return false;
  }
}

const run = promisify(execFile);

/** Runs a command to its end, whatever its exit code. */
export async function outcome(cmd: string, args: string[]) {
  try {
    const { stdout, stderr } = await run(cmd, args);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Retries `probe` until `done` holds (the OCSP responder caches for a moment) or 15 s pass. */
export async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
