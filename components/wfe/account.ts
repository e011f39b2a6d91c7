import { CaError, toCaError } from '../lib/errors.js';
import type { AccountRecord } from '../lib/records.js';
import { authenticate, payloadObject, requirePostAsGet } from './auth.js';
import { paths, type WfeContext } from './context.js';
import { verifyExternalAccountBinding } from './eab.js';
import type { AcmeRequest, AcmeResponse } from './http.js';
import { checkUrl, jwkThumbprint, parseJws, publicJwk, verifyWithJwk } from './jws.js';
import { accountObject } from './wire.js';

function accountResponse(req: AcmeRequest, account: AccountRecord, status: number): AcmeResponse {
  return {
    status,
    body: accountObject(req.base, account),
    headers: { location: req.base + paths.account(account.id) },
  };
}

async function accountByKey(ctx: WfeContext, jwk: Record<string, unknown>) {
  try {
    return await ctx.sa.getAccountByKey({ keyThumbprint: await jwkThumbprint(jwk) });
  } catch (err) {
    if (toCaError(err).kind === 'notFound') return null;
    throw err;
  }
}

/** RFC 8555 §7.3: new account, or the existing one for this key. */
export async function newAccount(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'jwk');
  const payload = payloadObject(auth);

  const existing = await accountByKey(ctx, auth.jwk);
  if (existing) return accountResponse(req, existing, 200);
  if (payload.onlyReturnExisting === true) {
    throw new CaError('accountDoesNotExist', 'no account exists for this key');
  }

  if (ctx.config.directory.termsOfService && payload.termsOfServiceAgreed !== true) {
    throw new CaError('malformed', 'termsOfServiceAgreed must be true to create an account');
  }

  let eabKeyId: string | null = null;
  if (payload.externalAccountBinding !== undefined) {
    eabKeyId = await verifyExternalAccountBinding(
      payload.externalAccountBinding,
      auth.jwk,
      req.url,
      ctx.eabKeys,
    );
  } else if (ctx.config.externalAccountRequired) {
    throw new CaError('externalAccountRequired', 'this server requires an external account binding');
  }

  try {
    const account = await ctx.ra.newAccount({
      jwk: auth.jwk,
      contact: (payload.contact as string[] | undefined) ?? [],
      termsOfServiceAgreed: payload.termsOfServiceAgreed === true,
      eabKeyId,
    });
    return accountResponse(req, account, 201);
  } catch (err) {
    // Two requests with one key raced; the loser answers with the winner's account.
    if (toCaError(err).kind !== 'duplicate') throw err;
    const winner = await accountByKey(ctx, auth.jwk);
    if (!winner) throw err;
    return accountResponse(req, winner, 200);
  }
}

/** RFC 8555 §7.3.2, §7.3.6: fetch, update contacts, or deactivate the account. */
export async function account(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  const self = auth.account!;
  if (self.id !== req.params.id) {
    throw new CaError('unauthorized', 'the request is signed by another account');
  }
  if (auth.payload === null) return accountResponse(req, self, 200);

  const payload = payloadObject(auth);
  if (payload.status !== undefined) {
    if (payload.status !== 'deactivated') {
      throw new CaError('malformed', `status may only be set to "deactivated", got ${JSON.stringify(payload.status)}`);
    }
    return accountResponse(req, await ctx.ra.deactivateAccount({ accountId: self.id }), 200);
  }
  if (payload.contact !== undefined) {
    const updated = await ctx.ra.updateAccount({
      accountId: self.id,
      contact: payload.contact as string[],
    });
    return accountResponse(req, updated, 200);
  }
  return accountResponse(req, self, 200);
}

/** RFC 8555 §7.1.2.1: the account's orders, newest first, paged with Link rel="next". */
export async function accountOrders(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  requirePostAsGet(auth);
  if (auth.account!.id !== req.params.id) {
    throw new CaError('unauthorized', 'the request is signed by another account');
  }

  const cursor = new URL(req.url).searchParams.get('cursor') ?? undefined;
  const page = await ctx.sa.getOrdersForAccount({
    accountId: auth.account!.id,
    cursor,
    limit: ctx.config.ordersPerPage,
  });
  const list = req.base + paths.accountOrders(auth.account!.id);
  return {
    status: 200,
    body: { orders: page.orderIds.map((id) => req.base + paths.order(id)) },
    headers: page.next
      ? { link: `<${list}?cursor=${encodeURIComponent(page.next)}>;rel="next"` }
      : {},
  };
}

/** RFC 8555 §7.3.5: roll the account key, proven by an inner JWS signed with the new key. */
export async function keyChange(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  const self = auth.account!;

  const inner = parseJws(Buffer.from(JSON.stringify(payloadObject(auth))), ctx.config.maxBodyBytes, {
    nonce: 'forbidden',
  });
  if (typeof inner.protected.jwk !== 'object' || inner.protected.kid !== undefined) {
    throw new CaError('malformed', 'the inner JWS must carry the new key as jwk');
  }
  checkUrl(inner, req.url);
  const newJwk: Record<string, unknown> = { ...publicJwk(inner.protected.jwk) };
  await verifyWithJwk(inner, newJwk);

  let body: { account?: unknown; oldKey?: unknown };
  try {
    body = JSON.parse(inner.payload.toString('utf8'));
  } catch {
    throw new CaError('malformed', 'the inner JWS payload is not JSON');
  }
  if (typeof body.account !== 'string' || !body.account.endsWith(paths.account(self.id))) {
    throw new CaError('unauthorized', 'the inner payload names another account');
  }
  if (
    typeof body.oldKey !== 'object' ||
    body.oldKey === null ||
    (await jwkThumbprint(body.oldKey as Record<string, unknown>)) !== self.keyThumbprint
  ) {
    throw new CaError('unauthorized', 'oldKey does not match the account key');
  }

  const holder = await accountByKey(ctx, newJwk);
  if (holder) {
    return {
      status: 409,
      body: { type: 'urn:ietf:params:acme:error:malformed', detail: 'the new key is already in use', status: 409 },
      headers: { location: req.base + paths.account(holder.id) },
    };
  }
  const updated = await ctx.ra.changeAccountKey({ accountId: self.id, jwk: newJwk });
  return accountResponse(req, updated, 200);
}
