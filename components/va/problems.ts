import type { Identifier, Problem } from '../lib/acme.js';
import { CaError, type ErrorKind } from '../lib/errors.js';

/**
 * The problem kinds a validation can end with. Validators throw a CaError of one of these
 * kinds; the VA turns it into the Problem of its result, because a failed validation is an
 * answer to the RA, not an RPC error (components/va/service.ts).
 */
export const validationKinds = [
  'malformed',
  'unauthorized',
  'incorrectResponse',
  'connection',
  'dns',
  'tls',
] as const satisfies readonly ErrorKind[];

export type ValidationKind = (typeof validationKinds)[number];

/** RFC 8555 §6.7: unauthorized is 403; the rest of these are the client's fault, 400. */
const statusOf = (kind: string) => (kind === 'unauthorized' ? 403 : 400);

/** Throws nothing: builds the RFC 8555 §6.7 problem for a failed validation. */
export function validationProblem(err: unknown, identifier?: Identifier): Problem {
  if (err instanceof CaError && (validationKinds as readonly string[]).includes(err.kind)) {
    return {
      type: `urn:ietf:params:acme:error:${err.kind}`,
      detail: err.detail,
      status: statusOf(err.kind),
      ...(identifier ? { identifier } : {}),
    };
  }

  // Anything else is our bug, not the applicant's: say so without leaking internals.
  return {
    type: 'urn:ietf:params:acme:error:serverInternal',
    detail: 'the validation authority failed while validating; try again later',
    status: 500,
    ...(identifier ? { identifier } : {}),
  };
}

/** A CaError of a validation kind; the detail reaches the applicant as is. */
export function failure(kind: ValidationKind, detail: string, cause?: unknown): CaError {
  return new CaError(kind, detail, cause === undefined ? undefined : { cause });
}

/**
 * Quotes what an applicant's server sent, for a problem detail: at most `max` characters,
 * control and non-ASCII characters escaped, so hostile bytes cannot forge log lines or HTML.
 */
export function excerpt(value: string, max = 64): string {
  const quoted = JSON.stringify(value.slice(0, max)).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return value.length > max ? `${quoted} (truncated)` : quoted;
}
