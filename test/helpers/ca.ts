import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCaInstance, type CaInstance } from '../../pipelines/local/ca-instance.js';
import type { ColorSettings } from '../../pipelines/local/configs.js';
import { freePort, randomPorts } from '../../pipelines/local/ports.js';
import {
  ensureSharedState,
  type SharedKeyStore,
  type SharedState,
} from '../../pipelines/local/shared-state.js';

export interface TestCa {
  readonly instance: CaInstance;
  readonly shared: SharedState;
  readonly directoryUrl: string;
  /** PEM of every root a client must trust. */
  readonly trustPem: string;
  /** An HTTPS agent that trusts the ACME endpoint. */
  readonly agent: Agent;
  readonly httpPort: number;
  readonly tlsAlpnPort: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/**
 * Starts a whole CA (every component a real process on loopback) in a temporary state
 * directory, with free ports for everything including the VA's http-01 and tls-alpn-01 ports.
 * `keyStore: 'softhsm'` puts the CA's keys on a SoftHSM2 token in the state directory.
 */
export async function startTestCa(
  options: Partial<ColorSettings> & { dbUrl?: string; keyStore?: SharedKeyStore } = {},
): Promise<TestCa> {
  const { keyStore, ...settings } = options;
  const dir = mkdtempSync(join(tmpdir(), 'bluegreen-ca-test-'));
  const validation = { httpPort: await freePort(), tlsAlpnPort: await freePort() };
  const ports = await randomPorts(validation);
  // Certificates name this CA's own responder, so OCSP and CRL URLs in them reach this test.
  const shared = await ensureSharedState({
    stateDir: join(dir, 'state'),
    dbUrl: settings.dbUrl,
    publicHttpBase: `http://127.0.0.1:${ports.publicHttp}`,
    ...(keyStore ? { keyStore } : {}),
  });

  let instance: CaInstance;
  try {
    instance = await startCaInstance({
      shared,
      ports,
      settings: { allowedDomains: ['test'], logLevel: 'info', ...settings },
      dir: join(dir, 'run'),
    });
  } catch (err) {
    process.stderr.write(`test CA failed to start; its files are in ${dir}\n`);
    throw err;
  }

  const trustPem = readFileSync(shared.trustBundle, 'utf8');
  const agent = new Agent({ ca: trustPem, keepAlive: true });
  return {
    instance,
    shared,
    directoryUrl: instance.directoryUrl,
    trustPem,
    agent,
    ...validation,
    dir,
    async stop() {
      agent.destroy();
      await instance.stop();
      if (process.env.KEEP_TEST_STATE !== '1') rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Stops the components of `ca` and starts them again on the same state directory and ports,
 * as a new deploy would: shared.json is read afresh, so a rotated issuer is picked up. The
 * returned CA owns the temporary directory; stop it instead of `ca`.
 */
export async function restartTestCa(
  ca: TestCa,
  settings: Partial<ColorSettings> = {},
): Promise<TestCa> {
  ca.agent.destroy();
  await ca.instance.stop();
  const shared = await ensureSharedState({ stateDir: ca.shared.stateDir });

  let instance: CaInstance;
  try {
    instance = await startCaInstance({
      shared,
      ports: ca.instance.ports,
      settings: { allowedDomains: ['test'], logLevel: 'info', ...settings },
      dir: join(ca.dir, `run-${Date.now()}`),
    });
  } catch (err) {
    process.stderr.write(`test CA failed to restart; its files are in ${ca.dir}\n`);
    throw err;
  }

  const trustPem = readFileSync(shared.trustBundle, 'utf8');
  const agent = new Agent({ ca: trustPem, keepAlive: true });
  return {
    ...ca,
    instance,
    shared,
    directoryUrl: instance.directoryUrl,
    trustPem,
    agent,
    async stop() {
      agent.destroy();
      await instance.stop();
      if (process.env.KEEP_TEST_STATE !== '1') rmSync(ca.dir, { recursive: true, force: true });
    },
  };
}
