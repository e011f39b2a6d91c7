import { accessSync, constants } from 'node:fs';
import { parseArgs } from 'node:util';
import { startAdminServer, createMetrics } from '../lib/admin.js';
import { loadConfig } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { startRpcServer } from '../lib/rpc.js';
import { vaConfigSchema } from './config.js';
import { vaService } from './service.js';
import { ValidationAuthorityImpl } from './va.js';

/** Loads the config, then serves validations over RPC until SIGTERM or SIGINT. */
async function main(argv: string[]): Promise<void> {
  let file: string | undefined;
  try {
    file = parseArgs({ args: argv, options: { config: { type: 'string' } } }).values.config;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; usage: va --config <file>`);
  }
  if (!file) throw new ConfigError('missing --config <file>');
  const config = loadConfig(vaConfigSchema, file);
  checkReadable(file, config.tls);

  const log = createLogger('va', { level: config.log.level });
  const metrics = createMetrics('va');
  const va = new ValidationAuthorityImpl({ settings: config, log, metrics });

  const rpc = await startRpcServer({
    address: config.listen,
    tls: config.tls,
    log,
    metrics,
    services: [
      { def: vaService, impl: va, allowedClients: config.allowedClients?.[vaService.name] },
    ],
  });
  const admin = await startAdminServer(config.adminListen, metrics);
  log.info(
    {
      rpcPort: rpc.port,
      adminPort: admin.port,
      httpPort: config.httpPort,
      tlsAlpnPort: config.tlsAlpnPort,
      dnsResolver: config.dnsResolver ?? 'system',
      hostOverrides: config.hostOverrides.map((o) => o.suffix),
    },
    'va started',
  );

  const stop = async (signal: string) => {
    process.removeAllListeners('SIGTERM');
    process.removeAllListeners('SIGINT');
    log.info({ signal }, 'va stopping');
    await Promise.all([rpc.close(), admin.close()]);
    log.info({}, 'va stopped');
    log.flush();
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/** Missing mTLS files are a config mistake: report them as one, naming the field. */
function checkReadable(file: string, tls: Record<string, string>): void {
  for (const [field, path] of Object.entries(tls)) {
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError(`config ${file}: tls.${field}: cannot read ${path} (${code})`);
    }
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // One line an operator can act on; a bad config exits 2, any other start-up failure 1.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`va: ${message.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
