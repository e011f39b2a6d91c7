import {
  beginOperation,
  endOperation,
  readState,
  withLock,
  writeState,
  type DeploymentState,
  type OperationStart,
} from './local/state.js';

/** Raised for an operation the state does not allow; the CLI prints it as one line. */
export class PipelineError extends Error {
  constructor(
    message: string,
    readonly todo: string,
  ) {
    super(message);
    this.name = 'PipelineError';
  }
}

export interface OperationContext {
  state: DeploymentState;
  /** Writes the state now, with `step` recorded in the in-progress marker. */
  save(step?: string): void;
}

/**
 * Runs one verb under the state lock with an in-progress marker, so a concurrent run is
 * refused and a run killed half-way leaves a state that `status` reports truthfully.
 */
export async function runOperation<T>(
  stateDir: string,
  marker: OperationStart,
  fn: (ctx: OperationContext) => Promise<T>,
): Promise<T> {
  const { value } = await withLock(stateDir, marker.op, async () => {
    let state = readState(stateDir);
    beginOperation(state, marker);
    state = writeState(stateDir, state);

    const ctx: OperationContext = {
      state,
      save(step) {
        if (step && ctx.state.operation) ctx.state.operation.step = step;
        ctx.state = writeState(stateDir, ctx.state);
        if (step && step === process.env.BLUEGREEN_PAUSE_AT_STEP) pauseForCrashTest();
      },
    };

    try {
      const result = await fn(ctx);
      endOperation(ctx.state, 'succeeded');
      ctx.save();
      return result;
    } catch (err) {
      endOperation(ctx.state, 'failed', (err as Error).message.split('\n')[0]);
      ctx.save();
      throw err;
    }
  });
  return value;
}

/**
 * Crash tests set BLUEGREEN_PAUSE_AT_STEP to a step name so that a run stops there for a while
 * and can be killed at a known point; nothing else reads it.
 */
function pauseForCrashTest(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30_000);
}
