import type { ChallengeType, Identifier, Problem } from '../lib/acme.js';
import type { ValidationRecord } from '../lib/records.js';
import { defineService } from '../lib/rpc.js';

export interface ValidationRequest {
  identifier: Identifier;
  /** The authorization is for `*.` + identifier.value (dns-01 only). */
  wildcard: boolean;
  challengeType: ChallengeType;
  token: string;
  /** RFC 8555 §8.1: token || '.' || base64url(JWK thumbprint). */
  keyAuthorization: string;
  accountId: string;
  /** For the `authz` log key only. */
  authorizationId?: string;
}

/** A failed validation is a result, not an RPC error: `problem` says why. */
export interface ValidationResult {
  status: 'valid' | 'invalid';
  records: ValidationRecord[];
  problem: Problem | null;
}

/** The validation authority: reaches out to the applicant's server or DNS. */
export interface ValidationAuthority {
  performValidation(req: ValidationRequest): Promise<ValidationResult>;
}

export const vaService = defineService<ValidationAuthority>(
  'bluegreen.va.ValidationAuthority',
  ['performValidation'],
  ['ra'],
);
