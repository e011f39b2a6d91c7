import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { PipelineError, runOperation } from './operation.js';
import { step } from './progress.js';
import { otherColor, type Color, type PipelineTarget } from './targets/types.js';

export interface FlipOptions {
  target: PipelineTarget;
  /** @default the color that is not active */
  to?: Color;
  /** How old a passing smoke record may be. @default 3600 s */
  smokeWindowSeconds?: number;
}

/**
 * Sends new traffic to a color that passed its smoke tests for its current deployment, then
 * checks the public endpoint and flips back by itself when that check fails.
 */
export async function flipColor(o: FlipOptions): Promise<{ active: Color; previous: Color | null }> {
  const windowMs = (o.smokeWindowSeconds ?? 3600) * 1000;
  const current = await o.target.activeColor();
  const to = o.to ?? (current ? otherColor(current) : 'blue');

  return runOperation(o.target.stateDir, { op: 'flip', from: current, to }, async (ctx) => {
    const d = ctx.state.colors[to];
    if (d.state !== 'running') {
      throw new PipelineError(`${to} is ${d.state}, not running`, `deploy and smoke-test ${to} first`);
    }
    const smoke = d.smoke;
    if (!smoke || !smoke.passed || smoke.deploymentId !== d.deploymentId) {
      throw new PipelineError(
        `${to} has no passing smoke record for deployment ${d.deploymentId}`,
        `run: npm run smoke -- --color ${to}`,
      );
    }
    if (Date.now() - Date.parse(smoke.at) > windowMs) {
      throw new PipelineError(
        `${to}'s smoke record is from ${smoke.at}, older than ${windowMs / 1000} s`,
        `run: npm run smoke -- --color ${to}`,
      );
    }
    if (current === to) {
      // Already serving `to`: a run killed after the switch is finished by recording it.
      if (ctx.state.active !== to) {
        ctx.state.previous = ctx.state.active;
        ctx.state.active = to;
        ctx.save('recorded');
      }
      return { active: to, previous: ctx.state.previous };
    }

    ctx.save('switching');
    await step(`flip to ${to}`, () => o.target.flip(to));
    ctx.save('checking');

    const problem = await publicCheck(o.target);
    if (problem) {
      // Back to where traffic went before, which is nowhere on a first flip.
      await o.target.flip(current);
      ctx.save('flipped back');
      throw new PipelineError(`after the flip the public endpoint failed: ${problem}`, 'flipped back; see the color logs');
    }

    ctx.state.previous = current;
    ctx.state.active = to;
    ctx.save('done');
    return { active: to, previous: current };
  });
}

/** GETs the public directory through the load balancer; returns a problem or null. */
async function publicCheck(target: PipelineTarget): Promise<string | null> {
  const ca = readFileSync(target.trustBundle(), 'utf8');
  const url = target.publicEndpoints().acme;
  for (let attempt = 0; attempt < 3; attempt++) {
    const status = await new Promise<number | string>((resolve) => {
      const req = request(url, { ca, timeout: 5000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => resolve(err.message));
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.end();
    });
    if (status === 200) return null;
    if (attempt === 2) return `GET ${url} gave ${status}`;
    await new Promise((r) => setTimeout(r, 500));
  }
  return null;
}
