import { CaError, toCaError } from '../lib/errors.js';
import type { AccountRecord } from '../lib/records.js';
import type { WfeContext } from './context.js';
import type { AcmeRequest } from './http.js';
import { checkUrl, parseJws, publicJwk, verifyWithJwk, type ParsedJws } from './jws.js';

/** A request whose JWS verified: its payload, and who signed it. */
export interface Authenticated {
  readonly jws: ParsedJws;
  /** The parsed JSON payload; null for POST-as-GET (empty payload). */
  readonly payload: unknown;
  /** Set when signed with `kid`. */
  readonly account: AccountRecord | null;
  /** The key that verified the signature (public JWK). */
  readonly jwk: Record<string, unknown>;
}

export type KeyMode = 'kid' | 'jwk';

/**
 * RFC 8555 §6.2–6.5: content type, JWS structure, `url`, nonce, then the signature with the
 * account key (`kid`) or the embedded key (`jwk`), as the resource demands.
 */
export async function authenticate(
  ctx: WfeContext,
  req: AcmeRequest,
  mode: KeyMode | 'either',
): Promise<Authenticated> {
  if (req.contentType.split(';')[0].trim().toLowerCase() !== 'application/jose+json') {
    throw new CaError('malformed', 'Content-Type must be application/jose+json');
  }

  const jws = parseJws(req.body, ctx.config.maxBodyBytes);
  checkUrl(jws, req.url);
  ctx.nonces.redeem(String(jws.protected.nonce));

  const usesKid = typeof jws.protected.kid === 'string';
  if (mode === 'kid' && !usesKid) {
    throw new CaError('malformed', 'this request must be signed with the account key id (kid)');
  }
  if (mode === 'jwk' && usesKid) {
    throw new CaError('malformed', 'this request must carry the public key (jwk), not a kid');
  }

  let account: AccountRecord | null = null;
  let jwk: Record<string, unknown>;
  if (usesKid) {
    account = await accountFromKid(ctx, String(jws.protected.kid));
    jwk = account.jwk;
  } else {
    jwk = { ...publicJwk(jws.protected.jwk) };
  }
  await verifyWithJwk(jws, jwk);

  return { jws, payload: parsePayload(jws.payload), account, jwk };
}

/** The account named by a `kid` URL; it must exist and be valid. */
async function accountFromKid(ctx: WfeContext, kid: string): Promise<AccountRecord> {
  const match = /\/acme\/acct\/([A-Za-z0-9_-]{1,64})$/.exec(kid);
  if (!match) throw new CaError('malformed', 'kid is not an account URL of this server');

  let account: AccountRecord;
  try {
    account = await ctx.sa.getAccount({ id: match[1] });
  } catch (err) {
    if (toCaError(err).kind === 'notFound') {
      throw new CaError('accountDoesNotExist', 'no account exists at the kid URL');
    }
    throw err;
  }

  if (account.status !== 'valid') {
    throw new CaError('unauthorized', `account is ${account.status}`);
  }
  return account;
}

function parsePayload(payload: Buffer): unknown {
  if (payload.length === 0) return null;
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    throw new CaError('malformed', 'JWS payload is not JSON');
  }
}

/** The payload as an object, or `malformed` naming what was expected. */
export function payloadObject(auth: Authenticated): Record<string, unknown> {
  const p = auth.payload;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new CaError('malformed', 'JWS payload must be a JSON object');
  }
  return p as Record<string, unknown>;
}

/** POST-as-GET (RFC 8555 §6.3): the payload must be empty. */
export function requirePostAsGet(auth: Authenticated): void {
  if (auth.payload !== null) {
    throw new CaError('malformed', 'POST-as-GET requests must have an empty payload');
  }
}
