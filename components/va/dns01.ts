import { createHash } from 'node:crypto';
import type { ValidationContext } from './context.js';
import { excerpt, failure } from './problems.js';

/** Values quoted in an `unauthorized` detail; the rest are counted. */
const quotedValues = 3;

/** RFC 8555 §8.4: the TXT value of a dns-01 answer, base64url(SHA-256(keyAuthorization)). */
export function dns01Digest(keyAuthorization: string): string {
  return createHash('sha256').update(keyAuthorization).digest('base64url');
}

/**
 * RFC 8555 §8.4: looks up TXT at `_acme-challenge.<name>` and succeeds when any record equals
 * the digest. For a wildcard authorization `name` is already the base domain (§7.1.3).
 * Throws `dns` for NXDOMAIN and resolver failures, `unauthorized` when no record matches.
 */
export async function validateDns01(
  ctx: ValidationContext,
  name: string,
  keyAuthorization: string,
): Promise<void> {
  const query = `_acme-challenge.${name}`;
  ctx.records.push({ hostname: name });
  const values = await ctx.resolver.lookupTxt(query, ctx.signal);

  const expected = dns01Digest(keyAuthorization);
  if (values.includes(expected)) return;

  if (values.length === 0) throw failure('unauthorized', `no TXT record found at ${query}`);
  const shown = values.slice(0, quotedValues).map((v) => excerpt(v));
  const more = values.length > quotedValues ? ` and ${values.length - quotedValues} more` : '';
  throw failure(
    'unauthorized',
    `no TXT record at ${query} matches this challenge: expected ${expected}, ` +
      `found ${shown.join(', ')}${more}`,
  );
}
