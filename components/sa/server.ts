import { Gauge } from 'prom-client';
import { createMetrics, startAdminServer } from '../lib/admin.js';
import type { Logger } from '../lib/log.js';
import { startRpcServer } from '../lib/rpc.js';
import type { SaConfig } from './config.js';
import { openDatabase, redactUrl, type SaDatabase } from './db.js';
import { migrationState } from './migrations.js';
import { saService } from './service.js';
import { StorageAuthorityImpl } from './storage.js';

/** How often the health check asks the database for `select 1`. */
const pingIntervalMs = 5_000;

/** A started SA: its bound ports, and how to stop it. */
export interface RunningSa {
  readonly rpcPort: number;
  readonly adminPort: number;
  stop(): Promise<void>;
}

/**
 * Opens the database, refuses to serve a schema older than this release, and starts the RPC
 * server and the admin server (health: the database answered the last ping). Everything it
 * opened is closed again when a later step fails.
 */
export async function startStorageAuthority(config: SaConfig, log: Logger): Promise<RunningSa> {
  const metrics = createMetrics('sa');
  const dbUp = new Gauge({
    name: 'sa_database_up',
    help: '1 when the last database ping succeeded, else 0',
    registers: [metrics],
  });
  const sadb = openDatabase(config.db.url, {
    poolSize: config.db.poolSize,
    onPoolError: (err) => log.warn({ err }, 'database connection failed'),
  });
  const cleanup: (() => Promise<void>)[] = [() => sadb.destroy()];

  try {
    await sadb.ping();
    await requireCurrentSchema(sadb, config.db.url);

    let healthy = true;
    dbUp.set(1);
    const timer = setInterval(() => {
      sadb.ping().then(
        () => {
          if (!healthy) log.info('database reachable again');
          healthy = true;
          dbUp.set(1);
        },
        (err: unknown) => {
          if (healthy) log.error({ err }, 'database unreachable');
          healthy = false;
          dbUp.set(0);
        },
      );
    }, pingIntervalMs);
    timer.unref();
    cleanup.unshift(async () => clearInterval(timer));

    const rpc = await startRpcServer({
      address: config.listen,
      tls: config.tls,
      log,
      metrics,
      services: [
        {
          def: saService,
          impl: new StorageAuthorityImpl(sadb.db),
          allowedClients: config.allowedClients?.[saService.name],
        },
      ],
    });
    // The RPC server stops first so that no call is cut off by the database closing.
    cleanup.unshift(() => rpc.close());

    const admin = await startAdminServer(config.adminListen, metrics, () => healthy);
    cleanup.unshift(() => admin.close());

    log.info(
      { port: rpc.port, adminPort: admin.port, db: sadb.dialect, dbUrl: redactUrl(config.db.url) },
      'sa started',
    );
    return {
      rpcPort: rpc.port,
      adminPort: admin.port,
      async stop() {
        await closeAll(cleanup);
        log.info('sa stopped');
        log.flush();
      },
    };
  } catch (err) {
    await closeAll(cleanup);
    throw err;
  }
}

async function requireCurrentSchema(sadb: SaDatabase, url: string): Promise<void> {
  const { pending } = await migrationState(sadb);
  if (pending.length === 0) return;
  throw new Error(
    `database schema is older than this release (missing ${pending.join(', ')}); ` +
      `run: tsx components/sa/migrate.ts --db ${redactUrl(url)}`,
  );
}

async function closeAll(steps: (() => Promise<void>)[]): Promise<void> {
  for (const step of steps.splice(0)) await step().catch(() => undefined);
}
