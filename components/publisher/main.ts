import { readFileSync } from 'node:fs';
import { createMetrics, startAdminServer } from '../lib/admin.js';
import { ConfigError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { startRpcServer } from '../lib/rpc.js';
import { runComponent } from '../lib/run.js';
import { publicKeyFrom } from '../lib/sct.js';
import { publisherConfig, type CtLogEndpointConfig } from './config.js';
import { PublisherImpl, type CtLogTarget } from './publisher.js';
import { publisherService } from './service.js';

/** `publisher --config <file>`: serves submitPrecertificate to the RA over mTLS. */
await runComponent('publisher', publisherConfig, async (config) => {
  const log = createLogger('publisher', { level: config.log.level });
  const metrics = createMetrics('publisher');
  const publisher = new PublisherImpl({
    logs: config.logs.map(loadTarget),
    timeoutMs: config.timeoutMs,
    minimumScts: config.minimumScts,
    log,
    metrics,
  });

  const rpc = await startRpcServer({
    address: config.listen,
    tls: config.tls,
    log,
    metrics,
    services: [
      {
        def: publisherService,
        impl: publisher,
        allowedClients: config.allowedClients?.[publisherService.name],
      },
    ],
  });
  const admin = await startAdminServer(config.adminListen, metrics);
  const logs = config.logs.map((l) => l.name);
  const { minimumScts } = config;
  log.info({ port: rpc.port, adminPort: admin.port, logs, minimumScts }, 'publisher started');

  return {
    async stop() {
      await rpc.close();
      await admin.close();
      log.info('publisher stopped');
      log.flush();
    },
  };
});

/** A log's key from its config entry; an unusable key is a config error naming the entry. */
function loadTarget(entry: CtLogEndpointConfig, index: number): CtLogTarget {
  const field = entry.publicKeyFile ? 'publicKeyFile' : 'publicKey';
  try {
    const text = entry.publicKeyFile ? readFileSync(entry.publicKeyFile, 'utf8') : entry.publicKey!;
    // Inline keys may be PEM or bare base64 DER SubjectPublicKeyInfo.
    const pem = text.includes('-----BEGIN');
    const key = publicKeyFrom(pem ? text : Buffer.from(text, 'base64'));
    return { name: entry.name, url: entry.url, publicKey: key };
  } catch (err) {
    throw new ConfigError(`logs.${index}.${field}: ${(err as Error).message}`);
  }
}
