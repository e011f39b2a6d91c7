import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/** Formats the first problems zod found as `path: message` pairs, one line. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** Parses a value against a schema, throwing a ConfigError that names the bad field. */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, source: string) {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(`config ${source}: ${describeIssues(result.error.issues)}`);
  }
  return result.data as z.output<S>;
}

/** Reads a JSON config file and validates it at start-up. */
export function loadConfig<S extends z.ZodType>(schema: S, file: string): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config ${file}: cannot read: ${(err as Error).message}`);
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${file}: not valid JSON: ${(err as Error).message}`);
  }

  return parseConfig(schema, value, file);
}

/** `host:port` with a port in range; hosts are names or IPv4 literals. */
export const listenAddress = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'expected host:port, for example 127.0.0.1:9090')
  .refine((v) => {
    const port = Number(v.slice(v.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be between 0 and 65535');

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** The mTLS material every component holds. */
export const tlsConfig = z.strictObject({
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  caFile: z.string().min(1),
});
export type TlsConfig = z.output<typeof tlsConfig>;

/** Where a component reaches one RPC peer, and the identity that peer must prove. */
export const peerConfig = z.strictObject({
  address: listenAddress,
  serverName: z.string().min(1),
  timeoutMs: z.number().int().positive().default(10_000),
});
export type PeerConfig = z.output<typeof peerConfig>;

/** Client identities allowed per RPC service; absent services use the component's default. */
export const allowList = z.record(z.string(), z.array(z.string().min(1)));

export const logConfig = z
  .strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .default({ level: 'info' });

/** Parts shared by every component's config. */
export const commonConfig = {
  tls: tlsConfig,
  adminListen: listenAddress,
  log: logConfig,
};
