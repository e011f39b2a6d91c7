import type {
  AccountStatus,
  ChallengeStatus,
  ChallengeType,
  Identifier,
  Problem,
} from '../lib/acme.js';
import type {
  AccountRecord,
  AuthorizationRecord,
  CertificateRecord,
  CertificateStatus,
  ChallengeRecord,
  OrderRecord,
  ValidationRecord,
} from '../lib/records.js';
import type {
  AccountsTable,
  AuthorizationsTable,
  CertificatesTable,
  ChallengesTable,
  OrdersTable,
} from './db.js';
import { authorizationStatus, orderStatus } from './status.js';
import { parseJson, parseJsonOrNull } from './values.js';

/** Rows to the records that cross RPC (components/lib/records.ts). */

/** An accounts row as an AccountRecord. */
export function accountRecord(row: AccountsTable): AccountRecord {
  return {
    id: row.id,
    jwk: parseJson<Record<string, unknown>>(row.jwk),
    keyThumbprint: row.key_thumbprint,
    contact: parseJson<string[]>(row.contact),
    status: row.status as AccountStatus,
    termsOfServiceAgreed: row.terms_agreed === 1,
    eabKeyId: row.eab_key_id,
    createdAt: row.created_at,
  };
}

/** A challenges row as a ChallengeRecord. */
export function challengeRecord(row: ChallengesTable): ChallengeRecord {
  return {
    type: row.type as ChallengeType,
    token: row.token,
    status: row.status as ChallengeStatus,
    validated: row.validated,
    error: parseJsonOrNull<Problem>(row.error),
    validationRecords: parseJson<ValidationRecord[]>(row.validation_records),
  };
}

/** An authorization with its challenges (in position order) as a record, status computed. */
export function authorizationRecord(
  row: AuthorizationsTable,
  challenges: readonly ChallengesTable[],
  now: string,
): AuthorizationRecord {
  return {
    id: row.id,
    accountId: row.account_id,
    identifier: { type: row.identifier_type as 'dns', value: row.identifier_value },
    wildcard: row.wildcard === 1,
    status: authorizationStatus(row.status, row.expires, now),
    expires: row.expires,
    challenges: challenges.map(challengeRecord),
    createdAt: row.created_at,
  };
}

/** The parts of an order's authorizations its status depends on, in position order. */
export interface OrderAuthorizationRow {
  id: string;
  status: string;
  expires: string;
}

/** An order with its authorizations (in position order) as a record, status computed. */
export function orderRecord(
  row: OrdersTable,
  authorizations: readonly OrderAuthorizationRow[],
  now: string,
): OrderRecord {
  const authorizationStatuses = authorizations.map((a) =>
    authorizationStatus(a.status, a.expires, now),
  );
  const status = orderStatus(
    {
      expires: row.expires,
      hasError: row.error !== null,
      beganProcessing: row.began_processing === 1,
      hasCertificate: row.certificate_serial !== null,
      authorizationStatuses,
    },
    now,
  );

  return {
    id: row.id,
    accountId: row.account_id,
    status,
    identifiers: parseJson<Identifier[]>(row.identifiers),
    authorizationIds: authorizations.map((a) => a.id),
    profile: row.profile,
    notBefore: row.not_before,
    notAfter: row.not_after,
    expires: row.expires,
    error: parseJsonOrNull<Problem>(row.error),
    beganProcessing: row.began_processing === 1,
    certificateSerial: row.certificate_serial,
    replaces: row.replaces,
    createdAt: row.created_at,
  };
}

/** A certificates row as a CertificateRecord. */
export function certificateRecord(row: CertificatesTable): CertificateRecord {
  return {
    serial: row.serial,
    accountId: row.account_id,
    orderId: row.order_id,
    issuerId: row.issuer_id,
    der: row.der,
    notBefore: row.not_before,
    notAfter: row.not_after,
    status: row.status as CertificateStatus,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
    createdAt: row.created_at,
  };
}
