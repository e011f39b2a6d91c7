/**
 * The internal error layer. Services throw `CaError`; only the ACME front end turns one into
 * an RFC 7807 problem document (components/wfe/problems.ts). Details of `internal` errors
 * never reach a client.
 */

export const errorKinds = [
  'malformed',
  'unauthorized',
  'notFound',
  'rejectedIdentifier',
  'unsupportedIdentifier',
  'invalidContact',
  'unsupportedContact',
  'invalidProfile',
  'alreadyReplaced',
  'badCSR',
  'badPublicKey',
  'badSignatureAlgorithm',
  'badNonce',
  'accountDoesNotExist',
  'orderNotReady',
  'externalAccountRequired',
  'alreadyRevoked',
  'badRevocationReason',
  'conflict',
  'duplicate',
  'incorrectResponse',
  'connection',
  'dns',
  'tls',
  'caa',
  'rateLimited',
  'unavailable',
  'internal',
] as const;

export type ErrorKind = (typeof errorKinds)[number];

export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === 'string' && (errorKinds as readonly string[]).includes(value);
}

/** An error with a kind that survives an RPC hop and maps to one ACME problem type. */
export class CaError extends Error {
  readonly kind: ErrorKind;
  readonly detail: string;

  constructor(kind: ErrorKind, detail: string, options?: { cause?: unknown }) {
    super(`${kind}: ${detail}`, options);
    this.name = 'CaError';
    this.kind = kind;
    this.detail = detail;
  }
}

export function caError(kind: ErrorKind, detail: string, cause?: unknown): CaError {
  return new CaError(kind, detail, cause === undefined ? undefined : { cause });
}

/** Wraps anything thrown into a CaError; unknown errors become `internal`. */
export function toCaError(err: unknown): CaError {
  if (err instanceof CaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CaError('internal', message, { cause: err });
}

/** A configuration file or field that cannot be used; the message names the field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
