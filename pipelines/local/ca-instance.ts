import { join } from 'node:path';
import { components, writeConfigs, type ColorSettings, type Component } from './configs.js';
import type { CaPorts } from './ports.js';
import { spawnComponent, stopProcess, waitHealthy, type ComponentProcess } from './processes.js';
import type { SharedState } from './shared-state.js';

/**
 * Components of one tier start together. Only the CA calls a peer while it starts (the SA, for
 * its first refresh pass); the others call peers only for a request, and requests arrive once
 * the whole color is healthy. So two tiers suffice, and each one costs a start-up wait.
 */
export const componentTiers: Component[][] = [
  ['sa', 'ct-log'],
  ['ca', 'va', 'ocsp-responder', 'publisher', 'ra', 'wfe'],
];

export interface CaInstanceOptions {
  readonly shared: SharedState;
  readonly ports: CaPorts;
  readonly settings: ColorSettings;
  /** Where this instance keeps its configs and logs. */
  readonly dir: string;
}

/** One running CA: every component as its own process on loopback. */
export interface CaInstance {
  readonly directoryUrl: string;
  readonly ports: CaPorts;
  readonly processes: ReadonlyMap<Component, ComponentProcess>;
  readonly logDir: string;
  stop(): Promise<void>;
}

/** Writes configs, starts the components in dependency order, and waits for each to be healthy. */
export async function startCaInstance(o: CaInstanceOptions): Promise<CaInstance> {
  const files = writeConfigs(join(o.dir, 'config'), o.shared, o.ports, o.settings);
  const logDir = join(o.dir, 'logs');
  const processes = new Map<Component, ComponentProcess>();

  const stop = async () => {
    for (const c of [...components].reverse()) {
      const p = processes.get(c);
      if (p) await stopProcess(p);
    }
  };

  try {
    for (const tier of componentTiers) {
      const started = tier.map((c) => {
        const p = spawnComponent(c, files[c], logDir);
        processes.set(c, p);
        return waitHealthy(p, o.ports.admin[c]);
      });
      await Promise.all(started);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    directoryUrl: `https://127.0.0.1:${o.ports.acme}/directory`,
    ports: o.ports,
    processes,
    logDir,
    stop,
  };
}
