import { promises as dns } from 'node:dns';
import type { HostOverride } from './config.js';
import { failure } from './problems.js';

export interface ResolverOptions {
  /** `ipv4:port` or `[ipv6]:port`; absent means the system's resolvers. */
  dnsResolver?: string;
  hostOverrides?: readonly HostOverride[];
  /** Bound on one look-up when the caller's signal does not end it first. */
  timeoutMs: number;
}

/** A name in the form DNS look-ups and URLs use: lower case, no trailing dot. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * True for a host name made of LDH labels (RFC 1123 §2.1) whose last label is not all digits,
 * so that an IPv4 literal, a URL fragment or a path never passes for a name.
 */
export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  const ldh = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
  return labels.every((l) => ldh.test(l)) && !/^\d+$/.test(labels[labels.length - 1]);
}

const reasons: Record<string, string> = {
  ENOTFOUND: 'NXDOMAIN',
  ESERVFAIL: 'SERVFAIL',
  EREFUSED: 'REFUSED',
  EFORMERR: 'FORMERR',
  ETIMEOUT: 'query timed out',
  ECANCELLED: 'query timed out',
  ECONNREFUSED: 'resolver refused the connection',
  EBADRESP: 'malformed response',
};

function dnsFailure(err: unknown, rrtype: string, name: string) {
  const code = (err as NodeJS.ErrnoException)?.code ?? 'unknown error';
  const reason = reasons[code] ?? code;
  return failure('dns', `DNS problem: ${reason} looking up ${rrtype} for ${name}`, err);
}

/**
 * Look-ups for validation, through the configured resolver. Each call gets its own node:dns
 * Resolver so that cancelling one validation's queries leaves the others running.
 */
export class ValidationResolver {
  readonly #options: ResolverOptions;
  readonly #overrides: HostOverride[];

  constructor(options: ResolverOptions) {
    this.#options = options;

    // Longest suffix first, so that `a.example.test` can differ from the rest of `test`.
    this.#overrides = [...(options.hostOverrides ?? [])]
      .map((o) => ({ suffix: normalizeName(o.suffix), address: o.address }))
      .sort((a, b) => b.suffix.length - a.suffix.length);
  }

  /** The override address for a name equal to or under a configured suffix, if any. */
  overrideFor(name: string): string | undefined {
    const host = normalizeName(name);
    const match = this.#overrides.find((o) => host === o.suffix || host.endsWith(`.${o.suffix}`));
    return match?.address;
  }

  /**
   * Addresses for a host: the override if one matches, else A records then AAAA records.
   * Throws a `dns` CaError when there is none.
   */
  async resolveAddresses(name: string, signal: AbortSignal): Promise<string[]> {
    const host = normalizeName(name);
    const override = this.overrideFor(host);
    if (override) return [override];
    if (signal.aborted) throw dnsFailure({ code: 'ECANCELLED' }, 'A', host);

    const [a, aaaa] = await this.#query(signal, (r) =>
      Promise.allSettled([r.resolve4(host), r.resolve6(host)]),
    );
    const addresses = [
      ...(a.status === 'fulfilled' ? a.value : []),
      ...(aaaa.status === 'fulfilled' ? aaaa.value : []),
    ];
    if (addresses.length > 0) return addresses;

    // Report the A failure first; ENODATA on both means the name exists without addresses.
    for (const [result, rrtype] of [[a, 'A'], [aaaa, 'AAAA']] as const) {
      if (result.status === 'rejected' && result.reason?.code !== 'ENODATA') {
        throw dnsFailure(result.reason, rrtype, host);
      }
    }
    throw failure('dns', `DNS problem: no A or AAAA records found for ${host}`);
  }

  /**
   * The TXT records at a name, each record's strings joined (RFC 7208 §3.3 style). An empty
   * list means the name exists without TXT records; NXDOMAIN and server failures throw `dns`.
   */
  async lookupTxt(name: string, signal: AbortSignal): Promise<string[]> {
    const host = normalizeName(name);
    if (signal.aborted) throw dnsFailure({ code: 'ECANCELLED' }, 'TXT', host);
    try {
      const records = await this.#query(signal, (r) => r.resolveTxt(host));
      return records.map((chunks) => chunks.join(''));
    } catch (err) {
      if ((err as NodeJS.ErrnoException)?.code === 'ENODATA') return [];
      throw dnsFailure(err, 'TXT', host);
    }
  }

  async #query<T>(signal: AbortSignal, run: (resolver: dns.Resolver) => Promise<T>): Promise<T> {
    // Two tries share the budget: a lost UDP datagram gets one more chance.
    const resolver = new dns.Resolver({
      timeout: Math.max(50, Math.ceil(this.#options.timeoutMs / 3)),
      tries: 2,
    });
    if (this.#options.dnsResolver) resolver.setServers([this.#options.dnsResolver]);

    const cancel = () => resolver.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      return await run(resolver);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }
}
