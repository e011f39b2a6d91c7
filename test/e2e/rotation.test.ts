import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { certificateToPem, pemToDers } from '../../components/lib/x509.js';
import { retireIssuer, rotateIssuer } from '../../pipelines/rotate-ca-key.js';
import { restartTestCa, startTestCa, type TestCa } from '../helpers/ca.js';
import { startHttp01Server } from '../helpers/challenge-servers.js';
import { requireTool } from '../helpers/tools.js';

/**
 * CA key rotation end to end: a certificate is issued, the issuing key rotated and the CA
 * restarted on the same state (as a deploy would), and a second certificate issued. Each leaf
 * chains to the one root through its own intermediate, and each is answered by the OCSP
 * responder at its own AIA URL, signed by its own issuer.
 */

const run = promisify(execFile);

/** Runs a command to its end, whatever its exit code. */
async function outcome(cmd: string, args: string[]) {
  try {
    const { stdout, stderr } = await run(cmd, args);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Retries `probe` until `done` holds (the responder caches for a few seconds) or 15 s pass. */
async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** A leaf and its intermediate as files, with what the leaf says about its issuer. */
interface Issued {
  client: acme.Client;
  chain: string;
  leafFile: string;
  issuerFile: string;
  ocspUrl: string;
  authorityKeyId: string;
}

t.test('a rotated CA key signs new certificates while the old one still answers', async (t) => {
  if (!requireTool(t, 'openssl', 'apt-get install openssl')) return;
  let ca: TestCa = await startTestCa();
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
    const chain = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        http01.tokens.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        http01.tokens.delete(challenge.token);
      },
    });

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
      ocspUrl: leaf.getExtension(x509.AuthorityInfoAccessExtension)?.ocsp[0]?.value ?? '',
      authorityKeyId: leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId ?? '',
    };
  };

  const ocsp = (c: Issued) =>
    outcome('openssl', [
      'ocsp', '-issuer', c.issuerFile, '-cert', c.leafFile, '-url', c.ocspUrl, '-CAfile', rootFile,
      '-no_nonce',
    ]);
  const verify = (c: Issued) =>
    outcome('openssl', ['verify', '-CAfile', rootFile, '-untrusted', c.issuerFile, c.leafFile]);

  const first = await issue('first');
  const firstIssuer = ca.shared.activeIssuer;

  const rotation = await rotateIssuer(ca.shared.stateDir);
  t.equal(rotation.previous, firstIssuer, 'the previous issuer is the one that signed until now');
  t.not(rotation.active, firstIssuer, 'a new issuer is active');

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
    t.same(retired, { retired: firstIssuer, issuers: [rotation.active] });
  });
});
