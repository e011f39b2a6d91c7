import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy } from '../pipelines/deploy.js';
import { flipColor } from '../pipelines/flip-color.js';
import { repoRoot } from '../pipelines/local/processes.js';
import { buildRelease } from '../pipelines/release.js';
import { smokeTest } from '../pipelines/smoke.js';
import { teardown } from '../pipelines/teardown.js';
import { LocalTarget } from '../pipelines/targets/local.js';
import { lockFixedPorts } from '../test/helpers/fixed-ports.js';
import { ocspGetUrl, publicLoad } from '../test/helpers/public-load.js';

export interface PipelineFigures {
  buildSeconds: number;
  steps: Record<'deploy' | 'smoke' | 'flip' | 'teardown', number>;
  cycleSeconds: number;
  served: number;
  failed: number;
  errors: string[];
}

const seconds = async <T>(work: () => Promise<T>) => {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
};

/**
 * One color's whole cycle on the local target with a release already built and the other
 * color active: deploy + smoke + flip + teardown of the old color, while clients keep
 * requesting the directory, nonces, OCSP and the CRL through the public ports.
 */
export async function benchPipeline(): Promise<PipelineFigures> {
  // The local target's ports are fixed; a test on them may be running.
  const ports = await lockFixedPorts();
  const stateDir = mkdtempSync(join(tmpdir(), 'bluegreen-bench-'));
  const target = new LocalTarget({ stateDir, settings: { allowedDomains: ['test'], logLevel: 'warn' } });

  try {
    let version = '';
    const buildSeconds = await seconds(async () => {
      version = (await buildRelease({ repoRoot, outDir: target.releasesDir })).version;
    });
    await deploy({ target, color: 'blue', release: version });
    await smokeTest({ target, color: 'blue' });
    await flipColor({ target, to: 'blue' });

    const shared = await target.sharedState();
    const agent = new Agent({ ca: readFileSync(target.trustBundle(), 'utf8'), keepAlive: true });
    const issuerDer = new X509Certificate(readFileSync(shared.issuers[0].certFile)).raw;
    const load = publicLoad(
      target.publicEndpoints(),
      agent,
      ocspGetUrl(target.publicEndpoints().ocsp[0], issuerDer, '7f'.repeat(16)),
    );

    const steps = {
      deploy: await seconds(() => deploy({ target, color: 'green', release: version })),
      smoke: await seconds(async () => {
        const record = await smokeTest({ target, color: 'green' });
        if (!record.passed) throw new Error('green failed its smoke test');
      }),
      flip: await seconds(() => flipColor({ target, to: 'green' })),
      teardown: await seconds(() => teardown({ target, color: 'blue', drainSeconds: 5 })),
    };
    const counts = await load.stop();
    agent.destroy();

    return {
      buildSeconds,
      steps,
      cycleSeconds: Object.values(steps).reduce((a, b) => a + b, 0),
      served: counts.ok,
      failed: counts.failed,
      errors: counts.errors,
    };
  } finally {
    for (const c of ['blue', 'green'] as const) await target.destroy(c).catch(() => undefined);
    await target.stopLoadBalancer().catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
    ports.release();
  }
}
