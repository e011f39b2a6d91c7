import { randomBytes } from 'node:crypto';
import { buildRelease } from './release.js';
import { rememberRelease } from './local/state.js';
import { PipelineError, runOperation } from './operation.js';
import { step } from './progress.js';
import { repoRoot } from './local/processes.js';
import { otherColor, type Color, type PipelineTarget } from './targets/types.js';

export interface DeployOptions {
  target: PipelineTarget;
  /** @default the idle color */
  color?: Color;
  /** A built release version; @default build one from this checkout */
  release?: string;
}

export interface DeployResult {
  color: Color;
  release: string;
  deploymentId: string;
}

/** Builds (or takes) a release, applies migrations and starts it in the idle color. */
export async function deploy(o: DeployOptions): Promise<DeployResult> {
  const release =
    o.release ??
    (await step('build release', async () => {
      const built = await buildRelease({ repoRoot, outDir: o.target.releasesDir });
      return built.version;
    }));
  const deploymentId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

  return runOperation(o.target.stateDir, { op: 'deploy', release, deploymentId }, async (ctx) => {
    const active = ctx.state.active;
    const color = o.color ?? (active ? otherColor(active) : 'blue');
    if (color === active) {
      throw new PipelineError(
        `${color} is the active color and serves traffic`,
        `deploy to ${otherColor(color)}, or flip first`,
      );
    }
    if (ctx.state.operation) ctx.state.operation.color = color;

    ctx.state.colors[color] = { state: 'deploying', release, deploymentId };
    ctx.save('starting');
    await step(`deploy ${release} to ${color}`, () =>
      o.target.deploy({ color, release, deploymentId }),
    );

    const preview = o.target.previewEndpoints(color);
    ctx.state.colors[color] = {
      state: 'running',
      release,
      deploymentId,
      preview: { acme: preview.acme, ocsp: [...preview.ocsp] },
      deployedAt: new Date().toISOString(),
    };
    rememberRelease(ctx.state, release);
    ctx.save('running');
    return { color, release, deploymentId };
  });
}
