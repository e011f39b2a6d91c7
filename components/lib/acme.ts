/**
 * RFC 8555 objects as they travel on the wire. Storage records (records.ts) extend these with
 * server state. Status unions derive from one `as const` list each.
 */

export const accountStatuses = ['valid', 'deactivated', 'revoked'] as const;
export type AccountStatus = (typeof accountStatuses)[number];

export const orderStatuses = ['pending', 'ready', 'processing', 'valid', 'invalid'] as const;
export type OrderStatus = (typeof orderStatuses)[number];

export const authorizationStatuses = [
  'pending',
  'valid',
  'invalid',
  'deactivated',
  'expired',
  'revoked',
] as const;
export type AuthorizationStatus = (typeof authorizationStatuses)[number];

export const challengeStatuses = ['pending', 'processing', 'valid', 'invalid'] as const;
export type ChallengeStatus = (typeof challengeStatuses)[number];

export const challengeTypes = ['http-01', 'dns-01', 'tls-alpn-01'] as const;
export type ChallengeType = (typeof challengeTypes)[number];

/** RFC 8555 §9.7: only `dns` identifiers are issued for here. */
export interface Identifier {
  readonly type: 'dns';
  readonly value: string;
}

/** RFC 7807 problem document with ACME's subproblems (RFC 8555 §6.7.1). */
export interface Problem {
  readonly type: string;
  readonly detail: string;
  readonly status?: number;
  readonly identifier?: Identifier;
  readonly subproblems?: readonly Problem[];
}

export interface DirectoryMeta {
  readonly termsOfService?: string;
  readonly website?: string;
  readonly caaIdentities?: readonly string[];
  readonly externalAccountRequired?: boolean;
  /** Profile name to a human description (draft-aaron-acme-profiles). */
  readonly profiles?: Readonly<Record<string, string>>;
}

export interface Directory {
  readonly newNonce: string;
  readonly newAccount: string;
  readonly newOrder: string;
  readonly revokeCert: string;
  readonly keyChange: string;
  readonly renewalInfo?: string;
  readonly meta?: DirectoryMeta;
}

export interface Account {
  readonly status: AccountStatus;
  readonly contact?: readonly string[];
  readonly termsOfServiceAgreed?: boolean;
  readonly orders: string;
}

export interface Order {
  readonly status: OrderStatus;
  readonly expires: string;
  readonly identifiers: readonly Identifier[];
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly error?: Problem;
  readonly authorizations: readonly string[];
  readonly finalize: string;
  readonly certificate?: string;
  readonly profile?: string;
  readonly replaces?: string;
}

export interface Challenge {
  readonly type: ChallengeType;
  readonly url: string;
  readonly status: ChallengeStatus;
  readonly token: string;
  readonly validated?: string;
  readonly error?: Problem;
}

export interface Authorization {
  readonly identifier: Identifier;
  readonly status: AuthorizationStatus;
  readonly expires: string;
  readonly challenges: readonly Challenge[];
  readonly wildcard?: boolean;
}

/** RFC 9773 renewal information. */
export interface RenewalInfo {
  readonly suggestedWindow: { readonly start: string; readonly end: string };
  readonly explanationURL?: string;
}

/** RFC 5280 §5.3.1 revocation reasons that RFC 8555 §7.6 lets a client ask for. */
export const revocationReasons = {
  unspecified: 0,
  keyCompromise: 1,
  superseded: 4,
  cessationOfOperation: 5,
} as const;
