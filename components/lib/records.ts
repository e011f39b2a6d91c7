import type {
  AccountStatus,
  AuthorizationStatus,
  ChallengeStatus,
  ChallengeType,
  Identifier,
  OrderStatus,
  Problem,
} from './acme.js';

/**
 * What the storage authority keeps, as it crosses RPC. Times are ISO 8601 strings in UTC;
 * ids are opaque strings chosen by the SA; DER values are base64.
 */

export interface AccountRecord {
  readonly id: string;
  /** The account's public key as a JWK (public members only). */
  readonly jwk: Record<string, unknown>;
  /** RFC 7638 SHA-256 thumbprint of `jwk`, base64url; unique across accounts. */
  readonly keyThumbprint: string;
  readonly contact: readonly string[];
  readonly status: AccountStatus;
  readonly termsOfServiceAgreed: boolean;
  /** The operator's external account binding key id, when one was used. */
  readonly eabKeyId: string | null;
  readonly createdAt: string;
}

/** What an http-01, dns-01 or tls-alpn-01 attempt saw (RFC 8555 §8.3, Boulder's records). */
export interface ValidationRecord {
  readonly hostname: string;
  readonly port?: number;
  readonly url?: string;
  readonly addressesResolved?: readonly string[];
  readonly addressUsed?: string;
}

export interface ChallengeRecord {
  readonly type: ChallengeType;
  readonly token: string;
  readonly status: ChallengeStatus;
  readonly validated: string | null;
  readonly error: Problem | null;
  readonly validationRecords: readonly ValidationRecord[];
}

export interface AuthorizationRecord {
  readonly id: string;
  readonly accountId: string;
  /** For a wildcard the value is the base domain and `wildcard` is true (RFC 8555 §7.1.4). */
  readonly identifier: Identifier;
  readonly wildcard: boolean;
  /** `expired` is reported by the SA when `expires` has passed on a pending or valid one. */
  readonly status: AuthorizationStatus;
  readonly expires: string;
  readonly challenges: readonly ChallengeRecord[];
  readonly createdAt: string;
}

export interface OrderRecord {
  readonly id: string;
  readonly accountId: string;
  /** Computed by the SA on every read from the order's authorizations and its own fields. */
  readonly status: OrderStatus;
  readonly identifiers: readonly Identifier[];
  readonly authorizationIds: readonly string[];
  readonly profile: string;
  readonly notBefore: string | null;
  readonly notAfter: string | null;
  readonly expires: string;
  readonly error: Problem | null;
  readonly beganProcessing: boolean;
  /** Hex serial of the issued certificate, once the order is valid. */
  readonly certificateSerial: string | null;
  /** RFC 9773 §5: the ARI certificate id of the certificate this order replaces. */
  readonly replaces: string | null;
  readonly createdAt: string;
}

export const certificateStatuses = ['good', 'revoked'] as const;
export type CertificateStatus = (typeof certificateStatuses)[number];

export interface CertificateRecord {
  /** Lower-case hex of the serial as an unsigned integer, 32 digits for 128 bits. */
  readonly serial: string;
  readonly accountId: string;
  readonly orderId: string | null;
  readonly issuerId: string;
  /** base64 DER of the final certificate. */
  readonly der: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly status: CertificateStatus;
  readonly revokedAt: string | null;
  /** RFC 5280 CRLReason code. */
  readonly revokedReason: number | null;
  readonly createdAt: string;
}

/** The OCSP response the responder serves for one certificate, as the CA signed it. */
export interface OcspResponseRecord {
  readonly serial: string;
  readonly issuerId: string;
  /** What the response says: `good` or `revoked`. */
  readonly status: CertificateStatus;
  /** base64 DER OCSPResponse. */
  readonly der: string;
  readonly thisUpdate: string;
  readonly nextUpdate: string;
  /** When the SA stored it. */
  readonly updatedAt: string;
}

/** The current CRL of one issuer, as the CA signed it. */
export interface CrlRecord {
  readonly issuerId: string;
  /** RFC 5280 §5.2.3 cRLNumber, decimal. */
  readonly number: string;
  /** base64 DER CertificateList. */
  readonly der: string;
  readonly thisUpdate: string;
  readonly nextUpdate: string;
  readonly updatedAt: string;
}

/** A certificate whose OCSP response is missing, old, or says good although it is revoked. */
export interface OcspRefreshCandidate {
  readonly serial: string;
  readonly issuerId: string;
  readonly status: CertificateStatus;
  readonly revokedAt: string | null;
  readonly revokedReason: number | null;
}
