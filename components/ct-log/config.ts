import { z } from 'zod';
import { listenAddress, logConfig } from '../lib/config.js';

/**
 * The CT log stub's config file. It serves plain HTTP (RFC 6962 §4), so unlike the gRPC
 * components it holds no mTLS material.
 */
export const ctLogConfig = z.strictObject({
  /** Where the RFC 6962 HTTP API listens. */
  listen: listenAddress,
  adminListen: listenAddress,
  log: logConfig,
  /** The log's ECDSA P-256 private key, PKCS#8 PEM, mode 0600; shared by every color. */
  logKeyFile: z.string().min(1),
  /** The append-only entry file; shared by every color so that both sign one tree. */
  dataFile: z.string().min(1),
  /**
   * Largest request body accepted; larger ones get 413. A chain of a few certificates is a
   * few kilobytes. @default 262144 (256 KiB)
   */
  maxBodyBytes: z
    .number()
    .int()
    .min(1024, 'expected at least 1024 bytes')
    .max(16 * 1024 * 1024, 'expected at most 16 MiB')
    .default(256 * 1024),
});
export type CtLogConfig = z.output<typeof ctLogConfig>;
