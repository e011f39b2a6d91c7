import { crlGeneratorService, ocspGeneratorService } from '../ca/revocation-service.js';
import { caService } from '../ca/service.js';
import { createMetrics, startAdminServer } from '../lib/admin.js';
import { createLogger } from '../lib/log.js';
import { createRpcClient, startRpcServer } from '../lib/rpc.js';
import { runComponent } from '../lib/run.js';
import { publisherService } from '../publisher/service.js';
import { saService } from '../sa/service.js';
import { vaService } from '../va/service.js';
import { raConfig } from './config.js';
import { IssuancePolicy } from './policy.js';
import { RegistrationAuthorityImpl } from './ra.js';
import { raService } from './service.js';

await runComponent('ra', raConfig, async (config) => {
  const log = createLogger('ra', { level: config.log.level });
  const metrics = createMetrics('ra');
  const sa = createRpcClient(saService, config.sa, config.tls);
  const va = createRpcClient(vaService, config.va, config.tls);
  const ca = createRpcClient(caService, config.ca, config.tls);
  const publisher = createRpcClient(publisherService, config.publisher, config.tls);
  const ocsp = createRpcClient(ocspGeneratorService, config.ca, config.tls);
  const crl = createRpcClient(crlGeneratorService, config.ca, config.tls);

  const ra = new RegistrationAuthorityImpl({
    sa,
    va,
    ca,
    publisher,
    ocsp,
    crl,
    policy: new IssuancePolicy({
      allowedDomains: config.allowedDomains,
      maxIdentifiers: config.maxIdentifiersPerOrder,
    }),
    profiles: config.profiles,
    defaultProfile: config.defaultProfile,
    lifetimes: {
      pendingSeconds: config.pendingAuthorizationSeconds,
      validAuthorizationSeconds: config.validAuthorizationSeconds,
    },
    log,
  });

  const rpc = await startRpcServer({
    address: config.listen,
    tls: config.tls,
    log,
    metrics,
    services: [
      { def: raService, impl: ra, allowedClients: config.allowedClients?.[raService.name] },
    ],
  });
  const admin = await startAdminServer(config.adminListen, metrics);
  log.info({ port: rpc.port, adminPort: admin.port }, 'ra started');

  return {
    async stop() {
      await rpc.close();
      await ra.drain();
      await admin.close();
      for (const c of [sa, va, ca, publisher, ocsp, crl]) c.close();
      log.info('ra stopped');
      log.flush();
    },
  };
});
