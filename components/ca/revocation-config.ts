import { z } from 'zod';

/**
 * The CA config's `revocation` field: how long OCSP responses and CRLs are valid and how the
 * refresher keeps them fresh. Every field has a default, so a config without it still loads.
 */

const hour = 3_600;
const day = 24 * hour;

/** Between one hour (for tests) and the 10 days CA/B BR §4.9.7 and §4.9.10 allow at most. */
const lifetimeSeconds = z
  .number()
  .int()
  .min(hour, `expected at least ${hour} seconds`)
  .max(10 * day, `expected at most ${10 * day} seconds (10 days)`);

export const revocationConfig = z
  .strictObject({
    /**
     * From an OCSP response's thisUpdate to its nextUpdate.
     * @default 3 days
     */
    ocspLifetimeSeconds: lifetimeSeconds.default(3 * day),
    /**
     * From a CRL's thisUpdate to its nextUpdate.
     * @default 7 days
     */
    crlLifetimeSeconds: lifetimeSeconds.default(7 * day),
    /**
     * A response or CRL is signed again once this fraction of its lifetime has passed. 0.5 of
     * 3 days re-signs OCSP every 36 hours: over 8 hours before nextUpdate and within the 4
     * days CA/B BR §4.9.10 asks for.
     * @default 0.5
     */
    refreshFraction: z.number().gt(0).lt(1).default(0.5),
    /**
     * Whether this CA process runs the refresher. Both colors may; the SA keeps the newer.
     * @default true
     */
    refresherEnabled: z.boolean().default(true),
    /**
     * How often the refresher looks for stale responses and CRLs.
     * @default 60
     */
    refreshIntervalSeconds: z.number().int().min(1).max(day).default(60),
    /**
     * Responses signed per SA page; the refresher pages on until nothing is stale.
     * @default 200
     */
    refreshBatchSize: z.number().int().min(1).max(1000).default(200),
  })
  .prefault({});
export type RevocationConfig = z.output<typeof revocationConfig>;
