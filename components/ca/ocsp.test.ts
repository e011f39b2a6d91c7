import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import t from 'tap';
import { issuerFixture, pkijsVerifies, readOcspResponse } from '../../test/helpers/ocsp.js';
import { requireTool } from '../../test/helpers/tools.js';
import { createLogger } from '../lib/log.js';
import { buildOcspResponse, OcspGeneratorImpl } from './ocsp.js';

/**
 * OCSP responses as the CA signs them, for an ECDSA and an RSA issuer: OpenSSL parses and
 * verifies them against the issuer, pkijs verifies them too, and the generator refuses what
 * it must not sign.
 */

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'ca-ocsp-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const thisUpdate = new Date('2030-01-02T03:04:05.678Z');
const nextUpdate = new Date('2030-01-05T03:04:05.678Z');
const revokedAt = new Date('2030-01-02T01:00:00.000Z');

for (const algorithm of ['ecdsa-p256', 'rsa-2048'] as const) {
  t.test(`${algorithm} issuer`, async (t) => {
    const fixture = await issuerFixture(join(dir, algorithm), algorithm);
    const { issuer } = fixture;

    t.test('signs a good response pkijs verifies against the issuer and root', async (t) => {
      const der = await buildOcspResponse(
        { serialHex: '7a01', status: 'good', thisUpdate, nextUpdate },
        issuer,
      );
      t.match(readOcspResponse(der), {
        responseStatus: 0,
        certStatus: 'good',
        serialHex: '7a01',
        // GeneralizedTime without fractions (RFC 5019 §2.2.4).
        thisUpdate: new Date('2030-01-02T03:04:05.000Z'),
        nextUpdate: new Date('2030-01-05T03:04:05.000Z'),
      });
      t.ok(await pkijsVerifies(der, issuer.certDer, fixture.rootDer), 'pkijs verifies it');
    });

    t.test('signs a revoked response with time and reason', async (t) => {
      const der = await buildOcspResponse(
        { serialHex: 'ff02', status: 'revoked', revokedAt, reason: 1, thisUpdate, nextUpdate },
        issuer,
      );
      t.match(readOcspResponse(der), {
        certStatus: 'revoked',
        serialHex: '00ff02',
        revokedAt,
        reason: 1,
      });
      t.ok(await pkijsVerifies(der, issuer.certDer, fixture.rootDer));
    });

    t.test('leaves the reason out for unspecified', async (t) => {
      const der = await buildOcspResponse(
        { serialHex: '7a03', status: 'revoked', revokedAt, reason: 0, thisUpdate, nextUpdate },
        issuer,
      );
      const read = readOcspResponse(der);
      t.equal(read.certStatus, 'revoked');
      t.equal(read.reason, undefined);
    });

    t.test('openssl ocsp parses it and verifies it against the issuer', async (t) => {
      if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
      const der = await buildOcspResponse(
        { serialHex: '7a04', status: 'revoked', revokedAt, reason: 4, thisUpdate, nextUpdate },
        issuer,
      );
      const file = join(dir, `${algorithm}-resp.der`);
      writeFileSync(file, der);

      const text = await run('openssl', ['ocsp', '-respin', file, '-resp_text', '-noverify']);
      t.match(text.stdout, /OCSP Response Status: successful/);
      t.match(text.stdout, /Responder Id: [0-9A-F]{40}/, 'responderID byKey');
      t.match(text.stdout, /Hash Algorithm: sha1/);
      t.match(text.stdout, /Serial Number: 7A04/);
      t.match(text.stdout, /Cert Status: revoked/);
      t.match(text.stdout, /Revocation Reason: superseded/);

      const verified = await run('openssl', [
        'ocsp',
        '-respin',
        file,
        '-issuer',
        fixture.certFile,
        '-VAfile',
        fixture.certFile,
        '-no_nonce',
      ]);
      t.match(`${verified.stdout}${verified.stderr}`, /Response verify OK/);
    });
  });
}

t.test('OcspGeneratorImpl', async (t) => {
  const fixture = await issuerFixture(join(dir, 'generator'));
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
  });
  const generator = new OcspGeneratorImpl({
    issuers: [fixture.issuer],
    lifetimeSeconds: 3 * 86_400,
    log: createLogger('ca', { destination: stream }),
    now: () => thisUpdate,
  });
  const id = fixture.issuer.id;

  t.test('signs for a loaded issuer and writes an audit event', async (t) => {
    const signed = await generator.signOcspResponse({
      serial: '7a05',
      issuerId: id,
      status: 'good',
    });
    t.match(signed, {
      serial: '7a05',
      issuerId: id,
      status: 'good',
      thisUpdate: '2030-01-02T03:04:05.000Z',
      nextUpdate: '2030-01-05T03:04:05.000Z',
    });
    t.equal(readOcspResponse(Buffer.from(signed.der, 'base64')).certStatus, 'good');

    await new Promise((resolve) => setImmediate(resolve));
    t.match(lines.at(-1), {
      msg: 'ocsp response signed',
      audit: true,
      serial: '7a05',
      issuer: id,
      status: 'good',
    });
  });

  t.test('rejects an issuer it has not loaded', async (t) => {
    await t.rejects(
      generator.signOcspResponse({ serial: '7a06', issuerId: 'nope', status: 'good' }),
      {
        name: 'CaError',
        kind: 'notFound',
        detail: new RegExp(`issuer "nope" is not loaded; loaded: ${id}`),
      },
    );
  });

  t.test('rejects a malformed serial, status, time or reason, naming it', async (t) => {
    await t.rejects(
      generator.signOcspResponse({ serial: 'XYZ', issuerId: id, status: 'good' }),
      { name: 'CaError', kind: 'malformed', detail: /serial .* got "XYZ"/ },
    );
    await t.rejects(
      generator.signOcspResponse({ serial: '7a07', issuerId: id, status: 'unknown' as 'good' }),
      { name: 'CaError', kind: 'malformed', detail: /status to be good or revoked, got "unknown"/ },
    );
    await t.rejects(
      generator.signOcspResponse({ serial: '7a07', issuerId: id, status: 'revoked', reason: 1 }),
      { name: 'CaError', kind: 'malformed', detail: /revokedAt/ },
    );
    await t.rejects(
      generator.signOcspResponse({
        serial: '7a07',
        issuerId: id,
        status: 'revoked',
        revokedAt: revokedAt.toISOString(),
        reason: 7,
      }),
      { name: 'CaError', kind: 'malformed', detail: /CRLReason code \(0-6, 8-10\), got 7/ },
    );
  });
});
