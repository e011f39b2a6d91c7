import type { z } from 'zod';
import { loadConfig } from './config.js';
import { ConfigError } from './errors.js';

/** What a component's start function hands back: how to stop it. */
export interface Running {
  stop(): Promise<void>;
  /**
   * Asks clients to go elsewhere before a stop: public HTTP servers answer with
   * `Connection: close` from now on, so keep-alive clients reconnect through the load balancer.
   */
  drain?(): void;
}

/**
 * The shared entry of every component's main.ts: reads `--config <file>`, validates it, starts
 * the component, and stops it on SIGTERM or SIGINT. A bad config or a failed start prints one
 * line `<component>: <reason>` to stderr and exits 2, never a stack trace.
 */
export async function runComponent<S extends z.ZodType>(
  component: string,
  schema: S,
  start: (config: z.output<S>) => Promise<Running>,
  argv: string[] = process.argv.slice(2),
): Promise<void> {
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : undefined;
  if (!file) fail(component, 'missing --config <file>');

  let running: Running;
  try {
    running = await start(loadConfig(schema, file));
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : `cannot start: ${(err as Error).message}`;
    fail(component, message);
  }

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGUSR2 starts the drain that precedes a teardown (see pipelines/local/supervisor.ts).
  process.on('SIGUSR2', () => running.drain?.());
}

function fail(component: string, message: string): never {
  process.stderr.write(`${component}: ${message.split('\n')[0]}\n`);
  process.exit(2);
}
