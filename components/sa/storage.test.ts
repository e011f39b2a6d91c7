import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { postgresUrlOrSkip, sqliteUrl } from '../../test/helpers/db.js';
import type { Identifier } from '../lib/acme.js';
import type { AccountRecord, OrderRecord } from '../lib/records.js';
import { openDatabase, type SaDatabase } from './db.js';
import { migrateToLatest } from './migrations.js';
import { StorageAuthorityImpl } from './storage.js';

/**
 * One behaviour suite, run against SQLite and against PostgreSQL. The SA's clock is a test
 * clock so expiry cases need no sleeping.
 */

const dir = mkdtempSync(join(tmpdir(), 'sa-storage-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('sqlite', (t) => behaviour(t, sqliteUrl(dir)));

t.test('postgres', async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (url) await behaviour(t, url);
});

/** What t.rejects matches a CaError of `kind` against, its detail optionally too. */
const caError = (kind: string, detail?: RegExp) => ({
  name: 'CaError',
  kind,
  ...(detail && { detail }),
});

const acmeError = 'urn:ietf:params:acme:error:';

const t0 = Date.parse('2030-01-01T00:00:00.000Z');
const minute = 60_000;
const day = 86_400_000;

/** An ISO time `ms` after t0. */
const at = (ms: number) => new Date(t0 + ms).toISOString();

async function behaviour(t: Test, url: string) {
  const sadb: SaDatabase = openDatabase(url);
  t.teardown(() => sadb.destroy());
  await migrateToLatest(sadb);

  const clock = { now: t0 };
  const sa = new StorageAuthorityImpl(sadb.db, { now: () => new Date(clock.now) });
  t.beforeEach(() => {
    clock.now = t0;
  });

  let keys = 0;
  const newAccount = (thumbprint = `thumb-${++keys}`) =>
    sa.newAccount({
      jwk: { kty: 'EC', crv: 'P-256', x: thumbprint, y: 'y' },
      keyThumbprint: thumbprint,
      contact: ['mailto:ops@example.test'],
      termsOfServiceAgreed: true,
      eabKeyId: null,
    });

  let names = 0;
  const dns = (value: string): Identifier => ({ type: 'dns', value });
  const uniqueName = () => `host${++names}.example.test`;

  /** An order whose identifiers all get fresh pending authorizations. */
  const newOrder = (
    account: AccountRecord,
    values: string[] = [uniqueName()],
    options: {
      expires?: string;
      authzExpires?: string;
      reuse?: readonly string[];
      fresh?: string[];
    } = {},
  ) =>
    sa.newOrderAndAuthorizations({
      accountId: account.id,
      identifiers: values.map(dns),
      profile: 'default',
      notBefore: null,
      notAfter: null,
      expires: options.expires ?? at(7 * day),
      replaces: null,
      reuseAuthorizationIds: [...(options.reuse ?? [])],
      newAuthorizations: (options.fresh ?? values).map((value) => ({
        identifier: dns(value.replace(/^\*\./, '')),
        wildcard: value.startsWith('*.'),
        expires: options.authzExpires ?? at(7 * day),
        challenges: [
          { type: 'http-01' as const, token: `tok-${value}-h` },
          { type: 'dns-01' as const, token: `tok-${value}-d` },
        ],
      })),
    });

  /** Runs one authorization through a validation with the given outcome. */
  const validate = async (id: string, status: 'valid' | 'invalid' = 'valid') => {
    await sa.setChallengeProcessing({ id, challengeType: 'http-01' });
    return sa.finalizeAuthorization({
      id,
      challengeType: 'http-01',
      status,
      validated: at(0),
      expires: at(30 * day),
      error: status === 'invalid' ? { type: `${acmeError}incorrectResponse`, detail: 'no' } : null,
      validationRecords: [{ hostname: 'h.example.test', port: 80, addressUsed: '127.0.0.1' }],
    });
  };

  const readyOrder = async (account: AccountRecord, values?: string[]) => {
    const order = await newOrder(account, values);
    for (const id of order.authorizationIds) await validate(id);
    return sa.getOrder({ id: order.id });
  };

  let serials = 0;
  const nextSerial = () => (0x1000 + ++serials).toString(16).padStart(32, '0');

  const issue = async (
    account: AccountRecord,
    order: OrderRecord | null,
    issuerId = 'issuer-a',
  ) => {
    const serial = nextSerial();
    await sa.addSerial({ serial, accountId: account.id, expires: at(90 * day) });
    return sa.addCertificate({
      serial,
      accountId: account.id,
      orderId: order?.id ?? null,
      issuerId,
      der: Buffer.from(`certificate ${serial}`).toString('base64'),
      notBefore: at(0),
      notAfter: at(90 * day),
    });
  };

  type Counted = 'orders' | 'authorizations' | 'challenges' | 'order_authorizations';
  const count = async (table: Counted) => {
    const row = await sadb.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };

  t.test('accounts', async (t) => {
    t.test('creates an account and finds it by id and by key', async (t) => {
      const account = await newAccount('key-a');
      t.match(account, { status: 'valid', keyThumbprint: 'key-a', termsOfServiceAgreed: true });
      t.match(account.id, /^[A-Za-z0-9_-]{16}$/);
      t.same(await sa.getAccount({ id: account.id }), account);
      t.same(await sa.getAccountByKey({ keyThumbprint: 'key-a' }), account);
    });

    t.test('rejects a second account with the same key as duplicate', async (t) => {
      await newAccount('key-b');
      await t.rejects(newAccount('key-b'), caError('duplicate', /key-b/));
    });

    t.test('reports a missing account as notFound, naming it', async (t) => {
      await t.rejects(sa.getAccount({ id: 'nope' }), caError('notFound', /account nope/));
      await t.rejects(
        sa.getAccountByKey({ keyThumbprint: 'k-none' }),
        caError('notFound', /k-none/),
      );
    });

    t.test('updates contact, then deactivation is final', async (t) => {
      const account = await newAccount();
      const contact = ['mailto:new@example.test'];
      const updated = await sa.updateAccount({ id: account.id, contact });
      t.same(updated.contact, contact);

      const deactivated = await sa.updateAccount({ id: account.id, status: 'deactivated' });
      t.equal(deactivated.status, 'deactivated');
      await t.rejects(sa.updateAccount({ id: account.id, status: 'valid' }), caError('conflict'));
      await t.rejects(sa.updateAccount({ id: 'nope', contact: [] }), caError('notFound'));
    });

    t.test('changes the key, and refuses a key another account holds', async (t) => {
      const a = await newAccount();
      const b = await newAccount();
      await t.rejects(
        sa.changeAccountKey({ id: a.id, jwk: { kty: 'EC' }, keyThumbprint: b.keyThumbprint }),
        caError('duplicate', new RegExp(b.keyThumbprint)),
      );

      const changed = await sa.changeAccountKey({
        id: a.id,
        jwk: { kty: 'EC', x: 'n' },
        keyThumbprint: 'fresh',
      });
      t.equal(changed.keyThumbprint, 'fresh');
      t.equal((await sa.getAccountByKey({ keyThumbprint: 'fresh' })).id, a.id);
      await t.rejects(sa.getAccountByKey({ keyThumbprint: a.keyThumbprint }), caError('notFound'));
    });
  });

  t.test('orders and authorizations', async (t) => {
    const account = await newAccount();

    t.test('a new order is pending with pending authorizations in identifier order', async (t) => {
      const order = await newOrder(account, ['b.example.test', 'a.example.test']);
      t.equal(order.status, 'pending');
      t.equal(order.authorizationIds.length, 2);
      t.same(await sa.getOrder({ id: order.id }), order);

      const authz = await sa.getAuthorization({ id: order.authorizationIds[0] });
      t.match(authz, {
        status: 'pending',
        identifier: { value: 'b.example.test' },
        wildcard: false,
      });
      t.same(
        authz.challenges.map((c) => [c.type, c.status]),
        [
          ['http-01', 'pending'],
          ['dns-01', 'pending'],
        ],
      );
    });

    t.test('an order is ready once every authorization is valid', async (t) => {
      const order = await newOrder(account, [uniqueName(), uniqueName()]);
      await validate(order.authorizationIds[0]);
      t.equal((await sa.getOrder({ id: order.id })).status, 'pending');
      await validate(order.authorizationIds[1]);
      t.equal((await sa.getOrder({ id: order.id })).status, 'ready');
    });

    t.test('an order is invalid when an authorization is invalid', async (t) => {
      const order = await newOrder(account, [uniqueName(), uniqueName()]);
      await validate(order.authorizationIds[0], 'invalid');
      t.equal((await sa.getOrder({ id: order.id })).status, 'invalid');
    });

    t.test('an order is invalid when an authorization is deactivated', async (t) => {
      const order = await newOrder(account);
      await sa.deactivateAuthorization({ id: order.authorizationIds[0] });
      t.equal((await sa.getOrder({ id: order.id })).status, 'invalid');
    });

    t.test('an authorization past its expiry reads expired, and its order invalid', async (t) => {
      const order = await newOrder(account, [uniqueName()], { authzExpires: at(day) });
      clock.now = t0 + 2 * day;
      t.equal((await sa.getAuthorization({ id: order.authorizationIds[0] })).status, 'expired');
      t.equal((await sa.getOrder({ id: order.id })).status, 'invalid');
    });

    t.test('an order past its own expiry is invalid', async (t) => {
      const order = await readyOrder(account);
      t.equal(order.status, 'ready');
      clock.now = Date.parse(order.expires);
      t.equal((await sa.getOrder({ id: order.id })).status, 'invalid');
    });

    t.test('an order with an error is invalid and keeps its first error', async (t) => {
      const order = await newOrder(account);
      const problem = { type: `${acmeError}serverInternal`, detail: 'first' };
      const failed = await sa.setOrderError({ id: order.id, error: problem });
      t.equal(failed.status, 'invalid');
      t.same(failed.error, problem);
      await t.rejects(
        sa.setOrderError({ id: order.id, error: { ...problem, detail: 'second' } }),
        caError('conflict'),
      );
      t.equal((await sa.getOrder({ id: order.id })).error?.detail, 'first');
    });

    t.test('processing, then valid with a certificate, and valid it stays', async (t) => {
      const order = await readyOrder(account);
      t.equal((await sa.setOrderProcessing({ id: order.id })).status, 'processing');

      const cert = await issue(account, order);
      const valid = await sa.finalizeOrder({ id: order.id, certificateSerial: cert.serial });
      t.equal(valid.status, 'valid');
      t.equal(valid.certificateSerial, cert.serial);

      clock.now = t0 + 365 * day;
      t.equal((await sa.getOrder({ id: order.id })).status, 'valid');
    });

    t.test('reuses a valid authorization of the same account', async (t) => {
      const name = uniqueName();
      const first = await readyOrder(account, [name]);
      const second = await newOrder(account, [name], { reuse: first.authorizationIds, fresh: [] });
      t.equal(second.status, 'ready');
      t.same(second.authorizationIds, first.authorizationIds);
    });

    t.test('refuses to reuse another account’s authorization', async (t) => {
      const other = await newAccount();
      const name = uniqueName();
      const theirs = await readyOrder(other, [name]);
      await t.rejects(
        newOrder(account, [name], { reuse: theirs.authorizationIds, fresh: [] }),
        caError('unauthorized', new RegExp(theirs.authorizationIds[0])),
      );
    });

    t.test('refuses to reuse an authorization that is not valid', async (t) => {
      const name = uniqueName();
      const pending = await newOrder(account, [name]);
      await t.rejects(
        newOrder(account, [name], { reuse: pending.authorizationIds, fresh: [] }),
        caError('conflict', /pending/),
      );
    });

    t.test('refuses an order whose identifiers are not each covered once', async (t) => {
      await t.rejects(
        newOrder(account, [uniqueName(), uniqueName()], { fresh: [uniqueName()] }),
        caError('malformed'),
      );
      await t.rejects(
        newOrder(account, ['dup.example.test', 'dup.example.test']),
        caError('malformed', /twice/),
      );
    });

    t.test('keeps wildcard and plain authorizations apart', async (t) => {
      const base = uniqueName();
      const order = await newOrder(account, [`*.${base}`, base]);
      const wildcard = await sa.getAuthorization({ id: order.authorizationIds[0] });
      t.match(wildcard, { identifier: { value: base }, wildcard: true });
      await validate(wildcard.id);

      const found = await sa.getValidAuthorizations({
        accountId: account.id,
        identifiers: [dns(`*.${base}`), dns(base)],
        validUntilAfter: at(0),
      });
      t.same(
        found.map((a) => a.id),
        [wildcard.id],
        'only the wildcard is valid',
      );
    });

    t.test('finds one valid authorization per identifier, the longest-lived', async (t) => {
      const name = uniqueName();
      const first = await readyOrder(account, [name]);
      const second = await newOrder(account, [name]);
      await sa.setChallengeProcessing({ id: second.authorizationIds[0], challengeType: 'dns-01' });
      await sa.finalizeAuthorization({
        id: second.authorizationIds[0],
        challengeType: 'dns-01',
        status: 'valid',
        validated: at(0),
        expires: at(60 * day),
        error: null,
        validationRecords: [],
      });
      const other = await newAccount();
      await readyOrder(other, [name]);

      const found = await sa.getValidAuthorizations({
        accountId: account.id,
        identifiers: [dns(name)],
        validUntilAfter: at(0),
      });
      t.same(
        found.map((a) => a.id),
        second.authorizationIds,
      );
      t.equal(found[0].challenges.find((c) => c.type === 'dns-01')?.status, 'valid');

      const later = await sa.getValidAuthorizations({
        accountId: account.id,
        identifiers: [dns(name)],
        validUntilAfter: at(90 * day),
      });
      t.same(later, [], 'none lasts past the asked time');
      t.ok(first);
    });

    t.test('pages through an account’s orders newest first', async (t) => {
      const owner = await newAccount();
      const created: string[] = [];
      for (let i = 0; i < 7; i++) {
        // Two orders share each creation time, to exercise the id tie-break.
        clock.now = t0 + Math.floor(i / 2) * minute;
        created.push((await newOrder(owner)).id);
      }

      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await sa.getOrdersForAccount({ accountId: owner.id, cursor, limit: 3 });
        seen.push(...page.orderIds);
        cursor = page.next ?? undefined;
        pages++;
      } while (cursor && pages < 10);

      t.equal(pages, 3);
      t.same([...seen].sort(), [...created].sort(), 'every order once');
      const orders = await Promise.all(seen.map((id) => sa.getOrder({ id })));
      const times = orders.map((o) => o.createdAt);
      t.same(times, [...times].sort().reverse(), 'newest first');
      await t.rejects(
        sa.getOrdersForAccount({ accountId: owner.id, cursor: 'garbage', limit: 3 }),
        caError('malformed', /cursor/),
      );
      await t.rejects(
        sa.getOrdersForAccount({ accountId: owner.id, limit: 0 }),
        caError('malformed', /limit/),
      );
    });
  });

  t.test('challenges', async (t) => {
    const account = await newAccount();

    t.test('one validation attempt per authorization', async (t) => {
      const [id] = (await newOrder(account)).authorizationIds;
      const processing = await sa.setChallengeProcessing({ id, challengeType: 'http-01' });
      t.equal(processing.status, 'pending');
      t.equal(processing.challenges.find((c) => c.type === 'http-01')?.status, 'processing');

      await t.rejects(
        sa.setChallengeProcessing({ id, challengeType: 'http-01' }),
        caError('conflict'),
      );
      await t.rejects(
        sa.setChallengeProcessing({ id, challengeType: 'dns-01' }),
        caError('conflict', /http-01 challenge processing/),
      );
    });

    t.test('names a challenge the authorization does not offer', async (t) => {
      const [id] = (await newOrder(account)).authorizationIds;
      await t.rejects(
        sa.setChallengeProcessing({ id, challengeType: 'tls-alpn-01' }),
        caError('notFound', /tls-alpn-01/),
      );
      await t.rejects(
        sa.setChallengeProcessing({ id: 'nope', challengeType: 'http-01' }),
        caError('notFound', /authorization nope/),
      );
    });

    t.test('finalizes only a processing challenge, once', async (t) => {
      const [id] = (await newOrder(account)).authorizationIds;
      const finalize = () =>
        sa.finalizeAuthorization({
          id,
          challengeType: 'http-01',
          status: 'valid',
          validated: at(0),
          expires: at(30 * day),
          error: null,
          validationRecords: [],
        });
      await t.rejects(finalize(), caError('conflict', /not processing/));

      await sa.setChallengeProcessing({ id, challengeType: 'http-01' });
      const valid = await finalize();
      t.equal(valid.status, 'valid');
      t.equal(valid.expires, at(30 * day));
      t.equal(valid.challenges[0].validated, at(0));
      await t.rejects(finalize(), caError('conflict'));
      await t.rejects(
        sa.setChallengeProcessing({ id, challengeType: 'dns-01' }),
        caError('conflict'),
      );
    });

    t.test('a validation finishing after deactivation changes nothing', async (t) => {
      const [id] = (await newOrder(account)).authorizationIds;
      await sa.setChallengeProcessing({ id, challengeType: 'http-01' });
      await sa.deactivateAuthorization({ id });

      await t.rejects(validateFinish(id), caError('conflict', /deactivated/));
      const after = await sa.getAuthorization({ id });
      t.equal(after.status, 'deactivated');
      t.equal(
        after.challenges[0].status,
        'processing',
        'the challenge update made before the failure was rolled back',
      );
    });

    t.test('deactivates a pending or valid authorization once', async (t) => {
      const [id] = (await newOrder(account)).authorizationIds;
      t.equal((await sa.deactivateAuthorization({ id })).status, 'deactivated');
      await t.rejects(sa.deactivateAuthorization({ id }), caError('conflict', /deactivated/));
    });

    const validateFinish = (id: string) =>
      sa.finalizeAuthorization({
        id,
        challengeType: 'http-01',
        status: 'valid',
        validated: at(0),
        expires: at(30 * day),
        error: null,
        validationRecords: [],
      });
  });

  t.test('order processing', async (t) => {
    const account = await newAccount();

    t.test('refuses to process an order that is not ready', async (t) => {
      const order = await newOrder(account);
      await t.rejects(sa.setOrderProcessing({ id: order.id }), caError('conflict', /pending/));
      await t.rejects(sa.setOrderProcessing({ id: 'nope' }), caError('notFound'));
    });

    t.test('lets exactly one of several concurrent callers process an order', async (t) => {
      const order = await readyOrder(account);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, () => sa.setOrderProcessing({ id: order.id })),
      );

      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o) => o.status === 'rejected');
      t.equal(won.length, 1, 'one caller wins');
      const kinds = lost.map((o) => (o as PromiseRejectedResult).reason.kind);
      t.same(kinds, Array(7).fill('conflict'), 'the rest conflict');
      t.equal((await sa.getOrder({ id: order.id })).status, 'processing');
    });

    t.test('refuses a certificate for an order that is not processing', async (t) => {
      const order = await readyOrder(account);
      const cert = await issue(account, order);
      await t.rejects(
        sa.finalizeOrder({ id: order.id, certificateSerial: cert.serial }),
        caError('conflict', /ready/),
      );
    });

    t.test('refuses another account’s certificate', async (t) => {
      const order = await readyOrder(account);
      await sa.setOrderProcessing({ id: order.id });
      const cert = await issue(await newAccount(), null);
      await t.rejects(
        sa.finalizeOrder({ id: order.id, certificateSerial: cert.serial }),
        caError('conflict'),
      );
    });
  });

  t.test('serials and certificates', async (t) => {
    const account = await newAccount();

    t.test('reports a serial collision as duplicate', async (t) => {
      const serial = nextSerial();
      await sa.addSerial({ serial, accountId: account.id, expires: at(day) });
      await t.rejects(
        sa.addSerial({ serial, accountId: account.id, expires: at(day) }),
        caError('duplicate', new RegExp(serial)),
      );
      await t.rejects(
        sa.addSerial({ serial: 'ABCD', accountId: account.id, expires: at(day) }),
        caError('malformed', /lower-case hex/),
      );
      await t.rejects(
        sa.addSerial({ serial: nextSerial(), accountId: 'nope', expires: at(day) }),
        caError('notFound', /account nope/),
      );
    });

    t.test('stores a certificate only under a reserved serial, once', async (t) => {
      const cert = await issue(account, null);
      t.match(cert, { status: 'good', revokedAt: null, issuerId: 'issuer-a' });
      t.same(await sa.getCertificate({ serial: cert.serial }), cert);

      await t.rejects(
        sa.addCertificate({ ...cert }),
        caError('duplicate', new RegExp(cert.serial)),
      );
      await t.rejects(
        sa.addCertificate({ ...cert, serial: nextSerial() }),
        caError('notFound', /never reserved/),
      );
      await t.rejects(sa.getCertificate({ serial: 'ffff' }), caError('notFound', /ffff/));
    });

    t.test('revokes once; the first time and reason stand', async (t) => {
      const cert = await issue(account, null);
      const { serial } = cert;
      const revoked = await sa.revokeCertificate({ serial, reason: 1, revokedAt: at(minute) });
      t.match(revoked, { status: 'revoked', revokedAt: at(minute), revokedReason: 1 });

      await t.rejects(
        sa.revokeCertificate({ serial, reason: 4, revokedAt: at(day) }),
        caError('alreadyRevoked'),
      );
      t.match(await sa.getCertificate({ serial }), { revokedAt: at(minute), revokedReason: 1 });
      await t.rejects(
        sa.revokeCertificate({ serial, reason: 7, revokedAt: at(0) }),
        caError('malformed', /reason/),
      );
    });

    t.test('lets one of several concurrent revocations through', async (t) => {
      const cert = await issue(account, null);
      const outcomes = await Promise.allSettled(
        [0, 1, 4, 5].map((reason) =>
          sa.revokeCertificate({ serial: cert.serial, reason, revokedAt: at(reason * minute) }),
        ),
      );
      t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      t.ok(
        outcomes.every((o) => o.status === 'fulfilled' || o.reason.kind === 'alreadyRevoked'),
        'the others are alreadyRevoked',
      );
    });

    t.test('lists an issuer’s revoked, unexpired certificates', async (t) => {
      const issuerId = `issuer-${nextSerial()}`;
      const kept = await issue(account, null, issuerId);
      const good = await issue(account, null, issuerId);
      const elsewhere = await issue(account, null, `${issuerId}-other`);
      await sa.revokeCertificate({ serial: kept.serial, reason: 5, revokedAt: at(0) });
      await sa.revokeCertificate({ serial: elsewhere.serial, reason: 5, revokedAt: at(0) });

      t.same(await sa.getRevokedCertificates({ issuerId, expiresAfter: at(0) }), [
        { serial: kept.serial, revokedAt: at(0), revokedReason: 5 },
      ]);
      t.same(await sa.getRevokedCertificates({ issuerId, expiresAfter: at(90 * day) }), []);
      t.ok(good);
    });
  });

  t.test('failed requests leave nothing behind', async (t) => {
    const account = await newAccount();
    const tables = ['orders', 'authorizations', 'challenges', 'order_authorizations'] as const;
    const counts = async () => Promise.all(tables.map(count));

    t.test('an order reusing an unknown authorization', async (t) => {
      const before = await counts();
      const name = uniqueName();
      await t.rejects(
        newOrder(account, [name, uniqueName()], { reuse: ['no-such-authz'], fresh: [name] }),
        caError('notFound', /no-such-authz/),
      );
      t.same(await counts(), before);
    });

    t.test('an order failing after its first rows were written', async (t) => {
      const before = await counts();
      const [a, b] = [uniqueName(), uniqueName()];
      const failing = sa.newOrderAndAuthorizations({
        accountId: account.id,
        identifiers: [dns(a), dns(b)],
        profile: '',
        notBefore: null,
        notAfter: null,
        expires: at(day),
        replaces: null,
        reuseAuthorizationIds: [],
        newAuthorizations: [
          {
            identifier: dns(a),
            wildcard: false,
            expires: at(day),
            challenges: [{ type: 'http-01', token: 'x' }],
          },
          {
            identifier: dns(b),
            wildcard: false,
            expires: at(day),
            // The second authorization repeats a challenge type: the challenges' insert fails
            // after both authorizations are already written.
            challenges: [
              { type: 'http-01', token: 'y' },
              { type: 'http-01', token: 'z' },
            ],
          },
        ],
      });
      await t.rejects(failing, caError('duplicate'));
      t.same(await counts(), before);
    });
  });
}
