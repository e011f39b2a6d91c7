import { CaError } from '../lib/errors.js';
import type { AuthorizationRecord } from '../lib/records.js';
import { authenticate, payloadObject } from './auth.js';
import { paths, type WfeContext } from './context.js';
import type { AcmeRequest, AcmeResponse } from './http.js';
import { authorizationObject, challengeObject } from './wire.js';

async function ownedAuthorization(ctx: WfeContext, id: string, accountId: string) {
  const authz = await ctx.sa.getAuthorization({ id });
  if (authz.accountId !== accountId) {
    throw new CaError('unauthorized', 'the authorization belongs to another account');
  }
  return authz;
}

function retryHeaders(ctx: WfeContext, authz: AuthorizationRecord): Record<string, string> {
  const busy = authz.challenges.some((c) => c.status === 'processing');
  return busy ? { 'retry-after': String(ctx.config.retryAfterSeconds) } : {};
}

/** RFC 8555 §7.5: fetch an authorization, or deactivate it (§7.5.2). */
export async function authorization(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  const accountId = auth.account!.id;
  let authz = await ownedAuthorization(ctx, req.params.id, accountId);

  if (auth.payload !== null) {
    const payload = payloadObject(auth);
    if (payload.status !== undefined && payload.status !== 'deactivated') {
      throw new CaError('malformed', 'an authorization may only be updated to "deactivated"');
    }
    if (payload.status === 'deactivated') {
      authz = await ctx.ra.deactivateAuthorization({ accountId, authorizationId: authz.id });
    }
  }
  return { status: 200, body: authorizationObject(req.base, authz), headers: retryHeaders(ctx, authz) };
}

/** RFC 8555 §7.5.1: `{}` starts validation; POST-as-GET reads the challenge. */
export async function challenge(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  const accountId = auth.account!.id;
  let authz = await ownedAuthorization(ctx, req.params.id, accountId);
  if (!authz.challenges.some((c) => c.type === req.params.type)) {
    throw new CaError('notFound', 'no such challenge');
  }

  if (auth.payload !== null) {
    payloadObject(auth);
    authz = await ctx.ra.performValidation({
      accountId,
      authorizationId: authz.id,
      challengeType: req.params.type,
    });
  }

  const c = authz.challenges.find((x) => x.type === req.params.type)!;
  return {
    status: 200,
    body: challengeObject(req.base, authz.id, c),
    headers: {
      link: `<${req.base + paths.authorization(authz.id)}>;rel="up"`,
      ...retryHeaders(ctx, authz),
    },
  };
}
