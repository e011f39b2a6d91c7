import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { certificateToPem, pemToDers } from '../../components/lib/x509.js';
import { startTestCa } from '../helpers/ca.js';
import { issueOverHttp01, startHttp01Server } from '../helpers/challenge-servers.js';
import { eventually, outcome, requireTool } from '../helpers/tools.js';

/**
 * Revocation as a relying party sees it, against every component as a real process: OpenSSL
 * asks the OCSP URL in the certificate's AIA, and checks the certificate against the CRL at
 * its CRL distribution point, before and after acme-client revokes it.
 *
 * A serial this CA never issued gets the OCSP error status `unauthorized` (RFC 5019 §2.2.3),
 * not a signed `unknown`: the responder holds no key to sign one with.
 */

const run = promisify(execFile);


t.test('OCSP and the CRL follow a certificate from issuance to revocation', async (t) => {
  if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
  const ca = await startTestCa();
  t.teardown(() => ca.stop());
  acme.axios.defaults.httpsAgent = ca.agent;
  const http01 = await startHttp01Server(ca.httpPort);
  t.teardown(() => http01.close());

  const client = new acme.Client({
    directoryUrl: ca.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    backoffMin: 50,
    backoffMax: 500,
  });
  await client.createAccount({ termsOfServiceAgreed: true });
  const [, csr] = await acme.crypto.createCsr({ commonName: 'ocsp.revocation.test' });
  const chain = await issueOverHttp01(client, http01.tokens, csr);

  const [leafPem = '', issuerPem = ''] = pemToDers(chain).map(certificateToPem);
  const leafFile = join(ca.dir, 'leaf.pem');
  const issuerFile = join(ca.dir, 'issuer.pem');
  const rootFile = join(ca.shared.caDir, 'root.pem');
  writeFileSync(leafFile, leafPem);
  writeFileSync(issuerFile, issuerPem);

  const leaf = new x509.X509Certificate(leafPem);
  const aia = leaf.getExtension(x509.AuthorityInfoAccessExtension);
  const ocspUrl = aia?.ocsp[0]?.value ?? '';
  const issuerUrl = aia?.caIssuers[0]?.value ?? '';
  const crlUrl =
    leaf.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints[0]
      ?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier ?? '';
  const publicBase = ca.shared.publicHttpBase;
  t.match(ocspUrl, new RegExp(`^${publicBase}/ocsp/[0-9a-f]{8}$`), 'AIA names our responder');
  t.match(crlUrl, new RegExp(`^${publicBase}/crl/[0-9a-f]{8}\\.crl$`));

  const ocsp = (target: string[]) =>
    outcome('openssl', [
      'ocsp', '-issuer', issuerFile, ...target, '-url', ocspUrl, '-CAfile', rootFile, '-no_nonce',
    ]);
  const crlFile = join(ca.dir, 'crl.pem');
  const fetchCrl = async () => {
    const res = await fetch(crlUrl);
    if (res.status !== 200) return '';
    const derFile = join(ca.dir, 'crl.der');
    writeFileSync(derFile, Buffer.from(await res.arrayBuffer()));
    await run('openssl', ['crl', '-inform', 'DER', '-in', derFile, '-out', crlFile]);
    return (await run('openssl', ['crl', '-in', crlFile, '-text', '-noout'])).stdout;
  };
  const verifyWithCrl = () =>
    outcome('openssl', [
      'verify', '-crl_check', '-CAfile', rootFile, '-untrusted', issuerFile, '-CRLfile', crlFile,
      leafFile,
    ]);
  const serial = leaf.serialNumber.toUpperCase().replace(/^00/, '');

  await t.test('the issuer URL serves the intermediate', async (t) => {
    const res = await fetch(issuerUrl);
    t.equal(res.status, 200);
    t.equal(
      new x509.X509Certificate(new Uint8Array(await res.arrayBuffer())).toString('pem').trim(),
      new x509.X509Certificate(issuerPem).toString('pem').trim(),
    );
  });

  await t.test('openssl ocsp reports the new certificate good', async (t) => {
    const { stdout, stderr } = await ocsp(['-cert', leafFile]);
    t.match(stderr, /Response verify OK/);
    t.match(stdout, new RegExp(`${leafFile}: good`));
    t.match(stdout, /This Update: .*\n\s*Next Update: /);
  });

  await t.test('a serial never issued gets the unauthorized error status', async (t) => {
    const { stdout, stderr } = await ocsp(['-serial', `0x${randomBytes(16).toString('hex')}`]);
    t.match(`${stdout}${stderr}`, /Responder Error: unauthorized \(6\)/);
  });

  await t.test('the CRL before revocation lets the certificate verify', async (t) => {
    const text = await eventually(fetchCrl, (body) => body !== '');
    t.match(text, /Certificate Revocation List/);
    t.notMatch(text, new RegExp(`Serial Number: ${serial}`));
    const { code, stdout } = await verifyWithCrl();
    t.equal(code, 0);
    t.match(stdout, /leaf\.pem: OK/);
  });

  await client.revokeCertificate(chain, { reason: 4 });

  await t.test('after revokeCert, openssl ocsp reports revoked with the reason', async (t) => {
    const { stdout, stderr } = await eventually(
      () => ocsp(['-cert', leafFile]),
      (r) => r.stdout.includes(': revoked'),
    );
    t.match(stderr, /Response verify OK/);
    t.match(stdout, new RegExp(`${leafFile}: revoked`));
    t.match(stdout, /Reason: superseded/);
    t.match(stdout, /Revocation Time: /);
  });

  await t.test('the CRL lists the serial and openssl verify -crl_check refuses it', async (t) => {
    const text = await eventually(fetchCrl, (body) => body.includes(`Serial Number: ${serial}`));
    const entry = `Serial Number: ${serial}\\s+Revocation Date: .*\\s+CRL entry extensions:`;
    t.match(text, new RegExp(`${entry}\\s+X509v3 CRL Reason Code:\\s+Superseded`));

    const { code, stdout, stderr } = await verifyWithCrl();
    t.not(code, 0);
    t.match(`${stdout}${stderr}`, /certificate revoked/);
  });

  t.ok(readFileSync(crlFile).length > 0);
});
