import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sqliteUrl } from '../../test/helpers/db.js';
import { issuerFixture, readOcspResponse } from '../../test/helpers/ocsp.js';
import { createLogger } from '../lib/log.js';
import { openDatabase } from '../sa/db.js';
import { migrateToLatest } from '../sa/migrations.js';
import { StorageAuthorityImpl } from '../sa/storage.js';
import { CrlGeneratorImpl } from './crl.js';
import { OcspGeneratorImpl } from './ocsp.js';
import { RevocationRefresher } from './refresher.js';

/**
 * The refresher against a real SA on SQLite and the real signers, on a test clock: it signs
 * what is missing or old, fixes a good response left on a revoked certificate, reissues a CRL
 * behind a revocation, and then finds nothing to do.
 */

const dir = mkdtempSync(join(tmpdir(), 'ca-refresher-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const hour = 3_600_000;
const day = 24 * hour;
const clock = { now: Date.parse('2030-01-01T00:00:00.000Z') };
const now = () => new Date(clock.now);
const silent = createLogger('ca', { level: 'silent' });

const { issuer } = await issuerFixture(dir);
const sadb = openDatabase(sqliteUrl(dir));
t.teardown(() => sadb.destroy());
await migrateToLatest(sadb);
const sa = new StorageAuthorityImpl(sadb.db, { now });

const issuers = [issuer];
const ocsp = new OcspGeneratorImpl({ issuers, lifetimeSeconds: 3 * 86_400, log: silent, now });
const crl = new CrlGeneratorImpl({ issuers, lifetimeSeconds: 7 * 86_400, sa, log: silent, now });
const refresher = new RevocationRefresher({
  issuerIds: [issuer.id],
  ocsp,
  crl,
  sa,
  ocspLifetimeSeconds: 3 * 86_400,
  crlLifetimeSeconds: 7 * 86_400,
  refreshFraction: 0.5,
  intervalSeconds: 60,
  batchSize: 2,
  log: silent,
  now,
});

const account = await sa.newAccount({
  jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
  keyThumbprint: 'refresher-test',
  contact: [],
  termsOfServiceAgreed: true,
  eabKeyId: null,
});
let serials = 0;
async function issue(): Promise<string> {
  const serial = (0x3000 + ++serials).toString(16).padStart(32, '0');
  const notAfter = new Date(clock.now + 90 * day).toISOString();
  await sa.addSerial({ serial, accountId: account.id, expires: notAfter });
  await sa.addCertificate({
    serial,
    accountId: account.id,
    orderId: null,
    issuerId: issuer.id,
    der: Buffer.from(serial).toString('base64'),
    notBefore: now().toISOString(),
    notAfter,
  });
  return serial;
}

const statusOf = async (serial: string) => {
  const stored = await sa.getOcspResponse({ issuerId: issuer.id, serial });
  return { ...readOcspResponse(Buffer.from(stored.der, 'base64')), thisUpdate: stored.thisUpdate };
};

t.test('signs every missing response, page by page, and the first CRL', async (t) => {
  const issued = [await issue(), await issue(), await issue()];
  const figures = await refresher.refresh();
  t.same(figures, { ocspSigned: 3, ocspFailed: 0, crlsSigned: 1, crlsFailed: 0 });
  for (const serial of issued) t.equal((await statusOf(serial)).certStatus, 'good');
  t.match(await sa.getCrl({ issuerId: issuer.id }), { thisUpdate: now().toISOString() });
});

t.test('does nothing while everything is fresh', async (t) => {
  clock.now += hour;
  t.same(await refresher.refresh(), { ocspSigned: 0, ocspFailed: 0, crlsSigned: 0, crlsFailed: 0 });
});

t.test('re-signs a good response left on a revoked certificate, and its CRL', async (t) => {
  const revoked = await issue();
  await refresher.refresh();
  clock.now += 5_000;
  // The RA recorded the revocation, then failed to publish it.
  await sa.revokeCertificate({ serial: revoked, reason: 1, revokedAt: now().toISOString() });
  clock.now += 60_000;

  t.same(await refresher.refresh(), { ocspSigned: 1, ocspFailed: 0, crlsSigned: 1, crlsFailed: 0 });
  t.match(await statusOf(revoked), { certStatus: 'revoked', reason: 1 });
});

t.test('re-signs responses and CRLs past half their lifetime', async (t) => {
  clock.now += 4 * day;
  const figures = await refresher.refresh();
  t.equal(figures.ocspSigned, serials, 'every unexpired certificate');
  t.equal(figures.crlsSigned, 1);
  t.same(await refresher.refresh(), { ocspSigned: 0, ocspFailed: 0, crlsSigned: 0, crlsFailed: 0 });
});

t.test('start runs a pass at once and stop waits for it', async (t) => {
  await issue();
  refresher.start();
  await refresher.stop();
  t.equal((await statusOf((0x3000 + serials).toString(16).padStart(32, '0'))).certStatus, 'good');
});
