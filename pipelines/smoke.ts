import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedScts, verifySct } from '../components/lib/sct.js';
import { runSmoke } from '../smoke-tests/run.js';
import type { SmokeRecord, SmokeStep } from '../smoke-tests/steps.js';
import { readRelease } from './release.js';
import { PipelineError, runOperation } from './operation.js';
import { otherColor, type Color, type PipelineTarget } from './targets/types.js';

export interface SmokeOptions {
  target: PipelineTarget;
  /** @default the idle color when it runs, else the active one */
  color?: Color;
  onStep?: (step: SmokeStep) => void;
}

/** Runs the smoke checks against one color's preview endpoints and records the verdict. */
export async function smokeTest(o: SmokeOptions): Promise<SmokeRecord & { color: Color }> {
  return runOperation(o.target.stateDir, { op: 'smoke' }, async (ctx) => {
    const active = ctx.state.active;
    const idle = active ? otherColor(active) : 'blue';
    const color = o.color ?? (ctx.state.colors[idle].state === 'running' ? idle : active ?? 'blue');
    const deployment = ctx.state.colors[color];
    if (deployment.state !== 'running' || !deployment.release || !deployment.deploymentId) {
      throw new PipelineError(`${color} is ${deployment.state}, not running`, `deploy to ${color} first`);
    }
    if (ctx.state.operation) ctx.state.operation.color = color;

    // A release built elsewhere (a cloud deploy names an image) is taken to have every part:
    // a check whose feature is missing then fails rather than passes.
    const releaseDir = join(o.target.releasesDir, deployment.release);
    const components = existsSync(join(releaseDir, 'release.json'))
      ? readRelease(releaseDir).components
      : null;
    const has = (c: string) => components === null || components.includes(c);
    const setup = await o.target.smokeSetup(color);
    const preview = o.target.previewEndpoints(color);
    const logKey = setup.ctLogPublicKeyPem;

    const record = await runSmoke({
      directoryUrl: preview.acme,
      trustBundlePem: readFileSync(o.target.trustBundle(), 'utf8'),
      httpPort: setup.httpPort,
      deploymentId: deployment.deploymentId,
      domain: setup.domain,
      previewHttpBase: preview.httpBase,
      features: { scts: has('publisher'), ocsp: has('ocsp-responder'), crl: has('ocsp-responder') },
      verifyScts: async (leaf, issuer) => {
        const scts = embeddedScts(leaf);
        if (scts.length === 0) throw new Error('the certificate carries no SCTs');
        scts.forEach((sct, i) => {
          if (!verifySct(sct, { finalCertDer: leaf, issuerCertDer: issuer, logPublicKey: logKey })) {
            throw new Error(`SCT ${i + 1} does not verify against the CT log key`);
          }
        });
        return scts.length;
      },
      onStep: o.onStep,
    });

    ctx.state.colors[color] = {
      ...deployment,
      smoke: { passed: record.passed, at: record.at, deploymentId: record.deploymentId },
    };
    ctx.save('recorded');
    return { ...record, color };
  });
}
