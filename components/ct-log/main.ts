import { createMetrics, startAdminServer } from '../lib/admin.js';
import { audit, createLogger } from '../lib/log.js';
import { runComponent } from '../lib/run.js';
import { ctLogConfig } from './config.js';
import { loadLogKey } from './log-key.js';
import { startCtLogServer } from './server.js';
import { EntryStore } from './store.js';

/** `ct-log --config <file>`: the RFC 6962 log stub, signing with the shared log key. */
await runComponent('ct-log', ctLogConfig, async (config) => {
  const log = createLogger('ct-log', { level: config.log.level });
  const key = await loadLogKey(config.logKeyFile);
  audit(log, 'signing key loaded', { logId: key.logId.toString('base64') });

  const metrics = createMetrics('ct-log');
  const store = await EntryStore.open(config.dataFile, log);
  const server = await startCtLogServer({
    listen: config.listen,
    key,
    store,
    maxBodyBytes: config.maxBodyBytes,
    log,
    metrics,
  });
  const admin = await startAdminServer(config.adminListen, metrics, () => store.open);
  const { treeSize } = await store.head();
  log.info({ port: server.port, adminPort: admin.port, treeSize }, 'ct-log started');

  return {
    async stop() {
      await server.close();
      await admin.close();
      await store.close();
      log.info('ct-log stopped');
      log.flush();
    },
  };
});
