import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as pkijs from 'pkijs';
import t from 'tap';
import { issuerFixture } from '../../test/helpers/ocsp.js';
import { requireTool } from '../../test/helpers/tools.js';
import { createLogger } from '../lib/log.js';
import { buildCrl, CrlGeneratorImpl } from './crl.js';

/**
 * CRLs as the CA signs them: OpenSSL parses and verifies them against the issuer, pkijs
 * verifies their signature, an empty CRL has no revokedCertificates at all, and the generator
 * lists what the SA reports with numbers that only grow.
 */

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ca-crl-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const thisUpdate = new Date('2030-01-02T03:04:05.678Z');
const nextUpdate = new Date('2030-01-09T03:04:05.678Z');
const silent = createLogger('ca', { level: 'silent' });

for (const algorithm of ['ecdsa-p256', 'rsa-2048'] as const) {
  t.test(`${algorithm} issuer`, async (t) => {
    const fixture = await issuerFixture(join(dir, algorithm), algorithm);
    const { issuer } = fixture;
    const entries = [
      { serialHex: '7a01', revokedAt: new Date('2030-01-01T00:00:00Z'), reason: 1 },
      { serialHex: 'ff02', revokedAt: new Date('2030-01-01T12:00:00Z'), reason: 0 },
    ];

    t.test('openssl crl reads the entries, reasons and extensions and verifies it', async (t) => {
      if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
      const number = 1_893_553_445_678n;
      const der = await buildCrl(
        { number, thisUpdate, nextUpdate, entries, distributionPoint: issuer.crlUrl },
        issuer,
      );
      const file = join(dir, `${algorithm}.crl`);
      writeFileSync(file, der);

      const { stdout } = await run('openssl', [
        'crl', '-inform', 'DER', '-in', file, '-text', '-noout',
      ]);
      t.match(stdout, /Version 2/);
      t.match(stdout, /Last Update: Jan {2}2 03:04:05 2030 GMT/);
      t.match(stdout, /Next Update: Jan {2}9 03:04:05 2030 GMT/);
      t.match(stdout, /X509v3 CRL Number: \s*1893553445678/);
      t.match(stdout, /X509v3 Authority Key Identifier/);
      t.match(stdout, /Issuing Distribution Point: critical[\s\S]*URI:http:\/\/127\.0\.0\.1:4002\/crl\//);
      t.match(stdout, /Serial Number: 7A01[\s\S]*Key Compromise/);
      t.match(stdout, /Serial Number: FF02/);
      t.equal(stdout.match(/CRL Reason Code/g)?.length, 1, 'unspecified writes no reason code');

      const verified = await run('openssl', [
        'crl', '-inform', 'DER', '-in', file, '-CAfile', fixture.certFile, '-noout',
      ]);
      t.match(`${verified.stdout}${verified.stderr}`, /verify OK/);
    });

    t.test('pkijs verifies the signature against the issuer certificate', async (t) => {
      const der = await buildCrl({ number: 5n, thisUpdate, nextUpdate, entries }, issuer);
      const crl = pkijs.CertificateRevocationList.fromBER(new Uint8Array(der));
      const issuerCert = pkijs.Certificate.fromBER(new Uint8Array(issuer.certDer));
      t.ok(await crl.verify({ issuerCertificate: issuerCert }));
      t.equal(crl.revokedCertificates?.length, 2);
    });

    t.test('an empty CRL carries no revokedCertificates field (RFC 5280 §5.1.2.6)', async (t) => {
      const der = await buildCrl({ number: 6n, thisUpdate, nextUpdate, entries: [] }, issuer);
      const crl = pkijs.CertificateRevocationList.fromBER(new Uint8Array(der));
      t.equal(crl.revokedCertificates, undefined);
    });
  });
}

t.test('rejects a template whose nextUpdate is not after thisUpdate', async (t) => {
  const { issuer } = await issuerFixture(join(dir, 'bad-template'));
  const template = { number: 1n, thisUpdate, nextUpdate: thisUpdate, entries: [] };
  await t.rejects(buildCrl(template, issuer), { message: /expected thisUpdate before nextUpdate/ });
});

t.test('CrlGeneratorImpl', async (t) => {
  const { issuer } = await issuerFixture(join(dir, 'generator'));
  const asked: { issuerId: string; expiresAfter: string }[] = [];
  const generator = new CrlGeneratorImpl({
    issuers: [issuer],
    lifetimeSeconds: 7 * 86_400,
    sa: {
      getRevokedCertificates: async (req) => {
        asked.push(req);
        return [{ serial: '7a09', revokedAt: '2030-01-01T00:00:00.000Z', revokedReason: 4 }];
      },
    },
    log: silent,
    now: () => thisUpdate,
  });

  t.test('lists what the SA reports and keeps entries a lifetime past expiry', async (t) => {
    const signed = await generator.signCrl({ issuerId: issuer.id });
    t.match(signed, {
      issuerId: issuer.id,
      number: String(thisUpdate.getTime()),
      thisUpdate: '2030-01-02T03:04:05.000Z',
      nextUpdate: '2030-01-09T03:04:05.000Z',
      entries: 1,
    });
    t.same(asked.at(-1), { issuerId: issuer.id, expiresAfter: '2029-12-26T03:04:05.000Z' });

    const crl = pkijs.CertificateRevocationList.fromBER(
      new Uint8Array(Buffer.from(signed.der, 'base64')),
    );
    const serial = crl.revokedCertificates?.[0].userCertificate.valueBlock.valueHexView;
    t.equal(Buffer.from(serial ?? []).toString('hex'), '7a09');
  });

  t.test('numbers grow even within one millisecond', async (t) => {
    const first = await generator.signCrl({ issuerId: issuer.id });
    const second = await generator.signCrl({ issuerId: issuer.id });
    t.ok(BigInt(second.number) > BigInt(first.number));
  });

  t.test('rejects an issuer it has not loaded', async (t) => {
    await t.rejects(generator.signCrl({ issuerId: 'nope' }), {
      name: 'CaError',
      kind: 'notFound',
      detail: /issuer "nope" is not loaded/,
    });
  });
});
