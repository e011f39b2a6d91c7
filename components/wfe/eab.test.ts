import { randomBytes } from 'node:crypto';
import { exportJWK, FlattenedSign, generateKeyPair, type JWK } from 'jose';
import t from 'tap';
import { ConfigError } from '../lib/errors.js';
import { parseEabKey, verifyExternalAccountBinding } from './eab.js';

/** Matches a CaError of one kind, and its detail when given. */
function failure(kind: string, detail?: string | RegExp) {
  return detail === undefined ? { name: 'CaError', kind } : { name: 'CaError', kind, detail };
}

const newAccountUrl = 'https://ca.test/acme/new-account';
const kid = 'eab-key-1';
const macKey = randomBytes(32);
const keys = new Map([[kid, macKey]]);

const accountJwk = await exportJWK((await generateKeyPair('ES256')).publicKey);
const otherJwk = await exportJWK((await generateKeyPair('ES256')).publicKey);

function verify(eab: unknown): Promise<string> {
  return verifyExternalAccountBinding(eab, accountJwk, newAccountUrl, keys);
}

async function binding(
  options: {
    header?: Record<string, unknown>;
    payload?: JWK;
    key?: Uint8Array;
  } = {},
): Promise<unknown> {
  const header = { alg: 'HS256', kid, url: newAccountUrl, ...options.header };
  const payload = new TextEncoder().encode(JSON.stringify(options.payload ?? accountJwk));
  return new FlattenedSign(payload)
    .setProtectedHeader(header as { alg: string })
    .sign(options.key ?? new Uint8Array(macKey));
}

t.test('accepts a valid binding and returns its key id', async (t) => {
  t.equal(await verify(await binding()), kid);
});

t.test('accepts HS512 bindings', async (t) => {
  const eab = await binding({ header: { alg: 'HS512' } });
  t.equal(await verify(eab), kid);
});

t.test('rejects an unknown key id', async (t) => {
  const eab = await binding({ header: { kid: 'nobody' } });
  await t.rejects(verify(eab), failure('unauthorized', /"nobody" is not known/));
});

t.test('rejects a binding made with the wrong MAC key', async (t) => {
  const eab = await binding({ key: randomBytes(32) });
  await t.rejects(verify(eab), failure('unauthorized', /MAC is invalid/));
});

t.test('rejects a payload that is another key', async (t) => {
  const eab = await binding({ payload: otherJwk });
  await t.rejects(verify(eab), failure('unauthorized', /not the public key that signed/));
});

t.test('rejects a payload that is not a key', async (t) => {
  const eab = await binding({ payload: { kty: 'nonsense' } });
  await t.rejects(verify(eab), failure('unauthorized'));
});

t.test('rejects a url that is not the newAccount URL', async (t) => {
  const eab = await binding({ header: { url: 'https://ca.test/acme/new-order' } });
  await t.rejects(verify(eab), failure('unauthorized', /does not match the newAccount URL/));
});

t.test('rejects a binding with a nonce', async (t) => {
  const eab = await binding({ header: { nonce: 'n0nce' } });
  await t.rejects(verify(eab), failure('malformed', /must not have "nonce"/));
});

t.test('rejects a signature algorithm that is not a MAC', async (t) => {
  const header = { alg: 'ES256', kid, url: newAccountUrl };
  const forged = {
    ...((await binding()) as Record<string, string>),
    protected: Buffer.from(JSON.stringify(header)).toString('base64url'),
  };
  const wanted = failure('badSignatureAlgorithm', /use one of HS256, HS384, HS512/);
  await t.rejects(verify(forged), wanted);
});

t.test('rejects a binding that is not a flattened JWS', async (t) => {
  const valid = (await binding()) as Record<string, string>;
  const cases: unknown[] = [
    undefined,
    'eab',
    { ...valid, header: { kid } },
    {
      payload: valid.payload,
      signatures: [{ protected: valid.protected, signature: valid.signature }],
    },
  ];
  for (const eab of cases) {
    await t.rejects(verify(eab), failure('malformed'));
  }
});

t.test('decodes an EAB key', async (t) => {
  t.same(parseEabKey(macKey.toString('base64url')), macKey);
});

t.test('rejects an EAB key that is short or not base64url', async (t) => {
  t.throws(() => parseEabKey(randomBytes(16).toString('base64url')), ConfigError);
  t.throws(() => parseEabKey(randomBytes(16).toString('base64url')), /16 bytes/);
  t.throws(() => parseEabKey('abc+/=='), /not unpadded base64url/);
});
