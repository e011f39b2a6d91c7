import { PipelineError, runOperation } from './operation.js';
import { step } from './progress.js';
import { otherColor, type Color, type PipelineTarget } from './targets/types.js';

export interface TeardownOptions {
  target: PipelineTarget;
  /** @default the color that is not active */
  color?: Color;
  /** How long connections the old color still holds may finish. @default 5 s */
  drainSeconds?: number;
}

/** Stops and removes a color that no longer serves; refuses the active color. */
export async function teardown(o: TeardownOptions): Promise<{ color: Color }> {
  const active = await o.target.activeColor();
  const color = o.color ?? (active ? otherColor(active) : 'green');

  return runOperation(o.target.stateDir, { op: 'teardown', color }, async (ctx) => {
    if (color === active || color === ctx.state.active) {
      throw new PipelineError(`${color} is the active color`, 'flip to the other color before tearing this one down');
    }

    if (ctx.state.colors[color].state !== 'absent') {
      ctx.state.colors[color] = { ...ctx.state.colors[color], state: 'stopping' };
      ctx.save('draining');
    }
    await step(`drain ${color}`, () => o.target.drain(color, (o.drainSeconds ?? 5) * 1000));
    await step(`stop ${color}`, () => o.target.destroy(color));
    ctx.state.colors[color] = { state: 'absent' };
    ctx.save('removed');
    return { color };
  });
}
