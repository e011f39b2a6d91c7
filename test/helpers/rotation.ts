import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';
import { certificateToPem, pemToDers } from '../../components/lib/x509.js';
import type { SharedKeyStore } from '../../pipelines/local/shared-state.js';
import {
  retireIssuer,
  rotateIssuer,
  type RetireResult,
  type RotationResult,
} from '../../pipelines/rotate-ca-key.js';
import { restartTestCa, startTestCa, type TestCa } from './ca.js';
import { issueOverHttp01, startHttp01Server } from './challenge-servers.js';
import { eventually, outcome } from './tools.js';

/**
 * CA key rotation end to end, for either key store: a certificate is issued, the issuing key
 * rotated and the CA restarted on the same state (as a deploy would), and a second certificate
 * issued. Each leaf chains to the one root through its own intermediate, and each is answered
 * by the OCSP responder at its own AIA URL and the CRL at its own distribution point, signed
 * by its own issuer. OpenSSL is the judge throughout.
 */

const run = promisify(execFile);


/** A leaf and its intermediate as files, with what the leaf says about its issuer. */
interface Issued {
  client: acme.Client;
  chain: string;
  leafFile: string;
  issuerFile: string;
  /** As `openssl crl -text` prints it. */
  serial: string;
  ocspUrl: string;
  crlUrl: string;
  authorityKeyId: string;
}

export interface RotationChecks {
  /** Where the CA keeps its keys. */
  keyStore: SharedKeyStore;
  /** Further checks once the rotation is recorded, before the CA restarts on it. */
  afterRotation?: (t: Test, ca: TestCa, rotation: RotationResult) => Promise<void>;
  /** Further checks once the old issuer is retired. */
  afterRetirement?: (t: Test, ca: TestCa, retired: RetireResult) => Promise<void>;
}

export async function rotationTest(t: Test, checks: RotationChecks): Promise<void> {
  let ca: TestCa = await startTestCa({ keyStore: checks.keyStore });
  t.teardown(() => ca.stop());
  const http01 = await startHttp01Server(ca.httpPort);
  t.teardown(() => http01.close());
  const rootFile = join(ca.shared.caDir, 'root.pem');

  const issue = async (name: string): Promise<Issued> => {
    acme.axios.defaults.httpsAgent = ca.agent;
    const client = new acme.Client({
      directoryUrl: ca.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      backoffMin: 50,
      backoffMax: 500,
    });
    const [, csr] = await acme.crypto.createCsr({ commonName: `${name}.rotation.test` });
    const chain = await issueOverHttp01(client, http01.tokens, csr);

    const [leafPem = '', issuerPem = ''] = pemToDers(chain).map(certificateToPem);
    const leafFile = join(ca.dir, `${name}-leaf.pem`);
    const issuerFile = join(ca.dir, `${name}-issuer.pem`);
    writeFileSync(leafFile, leafPem);
    writeFileSync(issuerFile, issuerPem);
    const leaf = new x509.X509Certificate(leafPem);
    return {
      client,
      chain,
      leafFile,
      issuerFile,
      serial: leaf.serialNumber.toUpperCase().replace(/^00/, ''),
      ocspUrl: leaf.getExtension(x509.AuthorityInfoAccessExtension)?.ocsp[0]?.value ?? '',
      crlUrl:
        leaf.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints[0]
          ?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier ?? '',
      authorityKeyId: leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId ?? '',
    };
  };

  const ocsp = (c: Issued) =>
    outcome('openssl', [
      'ocsp', '-issuer', c.issuerFile, '-cert', c.leafFile, '-url', c.ocspUrl, '-CAfile', rootFile,
      '-no_nonce',
    ]);
  const verify = (c: Issued, extra: string[] = []) =>
    outcome('openssl', [
      'verify', ...extra, '-CAfile', rootFile, '-untrusted', c.issuerFile, c.leafFile,
    ]);
  /** The CRL at the leaf's distribution point as PEM in a file, and its text; '' until served. */
  const fetchCrl = async (c: Issued) => {
    const crlFile = c.leafFile.replace(/-leaf\.pem$/, '-crl.pem');
    const res = await fetch(c.crlUrl);
    if (res.status !== 200) return { crlFile, text: '' };
    const derFile = crlFile.replace(/\.pem$/, '.der');
    writeFileSync(derFile, Buffer.from(await res.arrayBuffer()));
    await run('openssl', ['crl', '-inform', 'DER', '-in', derFile, '-out', crlFile]);
    return { crlFile, text: (await run('openssl', ['crl', '-in', crlFile, '-text', '-noout'])).stdout };
  };

  const first = await issue('first');
  const firstIssuer = ca.shared.activeIssuer;

  const rotation = await rotateIssuer(ca.shared.stateDir);
  t.equal(rotation.previous, firstIssuer, 'the previous issuer is the one that signed until now');
  t.not(rotation.active, firstIssuer, 'a new issuer is active');
  if (checks.afterRotation) await checks.afterRotation(t, ca, rotation);

  ca = await restartTestCa(ca);
  t.same(
    ca.shared.issuers.map((i) => i.id),
    [firstIssuer, rotation.active],
    'shared.json keeps the old issuer beside the new one',
  );
  t.equal(ca.shared.activeIssuer, rotation.active);
  const second = await issue('second');

  await t.test('the two leaves name different issuers', async (t) => {
    t.not(first.authorityKeyId, second.authorityKeyId);
    t.match(first.ocspUrl, new RegExp(`/ocsp/${firstIssuer}$`));
    t.match(second.ocspUrl, new RegExp(`/ocsp/${rotation.active}$`));
    t.match(first.crlUrl, new RegExp(`/crl/${firstIssuer}\\.crl$`));
    t.match(second.crlUrl, new RegExp(`/crl/${rotation.active}\\.crl$`));
  });

  await t.test('both chains verify to the one root', async (t) => {
    for (const c of [first, second]) {
      const { code, stdout, stderr } = await verify(c);
      t.equal(code, 0, stderr);
      t.match(stdout, new RegExp(`${c.leafFile}: OK`));
    }
  });

  await t.test('both certificates are good at their own responder', async (t) => {
    for (const c of [first, second]) {
      const { stdout, stderr } = await ocsp(c);
      t.match(stderr, /Response verify OK/);
      t.match(stdout, new RegExp(`${c.leafFile}: good`));
    }
  });

  await t.test('revoking the older certificate shows at its own responder only', async (t) => {
    // The account that ordered it revokes it, through the restarted CA.
    acme.axios.defaults.httpsAgent = ca.agent;
    await first.client.revokeCertificate(first.chain, { reason: 4 });

    const revoked = await eventually(
      () => ocsp(first),
      (r) => r.stdout.includes(': revoked'),
    );
    t.match(revoked.stderr, /Response verify OK/);
    t.match(revoked.stdout, new RegExp(`${first.leafFile}: revoked`));
    const { stdout } = await ocsp(second);
    t.match(stdout, new RegExp(`${second.leafFile}: good`));
  });

  await t.test('the older issuer CRL lists it and openssl verify -crl_check refuses it', async (t) => {
    const { crlFile, text } = await eventually(
      () => fetchCrl(first),
      (r) => r.text.includes(`Serial Number: ${first.serial}`),
    );
    t.match(text, new RegExp(`Serial Number: ${first.serial}\\s+Revocation Date: `));
    const refused = await verify(first, ['-crl_check', '-CRLfile', crlFile]);
    t.not(refused.code, 0, 'the revoked leaf no longer verifies with its CRL');
    t.match(`${refused.stdout}${refused.stderr}`, /certificate revoked/);

    const newer = await eventually(
      () => fetchCrl(second),
      (r) => r.text !== '',
    );
    t.notMatch(newer.text, new RegExp(`Serial Number: ${first.serial}`), 'the new CRL is its own');
    const accepted = await verify(second, ['-crl_check', '-CRLfile', newer.crlFile]);
    t.equal(accepted.code, 0, accepted.stderr);
  });

  await t.test('retireIssuer refuses an issuer with unexpired certificates', async (t) => {
    await t.rejects(
      retireIssuer(ca.shared.stateDir, firstIssuer),
      new RegExp(`issuer ${firstIssuer} still has unexpired certificates`),
    );
  });

  await t.test('retireIssuer refuses the active issuer', async (t) => {
    await t.rejects(
      retireIssuer(ca.shared.stateDir, rotation.active),
      new RegExp(`issuer ${rotation.active} is the active issuer`),
    );
  });

  await t.test('retireIssuer removes the old issuer once its certificates expired', async (t) => {
    const later = new Date(Date.now() + 400 * 86_400_000);
    const retired = await retireIssuer(ca.shared.stateDir, firstIssuer, { now: later });
    t.match(retired, { retired: firstIssuer, issuers: [rotation.active] });
    t.equal(retired.issuers.length, 1);
    t.equal(retired.keptKey.keyId, 'issuer-1', 'the result names the key left in the store');
    if (checks.afterRetirement) await checks.afterRetirement(t, ca, retired);
  });
}
