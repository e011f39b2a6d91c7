import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { postgresUrlOrSkip, sqliteUrl } from '../../test/helpers/db.js';
import { openDatabase } from './db.js';
import { migrateToLatest } from './migrations.js';
import { StorageAuthorityImpl } from './storage.js';

/**
 * OCSP responses and CRLs in the SA, against SQLite and PostgreSQL: what is stored comes back,
 * and no store ever steps back (older response, good over revoked, smaller CRL number).
 */

const dir = mkdtempSync(join(tmpdir(), 'sa-revocation-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('sqlite', (t) => behaviour(t, sqliteUrl(dir)));

t.test('postgres', async (t) => {
  const url = await postgresUrlOrSkip(t);
  if (url) await behaviour(t, url);
});

const caError = (kind: string, detail?: RegExp) => ({
  name: 'CaError',
  kind,
  ...(detail && { detail }),
});

const t0 = Date.parse('2030-01-01T00:00:00.000Z');
const hour = 3_600_000;
const day = 24 * hour;
const at = (ms: number) => new Date(t0 + ms).toISOString();
const der = (text: string) => Buffer.from(text).toString('base64');

async function behaviour(t: Test, url: string) {
  const sadb = openDatabase(url);
  t.teardown(() => sadb.destroy());
  await migrateToLatest(sadb);

  const clock = { now: t0 };
  const sa = new StorageAuthorityImpl(sadb.db, { now: () => new Date(clock.now) });

  const account = await sa.newAccount({
    jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
    keyThumbprint: 'revocation-test',
    contact: [],
    termsOfServiceAgreed: true,
    eabKeyId: null,
  });

  let serials = 0;
  const issue = async (issuerId = 'issuer-a', notAfter = at(90 * day)) => {
    const serial = (0x2000 + ++serials).toString(16).padStart(32, '0');
    await sa.addSerial({ serial, accountId: account.id, expires: notAfter });
    await sa.addCertificate({
      serial,
      accountId: account.id,
      orderId: null,
      issuerId,
      der: der(`certificate ${serial}`),
      notBefore: at(0),
      notAfter,
    });
    return serial;
  };

  const response = (
    serial: string,
    status: 'good' | 'revoked',
    thisUpdate: number,
    issuerId = 'issuer-a',
  ) => ({
    serial,
    issuerId,
    status,
    der: der(`${status} ${serial} ${thisUpdate}`),
    thisUpdate: at(thisUpdate),
    nextUpdate: at(thisUpdate + 3 * day),
  });

  t.test('stores an OCSP response and reads it back by issuer and serial', async (t) => {
    const serial = await issue();
    await sa.storeOcspResponse(response(serial, 'good', 0));

    const stored = await sa.getOcspResponse({ issuerId: 'issuer-a', serial });
    t.match(stored, {
      serial,
      issuerId: 'issuer-a',
      status: 'good',
      der: der(`good ${serial} 0`),
      thisUpdate: at(0),
      nextUpdate: at(3 * day),
      updatedAt: at(0),
    });
    await t.rejects(
      sa.getOcspResponse({ issuerId: 'issuer-b', serial }),
      caError('notFound', /issuer-b/),
    );
  });

  t.test('reports a serial without a response as notFound', async (t) => {
    await t.rejects(
      sa.getOcspResponse({ issuerId: 'issuer-a', serial: '7f01' }),
      caError('notFound', /7f01/),
    );
  });

  t.test('rejects a response for a serial never reserved', async (t) => {
    await t.rejects(
      sa.storeOcspResponse(response('7f02', 'good', 0)),
      caError('notFound', /7f02 was never reserved/),
    );
  });

  t.test('replaces a response with a newer one and refuses an older one', async (t) => {
    const serial = await issue();
    await sa.storeOcspResponse(response(serial, 'good', hour));
    await sa.storeOcspResponse(response(serial, 'good', 2 * hour));
    await t.rejects(
      sa.storeOcspResponse(response(serial, 'good', hour)),
      caError('conflict', /does not replace it/),
    );
    t.equal((await sa.getOcspResponse({ issuerId: 'issuer-a', serial })).thisUpdate, at(2 * hour));
  });

  t.test('never lets good replace revoked, even when newer', async (t) => {
    const serial = await issue();
    await sa.storeOcspResponse(response(serial, 'good', 0));
    await sa.revokeCertificate({ serial, reason: 1, revokedAt: at(hour) });
    await sa.storeOcspResponse(response(serial, 'revoked', hour));

    await t.rejects(
      sa.storeOcspResponse(response(serial, 'good', 2 * hour)),
      caError('conflict', /is revoked; a good OCSP response is refused/),
    );
    await sa.storeOcspResponse(response(serial, 'revoked', 2 * hour));
    t.match(await sa.getOcspResponse({ issuerId: 'issuer-a', serial }), {
      status: 'revoked',
      thisUpdate: at(2 * hour),
    });
  });

  t.test('rejects a revoked response for a good certificate, or another issuer', async (t) => {
    const serial = await issue();
    await t.rejects(
      sa.storeOcspResponse(response(serial, 'revoked', 0)),
      caError('conflict', /is good; a revoked OCSP response is refused/),
    );
    await t.rejects(
      sa.storeOcspResponse(response(serial, 'good', 0, 'issuer-b')),
      caError('conflict', /issued by issuer-a, not issuer-b/),
    );
  });

  t.test('rejects malformed responses, naming the field', async (t) => {
    const serial = await issue();
    await t.rejects(
      sa.storeOcspResponse({ ...response(serial, 'good', 0), status: 'unknown' as 'good' }),
      caError('malformed', /status to be one of good, revoked, got "unknown"/),
    );
    await t.rejects(
      sa.storeOcspResponse({ ...response(serial, 'good', 0), der: 'not base64!' }),
      caError('malformed', /der to be base64 DER/),
    );
    await t.rejects(
      sa.storeOcspResponse({ ...response(serial, 'good', 0), nextUpdate: at(0) }),
      caError('malformed', /nextUpdate after thisUpdate/),
    );
  });

  t.test('lists certificates whose response is missing, old or out of date', async (t) => {
    const issuerId = 'issuer-refresh';
    const missing = await issue(issuerId);
    const old = await issue(issuerId);
    const fresh = await issue(issuerId);
    const outdated = await issue(issuerId);
    const expired = await issue(issuerId, at(hour));
    await issue('issuer-elsewhere');

    await sa.storeOcspResponse(response(old, 'good', 0, issuerId));
    await sa.storeOcspResponse(response(fresh, 'good', 2 * day, issuerId));
    await sa.storeOcspResponse(response(outdated, 'good', 2 * day, issuerId));
    await sa.revokeCertificate({ serial: outdated, reason: 4, revokedAt: at(2 * day) });

    const candidates = await sa.getOcspRefreshCandidates({
      issuerIds: [issuerId],
      thisUpdateBefore: at(day),
      expiresAfter: at(2 * day),
      limit: 10,
    });
    t.same(
      candidates.map((c) => c.serial),
      [missing, old, outdated],
      'missing first, then oldest; expired, fresh and other issuers left out',
    );
    t.match(candidates[2], { status: 'revoked', revokedAt: at(2 * day), revokedReason: 4 });
    t.notOk(candidates.some((c) => c.serial === expired));

    const one = await sa.getOcspRefreshCandidates({
      issuerIds: [issuerId],
      thisUpdateBefore: at(day),
      expiresAfter: at(2 * day),
      limit: 1,
    });
    t.same(one.map((c) => c.serial), [missing]);
  });

  t.test('rejects a refresh page size out of range', async (t) => {
    await t.rejects(
      sa.getOcspRefreshCandidates({
        issuerIds: ['issuer-a'],
        thisUpdateBefore: at(0),
        expiresAfter: at(0),
        limit: 0,
      }),
      caError('malformed', /limit to be an integer from 1 to 1000, got 0/),
    );
  });

  const crl = (issuerId: string, number: number, thisUpdate: number) => ({
    issuerId,
    number: String(number),
    der: der(`crl ${issuerId} ${number}`),
    thisUpdate: at(thisUpdate),
    nextUpdate: at(thisUpdate + 7 * day),
  });

  t.test('stores a CRL per issuer; only a larger number replaces it', async (t) => {
    await t.rejects(sa.getCrl({ issuerId: 'issuer-crl' }), caError('notFound', /issuer-crl/));

    await sa.storeCrl(crl('issuer-crl', 1_700_000_000_000, 0));
    await sa.storeCrl(crl('issuer-crl', 1_700_000_000_001, hour));
    await t.rejects(
      sa.storeCrl(crl('issuer-crl', 1_700_000_000_001, 2 * hour)),
      caError('conflict', /already has CRL number 1700000000001/),
    );

    t.same(await sa.getCrl({ issuerId: 'issuer-crl' }), {
      issuerId: 'issuer-crl',
      number: '1700000000001',
      der: der('crl issuer-crl 1700000000001'),
      thisUpdate: at(hour),
      nextUpdate: at(hour + 7 * day),
      updatedAt: at(0),
    });
    await t.rejects(
      sa.storeCrl({ ...crl('issuer-crl', 1, 0), number: '-1' }),
      caError('malformed', /number to be a decimal CRL number/),
    );
  });

  t.test('lists issuers whose CRL is missing, old, or older than a revocation', async (t) => {
    await sa.storeCrl(crl('crl-fresh', 10, 2 * day));
    await sa.storeCrl(crl('crl-old', 10, 0));
    await sa.storeCrl(crl('crl-behind', 10, 2 * day));
    const serial = await issue('crl-behind');
    await sa.revokeCertificate({ serial, reason: 1, revokedAt: at(2 * day + hour) });

    const stale = await sa.getCrlRefreshCandidates({
      issuerIds: ['crl-missing', 'crl-fresh', 'crl-old', 'crl-behind'],
      thisUpdateBefore: at(day),
    });
    t.same(stale, ['crl-missing', 'crl-old', 'crl-behind']);
  });
}
