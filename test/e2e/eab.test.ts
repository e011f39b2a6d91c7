import { randomBytes } from 'node:crypto';
import t from 'tap';
import { FlattenedSign } from 'jose';
import { startTestCa } from '../helpers/ca.js';
import { newKey, RawAcme } from '../helpers/raw-acme.js';

// A CA whose operator requires external account binding (RFC 8555 §7.3.4).
const hmacKey = randomBytes(32);
const ca = await startTestCa({ eabKeys: { 'team-a': hmacKey.toString('base64url') } });
t.teardown(() => ca.stop());
const client = await new RawAcme(ca.directoryUrl, ca.agent).init();
const d = client.directory;

async function binding(jwk: object, kid: string, key: Buffer, url = d.newAccount) {
  const payload = new TextEncoder().encode(JSON.stringify(jwk));
  return new FlattenedSign(payload).setProtectedHeader({ alg: 'HS256', kid, url }).sign(key);
}

t.test('says in the directory that external accounts are required', async (t) => {
  t.equal((d as unknown as { meta: { externalAccountRequired: boolean } }).meta.externalAccountRequired, true);
});

t.test('rejects a new account without a binding with externalAccountRequired', async (t) => {
  const res = await client.post(d.newAccount, { termsOfServiceAgreed: true }, { key: await newKey() });
  t.equal(res.json.type, 'urn:ietf:params:acme:error:externalAccountRequired');
});

t.test('creates an account bound with the operator’s HMAC key', async (t) => {
  const key = await newKey();
  const eab = await binding(key.jwk, 'team-a', hmacKey);
  const res = await client.post(d.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: eab }, { key });
  t.equal(res.status, 201);
});

t.test('rejects a binding with an unknown key id or a wrong HMAC with unauthorized', async (t) => {
  const key = await newKey();
  for (const eab of [
    await binding(key.jwk, 'team-b', hmacKey),
    await binding(key.jwk, 'team-a', randomBytes(32)),
  ]) {
    const res = await client.post(d.newAccount, { termsOfServiceAgreed: true, externalAccountBinding: eab }, { key });
    t.equal(res.json.type, 'urn:ietf:params:acme:error:unauthorized');
  }
});
