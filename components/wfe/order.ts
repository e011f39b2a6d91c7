import { CaError } from '../lib/errors.js';
import type { OrderRecord } from '../lib/records.js';
import { authenticate, payloadObject, requirePostAsGet } from './auth.js';
import { paths, type WfeContext } from './context.js';
import type { AcmeRequest, AcmeResponse } from './http.js';
import { orderObject } from './wire.js';

function orderResponse(ctx: WfeContext, req: AcmeRequest, order: OrderRecord, status = 200): AcmeResponse {
  const headers: Record<string, string> = { location: req.base + paths.order(order.id) };
  // RFC 8555 §7.4: tell a polling client when to come back while work is under way.
  if (order.status === 'processing' || order.status === 'pending') {
    headers['retry-after'] = String(ctx.config.retryAfterSeconds);
  }
  return { status, body: orderObject(req.base, order), headers };
}

function optionalString(payload: Record<string, unknown>, field: string): string | null {
  const v = payload[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new CaError('malformed', `${field} must be a string`);
  return v;
}

/** RFC 8555 §7.4: a new order for the given identifiers. */
export async function newOrder(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  const payload = payloadObject(auth);

  const order = await ctx.ra.newOrder({
    accountId: auth.account!.id,
    identifiers: payload.identifiers as never,
    notBefore: optionalString(payload, 'notBefore'),
    notAfter: optionalString(payload, 'notAfter'),
    profile: optionalString(payload, 'profile'),
    replaces: optionalString(payload, 'replaces'),
  });
  return orderResponse(ctx, req, order, 201);
}

/** The order at the request's path, if the signer owns it. */
async function ownedOrder(ctx: WfeContext, req: AcmeRequest, accountId: string): Promise<OrderRecord> {
  const order = await ctx.sa.getOrder({ id: req.params.id });
  if (order.accountId !== accountId) {
    throw new CaError('unauthorized', 'the order belongs to another account');
  }
  return order;
}

/** POST-as-GET of an order (RFC 8555 §7.1.3). */
export async function getOrder(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  requirePostAsGet(auth);
  return orderResponse(ctx, req, await ownedOrder(ctx, req, auth.account!.id));
}

/** RFC 8555 §7.4: submit the CSR. */
export async function finalize(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  const payload = payloadObject(auth);
  const order = await ownedOrder(ctx, req, auth.account!.id);

  const csr = payload.csr;
  if (typeof csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(csr)) {
    throw new CaError('malformed', 'csr must be a base64url-encoded DER CSR');
  }
  const finalized = await ctx.ra.finalizeOrder({
    accountId: auth.account!.id,
    orderId: order.id,
    csr: Buffer.from(csr, 'base64url').toString('base64'),
  });
  return orderResponse(ctx, req, finalized);
}
