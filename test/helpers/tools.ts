import { execFileSync } from 'node:child_process';
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
