import { sql, type Kysely } from 'kysely';
import { CaError } from '../lib/errors.js';
import type {
  CertificateStatus,
  CrlRecord,
  OcspRefreshCandidate,
  OcspResponseRecord,
} from '../lib/records.js';
import type { CrlsTable, Database, OcspResponsesTable } from './db.js';
import type { StorageAuthority } from './service.js';
import { mapErrors } from './sql-errors.js';
import { requireOneOf, requireSerial, requireString, storedTime } from './values.js';

/**
 * The SA's half of revocation publishing: the current OCSP response per certificate and the
 * current CRL per issuer. The CA signs both; the RA and the CA's refresher store them here;
 * the OCSP responder reads them. Each store is one conditional upsert, so a slower writer
 * (the other color's refresher, a retry) can never put an older document back.
 */

type Req<K extends keyof StorageAuthority> = Parameters<StorageAuthority[K]>[0];

/** Pages of refresh candidates hold at most this many. */
export const maxRefreshBatch = 1000;

/** A stored OCSP response is small; a CRL grows with revocations (4 MiB is gRPC's cap). */
const maxOcspBase64 = 16 * 1024;
const maxCrlBase64 = 4 * 1024 * 1024 - 64 * 1024;

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

function requireDerBase64(value: unknown, field: string, maxLength: number): string {
  const ok = typeof value === 'string' && value.length <= maxLength && base64.test(value);
  if (!ok) {
    const shown =
      typeof value === 'string' ? `${value.length} characters` : JSON.stringify(value);
    throw new CaError(
      'malformed',
      `expected ${field} to be base64 DER of at most ${maxLength} characters, got ${shown}`,
    );
  }
  return value;
}

function requireLimit(value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > maxRefreshBatch) {
    throw new CaError(
      'malformed',
      `expected limit to be an integer from 1 to ${maxRefreshBatch}, got ${JSON.stringify(value)}`,
    );
  }
  return value as number;
}

function requireIssuerIds(value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new CaError(
      'malformed',
      `expected issuerIds to be a list of issuer ids, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function ocspRecord(row: OcspResponsesTable): OcspResponseRecord {
  return {
    serial: row.serial,
    issuerId: row.issuer_id,
    status: row.status as CertificateStatus,
    der: row.der,
    thisUpdate: row.this_update,
    nextUpdate: row.next_update,
    updatedAt: row.updated_at,
  };
}

function crlRecord(row: Omit<CrlsTable, 'number'> & { number: string | number }): CrlRecord {
  return {
    issuerId: row.issuer_id,
    number: String(row.number),
    der: row.der,
    thisUpdate: row.this_update,
    nextUpdate: row.next_update,
    updatedAt: row.updated_at,
  };
}

/**
 * Stores an OCSP response unless it would step back: a response replaces the stored one only
 * when its thisUpdate is not older, and `good` never replaces `revoked` (revocation is final,
 * RFC 5280 §3.3). A `good` response for a certificate the SA knows is revoked, or a `revoked`
 * one for a certificate it knows is not, is refused too. `conflict` in each case.
 */
export async function storeOcspResponse(
  db: Kysely<Database>,
  req: Req<'storeOcspResponse'>,
  now: string,
): Promise<void> {
  const serial = requireSerial(req.serial);
  const row: OcspResponsesTable = {
    serial,
    issuer_id: requireString(req.issuerId, 'issuerId'),
    status: requireOneOf(req.status, ['good', 'revoked'] as const, 'status'),
    der: requireDerBase64(req.der, 'der', maxOcspBase64),
    this_update: storedTime(req.thisUpdate, 'thisUpdate'),
    next_update: storedTime(req.nextUpdate, 'nextUpdate'),
    updated_at: now,
  };
  if (row.next_update <= row.this_update) {
    throw new CaError(
      'malformed',
      `expected nextUpdate after thisUpdate, got ${row.next_update} and ${row.this_update}`,
    );
  }

  await mapErrors(
    () =>
      db.transaction().execute(async (trx) => {
        const certificate = await trx
          .selectFrom('certificates')
          .select(['status', 'issuer_id'])
          .where('serial', '=', serial)
          .executeTakeFirst();
        // A serial with no certificate yet (a precertificate's) may still get a response.
        if (certificate && certificate.status !== row.status) {
          throw new CaError(
            'conflict',
            `certificate ${serial} is ${certificate.status}; a ${row.status} OCSP response is refused`,
          );
        }
        if (certificate && certificate.issuer_id !== row.issuer_id) {
          throw new CaError(
            'conflict',
            `certificate ${serial} was issued by ${certificate.issuer_id}, not ${row.issuer_id}`,
          );
        }

        const result = await trx
          .insertInto('ocsp_responses')
          .values(row)
          .onConflict((oc) =>
            oc
              .column('serial')
              .doUpdateSet((eb) => ({
                issuer_id: eb.ref('excluded.issuer_id'),
                status: eb.ref('excluded.status'),
                der: eb.ref('excluded.der'),
                this_update: eb.ref('excluded.this_update'),
                next_update: eb.ref('excluded.next_update'),
                updated_at: eb.ref('excluded.updated_at'),
              }))
              .whereRef('ocsp_responses.this_update', '<=', 'excluded.this_update')
              .where((eb) =>
                eb.or([
                  eb('ocsp_responses.status', '=', 'good'),
                  eb('excluded.status', '=', 'revoked'),
                ]),
              ),
          )
          .executeTakeFirst();

        if (result.numInsertedOrUpdatedRows === 0n) {
          const held = await trx
            .selectFrom('ocsp_responses')
            .select(['status', 'this_update'])
            .where('serial', '=', serial)
            .executeTakeFirstOrThrow();
          throw new CaError(
            'conflict',
            `serial ${serial} already has a ${held.status} OCSP response from ${held.this_update}; ` +
              `a ${row.status} one from ${row.this_update} does not replace it`,
          );
        }
      }),
    { missing: `serial ${serial} was never reserved with addSerial` },
  );
}

/** The stored response for one serial of one issuer; `notFound` when there is none. */
export async function getOcspResponse(
  db: Kysely<Database>,
  req: Req<'getOcspResponse'>,
): Promise<OcspResponseRecord> {
  const serial = requireSerial(req.serial);
  const issuerId = requireString(req.issuerId, 'issuerId');
  const row = await mapErrors(() =>
    db
      .selectFrom('ocsp_responses')
      .selectAll()
      .where('serial', '=', serial)
      .where('issuer_id', '=', issuerId)
      .executeTakeFirst(),
  );
  if (!row) {
    throw new CaError('notFound', `no OCSP response for serial ${serial} of issuer ${issuerId}`);
  }
  return ocspRecord(row);
}

/**
 * Unexpired certificates of these issuers whose OCSP response is missing, was produced before
 * `thisUpdateBefore`, or says good although the certificate is revoked; the missing and the
 * oldest first.
 */
export async function getOcspRefreshCandidates(
  db: Kysely<Database>,
  req: Req<'getOcspRefreshCandidates'>,
): Promise<OcspRefreshCandidate[]> {
  const issuerIds = requireIssuerIds(req.issuerIds);
  const before = storedTime(req.thisUpdateBefore, 'thisUpdateBefore');
  const expiresAfter = storedTime(req.expiresAfter, 'expiresAfter');
  const limit = requireLimit(req.limit);
  if (issuerIds.length === 0) return [];

  const rows = await mapErrors(() =>
    db
      .selectFrom('certificates as c')
      .leftJoin('ocsp_responses as o', 'o.serial', 'c.serial')
      .select(['c.serial', 'c.issuer_id', 'c.status', 'c.revoked_at', 'c.revoked_reason'])
      .where('c.issuer_id', 'in', issuerIds)
      .where('c.not_after', '>', expiresAfter)
      .where((eb) =>
        eb.or([
          eb('o.serial', 'is', null),
          eb('o.this_update', '<', before),
          eb.and([eb('c.status', '=', 'revoked'), eb('o.status', '=', 'good')]),
        ]),
      )
      // Missing first: '' sorts before every stored time on both engines.
      .orderBy(sql`coalesce(o.this_update, '')`)
      .orderBy('c.serial')
      .limit(limit)
      .execute(),
  );
  return rows.map((r) => ({
    serial: r.serial,
    issuerId: r.issuer_id,
    status: r.status as CertificateStatus,
    revokedAt: r.revoked_at,
    revokedReason: r.revoked_reason,
  }));
}

/** Stores a CRL unless one with the same or a larger number is already stored (`conflict`). */
export async function storeCrl(
  db: Kysely<Database>,
  req: Req<'storeCrl'>,
  now: string,
): Promise<void> {
  const issuerId = requireString(req.issuerId, 'issuerId');
  const decimal = typeof req.number === 'string' && /^[0-9]{1,18}$/.test(req.number);
  const number = decimal ? Number(req.number) : NaN;
  if (!Number.isSafeInteger(number)) {
    throw new CaError(
      'malformed',
      `expected number to be a decimal CRL number below 2^53, got ${JSON.stringify(req.number)}`,
    );
  }
  const row = {
    issuer_id: issuerId,
    number,
    der: requireDerBase64(req.der, 'der', maxCrlBase64),
    this_update: storedTime(req.thisUpdate, 'thisUpdate'),
    next_update: storedTime(req.nextUpdate, 'nextUpdate'),
    updated_at: now,
  };

  await mapErrors(() =>
    db.transaction().execute(async (trx) => {
      const result = await trx
        .insertInto('crls')
        .values(row)
        .onConflict((oc) =>
          oc
            .column('issuer_id')
            .doUpdateSet((eb) => ({
              number: eb.ref('excluded.number'),
              der: eb.ref('excluded.der'),
              this_update: eb.ref('excluded.this_update'),
              next_update: eb.ref('excluded.next_update'),
              updated_at: eb.ref('excluded.updated_at'),
            }))
            // RFC 5280 §5.2.3: CRL numbers only grow.
            .whereRef('crls.number', '<', 'excluded.number'),
        )
        .executeTakeFirst();

      if (result.numInsertedOrUpdatedRows === 0n) {
        const held = await trx
          .selectFrom('crls')
          .select('number')
          .where('issuer_id', '=', issuerId)
          .executeTakeFirstOrThrow();
        throw new CaError(
          'conflict',
          `issuer ${issuerId} already has CRL number ${held.number}; number ${number} does not replace it`,
        );
      }
    }),
  );
}

/** The stored CRL of one issuer; `notFound` when none was stored yet. */
export async function getCrl(db: Kysely<Database>, req: Req<'getCrl'>): Promise<CrlRecord> {
  const issuerId = requireString(req.issuerId, 'issuerId');
  const row = await mapErrors(() =>
    db.selectFrom('crls').selectAll().where('issuer_id', '=', issuerId).executeTakeFirst(),
  );
  if (!row) throw new CaError('notFound', `no CRL stored for issuer ${issuerId}`);
  return crlRecord(row);
}

/**
 * The issuers among `issuerIds` whose CRL is missing, was issued before `thisUpdateBefore`, or
 * is not later than one of their revocations (so the revocation may be missing from it).
 */
export async function getCrlRefreshCandidates(
  db: Kysely<Database>,
  req: Req<'getCrlRefreshCandidates'>,
): Promise<string[]> {
  const issuerIds = requireIssuerIds(req.issuerIds);
  const before = storedTime(req.thisUpdateBefore, 'thisUpdateBefore');

  const out: string[] = [];
  for (const issuerId of issuerIds) {
    const crl = await mapErrors(() =>
      db
        .selectFrom('crls')
        .select('this_update')
        .where('issuer_id', '=', issuerId)
        .executeTakeFirst(),
    );
    if (!crl || crl.this_update < before) {
      out.push(issuerId);
      continue;
    }

    const later = await mapErrors(() =>
      db
        .selectFrom('certificates')
        .select('serial')
        .where('issuer_id', '=', issuerId)
        .where('status', '=', 'revoked')
        .where('revoked_at', '>=', crl.this_update)
        .limit(1)
        .executeTakeFirst(),
    );
    if (later) out.push(issuerId);
  }
  return out;
}
