import { z } from 'zod';
import { allowList, commonConfig, listenAddress, peerConfig } from '../lib/config.js';

/** The ACME front end's config file. */
export const wfeConfig = z.strictObject({
  ...commonConfig,
  /** Where the HTTPS ACME API listens. */
  listen: listenAddress,
  /** The ACME endpoint's own TLS certificate and key (PEM). */
  https: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }),
  ra: peerConfig,
  sa: peerConfig,
  /** The shared nonce key (32+ random bytes), the same file for both colors. */
  nonceKeyFile: z.string().min(1),
  /** Chains served with each issuer's certificates: issuer first, up to the root. */
  issuers: z.array(z.strictObject({ id: z.string().min(1), chainFile: z.string().min(1) })).min(1),
  directory: z
    .strictObject({
      termsOfService: z.url().optional(),
      website: z.url().optional(),
      caaIdentities: z.array(z.string().min(1)).default([]),
      /** Profile name to description, shown in the directory's meta. */
      profiles: z.record(z.string(), z.string()).default({}),
    })
    .default({ caaIdentities: [], profiles: {} }),
  /** RFC 8555 §7.3.4: refuse new accounts without an external account binding. */
  externalAccountRequired: z.boolean().default(false),
  /** Operator-issued EAB keys: key id to a base64url HMAC key. */
  eabKeys: z.record(z.string().min(1), z.string().regex(/^[A-Za-z0-9_-]{16,}$/)).default({}),
  /** Largest request body accepted. @default 65536 bytes */
  maxBodyBytes: z.number().int().min(1024).max(1_048_576).default(65_536),
  /** Retry-After sent while an order or authorization is still being worked on. */
  retryAfterSeconds: z.number().int().min(1).max(3600).default(1),
  /** Orders listed per page of an account's orders list. */
  ordersPerPage: z.number().int().min(1).max(1000).default(100),
  /** Retry-After sent with renewal information (RFC 9773 §4.3). @default 6 hours */
  renewalInfoRetryAfterSeconds: z.number().int().positive().default(21_600),
  allowedClients: allowList.optional(),
});
export type WfeConfig = z.output<typeof wfeConfig>;
