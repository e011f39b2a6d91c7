import { z } from 'zod';
import { commonConfig, listenAddress, peerConfig } from '../lib/config.js';

/**
 * The OCSP responder's config file. It holds no keys: it serves what the CA signed and the SA
 * stores, plus the issuers' certificates. New fields get defaults so older files still load.
 */

/** An issuer the responder answers for, at `/ocsp/<id>`, `/crl/<id>.crl`, `/issuer/<id>.der`. */
export const responderIssuerConfig = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]{1,64}$/, 'expected an issuer id of [a-z0-9-]'),
  /** The issuer's certificate, PEM: its Name and key make the CertID it answers for. */
  certFile: z.string().min(1),
});
export type ResponderIssuerConfig = z.output<typeof responderIssuerConfig>;

export const ocspResponderConfig = z
  .strictObject({
    ...commonConfig,
    /** Plain HTTP, as CA/B BR §7.1.2.7.7 has AIA and CRL URLs. */
    listen: listenAddress,
    sa: peerConfig,
    issuers: z.array(responderIssuerConfig).min(1, 'expected at least one issuer'),
    /**
     * How long a response or CRL read from the SA is served from memory before it is read
     * again. A revocation shows at the responder within this many seconds.
     * @default 1
     */
    cacheSeconds: z.number().int().min(0).max(300).default(1),
    /**
     * Upper bound of `Cache-Control: max-age` on OCSP responses and CRLs; never past their
     * nextUpdate (RFC 5019 §6.2). An HTTP cache in front may serve a response this long after
     * a revocation.
     * @default 60
     */
    maxAgeSeconds: z.number().int().min(0).max(86_400).default(60),
    /**
     * Largest POST body or GET request accepted; larger ones get 413 (or 414 for a GET).
     * RFC 5019 requests are about 100 bytes; a signed one with certificates a few KiB.
     * @default 8192
     */
    maxRequestBytes: z.number().int().min(256).max(65_536).default(8192),
    /**
     * Responses kept in memory at most; past this the oldest are dropped.
     * @default 100000
     */
    cacheEntries: z.number().int().min(100).max(10_000_000).default(100_000),
  })
  .superRefine((config, ctx) => {
    const ids = config.issuers.map((i) => i.id);
    ids.forEach((id, index) => {
      if (ids.indexOf(id) !== index) {
        const path = ['issuers', index, 'id'];
        ctx.addIssue({ code: 'custom', path, message: `duplicate issuer id ${id}` });
      }
    });
  });
export type OcspResponderConfig = z.output<typeof ocspResponderConfig>;
