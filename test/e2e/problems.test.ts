import * as acme from 'acme-client';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import t from 'tap';
import { calculateJwkThumbprint } from 'jose';
import { formatCertId } from '../../components/lib/ari.js';
import { certificateInfo } from '../../components/lib/cert-info.js';
import { startTestCa } from '../helpers/ca.js';
import { startHttp01Server } from '../helpers/challenge-servers.js';
import { handmadeJws, newKey, RawAcme } from '../helpers/raw-acme.js';

// Every JWS and ACME error the front end promises, provoked against the real processes.
const ca = await startTestCa();
t.teardown(() => ca.stop());
const http01 = await startHttp01Server(ca.httpPort);
t.teardown(() => http01.close());
const client = await new RawAcme(ca.directoryUrl, ca.agent).init();
const d = client.directory;

const problem = (short: string) => `urn:ietf:params:acme:error:${short}`;

async function newAccount(key?: Awaited<ReturnType<typeof newKey>>) {
  const k = key ?? (await newKey());
  const res = await client.post(d.newAccount, { termsOfServiceAgreed: true }, { key: k });
  return { key: k, kid: String(res.headers.location), res };
}

const alice = await newAccount();

/** An order for one name whose http-01 challenge has been answered: status ready. */
async function readyOrder(name: string) {
  const order = await client.post(d.newOrder, { identifiers: [{ type: 'dns', value: name }] }, alice);
  const authzUrl = order.json.authorizations[0];
  const authz = await client.post(authzUrl, '', alice);
  const challenge = authz.json.challenges.find((c: { type: string }) => c.type === 'http-01');
  const thumbprint = await calculateJwkThumbprint(alice.key.jwk);
  http01.tokens.set(challenge.token, `${challenge.token}.${thumbprint}`);
  await client.post(challenge.url, {}, alice);

  for (let i = 0; i < 100; i++) {
    const polled = await client.post(String(order.headers.location), '', alice);
    if (polled.json.status !== 'pending') return { url: String(order.headers.location), order: polled.json };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('order did not become ready');
}

t.test('creates an account and returns the same one for the same key', async (t) => {
  t.equal(alice.res.status, 201);
  t.match(alice.kid, /\/acme\/acct\//);
  const again = await client.post(d.newAccount, { termsOfServiceAgreed: true }, { key: alice.key });
  t.equal(again.status, 200);
  t.equal(again.headers.location, alice.kid);
});

t.test('answers newNonce for HEAD with 200 and GET with 204', async (t) => {
  const head = await client.fetch('HEAD', d.newNonce);
  const get = await client.fetch('GET', d.newNonce);
  t.equal(head.status, 200);
  t.equal(get.status, 204);
  t.ok(head.headers['replay-nonce'] && get.headers['replay-nonce']);
  t.equal(head.headers['cache-control'], 'no-store');
});

t.test('serves the directory with meta and profiles', async (t) => {
  t.ok(d.newNonce && d.newAccount && d.newOrder && d.revokeCert && d.keyChange && d.renewalInfo);
  const meta = (d as unknown as { meta: Record<string, unknown> }).meta;
  t.equal(meta.externalAccountRequired, false);
  t.ok((meta.profiles as Record<string, string>).shortlived, 'the short-lived profile is listed');
});

t.test('rejects a replayed nonce with badNonce', async (t) => {
  const nonce = await client.nonce();
  const first = await client.post(alice.kid, '', { ...alice, nonce });
  t.equal(first.status, 200);
  const replay = await client.post(alice.kid, '', { ...alice, nonce });
  t.equal(replay.status, 400);
  t.equal(replay.json.type, problem('badNonce'));
  t.ok(replay.headers['replay-nonce'], 'a fresh nonce comes with the error');
  t.equal(replay.headers['content-type'], 'application/problem+json');
});

t.test('rejects a made-up nonce and a missing nonce with badNonce', async (t) => {
  const forged = await client.post(alice.kid, '', { ...alice, nonce: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
  t.equal(forged.json.type, problem('badNonce'));
  const missing = await client.post(alice.kid, '', { ...alice, nonce: null });
  t.match(missing.json.type, /badNonce|malformed/);
});

t.test('rejects a url header that differs from the request URL with unauthorized', async (t) => {
  const res = await client.post(d.newOrder, { identifiers: [] }, { ...alice, url: d.newAccount });
  t.equal(res.status, 403);
  t.equal(res.json.type, problem('unauthorized'));
});

t.test('rejects algorithms outside the accepted list with badSignatureAlgorithm', async (t) => {
  for (const alg of ['none', 'HS256', 'RS512']) {
    const nonce = await client.nonce();
    const body = handmadeJws({ alg, nonce, url: d.newAccount, jwk: alice.key.jwk }, {});
    const res = await client.fetch('POST', d.newAccount, body, 'application/jose+json');
    t.equal(res.json?.type, problem('badSignatureAlgorithm'), alg);
  }
});

t.test('rejects an RSA key shorter than 2048 bits with badPublicKey', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const jwk = publicKey.export({ format: 'jwk' });
  const nonce = await client.nonce();
  const body = handmadeJws({ alg: 'RS256', nonce, url: d.newAccount, jwk }, { termsOfServiceAgreed: true }, (input) =>
    sign('sha256', input, privateKey),
  );
  const res = await client.fetch('POST', d.newAccount, body, 'application/jose+json');
  t.equal(res.json.type, problem('badPublicKey'));
});

t.test('accepts RS256, ES384 and EdDSA account keys', async (t) => {
  for (const alg of ['RS256', 'ES384', 'EdDSA'] as const) {
    const res = (await newAccount(await newKey(alg))).res;
    t.equal(res.status, 201, alg);
  }
});

t.test('rejects malformed requests with malformed', async (t) => {
  const notJson = await client.fetch('POST', d.newAccount, '{not json', 'application/jose+json');
  t.equal(notJson.json.type, problem('malformed'));

  const wrongType = await client.post(alice.kid, '', { ...alice, contentType: 'application/json' });
  t.equal(wrongType.json.type, problem('malformed'));

  const both = await client.post(alice.kid, '', { ...alice, header: { jwk: alice.key.jwk } });
  t.equal(both.json.type, problem('malformed'));

  const big = await client.post(d.newOrder, { pad: 'x'.repeat(100_000) }, alice);
  t.equal(big.json.type, problem('malformed'));
  t.ok(big.status < 500);

  const kidForNewAccount = await client.post(d.newAccount, {}, alice);
  t.equal(kidForNewAccount.json.type, problem('malformed'));
});

t.test('rejects an unknown account with accountDoesNotExist', async (t) => {
  const stranger = await newKey();
  const only = await client.post(d.newAccount, { onlyReturnExisting: true }, { key: stranger });
  t.equal(only.json.type, problem('accountDoesNotExist'));

  const kid = alice.kid.replace(/acct\/.*/, 'acct/doesnotexist');
  const res = await client.post(d.newOrder, { identifiers: [] }, { key: stranger, kid });
  t.equal(res.json.type, problem('accountDoesNotExist'));
});

t.test('rejects identifiers outside policy with rejectedIdentifier', async (t) => {
  for (const value of ['example.com', 'bad_label.test', '*.*.test', 'a.test.']) {
    const res = await client.post(d.newOrder, { identifiers: [{ type: 'dns', value }] }, alice);
    t.equal(res.json.type, problem('rejectedIdentifier'), value);
  }
  const ip = await client.post(d.newOrder, { identifiers: [{ type: 'ip', value: '127.0.0.1' }] }, alice);
  t.equal(ip.json.type, problem('unsupportedIdentifier'));
});

t.test('offers only dns-01 for a wildcard', async (t) => {
  const res = await client.post(d.newOrder, { identifiers: [{ type: 'dns', value: '*.w.test' }] }, alice);
  const authz = await client.post(res.json.authorizations[0], '', alice);
  t.same(authz.json.challenges.map((c: { type: string }) => c.type), ['dns-01']);
  t.equal(authz.json.wildcard, true);
  t.equal(authz.json.identifier.value, 'w.test');
});

t.test('rejects finalize of a pending order with orderNotReady', async (t) => {
  const order = await client.post(d.newOrder, { identifiers: [{ type: 'dns', value: 'pending.test' }] }, alice);
  t.equal(order.json.status, 'pending');
  t.ok(order.headers['retry-after'], 'a pending order says when to poll again');
  const [, csr] = await acme.crypto.createCsr({ commonName: 'pending.test' });
  const res = await client.post(order.json.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) }, alice);
  t.equal(res.json.type, problem('orderNotReady'));
});

t.test('rejects a CSR whose names differ from the order with badCSR', async (t) => {
  const { order } = await readyOrder('csr.test');
  t.equal(order.status, 'ready');
  const [, csr] = await acme.crypto.createCsr({ commonName: 'other.test' });
  const res = await client.post(order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) }, alice);
  t.equal(res.json.type, problem('badCSR'));
  const garbage = await client.post(order.finalize, { csr: 'AAAA' }, alice);
  t.equal(garbage.json.type, problem('badCSR'));
});

t.test('finalizes, serves the chain, and answers renewalInfo', async (t) => {
  const { url, order } = await readyOrder('full.test');
  const [, csr] = await acme.crypto.createCsr({ commonName: 'full.test' });
  const done = await client.post(order.finalize, { csr: acme.crypto.getPemBodyAsB64u(csr) }, alice);
  t.equal(done.json.status, 'valid');
  t.equal((await client.post(url, '', alice)).json.certificate, done.json.certificate);

  const cert = await client.post(done.json.certificate, '', alice);
  t.equal(cert.headers['content-type'], 'application/pem-certificate-chain');
  t.equal(cert.text.match(/BEGIN CERTIFICATE/g)?.length, 3);

  const leaf = new X509Certificate(cert.text);
  const info = certificateInfo(Buffer.from(leaf.raw));
  const certId = formatCertId(info.authorityKeyId!, info.serial);
  const ri = await client.fetch('GET', `${d.renewalInfo}/${certId}`);
  t.equal(ri.status, 200);
  t.ok(ri.headers['retry-after']);
  const start = Date.parse(ri.json.suggestedWindow.start);
  t.ok(start > Date.now() && start < Date.parse(leaf.validTo), 'the window lies inside the lifetime');

  const bad = await client.fetch('GET', `${d.renewalInfo}/not-a-cert-id`);
  t.equal(bad.json.type, problem('malformed'));
});

t.test('rejects reading another account’s order with unauthorized', async (t) => {
  const bob = await newAccount();
  const order = await client.post(d.newOrder, { identifiers: [{ type: 'dns', value: 'mine.test' }] }, alice);
  const res = await client.post(String(order.headers.location), '', bob);
  t.equal(res.json.type, problem('unauthorized'));
});

t.test('lists the account’s orders', async (t) => {
  const res = await client.post(`${alice.kid}/orders`, '', alice);
  t.equal(res.status, 200);
  t.ok(res.json.orders.length >= 3);
  t.ok(res.json.orders.every((o: string) => o.includes('/acme/order/')));
});

t.test('rolls the account key with keyChange', async (t) => {
  const carol = await newAccount();
  const next = await newKey('ES384');
  const inner = JSON.parse(
    await client.jws(d.keyChange, { account: carol.kid, oldKey: carol.key.jwk }, { key: next, nonce: null }),
  );
  const res = await client.post(d.keyChange, inner, carol);
  t.equal(res.status, 200);
  const old = await client.post(carol.kid, '', carol);
  t.equal(old.status, 400, 'the old key no longer signs for the account');
  const fresh = await client.post(carol.kid, '', { key: next, kid: carol.kid });
  t.equal(fresh.status, 200);

  const taken = JSON.parse(
    await client.jws(d.keyChange, { account: carol.kid, oldKey: next.jwk }, { key: alice.key, nonce: null }),
  );
  const conflict = await client.post(d.keyChange, taken, { key: next, kid: carol.kid });
  t.equal(conflict.status, 409);
  t.equal(conflict.headers.location, alice.kid);
});

t.test('deactivates an account and refuses it afterwards', async (t) => {
  const dave = await newAccount();
  const res = await client.post(dave.kid, { status: 'deactivated' }, dave);
  t.equal(res.json.status, 'deactivated');
  const after = await client.post(d.newOrder, { identifiers: [{ type: 'dns', value: 'x.test' }] }, dave);
  t.equal(after.json.type, problem('unauthorized'));
});

t.test('answers unknown paths and wrong methods with a 4xx problem', async (t) => {
  const missing = await client.fetch('GET', d.newOrder.replace('new-order', 'nothing'));
  t.equal(missing.status, 404);
  const wrongMethod = await client.fetch('GET', d.newOrder);
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.json.type, problem('malformed'));
});
