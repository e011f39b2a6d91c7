import { isIP } from 'node:net';
import { z } from 'zod';
import { allowList, commonConfig, listenAddress } from '../lib/config.js';

const port = z.number().int().min(1, 'expected a port from 1 to 65535').max(65535);

/** `ipv4:port` or `[ipv6]:port`; node:dns takes only addresses, never names, as servers. */
const resolverAddress = z.string().refine((value) => {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(value);
  if (!match) return false;
  const ip = match[1] ?? match[2];
  const portNumber = Number(match[3]);
  return isIP(ip) !== 0 && portNumber >= 1 && portNumber <= 65535;
}, 'expected ipv4:port or [ipv6]:port, for example 127.0.0.1:8053');

/**
 * A DNS suffix whose names resolve to a fixed address instead of through DNS, so that a client
 * on the same machine can be validated (`{suffix: 'test', address: '127.0.0.1'}`).
 */
export const hostOverride = z.strictObject({
  suffix: z
    .string()
    .regex(
      /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/,
      'expected a DNS suffix such as test or example.test',
    )
    .transform((s) => s.toLowerCase()),
  address: z.string().refine((a) => isIP(a) !== 0, 'expected an IPv4 or IPv6 address'),
});
export type HostOverride = z.output<typeof hostOverride>;

/** The validation authority's config file. */
export const vaConfigSchema = z.strictObject({
  ...commonConfig,
  /** Where the RPC server listens for the RA. */
  listen: listenAddress,
  /** RFC 8555 §8.3 names port 80; a single-machine setup uses another one, such as 5002. */
  httpPort: port.default(80),
  /** RFC 8737 §3 names port 443; a single-machine setup uses another one, such as 5001. */
  tlsAlpnPort: port.default(443),
  /** The recursive resolver for A, AAAA and TXT; absent means the system's resolvers. */
  dnsResolver: resolverAddress.optional(),
  /** Checked before DNS for A/AAAA; the longest matching suffix wins. */
  hostOverrides: z.array(hostOverride).default([]),
  /** Upper bound on one whole validation: every look-up, redirect and handshake. */
  timeoutMs: z.number().int().positive().max(120_000).default(10_000),
  /** Sent on http-01 requests so that applicants can tell the CA's fetches apart. */
  userAgent: z.string().min(1).max(200).default('bluegreen-ca-va'),
  /** Client identities per RPC service name; absent means only the RA. */
  allowedClients: allowList.optional(),
});

export type VaConfig = z.output<typeof vaConfigSchema>;

/** The parts of the config that validation itself needs. */
export type ValidationSettings = Pick<
  VaConfig,
  'httpPort' | 'tlsAlpnPort' | 'dnsResolver' | 'hostOverrides' | 'timeoutMs' | 'userAgent'
>;
