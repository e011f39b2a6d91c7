import t from 'tap';
import { startDnsServer } from '../../test/helpers/dns-server.js';
import { dns01Digest } from './dns01.js';
import { keyAuthorization, testSettings, testVa, validationRequest } from './testing.js';

const dns = await startDnsServer();
t.teardown(() => dns.close());
t.afterEach(() => dns.clearTxt());

const va = testVa(testSettings({ dnsResolver: dns.address, timeoutMs: 1_000 }));
const validate = (value = 'example.test', wildcard = false) =>
  va.performValidation(
    validationRequest({ challengeType: 'dns-01', identifier: { type: 'dns', value }, wildcard }),
  );

t.test('computes the digest as base64url of SHA-256', async (t) => {
  // SHA-256 of the empty string, base64url without padding.
  t.equal(dns01Digest(''), '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
});

t.test('validates a TXT record with the digest, through a resolver on a non-53 port', async (t) => {
  dns.setTxt('_acme-challenge.example.test', ['unrelated', dns01Digest(keyAuthorization)]);

  const result = await validate();

  t.equal(result.status, 'valid');
  t.same(result.records, [{ hostname: 'example.test' }]);
  t.ok(dns.queries.includes('TXT _acme-challenge.example.test'), 'asked the configured server');
});

t.test('validates a wildcard authorization at the base domain', async (t) => {
  dns.setTxt('_acme-challenge.example.test', [dns01Digest(keyAuthorization)]);

  const result = await validate('example.test', true);

  t.equal(result.status, 'valid');
});

t.test('rejects TXT records that do not carry the digest, quoting some of them', async (t) => {
  dns.setTxt('_acme-challenge.example.test', ['one', 'two', 'three', 'four\u0007', 'five']);

  const result = await validate();

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:unauthorized');
  t.match(result.problem?.detail, /found "one", "two", "three" and 2 more/);
  t.match(result.problem?.detail, new RegExp(`expected ${dns01Digest(keyAuthorization)}`));
});

t.test('rejects a name that exists without TXT records', async (t) => {
  dns.setA('_acme-challenge.example.test', '127.0.0.1');

  const result = await validate();

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:unauthorized');
  t.match(result.problem?.detail, /no TXT record found at _acme-challenge.example.test/);
});

t.test('fails with a dns problem on NXDOMAIN', async (t) => {
  const result = await validate('nowhere.test');

  t.equal(result.status, 'invalid');
  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:dns');
  t.match(result.problem?.detail, /NXDOMAIN looking up TXT for _acme-challenge.nowhere.test/);
});

t.test('fails with a dns problem on SERVFAIL', async (t) => {
  dns.setServfail('_acme-challenge.broken.test');

  const result = await validate('broken.test');

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:dns');
  t.match(result.problem?.detail, /SERVFAIL/);
});

t.test('fails with a dns problem when the resolver does not answer', async (t) => {
  const silent = await startDnsServer();
  await silent.close();
  const deaf = testVa(testSettings({ dnsResolver: silent.address, timeoutMs: 300 }));
  const started = Date.now();

  const result = await deaf.performValidation(validationRequest({ challengeType: 'dns-01' }));

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:dns');
  t.ok(Date.now() - started < 1_000, 'gives up soon after the timeout');
});
