import type { AuthorizationStatus, OrderStatus } from '../lib/acme.js';

/**
 * Statuses computed on read, never stored: time moves on without a write, and two releases
 * reading one row must agree on what it means. Times are stored-layout ISO strings
 * (values.ts), so `<` on them is time order.
 */

/** An authorization's status as a client sees it: `expired` once `expires` has passed. */
export function authorizationStatus(
  stored: string,
  expires: string,
  now: string,
): AuthorizationStatus {
  if ((stored === 'pending' || stored === 'valid') && expires <= now) return 'expired';
  return stored as AuthorizationStatus;
}

/** What an order's status depends on, besides the time. */
export interface OrderState {
  expires: string;
  hasError: boolean;
  beganProcessing: boolean;
  hasCertificate: boolean;
  /** Computed statuses of the order's authorizations. */
  authorizationStatuses: readonly AuthorizationStatus[];
}

const failedAuthorization: ReadonlySet<AuthorizationStatus> = new Set([
  'invalid',
  'deactivated',
  'expired',
  'revoked',
]);

/**
 * RFC 8555 §7.1.6. A valid order stays valid whatever happens to its authorizations later:
 * its certificate exists. Otherwise an error, its own expiry or any failed authorization make
 * it invalid; then processing, ready (every authorization valid) or pending.
 */
export function orderStatus(order: OrderState, now: string): OrderStatus {
  if (order.hasCertificate) return 'valid';
  if (order.hasError || order.expires <= now) return 'invalid';
  if (order.authorizationStatuses.some((s) => failedAuthorization.has(s))) return 'invalid';
  if (order.beganProcessing) return 'processing';
  if (order.authorizationStatuses.every((s) => s === 'valid')) return 'ready';
  return 'pending';
}
