import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startTestCa } from '../helpers/ca.js';
import { startHttp01Server, startTlsAlpnServer } from '../helpers/challenge-servers.js';
import { startDnsServer } from '../helpers/dns-server.js';

const run = promisify(execFile);

// A stock ACME client (acme-client) against every component running as its own process.
const dns = await startDnsServer();
t.teardown(() => dns.close());
const ca = await startTestCa({ dnsResolver: dns.address });
t.teardown(() => ca.stop());

acme.axios.defaults.httpsAgent = ca.agent;
const http01 = await startHttp01Server(ca.httpPort);
t.teardown(() => http01.close());
const alpn = await startTlsAlpnServer(ca.tlsAlpnPort);
t.teardown(() => alpn.close());

const txt = new Map<string, string[]>();

async function newClient() {
  const client = new acme.Client({
    directoryUrl: ca.directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    // The client's own polling back-off starts at 5 s; the CA answers in milliseconds.
    backoffMin: 50,
    backoffMax: 500,
  });
  await client.createAccount({ termsOfServiceAgreed: true, contact: ['mailto:ops@example.com'] });
  return client;
}

/** Issues through client.auto with one challenge type, answering it the way a client would. */
async function issue(client: acme.Client, names: string[], type: 'http-01' | 'dns-01' | 'tls-alpn-01') {
  const [, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names });
  return client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: [type],
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, challenge, keyAuthorization) => {
      if (challenge.type === 'http-01') http01.tokens.set(challenge.token, keyAuthorization);
      if (challenge.type === 'dns-01') {
        // acme-client hands dns-01 the digest already (RFC 8555 §8.4).
        const value = keyAuthorization;
        // A wildcard and its base name share one TXT name: keep every value there.
        const name = `_acme-challenge.${authz.identifier.value}`;
        txt.set(name, [...(txt.get(name) ?? []), value]);
        dns.setTxt(name, txt.get(name)!);
      }
      if ((challenge.type as string) === 'tls-alpn-01') {
        const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
        alpn.set(authz.identifier.value, cert, key);
      }
    },
    challengeRemoveFn: async (_authz, challenge) => {
      if (challenge.type === 'http-01') http01.tokens.delete(challenge.token);
    },
  });
}

/** OpenSSL judges the chain: leaf, then issuer, verified against the CA's root only. */
async function verifyChain(chainPem: string, name: string) {
  const certs = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const leaf = join(ca.dir, `${name}-leaf.pem`);
  const untrusted = join(ca.dir, `${name}-untrusted.pem`);
  writeFileSync(leaf, certs[0] ?? '');
  writeFileSync(untrusted, certs.slice(1).join(''));
  const { stdout } = await run('openssl', [
    'verify',
    '-CAfile',
    join(ca.shared.caDir, 'root.pem'),
    '-untrusted',
    untrusted,
    '-purpose',
    'sslserver',
    leaf,
  ]);
  return { stdout, count: certs.length };
}

t.test('issues over http-01 and the chain verifies up to the root', async (t) => {
  const client = await newClient();
  const pem = await issue(client, ['www.example.test', 'example.test'], 'http-01');
  const { stdout, count } = await verifyChain(pem, 'http01');
  t.match(stdout, /: OK/);
  t.equal(count, 3, 'leaf, issuer and root are served');

  const info = acme.crypto.readCertificateInfo(pem);
  t.same(info.domains.altNames.sort(), ['example.test', 'www.example.test']);
});

t.test('issues over dns-01, including a wildcard', async (t) => {
  const client = await newClient();
  const pem = await issue(client, ['*.wild.test', 'wild.test'], 'dns-01');
  t.match((await verifyChain(pem, 'dns01')).stdout, /: OK/);
  t.ok(dns.queries.some((q) => q.includes('_acme-challenge.wild.test')), 'the VA asked our DNS server');
});

t.test('issues over tls-alpn-01', async (t) => {
  const client = await newClient();
  const pem = await issue(client, ['alpn.test'], 'tls-alpn-01');
  t.match((await verifyChain(pem, 'alpn')).stdout, /: OK/);
});

t.test('rejects a domain outside policy with rejectedIdentifier', async (t) => {
  const client = await newClient();
  const err = await client
    .createOrder({ identifiers: [{ type: 'dns', value: 'example.com' }] })
    .catch((e: Error) => e);
  t.match(String(err), /policy forbids/);
});

t.test('revokes a certificate by its account', async (t) => {
  const client = await newClient();
  const pem = await issue(client, ['revoke.test'], 'http-01');
  await client.revokeCertificate(pem, { reason: 4 });
  const again = await client.revokeCertificate(pem, { reason: 4 }).catch((e: Error) => e);
  t.match(String(again), /already revoked|alreadyRevoked/i);
});
