import { parseArgs } from 'node:util';
import { openKeyStore } from '../keys/index.js';
import type { KeyStore } from '../keys/types.js';
import { startAdminServer, createMetrics } from '../lib/admin.js';
import { loadConfig } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { audit, createLogger, type Logger } from '../lib/log.js';
import { createRpcClient, startRpcServer } from '../lib/rpc.js';
import { saService } from '../sa/service.js';
import { CertificateAuthorityImpl } from './ca.js';
import { caConfig, type CaConfig } from './config.js';
import { loadIssuer, type Issuer } from './issuer.js';
import { createCaRevocation } from './revocation.js';
import { caService } from './service.js';

/** `ca --config <file>`: loads the config, the issuers' keys, and serves the CA over mTLS. */

function configFileFrom(argv: string[]): string {
  let values: { config?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string' } } }));
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; usage: ca --config <file>`);
  }
  if (!values.config) throw new ConfigError('missing --config <file>');
  return values.config;
}

/** A configured issuer that cannot be used is a config error: the process cannot start. */
async function loadIssuers(config: CaConfig, keyStore: KeyStore, log: Logger): Promise<Issuer[]> {
  const issuers: Issuer[] = [];
  for (const description of config.issuers) {
    let issuer: Issuer;
    try {
      issuer = await loadIssuer(description, keyStore);
    } catch (err) {
      throw new ConfigError(`issuers: ${description.id}: ${(err as Error).message}`);
    }

    audit(log, 'signing key loaded', {
      issuer: issuer.id,
      keyId: issuer.key.id,
      algorithm: issuer.key.algorithm,
      active: issuer.id === config.activeIssuer,
    });
    issuers.push(issuer);
  }
  return issuers;
}

async function main(argv: string[]): Promise<void> {
  const config = loadConfig(caConfig, configFileFrom(argv));
  const log = createLogger('ca', { level: config.log.level });

  const keyStore = openKeyStore(config.keyStore);
  const issuers = await loadIssuers(config, keyStore, log);

  const metrics = createMetrics('ca');
  const sa = createRpcClient(saService, config.sa, config.tls);
  const ca = new CertificateAuthorityImpl({
    issuers,
    activeIssuerId: config.activeIssuer,
    profiles: config.profiles,
    defaultProfile: config.defaultProfile,
    sa,
    log,
    metrics,
  });

  const revocation = createCaRevocation({
    config: config.revocation,
    issuers,
    sa,
    ...(config.allowedClients ? { allowedClients: config.allowedClients } : {}),
    log,
    metrics,
  });

  const allowedClients = config.allowedClients?.[caService.name];
  const rpc = await startRpcServer({
    address: config.listen,
    tls: config.tls,
    log,
    metrics,
    services: [
      { def: caService, impl: ca, ...(allowedClients ? { allowedClients } : {}) },
      ...revocation.services,
    ],
  });
  const admin = await startAdminServer(config.adminListen, metrics);
  revocation.start();
  log.info({ port: rpc.port, adminPort: admin.port, issuer: config.activeIssuer }, 'ca started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'ca stopping');

    await revocation.stop();
    await rpc.close();
    await admin.close();
    sa.close();
    await keyStore.close();

    log.info({}, 'ca stopped');
    log.flush();
    process.exitCode = 0;
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // One line an operator can act on; a bad config is exit 2, anything else exit 1.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ca: ${message.split('\n')[0]}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
