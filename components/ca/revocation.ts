import type { Registry } from 'prom-client';
import type { Logger } from '../lib/log.js';
import type { ServiceBinding } from '../lib/rpc.js';
import type { StorageAuthority } from '../sa/service.js';
import { CrlGeneratorImpl } from './crl.js';
import type { Issuer } from './issuer.js';
import { OcspGeneratorImpl } from './ocsp.js';
import { RevocationRefresher } from './refresher.js';
import type { RevocationConfig } from './revocation-config.js';
import { crlGeneratorService, ocspGeneratorService } from './revocation-service.js';

/**
 * The CA process's revocation side, wired from its config: the OCSP and CRL signing services
 * the RA calls, and the refresher that keeps what they signed fresh.
 */

export interface CaRevocationOptions {
  config: RevocationConfig;
  issuers: readonly Issuer[];
  sa: Pick<
    StorageAuthority,
    | 'getRevokedCertificates'
    | 'getOcspRefreshCandidates'
    | 'storeOcspResponse'
    | 'getCrlRefreshCandidates'
    | 'storeCrl'
  >;
  /** The CA config's `allowedClients`: overrides per service name. */
  allowedClients?: Record<string, string[]>;
  log: Logger;
  metrics?: Registry;
}

export interface CaRevocation {
  /** Bindings to add to the CA's RPC server. */
  readonly services: ServiceBinding[];
  /** Starts the refresher, when the config enables it. */
  start(): void;
  stop(): Promise<void>;
}

export function createCaRevocation(o: CaRevocationOptions): CaRevocation {
  const { config, log, metrics } = o;
  const ocsp = new OcspGeneratorImpl({
    issuers: o.issuers,
    lifetimeSeconds: config.ocspLifetimeSeconds,
    log,
    ...(metrics ? { metrics } : {}),
  });
  const crl = new CrlGeneratorImpl({
    issuers: o.issuers,
    lifetimeSeconds: config.crlLifetimeSeconds,
    sa: o.sa,
    log,
    ...(metrics ? { metrics } : {}),
  });
  const refresher = new RevocationRefresher({
    issuerIds: o.issuers.map((i) => i.id),
    ocsp,
    crl,
    sa: o.sa,
    ocspLifetimeSeconds: config.ocspLifetimeSeconds,
    crlLifetimeSeconds: config.crlLifetimeSeconds,
    refreshFraction: config.refreshFraction,
    intervalSeconds: config.refreshIntervalSeconds,
    batchSize: config.refreshBatchSize,
    log,
    ...(metrics ? { metrics } : {}),
  });

  const binding = (def: ServiceBinding['def'], impl: object): ServiceBinding => {
    const allowed = o.allowedClients?.[def.name];
    return { def, impl, ...(allowed ? { allowedClients: allowed } : {}) };
  };

  return {
    services: [binding(ocspGeneratorService, ocsp), binding(crlGeneratorService, crl)],
    start() {
      if (config.refresherEnabled) refresher.start();
    },
    stop: () => refresher.stop(),
  };
}
