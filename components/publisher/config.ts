import { z } from 'zod';
import { allowList, commonConfig, listenAddress } from '../lib/config.js';

/** One CT log the publisher submits to, and the key its SCTs must verify against. */
export const ctLogEndpoint = z
  .strictObject({
    /** Used in logs, metrics and error details. */
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a log name of [A-Za-z0-9._-]'),
    /** Base URL; `/ct/v1/add-pre-chain` is appended (RFC 6962 §4). */
    url: z
      .url()
      .refine((v) => /^https?:\/\//.test(v), 'expected an http:// or https:// URL')
      .transform((v) => v.replace(/\/+$/, '')),
    /** The log's public key: PEM, or base64 DER SubjectPublicKeyInfo. */
    publicKey: z.string().min(1).optional(),
    /** Or a file holding it as PEM. */
    publicKeyFile: z.string().min(1).optional(),
  })
  .refine(
    (log) => (log.publicKey === undefined) !== (log.publicKeyFile === undefined),
    'expected exactly one of publicKey and publicKeyFile',
  );
export type CtLogEndpointConfig = z.output<typeof ctLogEndpoint>;

/** The publisher's config file. */
export const publisherConfig = z
  .strictObject({
    ...commonConfig,
    listen: listenAddress,
    logs: z.array(ctLogEndpoint).min(1, 'expected at least one CT log'),
    /** Per log, for the whole submission. @default 5000 */
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Fewer valid SCTs than this and nothing is issued. @default 1 */
    minimumScts: z.number().int().min(1).default(1),
    allowedClients: allowList.optional(),
  })
  .superRefine((config, ctx) => {
    if (config.minimumScts > config.logs.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['minimumScts'],
        message:
          `expected at most the number of logs (${config.logs.length}), ` +
          `got ${config.minimumScts}`,
      });
    }
    const names = config.logs.map((l) => l.name);
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i) {
        const path = ['logs', i, 'name'];
        ctx.addIssue({ code: 'custom', path, message: `duplicate log name ${name}` });
      }
    });
  });
export type PublisherConfig = z.output<typeof publisherConfig>;
