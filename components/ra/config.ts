import { z } from 'zod';
import { allowList, commonConfig, listenAddress, peerConfig } from '../lib/config.js';

/** The RA's config file. New fields get defaults so an older release's file still loads. */
export const raConfig = z.strictObject({
  ...commonConfig,
  listen: listenAddress,
  sa: peerConfig,
  va: peerConfig,
  ca: peerConfig,
  /**
   * The publisher, which gets SCTs from the CT logs. Required: no certificate is issued without
   * SCTs. Its timeoutMs must cover the publisher's own per-log timeout.
   */
  publisher: peerConfig,
  /** Domains (and everything under them) that certificates may be issued for. */
  allowedDomains: z.array(z.string().min(1)).min(1),
  maxIdentifiersPerOrder: z.number().int().min(1).max(1000).default(100),
  /** Profile names the CA offers; the CA's config holds their lifetimes. */
  profiles: z.array(z.string().min(1)).min(1).default(['default', 'shortlived']),
  defaultProfile: z.string().min(1).default('default'),
  /** Lifetime of a new order and its pending authorizations. @default 7 days */
  pendingAuthorizationSeconds: z.number().int().positive().default(7 * 86_400),
  /** How long a valid authorization is reused for new orders. @default 30 days */
  validAuthorizationSeconds: z.number().int().positive().default(30 * 86_400),
  allowedClients: allowList.optional(),
});
export type RaConfig = z.output<typeof raConfig>;
