import type { Kysely, Transaction } from 'kysely';
import {
  accountStatuses,
  challengeTypes,
  type Identifier,
  type Problem,
} from '../lib/acme.js';
import { CaError } from '../lib/errors.js';
import type {
  AccountRecord,
  AuthorizationRecord,
  CertificateRecord,
  CrlRecord,
  OcspRefreshCandidate,
  OcspResponseRecord,
  OrderRecord,
} from '../lib/records.js';
import type {
  AccountsTable,
  AuthorizationsTable,
  ChallengesTable,
  Database,
  OrdersTable,
} from './db.js';
import {
  accountRecord,
  authorizationRecord,
  certificateRecord,
  orderRecord,
  type OrderAuthorizationRow,
} from './rows.js';
import type { StorageAuthority } from './service.js';
import * as revocation from './revocation-storage.js';
import { mapErrors } from './sql-errors.js';
import { authorizationStatus } from './status.js';
import {
  decodeCursor,
  encodeCursor,
  newId,
  requireOneOf,
  requireSerial,
  requireString,
  requireStringArray,
  storedTime,
  storedTimeOrNull,
} from './values.js';

type Db = Kysely<Database> | Transaction<Database>;
type Req<K extends keyof StorageAuthority> = Parameters<StorageAuthority[K]>[0];

/** Options of StorageAuthorityImpl. */
export interface StorageOptions {
  /** The clock that decides expiry; tests move it. @default the system clock */
  now?: () => Date;
}

/** Pages of getOrdersForAccount hold at most this many ids. */
export const maxOrdersPerPage = 1000;

/** RFC 5280 §5.3.1 CRLReason codes; 7 is unassigned. */
const revocationReasonCodes = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);

/**
 * The StorageAuthority over one Kysely database, SQLite or PostgreSQL alike. Each once-only
 * transition is one conditional UPDATE whose WHERE clause states the precondition, so when two
 * callers race (two colors, two RA instances) the database lets exactly one through; the
 * loser gets `conflict`, and reading the row afterwards only serves to word the message.
 */
export class StorageAuthorityImpl implements StorageAuthority {
  readonly #db: Kysely<Database>;
  readonly #now: () => Date;

  constructor(db: Kysely<Database>, options: StorageOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? (() => new Date());
  }

  #nowIso(): string {
    return this.#now().toISOString();
  }

  async newAccount(req: Req<'newAccount'>): Promise<AccountRecord> {
    const row: AccountsTable = {
      id: newId(),
      jwk: JSON.stringify(requireJwk(req.jwk)),
      key_thumbprint: requireString(req.keyThumbprint, 'keyThumbprint'),
      contact: JSON.stringify(requireStringArray(req.contact, 'contact')),
      status: 'valid',
      terms_agreed: req.termsOfServiceAgreed ? 1 : 0,
      eab_key_id: req.eabKeyId ?? null,
      created_at: this.#nowIso(),
    };

    await mapErrors(() => this.#db.insertInto('accounts').values(row).execute(), {
      duplicate: `an account already has key thumbprint ${row.key_thumbprint}`,
    });
    return accountRecord(row);
  }

  async getAccount(req: Req<'getAccount'>): Promise<AccountRecord> {
    const id = requireString(req.id, 'id');
    const row = await mapErrors(() =>
      this.#db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    if (!row) throw new CaError('notFound', `account ${id} not found`);
    return accountRecord(row);
  }

  async getAccountByKey(req: Req<'getAccountByKey'>): Promise<AccountRecord> {
    const thumbprint = requireString(req.keyThumbprint, 'keyThumbprint');
    const row = await mapErrors(() =>
      this.#db
        .selectFrom('accounts')
        .selectAll()
        .where('key_thumbprint', '=', thumbprint)
        .executeTakeFirst(),
    );
    if (!row) throw new CaError('notFound', `no account has key thumbprint ${thumbprint}`);
    return accountRecord(row);
  }

  /** Only a valid account changes (RFC 8555 §7.3.6: deactivation is final). */
  async updateAccount(req: Req<'updateAccount'>): Promise<AccountRecord> {
    const id = requireString(req.id, 'id');
    const set: Partial<AccountsTable> = {};
    if (req.contact !== undefined) {
      set.contact = JSON.stringify(requireStringArray(req.contact, 'contact'));
    }
    if (req.status !== undefined) set.status = requireOneOf(req.status, accountStatuses, 'status');
    if (Object.keys(set).length === 0) return this.getAccount({ id });

    const result = await mapErrors(() =>
      this.#db
        .updateTable('accounts')
        .set(set)
        .where('id', '=', id)
        .where('status', '=', 'valid')
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows === 0n) await this.#refuseAccountChange(id);
    return this.getAccount({ id });
  }

  async changeAccountKey(req: Req<'changeAccountKey'>): Promise<AccountRecord> {
    const id = requireString(req.id, 'id');
    const thumbprint = requireString(req.keyThumbprint, 'keyThumbprint');
    const jwk = JSON.stringify(requireJwk(req.jwk));

    const result = await mapErrors(
      () =>
        this.#db
          .updateTable('accounts')
          .set({ jwk, key_thumbprint: thumbprint })
          .where('id', '=', id)
          .where('status', '=', 'valid')
          .executeTakeFirst(),
      { duplicate: `another account already has key thumbprint ${thumbprint}` },
    );
    if (result.numUpdatedRows === 0n) await this.#refuseAccountChange(id);
    return this.getAccount({ id });
  }

  async #refuseAccountChange(id: string): Promise<never> {
    const account = await this.getAccount({ id });
    throw new CaError(
      'conflict',
      `account ${id} is ${account.status}; only a valid account changes`,
    );
  }

  /**
   * Checks, inside the transaction that writes, that the account is valid, that every reused
   * authorization is this account's and valid, and that the authorizations cover the order's
   * identifiers exactly once each: the order can then only become ready on authorizations
   * its own account holds.
   */
  async newOrderAndAuthorizations(req: Req<'newOrderAndAuthorizations'>): Promise<OrderRecord> {
    const accountId = requireString(req.accountId, 'accountId');
    const identifiers = requireIdentifiers(req.identifiers);
    const reuseIds = requireStringArray(req.reuseAuthorizationIds, 'reuseAuthorizationIds');
    const now = this.#nowIso();
    const order: OrdersTable = {
      id: newId(),
      account_id: accountId,
      identifiers: JSON.stringify(identifiers),
      profile: requireProfile(req.profile),
      not_before: storedTimeOrNull(req.notBefore, 'notBefore'),
      not_after: storedTimeOrNull(req.notAfter, 'notAfter'),
      expires: storedTime(req.expires, 'expires'),
      error: null,
      began_processing: 0,
      certificate_serial: null,
      replaces: req.replaces ?? null,
      created_at: now,
    };
    const fresh = (req.newAuthorizations ?? []).map((a, i) =>
      newAuthorizationRows(a, accountId, now, `newAuthorizations[${i}]`),
    );

    await mapErrors(() =>
      this.#db.transaction().execute(async (trx) => {
        await requireValidAccount(trx, accountId);
        const reused = await this.#reusableAuthorizations(trx, accountId, reuseIds, now);

        const byKey = coverIdentifiers(identifiers, [...reused, ...fresh.map((f) => f.row)]);

        if (fresh.length) {
          await trx
            .insertInto('authorizations')
            .values(fresh.map((f) => f.row))
            .execute();
          await trx
            .insertInto('challenges')
            .values(fresh.flatMap((f) => f.challenges))
            .execute();
        }
        await trx.insertInto('orders').values(order).execute();
        await trx
          .insertInto('order_authorizations')
          .values(
            identifiers.map((identifier, position) => ({
              order_id: order.id,
              authorization_id: byKey.get(identifierKey(identifier))!,
              position,
            })),
          )
          .execute();
      }),
    );
    return this.getOrder({ id: order.id });
  }

  async #reusableAuthorizations(
    trx: Db,
    accountId: string,
    ids: string[],
    now: string,
  ): Promise<AuthorizationsTable[]> {
    if (ids.length === 0) return [];
    const rows = await trx
      .selectFrom('authorizations')
      .selectAll()
      .where('id', 'in', ids)
      .execute();

    for (const id of ids) {
      const row = rows.find((r) => r.id === id);
      if (!row) throw new CaError('notFound', `authorization ${id} not found`);
      if (row.account_id !== accountId) {
        throw new CaError('unauthorized', `authorization ${id} belongs to another account`);
      }
      const status = authorizationStatus(row.status, row.expires, now);
      if (status !== 'valid') {
        throw new CaError(
          'conflict',
          `authorization ${id} is ${status}; only a valid one is reused`,
        );
      }
    }
    return rows;
  }

  async getOrder(req: Req<'getOrder'>): Promise<OrderRecord> {
    const id = requireString(req.id, 'id');
    return mapErrors(() => readOrder(this.#db, id, this.#nowIso()));
  }

  async getOrdersForAccount(
    req: Req<'getOrdersForAccount'>,
  ): Promise<{ orderIds: string[]; next: string | null }> {
    const accountId = requireString(req.accountId, 'accountId');
    const limit = req.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > maxOrdersPerPage) {
      throw new CaError(
        'malformed',
        `expected limit to be an integer from 1 to ${maxOrdersPerPage}, got ${JSON.stringify(limit)}`,
      );
    }
    const after = req.cursor ? decodeCursor(req.cursor) : null;

    let query = this.#db
      .selectFrom('orders')
      .select(['id', 'created_at'])
      .where('account_id', '=', accountId);
    if (after) {
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', after.createdAt),
          eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)]),
        ]),
      );
    }
    const rows = await mapErrors(() =>
      query
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
        .execute(),
    );

    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const more = rows.length > limit && last;
    const next = more ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null;
    return { orderIds: page.map((r) => r.id), next };
  }

  async getAuthorization(req: Req<'getAuthorization'>): Promise<AuthorizationRecord> {
    const id = requireString(req.id, 'id');
    return mapErrors(() => readAuthorization(this.#db, id, this.#nowIso()));
  }

  async getValidAuthorizations(
    req: Req<'getValidAuthorizations'>,
  ): Promise<AuthorizationRecord[]> {
    const accountId = requireString(req.accountId, 'accountId');
    const wanted = requireIdentifiers(req.identifiers, { allowEmpty: true }).map(splitWildcard);
    const now = this.#nowIso();
    const until = storedTime(req.validUntilAfter, 'validUntilAfter');
    if (wanted.length === 0) return [];

    const rows = await mapErrors(() =>
      this.#db
        .selectFrom('authorizations')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('status', '=', 'valid')
        .where('expires', '>', until > now ? until : now)
        .where('identifier_value', 'in', [...new Set(wanted.map((w) => w.value))])
        .execute(),
    );

    // One per identifier: the one that stays valid longest.
    const best = new Map<string, AuthorizationsTable>();
    for (const row of rows) {
      const key = authorizationKey(row);
      const held = best.get(key);
      if (!held || row.expires > held.expires) best.set(key, row);
    }
    const chosen = wanted
      .map((w) => best.get(`${w.wildcard ? '*.' : ''}${w.value}`))
      .filter((row): row is AuthorizationsTable => row !== undefined);
    if (chosen.length === 0) return [];

    const challenges = await mapErrors(() =>
      this.#db
        .selectFrom('challenges')
        .selectAll()
        .where('authorization_id', 'in', chosen.map((r) => r.id))
        .orderBy('position')
        .execute(),
    );
    return chosen.map((row) =>
      authorizationRecord(
        row,
        challenges.filter((c) => c.authorization_id === row.id),
        now,
      ),
    );
  }

  /** One attempt per authorization: a second call, for any challenge, is a conflict. */
  async setChallengeProcessing(req: Req<'setChallengeProcessing'>): Promise<AuthorizationRecord> {
    const id = requireString(req.id, 'id');
    const type = requireOneOf(req.challengeType, challengeTypes, 'challengeType');
    const now = this.#nowIso();

    await mapErrors(() =>
      this.#db.transaction().execute(async (trx) => {
        await requireChallenge(trx, id, type);

        const claimed = await trx
          .updateTable('authorizations')
          .set({ attempted_challenge: type })
          .where('id', '=', id)
          .where('status', '=', 'pending')
          .where('attempted_challenge', 'is', null)
          .where('expires', '>', now)
          .executeTakeFirst();
        if (claimed.numUpdatedRows === 0n) await refuseAttempt(trx, id, now);

        await trx
          .updateTable('challenges')
          .set({ status: 'processing' })
          .where('authorization_id', '=', id)
          .where('type', '=', type)
          .where('status', '=', 'pending')
          .execute();
      }),
    );
    return this.getAuthorization({ id });
  }

  async finalizeAuthorization(req: Req<'finalizeAuthorization'>): Promise<AuthorizationRecord> {
    const id = requireString(req.id, 'id');
    const type = requireOneOf(req.challengeType, challengeTypes, 'challengeType');
    const status = requireOneOf(req.status, ['valid', 'invalid'] as const, 'status');
    const validated = storedTime(req.validated, 'validated');
    const expires = storedTime(req.expires, 'expires');
    const records = Array.isArray(req.validationRecords) ? req.validationRecords : [];

    await mapErrors(() =>
      this.#db.transaction().execute(async (trx) => {
        const challenge = await trx
          .updateTable('challenges')
          .set({
            status,
            validated,
            error: req.error ? JSON.stringify(req.error) : null,
            validation_records: JSON.stringify(records),
          })
          .where('authorization_id', '=', id)
          .where('type', '=', type)
          .where('status', '=', 'processing')
          .executeTakeFirst();
        if (challenge.numUpdatedRows === 0n) {
          const current = await requireChallenge(trx, id, type);
          throw new CaError(
            'conflict',
            `the ${type} challenge of authorization ${id} is ${current.status}, not processing`,
          );
        }

        const authorization = await trx
          .updateTable('authorizations')
          .set({ status, expires })
          .where('id', '=', id)
          .where('status', '=', 'pending')
          .executeTakeFirst();
        if (authorization.numUpdatedRows === 0n) {
          const row = await readAuthorizationRow(trx, id);
          throw new CaError('conflict', `authorization ${id} is ${row.status}, not pending`);
        }
      }),
    );
    return this.getAuthorization({ id });
  }

  /** RFC 8555 §7.5.2: a pending or valid authorization may be deactivated, once. */
  async deactivateAuthorization(req: Req<'deactivateAuthorization'>): Promise<AuthorizationRecord> {
    const id = requireString(req.id, 'id');
    const now = this.#nowIso();

    const result = await mapErrors(() =>
      this.#db
        .updateTable('authorizations')
        .set({ status: 'deactivated' })
        .where('id', '=', id)
        .where('status', 'in', ['pending', 'valid'])
        .where('expires', '>', now)
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows === 0n) {
      const current = await this.getAuthorization({ id });
      throw new CaError(
        'conflict',
        `authorization ${id} is ${current.status}; only a pending or valid one is deactivated`,
      );
    }
    return this.getAuthorization({ id });
  }

  /**
   * The readiness check and the switch are one statement: the order is unexpired, without
   * error or certificate, not yet processing, and no authorization of it is other than
   * valid and unexpired. Concurrent callers serialize on the order row; one wins.
   */
  async setOrderProcessing(req: Req<'setOrderProcessing'>): Promise<OrderRecord> {
    const id = requireString(req.id, 'id');
    const now = this.#nowIso();

    const result = await mapErrors(() =>
      this.#db
        .updateTable('orders')
        .set({ began_processing: 1 })
        .where('id', '=', id)
        .where('began_processing', '=', 0)
        .where('error', 'is', null)
        .where('certificate_serial', 'is', null)
        .where('expires', '>', now)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('order_authorizations as oa')
                .innerJoin('authorizations as a', 'a.id', 'oa.authorization_id')
                .select('a.id')
                .whereRef('oa.order_id', '=', 'orders.id')
                .where((sub) =>
                  sub.or([sub('a.status', '!=', 'valid'), sub('a.expires', '<=', now)]),
                ),
            ),
          ),
        )
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows === 0n) {
      const current = await this.getOrder({ id });
      throw new CaError('conflict', `order ${id} is ${current.status}, not ready`);
    }
    return this.getOrder({ id });
  }

  /** The first error stands; an order with a certificate takes none. */
  async setOrderError(req: Req<'setOrderError'>): Promise<OrderRecord> {
    const id = requireString(req.id, 'id');
    const error = requireProblem(req.error, 'error');

    const result = await mapErrors(() =>
      this.#db
        .updateTable('orders')
        .set({ error: JSON.stringify(error) })
        .where('id', '=', id)
        .where('error', 'is', null)
        .where('certificate_serial', 'is', null)
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows === 0n) {
      const current = await this.getOrder({ id });
      const why = current.error ? 'already has an error' : `is ${current.status}`;
      throw new CaError('conflict', `order ${id} ${why}; its error cannot be set`);
    }
    return this.getOrder({ id });
  }

  /** Only a processing order takes a certificate, and only one of its own account. */
  async finalizeOrder(req: Req<'finalizeOrder'>): Promise<OrderRecord> {
    const id = requireString(req.id, 'id');
    const serial = requireSerial(req.certificateSerial, 'certificateSerial');

    await mapErrors(() =>
      this.#db.transaction().execute(async (trx) => {
        const certificate = await trx
          .selectFrom('certificates')
          .select(['account_id', 'order_id'])
          .where('serial', '=', serial)
          .executeTakeFirst();
        if (!certificate) {
          throw new CaError('notFound', `certificate with serial ${serial} not found`);
        }
        const order = await trx
          .selectFrom('orders')
          .select('account_id')
          .where('id', '=', id)
          .executeTakeFirst();
        if (!order) throw new CaError('notFound', `order ${id} not found`);
        if (certificate.account_id !== order.account_id || (certificate.order_id ?? id) !== id) {
          throw new CaError('conflict', `certificate ${serial} was not issued for order ${id}`);
        }

        const result = await trx
          .updateTable('orders')
          .set({ certificate_serial: serial })
          .where('id', '=', id)
          .where('began_processing', '=', 1)
          .where('certificate_serial', 'is', null)
          .where('error', 'is', null)
          .executeTakeFirst();
        if (result.numUpdatedRows === 0n) {
          const current = await readOrder(trx, id, this.#nowIso());
          throw new CaError('conflict', `order ${id} is ${current.status}, not processing`);
        }
      }),
    );
    return this.getOrder({ id });
  }

  async addSerial(req: Req<'addSerial'>): Promise<void> {
    const serial = requireSerial(req.serial);
    const accountId = requireString(req.accountId, 'accountId');
    const row = {
      serial,
      account_id: accountId,
      expires: storedTime(req.expires, 'expires'),
      created_at: this.#nowIso(),
    };

    await mapErrors(() => this.#db.insertInto('serials').values(row).execute(), {
      duplicate: `serial ${serial} is already reserved`,
      missing: `account ${accountId} not found`,
    });
  }

  /** The serial must have been reserved, by the same account, with addSerial. */
  async addCertificate(req: Req<'addCertificate'>): Promise<CertificateRecord> {
    const serial = requireSerial(req.serial);
    const row = {
      serial,
      account_id: requireString(req.accountId, 'accountId'),
      order_id: req.orderId ?? null,
      issuer_id: requireString(req.issuerId, 'issuerId'),
      der: requireBase64(req.der, 'der'),
      not_before: storedTime(req.notBefore, 'notBefore'),
      not_after: storedTime(req.notAfter, 'notAfter'),
      status: 'good',
      revoked_at: null,
      revoked_reason: null,
      created_at: this.#nowIso(),
    };

    await mapErrors(
      () =>
        this.#db.transaction().execute(async (trx) => {
          const reserved = await trx
            .selectFrom('serials')
            .select('account_id')
            .where('serial', '=', serial)
            .executeTakeFirst();
          if (!reserved) {
            throw new CaError('notFound', `serial ${serial} was never reserved with addSerial`);
          }
          if (reserved.account_id !== row.account_id) {
            throw new CaError('conflict', `serial ${serial} was reserved for another account`);
          }
          await trx.insertInto('certificates').values(row).execute();
        }),
      {
        duplicate: `serial ${serial} already has a certificate`,
        missing: `account ${row.account_id} or order ${row.order_id} not found`,
      },
    );
    return certificateRecord(row);
  }

  async getCertificate(req: Req<'getCertificate'>): Promise<CertificateRecord> {
    const serial = requireSerial(req.serial);
    const row = await mapErrors(() =>
      this.#db
        .selectFrom('certificates')
        .selectAll()
        .where('serial', '=', serial)
        .executeTakeFirst(),
    );
    if (!row) throw new CaError('notFound', `certificate with serial ${serial} not found`);
    return certificateRecord(row);
  }

  async revokeCertificate(req: Req<'revokeCertificate'>): Promise<CertificateRecord> {
    const serial = requireSerial(req.serial);
    if (!revocationReasonCodes.has(req.reason)) {
      throw new CaError(
        'malformed',
        `expected reason to be an RFC 5280 CRLReason code (0-6, 8-10), got ${JSON.stringify(req.reason)}`,
      );
    }
    const revokedAt = storedTime(req.revokedAt, 'revokedAt');

    const result = await mapErrors(() =>
      this.#db
        .updateTable('certificates')
        .set({ status: 'revoked', revoked_at: revokedAt, revoked_reason: req.reason })
        .where('serial', '=', serial)
        .where('status', '=', 'good')
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows === 0n) {
      const current = await this.getCertificate({ serial });
      throw new CaError(
        'alreadyRevoked',
        `certificate ${serial} was already revoked at ${current.revokedAt} with reason ${current.revokedReason}`,
      );
    }
    return this.getCertificate({ serial });
  }

  async getRevokedCertificates(
    req: Req<'getRevokedCertificates'>,
  ): Promise<{ serial: string; revokedAt: string; revokedReason: number }[]> {
    const issuerId = requireString(req.issuerId, 'issuerId');
    const after = storedTime(req.expiresAfter, 'expiresAfter');

    const rows = await mapErrors(() =>
      this.#db
        .selectFrom('certificates')
        .select(['serial', 'revoked_at', 'revoked_reason'])
        .where('issuer_id', '=', issuerId)
        .where('status', '=', 'revoked')
        .where('not_after', '>', after)
        .orderBy('serial')
        .execute(),
    );
    return rows.map((r) => ({
      serial: r.serial,
      revokedAt: r.revoked_at!,
      revokedReason: r.revoked_reason!,
    }));
  }

  // OCSP responses and CRLs: revocation-storage.ts.

  storeOcspResponse(req: Req<'storeOcspResponse'>): Promise<void> {
    return revocation.storeOcspResponse(this.#db, req, this.#nowIso());
  }

  getOcspResponse(req: Req<'getOcspResponse'>): Promise<OcspResponseRecord> {
    return revocation.getOcspResponse(this.#db, req);
  }

  getOcspRefreshCandidates(req: Req<'getOcspRefreshCandidates'>): Promise<OcspRefreshCandidate[]> {
    return revocation.getOcspRefreshCandidates(this.#db, req);
  }

  storeCrl(req: Req<'storeCrl'>): Promise<void> {
    return revocation.storeCrl(this.#db, req, this.#nowIso());
  }

  getCrl(req: Req<'getCrl'>): Promise<CrlRecord> {
    return revocation.getCrl(this.#db, req);
  }

  getCrlRefreshCandidates(req: Req<'getCrlRefreshCandidates'>): Promise<string[]> {
    return revocation.getCrlRefreshCandidates(this.#db, req);
  }
}

async function readOrder(db: Db, id: string, now: string): Promise<OrderRecord> {
  const row = await db.selectFrom('orders').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new CaError('notFound', `order ${id} not found`);

  const authorizations: OrderAuthorizationRow[] = await db
    .selectFrom('order_authorizations as oa')
    .innerJoin('authorizations as a', 'a.id', 'oa.authorization_id')
    .select(['a.id', 'a.status', 'a.expires'])
    .where('oa.order_id', '=', id)
    .orderBy('oa.position')
    .execute();
  return orderRecord(row, authorizations, now);
}

async function readAuthorizationRow(db: Db, id: string): Promise<AuthorizationsTable> {
  const row = await db
    .selectFrom('authorizations')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw new CaError('notFound', `authorization ${id} not found`);
  return row;
}

async function readAuthorization(db: Db, id: string, now: string): Promise<AuthorizationRecord> {
  const row = await readAuthorizationRow(db, id);
  const challenges = await db
    .selectFrom('challenges')
    .selectAll()
    .where('authorization_id', '=', id)
    .orderBy('position')
    .execute();
  return authorizationRecord(row, challenges, now);
}

async function requireChallenge(db: Db, id: string, type: string): Promise<ChallengesTable> {
  const challenge = await db
    .selectFrom('challenges')
    .selectAll()
    .where('authorization_id', '=', id)
    .where('type', '=', type)
    .executeTakeFirst();
  if (challenge) return challenge;

  await readAuthorizationRow(db, id);
  throw new CaError('notFound', `authorization ${id} has no ${type} challenge`);
}

async function refuseAttempt(db: Db, id: string, now: string): Promise<never> {
  const row = await readAuthorizationRow(db, id);
  const status = authorizationStatus(row.status, row.expires, now);
  if (status === 'pending' && row.attempted_challenge) {
    throw new CaError(
      'conflict',
      `authorization ${id} already has its ${row.attempted_challenge} challenge processing`,
    );
  }
  throw new CaError('conflict', `authorization ${id} is ${status}, not pending`);
}

async function requireValidAccount(db: Db, id: string): Promise<void> {
  const account = await db
    .selectFrom('accounts')
    .select('status')
    .where('id', '=', id)
    .executeTakeFirst();
  if (!account) throw new CaError('notFound', `account ${id} not found`);
  if (account.status !== 'valid') {
    throw new CaError('unauthorized', `account ${id} is ${account.status}`);
  }
}

function requireJwk(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CaError(
      'malformed',
      `expected jwk to be a JSON object, got ${JSON.stringify(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

/** A profile name; empty means the CA's default profile. */
function requireProfile(value: unknown): string {
  if (typeof value !== 'string') {
    throw new CaError('malformed', `expected profile to be a string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function requireBase64(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(value)) {
    const shown = typeof value === 'string' ? `${value.slice(0, 20)}…` : JSON.stringify(value);
    throw new CaError('malformed', `expected ${field} to be base64, got ${shown}`);
  }
  return value;
}

function requireProblem(value: unknown, field: string): Problem {
  const problem = value as Problem | null;
  if (typeof problem?.type !== 'string' || typeof problem.detail !== 'string') {
    throw new CaError(
      'malformed',
      `expected ${field} to be a problem with type and detail, got ${JSON.stringify(value)}`,
    );
  }
  return problem;
}

function requireIdentifiers(
  value: unknown,
  options: { allowEmpty?: boolean } = {},
): Identifier[] {
  const ok =
    Array.isArray(value) &&
    (options.allowEmpty || value.length > 0) &&
    value.every((i) => i?.type === 'dns' && typeof i.value === 'string' && i.value.length > 0);
  if (!ok) {
    throw new CaError(
      'malformed',
      `expected identifiers to be a non-empty list of dns identifiers, got ${JSON.stringify(value)}`,
    );
  }
  return value as Identifier[];
}

/** `*.example.com` is authorized as `example.com` with wildcard set (RFC 8555 §7.1.4). */
function splitWildcard(identifier: Identifier): { value: string; wildcard: boolean } {
  const value = identifier.value.toLowerCase();
  return value.startsWith('*.')
    ? { value: value.slice(2), wildcard: true }
    : { value, wildcard: false };
}

/** An order identifier as a key: lower-case, `*.` kept. */
function identifierKey(identifier: Identifier): string {
  return identifier.value.toLowerCase();
}

function authorizationKey(row: Pick<AuthorizationsTable, 'identifier_value' | 'wildcard'>): string {
  return `${row.wildcard === 1 ? '*.' : ''}${row.identifier_value}`;
}

/**
 * Maps each order identifier to the one authorization that covers it; `malformed` when an
 * identifier is covered twice or not at all, or an authorization covers none of them.
 */
function coverIdentifiers(
  identifiers: readonly Identifier[],
  authorizations: readonly AuthorizationsTable[],
): Map<string, string> {
  const wanted = new Set<string>();
  for (const identifier of identifiers) {
    const key = identifierKey(identifier);
    if (wanted.has(key)) throw new CaError('malformed', `identifiers lists ${key} twice`);
    wanted.add(key);
  }

  const byKey = new Map<string, string>();
  for (const row of authorizations) {
    const key = authorizationKey(row);
    if (!wanted.has(key)) {
      throw new CaError(
        'malformed',
        `authorization ${row.id} for ${key} matches no identifier of the order`,
      );
    }
    if (byKey.has(key)) throw new CaError('malformed', `two authorizations cover ${key}`);
    byKey.set(key, row.id);
  }

  const uncovered = [...wanted].filter((key) => !byKey.has(key));
  if (uncovered.length) {
    throw new CaError('malformed', `no authorization covers ${uncovered.join(', ')}`);
  }
  return byKey;
}

function newAuthorizationRows(
  req: Req<'newOrderAndAuthorizations'>['newAuthorizations'][number],
  accountId: string,
  now: string,
  field: string,
): { row: AuthorizationsTable; challenges: ChallengesTable[] } {
  const [identifier] = requireIdentifiers([req?.identifier]);
  const split = splitWildcard(identifier);
  const id = newId();
  const challenges = Array.isArray(req.challenges) ? req.challenges : [];
  if (challenges.length === 0) {
    throw new CaError('malformed', `expected ${field}.challenges to list at least one challenge`);
  }

  return {
    row: {
      id,
      account_id: accountId,
      identifier_type: 'dns',
      identifier_value: split.value,
      wildcard: split.wildcard || req.wildcard ? 1 : 0,
      status: 'pending',
      expires: storedTime(req.expires, `${field}.expires`),
      attempted_challenge: null,
      created_at: now,
    },
    challenges: challenges.map((c, position) => ({
      authorization_id: id,
      type: requireOneOf(c?.type, challengeTypes, `${field}.challenges[${position}].type`),
      token: requireString(c?.token, `${field}.challenges[${position}].token`),
      status: 'pending',
      position,
      validated: null,
      error: null,
      validation_records: '[]',
    })),
  };
}

