import type { Problem } from '../lib/acme.js';
import { CaError, toCaError, type ErrorKind } from '../lib/errors.js';

/**
 * The one place where internal error kinds become RFC 7807 problem documents (RFC 8555 §6.7).
 * Internal details never reach a client.
 */

const acmeNamespace = 'urn:ietf:params:acme:error:';

interface ProblemSpec {
  readonly type: string;
  readonly status: number;
}

const registry: Record<ErrorKind, ProblemSpec> = {
  malformed: { type: 'malformed', status: 400 },
  unauthorized: { type: 'unauthorized', status: 403 },
  notFound: { type: 'malformed', status: 404 },
  rejectedIdentifier: { type: 'rejectedIdentifier', status: 400 },
  unsupportedIdentifier: { type: 'unsupportedIdentifier', status: 400 },
  invalidContact: { type: 'invalidContact', status: 400 },
  unsupportedContact: { type: 'unsupportedContact', status: 400 },
  invalidProfile: { type: 'invalidProfile', status: 400 },
  alreadyReplaced: { type: 'alreadyReplaced', status: 409 },
  badCSR: { type: 'badCSR', status: 400 },
  badPublicKey: { type: 'badPublicKey', status: 400 },
  badSignatureAlgorithm: { type: 'badSignatureAlgorithm', status: 400 },
  badNonce: { type: 'badNonce', status: 400 },
  accountDoesNotExist: { type: 'accountDoesNotExist', status: 400 },
  orderNotReady: { type: 'orderNotReady', status: 403 },
  externalAccountRequired: { type: 'externalAccountRequired', status: 400 },
  alreadyRevoked: { type: 'alreadyRevoked', status: 400 },
  badRevocationReason: { type: 'badRevocationReason', status: 400 },
  conflict: { type: 'malformed', status: 409 },
  duplicate: { type: 'malformed', status: 409 },
  incorrectResponse: { type: 'incorrectResponse', status: 400 },
  connection: { type: 'connection', status: 400 },
  dns: { type: 'dns', status: 400 },
  tls: { type: 'tls', status: 400 },
  caa: { type: 'caa', status: 403 },
  rateLimited: { type: 'rateLimited', status: 429 },
  unavailable: { type: 'serverInternal', status: 503 },
  internal: { type: 'serverInternal', status: 500 },
};

export interface ProblemResponse {
  readonly status: number;
  readonly body: Problem;
}

/** Turns anything thrown into the problem document a client sees. */
export function problemFor(err: unknown): ProblemResponse {
  const caErr = toCaError(err);
  const spec = registry[caErr.kind];
  const detail =
    caErr.kind === 'internal'
      ? 'the server could not complete the request'
      : caErr.kind === 'unavailable'
        ? 'a service behind the ACME endpoint is unavailable; try again shortly'
        : caErr.detail;

  return {
    status: spec.status,
    body: { type: acmeNamespace + spec.type, detail, status: spec.status },
  };
}

/** A problem type URN from its short name. */
export function problemType(short: string): string {
  return acmeNamespace + short;
}

export { CaError };
