import { deploy } from './deploy.js';
import { flipColor } from './flip-color.js';
import { readState } from './local/state.js';
import { PipelineError } from './operation.js';
import { smokeTest } from './smoke.js';
import type { Color, PipelineTarget } from './targets/types.js';

/** The release deployed before the one the active color runs. */
export function previousRelease(releases: readonly string[], current: string | undefined): string | null {
  const i = current ? releases.lastIndexOf(current) : -1;
  for (let j = (i === -1 ? releases.length : i) - 1; j >= 0; j--) {
    if (releases[j] !== current) return releases[j];
  }
  return null;
}

/** Redeploys the previous release to the idle color, smoke-tests it and flips to it. */
export async function rollback(o: { target: PipelineTarget }): Promise<{ color: Color; release: string }> {
  const state = readState(o.target.stateDir);
  const current = state.active ? state.colors[state.active].release : undefined;
  const release = previousRelease(state.releases, current);
  if (!release) {
    throw new PipelineError(
      `no release before ${current ?? 'the current one'} is known`,
      'deploy a specific release with: npm run deploy -- --release <version>',
    );
  }

  const deployed = await deploy({ target: o.target, release });
  const smoke = await smokeTest({ target: o.target, color: deployed.color });
  if (!smoke.passed) {
    const failed = smoke.steps.find((s) => s.status === 'failed');
    throw new PipelineError(
      `release ${release} failed its smoke test in ${deployed.color}: ${failed?.name}: ${failed?.detail}`,
      'traffic stays where it was; see the color logs',
    );
  }
  await flipColor({ target: o.target, to: deployed.color });
  return { color: deployed.color, release };
}
