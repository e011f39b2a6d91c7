import { readFileSync } from 'node:fs';
import { createMetrics, startAdminServer } from '../lib/admin.js';
import { createLogger } from '../lib/log.js';
import { createRpcClient } from '../lib/rpc.js';
import { runComponent } from '../lib/run.js';
import { raService } from '../ra/service.js';
import { saService } from '../sa/service.js';
import { wfeConfig } from './config.js';
import { NonceService } from './nonce.js';
import { startAcmeServer } from './server.js';

await runComponent('wfe', wfeConfig, async (config) => {
  const log = createLogger('wfe', { level: config.log.level });
  const metrics = createMetrics('wfe');
  const ra = createRpcClient(raService, config.ra, config.tls);
  const sa = createRpcClient(saService, config.sa, config.tls);

  const nonceKey = readFileSync(config.nonceKeyFile);
  if (nonceKey.length < 32) {
    throw new Error(`nonce key ${config.nonceKeyFile} must hold at least 32 bytes`);
  }

  const server = await startAcmeServer(
    {
      ra,
      sa,
      nonces: new NonceService(nonceKey),
      config,
      log,
      chains: new Map(config.issuers.map((i) => [i.id, readFileSync(i.chainFile, 'utf8')])),
      eabKeys: new Map(
        Object.entries(config.eabKeys).map(([kid, key]) => [kid, Buffer.from(key, 'base64url')]),
      ),
    },
    metrics,
  );
  const admin = await startAdminServer(config.adminListen, metrics);
  log.info({ port: server.port, adminPort: admin.port }, 'wfe started');

  return {
    drain: () => server.drain(),
    async stop() {
      await server.close();
      await admin.close();
      ra.close();
      sa.close();
      log.info('wfe stopped');
      log.flush();
    },
  };
});
