import type { Identifier, Problem } from '../lib/acme.js';
import type {
  AccountRecord,
  AuthorizationRecord,
  CertificateRecord,
  CrlRecord,
  OcspRefreshCandidate,
  OcspResponseRecord,
  OrderRecord,
  ValidationRecord,
} from '../lib/records.js';
import { defineService } from '../lib/rpc.js';

/**
 * The storage authority: the only component that talks SQL. Every write that must happen
 * once (a serial, a finalize, a revocation) is a conditional update that fails with `conflict`
 * or `duplicate` for the loser, so two colors sharing one database cannot double-act.
 */
export interface StorageAuthority {
  /** `duplicate` when an account already has this key thumbprint. */
  newAccount(req: {
    jwk: Record<string, unknown>;
    keyThumbprint: string;
    contact: string[];
    termsOfServiceAgreed: boolean;
    eabKeyId: string | null;
  }): Promise<AccountRecord>;
  /** `notFound` when absent. */
  getAccount(req: { id: string }): Promise<AccountRecord>;
  /** `notFound` when no account has this key. */
  getAccountByKey(req: { keyThumbprint: string }): Promise<AccountRecord>;
  updateAccount(req: {
    id: string;
    contact?: string[];
    status?: 'valid' | 'deactivated' | 'revoked';
  }): Promise<AccountRecord>;
  /** `duplicate` when another account holds the new key. */
  changeAccountKey(req: {
    id: string;
    jwk: Record<string, unknown>;
    keyThumbprint: string;
  }): Promise<AccountRecord>;

  /** Creates the new authorizations and the order in one transaction. */
  newOrderAndAuthorizations(req: {
    accountId: string;
    identifiers: Identifier[];
    profile: string;
    notBefore: string | null;
    notAfter: string | null;
    expires: string;
    replaces: string | null;
    /** Valid authorizations of the same account to attach as they are. */
    reuseAuthorizationIds: string[];
    newAuthorizations: {
      identifier: Identifier;
      wildcard: boolean;
      expires: string;
      challenges: { type: 'http-01' | 'dns-01' | 'tls-alpn-01'; token: string }[];
    }[];
  }): Promise<OrderRecord>;
  getOrder(req: { id: string }): Promise<OrderRecord>;
  /** Newest first; `next` is an opaque cursor for the following page. */
  getOrdersForAccount(req: {
    accountId: string;
    cursor?: string;
    limit: number;
  }): Promise<{ orderIds: string[]; next: string | null }>;

  getAuthorization(req: { id: string }): Promise<AuthorizationRecord>;
  /** Valid, unexpired authorizations of this account for these identifiers (one per value). */
  getValidAuthorizations(req: {
    accountId: string;
    identifiers: Identifier[];
    validUntilAfter: string;
  }): Promise<AuthorizationRecord[]>;
  /** Marks one challenge `processing`; `conflict` unless the authorization is pending. */
  setChallengeProcessing(req: { id: string; challengeType: string }): Promise<AuthorizationRecord>;
  /** Records the validation outcome; `conflict` unless the challenge is processing. */
  finalizeAuthorization(req: {
    id: string;
    challengeType: string;
    status: 'valid' | 'invalid';
    validated: string;
    expires: string;
    error: Problem | null;
    validationRecords: ValidationRecord[];
  }): Promise<AuthorizationRecord>;
  deactivateAuthorization(req: { id: string }): Promise<AuthorizationRecord>;

  /** Moves a ready order to processing; `conflict` for every caller but the first. */
  setOrderProcessing(req: { id: string }): Promise<OrderRecord>;
  setOrderError(req: { id: string; error: Problem }): Promise<OrderRecord>;
  /** Attaches the issued certificate; the order becomes valid. */
  finalizeOrder(req: { id: string; certificateSerial: string }): Promise<OrderRecord>;

  /** Reserves a serial before anything is signed with it; `duplicate` on a collision. */
  addSerial(req: { serial: string; accountId: string; expires: string }): Promise<void>;
  /** `duplicate` when this serial already has a certificate. */
  addCertificate(req: {
    serial: string;
    accountId: string;
    orderId: string | null;
    issuerId: string;
    der: string;
    notBefore: string;
    notAfter: string;
  }): Promise<CertificateRecord>;
  getCertificate(req: { serial: string }): Promise<CertificateRecord>;
  /** `alreadyRevoked` when it was; the first revocation's time and reason stand. */
  revokeCertificate(req: {
    serial: string;
    reason: number;
    revokedAt: string;
  }): Promise<CertificateRecord>;
  /** Revoked, unexpired certificates of one issuer, for CRLs. */
  getRevokedCertificates(req: {
    issuerId: string;
    expiresAfter: string;
  }): Promise<{ serial: string; revokedAt: string; revokedReason: number }[]>;

  /**
   * Keeps the CA-signed OCSP response of a reserved serial. `conflict` when it would step back:
   * an older thisUpdate than the stored one, `good` over `revoked`, or a status the
   * certificate does not have.
   */
  storeOcspResponse(req: {
    serial: string;
    issuerId: string;
    status: 'good' | 'revoked';
    der: string;
    thisUpdate: string;
    nextUpdate: string;
  }): Promise<void>;
  /** `notFound` when this issuer has no response for the serial. */
  getOcspResponse(req: { issuerId: string; serial: string }): Promise<OcspResponseRecord>;
  /** Unexpired certificates whose response is missing, older than the bound, or out of date. */
  getOcspRefreshCandidates(req: {
    issuerIds: string[];
    thisUpdateBefore: string;
    expiresAfter: string;
    limit: number;
  }): Promise<OcspRefreshCandidate[]>;
  /** Keeps an issuer's CRL; `conflict` unless its number is larger than the stored one's. */
  storeCrl(req: {
    issuerId: string;
    number: string;
    der: string;
    thisUpdate: string;
    nextUpdate: string;
  }): Promise<void>;
  /** `notFound` when no CRL of this issuer was stored yet. */
  getCrl(req: { issuerId: string }): Promise<CrlRecord>;
  /** Issuers whose CRL is missing, older than the bound, or older than a revocation. */
  getCrlRefreshCandidates(req: { issuerIds: string[]; thisUpdateBefore: string }): Promise<string[]>;
}

export const saService = defineService<StorageAuthority>(
  'bluegreen.sa.StorageAuthority',
  [
    'newAccount',
    'getAccount',
    'getAccountByKey',
    'updateAccount',
    'changeAccountKey',
    'newOrderAndAuthorizations',
    'getOrder',
    'getOrdersForAccount',
    'getAuthorization',
    'getValidAuthorizations',
    'setChallengeProcessing',
    'finalizeAuthorization',
    'deactivateAuthorization',
    'setOrderProcessing',
    'setOrderError',
    'finalizeOrder',
    'addSerial',
    'addCertificate',
    'getCertificate',
    'revokeCertificate',
    'getRevokedCertificates',
    'storeOcspResponse',
    'getOcspResponse',
    'getOcspRefreshCandidates',
    'storeCrl',
    'getCrl',
    'getCrlRefreshCandidates',
  ],
  ['wfe', 'ra', 'ca', 'ocsp-responder'],
);
