import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { exportJWK, FlattenedSign, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import t from 'tap';
import { CaError } from '../lib/errors.js';
import { checkUrl, jwkThumbprint, parseJws, publicJwk, verifyWithJwk } from './jws.js';

/** Matches a CaError of one kind, and its detail when given. */
function failure(kind: string, detail?: string | RegExp) {
  return detail === undefined ? { name: 'CaError', kind } : { name: 'CaError', kind, detail };
}

const url = 'https://ca.test/acme/new-order';
const maxBytes = 64 * 1024;

interface TestKey {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function testKey(alg: string, options: { modulusLength?: number; crv?: string } = {}) {
  const pair = await generateKeyPair(alg, { ...options, extractable: true });
  return { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) } as TestKey;
}

const keys = {
  rs256: await testKey('RS256', { modulusLength: 2048 }),
  es256: await testKey('ES256'),
  es384: await testKey('ES384'),
  eddsa: await testKey('EdDSA'),
};

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  );
}

async function signed(
  key: TestKey | Uint8Array,
  header: Record<string, unknown>,
  payload: string = '{"hello":"world"}',
): Promise<Buffer> {
  const signer = key instanceof Uint8Array ? key : key.privateKey;
  const jws = await new FlattenedSign(new TextEncoder().encode(payload))
    .setProtectedHeader(header as { alg: string })
    .sign(signer);
  return Buffer.from(JSON.stringify(jws));
}

function headerFor(alg: string, key: TestKey, extra: Record<string, unknown> = {}) {
  return { alg, nonce: 'n0nce', url, jwk: key.jwk, ...extra };
}

function kindOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CaError) return err.kind;
    throw err;
  }
  return undefined;
}

async function asyncKindOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => {
      if (err instanceof CaError) return err.kind;
      throw err;
    },
  );
}

for (const [alg, key] of [
  ['RS256', keys.rs256],
  ['ES256', keys.es256],
  ['ES384', keys.es384],
  ['EdDSA', keys.eddsa],
] as const) {
  t.test(`verifies a ${alg} request signed with an embedded jwk`, async (t) => {
    const parsed = parseJws(await signed(key, headerFor(alg, key)), maxBytes);
    t.equal(parsed.protected.alg, alg);
    t.equal(parsed.protected.nonce, 'n0nce');
    t.same(JSON.parse(parsed.payload.toString()), { hello: 'world' });
    await verifyWithJwk(parsed, parsed.protected.jwk);
    t.doesNotThrow(() => checkUrl(parsed, url));
  });
}

t.test('verifies a kid request with the stored account key', async (t) => {
  const header = { alg: 'ES256', nonce: 'n0nce', url, kid: 'https://ca.test/acme/acct/1' };
  const parsed = parseJws(await signed(keys.es256, header), maxBytes);
  t.equal(parsed.protected.kid, 'https://ca.test/acme/acct/1');
  t.equal(parsed.protected.jwk, undefined);
  await verifyWithJwk(parsed, publicJwk(keys.es256.jwk));
});

t.test('parses a POST-as-GET request with an empty payload', async (t) => {
  const parsed = parseJws(await signed(keys.es256, headerFor('ES256', keys.es256), ''), maxBytes);
  t.equal(parsed.payloadB64, '');
  t.equal(parsed.payload.length, 0);
  await verifyWithJwk(parsed, keys.es256.jwk);
});

t.test('rejects alg none as badSignatureAlgorithm', async (t) => {
  const header = { alg: 'none', nonce: 'n0nce', url, jwk: keys.es256.jwk };
  const jws = { protected: b64(header), payload: b64('{}'), signature: '' };
  const body = Buffer.from(JSON.stringify(jws));
  t.equal(kindOf(() => parseJws(body, maxBytes)), 'badSignatureAlgorithm');
});

t.test('rejects HS256 as badSignatureAlgorithm', async (t) => {
  const header = { alg: 'HS256', nonce: 'n0nce', url, kid: 'acct' };
  const body = await signed(new Uint8Array(32).fill(7), header);
  const detail = /"HS256" is not accepted; use one of RS256, ES256, ES384, EdDSA/;
  t.throws(() => parseJws(body, maxBytes), failure('badSignatureAlgorithm', detail));
});

t.test('rejects RS512 as badSignatureAlgorithm', async (t) => {
  const rs512 = await testKey('RS512', { modulusLength: 2048 });
  const body = await signed(rs512, headerFor('RS512', rs512));
  t.equal(kindOf(() => parseJws(body, maxBytes)), 'badSignatureAlgorithm');
});

t.test('rejects a header with both jwk and kid as malformed', async (t) => {
  const body = await signed(keys.es256, headerFor('ES256', keys.es256, { kid: 'acct' }));
  t.throws(() => parseJws(body, maxBytes), failure('malformed', /got both/));
});

t.test('rejects a header with neither jwk nor kid as malformed', async (t) => {
  const body = await signed(keys.es256, { alg: 'ES256', nonce: 'n0nce', url });
  t.throws(() => parseJws(body, maxBytes), failure('malformed', /got neither/));
});

t.test('rejects a header without url as malformed', async (t) => {
  const body = await signed(keys.es256, { alg: 'ES256', nonce: 'n0nce', jwk: keys.es256.jwk });
  t.throws(() => parseJws(body, maxBytes), failure('malformed', /"url"/));
});

t.test('rejects a header without nonce as badNonce', async (t) => {
  const body = await signed(keys.es256, { alg: 'ES256', url, jwk: keys.es256.jwk });
  t.throws(() => parseJws(body, maxBytes), failure('badNonce', /"nonce"/));
});

t.test('parses an inner JWS without a nonce when nonces are forbidden', async (t) => {
  const header = { alg: 'ES256', url, jwk: keys.es256.jwk };
  const parsed = parseJws(await signed(keys.es256, header), maxBytes, { nonce: 'forbidden' });
  t.equal(parsed.protected.nonce, undefined);
  await verifyWithJwk(parsed, parsed.protected.jwk);
});

t.test('rejects a nonce in an inner JWS as malformed', async (t) => {
  const body = await signed(keys.es256, headerFor('ES256', keys.es256));
  const wanted = failure('malformed', /must not have "nonce"/);
  t.throws(() => parseJws(body, maxBytes, { nonce: 'forbidden' }), wanted);
});

t.test('rejects an unprotected header as malformed', async (t) => {
  const jws = JSON.parse((await signed(keys.es256, headerFor('ES256', keys.es256))).toString());
  const body = Buffer.from(JSON.stringify({ ...jws, header: { kid: 'x' } }));
  t.throws(() => parseJws(body, maxBytes), failure('malformed', /unprotected "header"/));
});

t.test('rejects the general serialization as malformed', async (t) => {
  const jws = JSON.parse((await signed(keys.es256, headerFor('ES256', keys.es256))).toString());
  const general = {
    payload: jws.payload,
    signatures: [{ protected: jws.protected, signature: jws.signature }],
  };
  const body = Buffer.from(JSON.stringify(general));
  t.throws(() => parseJws(body, maxBytes), failure('malformed', /general JSON/));
});

t.test('rejects a crit header as malformed', async (t) => {
  const header = headerFor('ES256', keys.es256, { crit: ['b64'], b64: false });
  const body = Buffer.from(
    JSON.stringify({ protected: b64(header), payload: 'eA', signature: 'AAAA' }),
  );
  t.throws(() => parseJws(body, maxBytes), failure('malformed', /"crit"/));
});

t.test('rejects bodies that are not a JWS as malformed', async (t) => {
  const cases = ['not json', '[]', '{"protected":1,"payload":"","signature":""}', '{"a":1}'];
  for (const text of cases) {
    t.equal(kindOf(() => parseJws(Buffer.from(text), maxBytes)), 'malformed', text);
  }

  const notBase64 = { protected: 'a+b/', payload: '', signature: '' };
  const body = Buffer.from(JSON.stringify(notBase64));
  const detail = /"protected" is not unpadded base64url/;
  t.throws(() => parseJws(body, maxBytes), failure('malformed', detail));
});

t.test('rejects an oversized body as malformed', async (t) => {
  const body = await signed(keys.es256, headerFor('ES256', keys.es256), 'x'.repeat(2000));
  const detail = `request body is ${body.length} bytes; the limit is 1000`;
  t.throws(() => parseJws(body, 1000), failure('malformed', detail));
});

t.test('rejects a tampered payload as malformed', async (t) => {
  const jws = JSON.parse((await signed(keys.es256, headerFor('ES256', keys.es256))).toString());
  const body = Buffer.from(JSON.stringify({ ...jws, payload: b64('{"hello":"mallory"}') }));
  const parsed = parseJws(body, maxBytes);
  const wanted = failure('malformed', 'JWS signature is invalid');
  await t.rejects(verifyWithJwk(parsed, keys.es256.jwk), wanted);
});

t.test('rejects a signature made by another key as malformed', async (t) => {
  const parsed = parseJws(await signed(keys.es256, headerFor('ES256', keys.es256)), maxBytes);
  const other = await testKey('ES256');
  t.equal(await asyncKindOf(verifyWithJwk(parsed, other.jwk)), 'malformed');
});

t.test('rejects an RSA 1024 jwk as badPublicKey', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const jwk = publicKey.export({ format: 'jwk' });
  const protectedB64 = b64({ alg: 'RS256', nonce: 'n0nce', url, jwk });
  const payloadB64 = b64('{}');
  const signature = nodeSign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), privateKey);
  const body = JSON.stringify({
    protected: protectedB64,
    payload: payloadB64,
    signature: signature.toString('base64url'),
  });

  const parsed = parseJws(Buffer.from(body), maxBytes);
  const detail = /1024 bits; accepted sizes are 2048 to 4096 bits/;
  await t.rejects(verifyWithJwk(parsed, parsed.protected.jwk), failure('badPublicKey', detail));
});

t.test('rejects a private key jwk as badPublicKey', async (t) => {
  const privateJwk = await exportJWK(keys.es256.privateKey);
  const parsed = parseJws(await signed(keys.es256, headerFor('ES256', keys.es256)), maxBytes);
  await t.rejects(verifyWithJwk(parsed, privateJwk), failure('badPublicKey', /"d"/));
  t.throws(() => publicJwk(privateJwk), failure('badPublicKey'));
});

t.test('rejects an EC P-384 key used with ES256', async (t) => {
  // jose will not sign ES256 with a P-384 key, so the signature is a placeholder: the key
  // check comes before any signature check.
  const jws = { protected: b64(headerFor('ES256', keys.es384)), payload: b64('{}'), signature: '' };
  const parsed = parseJws(Buffer.from(JSON.stringify(jws)), maxBytes);
  const detail = /ES256 needs an EC P-256 key, but the key is EC P-384/;
  await t.rejects(verifyWithJwk(parsed, keys.es384.jwk), failure('badSignatureAlgorithm', detail));
});

t.test('rejects an RSA key used with ES256', async (t) => {
  const parsed = parseJws(await signed(keys.es256, headerFor('ES256', keys.es256)), maxBytes);
  t.equal(await asyncKindOf(verifyWithJwk(parsed, keys.rs256.jwk)), 'badSignatureAlgorithm');
});

t.test('rejects a url that is not the request URL as unauthorized', async (t) => {
  const parsed = parseJws(await signed(keys.es256, headerFor('ES256', keys.es256)), maxBytes);
  const other = 'https://ca.test/acme/new-account';
  const detail = `JWS url "${url}" does not match the request URL "${other}"`;
  t.throws(() => checkUrl(parsed, other), failure('unauthorized', detail));
});

t.test('keeps only the public members of a jwk', async (t) => {
  const jwk = { ...keys.es256.jwk, use: 'sig', key_ops: ['verify'], ext: true, kid: 'k' };
  t.same(Object.keys(publicJwk(jwk)), ['crv', 'kty', 'x', 'y']);
  t.same(Object.keys(publicJwk(keys.rs256.jwk)), ['e', 'kty', 'n']);
  t.same(Object.keys(publicJwk(keys.eddsa.jwk)), ['crv', 'kty', 'x']);
});

t.test('rejects unknown key types and curves as badPublicKey', async (t) => {
  const p521 = await testKey('ES512');
  t.throws(() => publicJwk(p521.jwk), failure('badPublicKey', /"P-521"/));
  t.throws(() => publicJwk({ kty: 'oct', k: 'AAAA' }), failure('badPublicKey'));
  const shortX = { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' };
  t.throws(() => publicJwk(shortX), failure('badPublicKey', /"x" is 3 bytes; expected 32/));
  t.throws(() => publicJwk('jwk'), failure('badPublicKey'));
});

t.test('computes the RFC 7638 thumbprint', async (t) => {
  // RFC 7638 §3.1 example key and its thumbprint.
  const jwk = {
    kty: 'RSA',
    n:
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJE' +
      'CPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q' +
      'vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6' +
      'WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29',
  };
  t.equal(await jwkThumbprint(jwk), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  t.equal(await jwkThumbprint(keys.es256.jwk), await jwkThumbprint(publicJwk(keys.es256.jwk)));
});
