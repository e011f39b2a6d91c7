/** One check of a smoke run: passed, failed, or skipped because its feature is absent. */
export interface SmokeStep {
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly ms: number;
  readonly detail?: string;
}

/** The result of one smoke run, bound to the deployment it proved. */
export interface SmokeRecord {
  readonly deploymentId: string;
  readonly passed: boolean;
  readonly at: string;
  readonly steps: readonly SmokeStep[];
}

/** Thrown by a check to be reported as skipped rather than failed. */
export class Skip extends Error {}

/**
 * Runs named checks in order; the first failure stops the run and the rest are reported as
 * failed-not-run, so a record never shows a later check as passed after an earlier failure.
 */
export class StepRunner {
  readonly steps: SmokeStep[] = [];
  private failed = false;

  constructor(private readonly onStep: (step: SmokeStep) => void = () => {}) {}

  async run(name: string, check: () => Promise<string | void>): Promise<void> {
    if (this.failed) {
      this.record({ name, status: 'failed', ms: 0, detail: 'not run: an earlier step failed' });
      return;
    }

    const started = performance.now();
    try {
      const detail = await check();
      this.record({ name, status: 'passed', ms: elapsed(started), ...(detail ? { detail } : {}) });
    } catch (err) {
      const detail = (err as Error).message.split('\n')[0].slice(0, 300);
      if (err instanceof Skip) {
        this.record({ name, status: 'skipped', ms: elapsed(started), detail });
      } else {
        this.failed = true;
        this.record({ name, status: 'failed', ms: elapsed(started), detail });
      }
    }
  }

  get passed(): boolean {
    return !this.failed;
  }

  private record(step: SmokeStep): void {
    this.steps.push(step);
    this.onStep(step);
  }
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
