import type { Account, Authorization, Challenge, Order } from '../lib/acme.js';
import type {
  AccountRecord,
  AuthorizationRecord,
  ChallengeRecord,
  OrderRecord,
} from '../lib/records.js';
import { paths } from './context.js';

/** Storage records to the RFC 8555 objects a client sees, with absolute URLs. */

export function accountObject(base: string, a: AccountRecord): Account {
  return {
    status: a.status,
    contact: a.contact,
    termsOfServiceAgreed: a.termsOfServiceAgreed,
    orders: base + paths.accountOrders(a.id),
  };
}

export function orderObject(base: string, o: OrderRecord): Order {
  return {
    status: o.status,
    expires: o.expires,
    identifiers: o.identifiers,
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
    ...(o.notAfter ? { notAfter: o.notAfter } : {}),
    ...(o.error ? { error: o.error } : {}),
    authorizations: o.authorizationIds.map((id) => base + paths.authorization(id)),
    finalize: base + paths.finalize(o.id),
    ...(o.certificateSerial ? { certificate: base + paths.certificate(o.certificateSerial) } : {}),
    profile: o.profile,
    ...(o.replaces ? { replaces: o.replaces } : {}),
  };
}

export function challengeObject(base: string, authzId: string, c: ChallengeRecord): Challenge {
  return {
    type: c.type,
    url: base + paths.challenge(authzId, c.type),
    status: c.status,
    token: c.token,
    ...(c.validated ? { validated: c.validated } : {}),
    ...(c.error ? { error: c.error } : {}),
  };
}

export function authorizationObject(base: string, a: AuthorizationRecord): Authorization {
  // RFC 8555 §7.1.4: once valid, only the challenge that succeeded is listed.
  const challenges =
    a.status === 'valid' ? a.challenges.filter((c) => c.status === 'valid') : a.challenges;
  return {
    identifier: a.identifier,
    status: a.status,
    expires: a.expires,
    challenges: challenges.map((c) => challengeObject(base, a.id, c)),
    ...(a.wildcard ? { wildcard: true } : {}),
  };
}
