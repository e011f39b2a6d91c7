import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { startDnsServer } from '../../test/helpers/dns-server.js';
import { createLogger } from '../lib/log.js';
import { ensureIdentity, serverNameOf } from '../lib/pki.js';
import { createRpcClient, startRpcServer } from '../lib/rpc.js';
import { dns01Digest } from './dns01.js';
import { vaService, type ValidationRequest } from './service.js';
import {
  captureLog,
  keyAuthorization,
  testSettings,
  testVa,
  token,
  validationRequest,
} from './testing.js';
import { ValidationAuthorityImpl } from './va.js';

const http: Server = createServer((req, res) =>
  req.url?.endsWith(token) ? res.end(keyAuthorization) : res.writeHead(404).end(),
);
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
const httpPort = (http.address() as AddressInfo).port;
t.teardown(() => http.close());

const va = testVa(testSettings({ httpPort }));

t.test('validates http-01 for a name under the test suffix on 127.0.0.1', async (t) => {
  const result = await va.performValidation(
    validationRequest({ identifier: { type: 'dns', value: 'deep.sub.example.test' } }),
  );

  t.equal(result.status, 'valid');
  t.equal(result.records[0].addressUsed, '127.0.0.1');
});

for (const challengeType of ['http-01', 'tls-alpn-01'] as const) {
  t.test(`rejects a wildcard authorization with ${challengeType} as malformed`, async (t) => {
    const result = await va.performValidation(validationRequest({ challengeType, wildcard: true }));

    t.equal(result.status, 'invalid');
    t.equal(result.problem?.type, 'urn:ietf:params:acme:error:malformed');
    t.match(result.problem?.detail, /cannot validate the wildcard \*\.example\.test; use dns-01/);
    t.same(result.records, [], 'without reaching out');
  });
}

const named = (value: string) => validationRequest({ identifier: { type: 'dns', value } });
const hostile: [string, unknown, RegExp][] = [
  ['a request that is not an object', null, /invalid validation request/],
  ['an unknown challenge type', { ...validationRequest(), challengeType: 'http-02' }, /challenge/],
  ['an identifier that is an IP address', named('10.0.0.1'), /not a DNS name/],
  ['an identifier that carries a path', named('a.test/x?y'), /not a DNS name/],
  ['a wildcard in the identifier value', named('*.example.test'), /base domain/],
  ['a token with a path in it', validationRequest({ token: '../../etc/passwd' }), /base64url/],
  [
    'a key authorization for another token',
    validationRequest({ keyAuthorization: 'other.abc' }),
    /keyAuthorization/,
  ],
  [
    'a key authorization with a bad thumbprint',
    validationRequest({ keyAuthorization: `${token}.a b` }),
    /keyAuthorization/,
  ],
];
for (const [what, request, detail] of hostile) {
  t.test(`rejects ${what} as malformed without throwing`, async (t) => {
    const result = await va.performValidation(request as ValidationRequest);

    t.equal(result.status, 'invalid');
    t.equal(result.problem?.type, 'urn:ietf:params:acme:error:malformed');
    t.match(result.problem?.detail, detail);
  });
}

t.test('logs each outcome with fixed keys and counts it by type and outcome', async (t) => {
  const { log, lines } = captureLog();
  const metrics = new Registry();
  const settings = testSettings({ httpPort });
  const logged = new ValidationAuthorityImpl({ settings, log, metrics });

  await logged.performValidation(validationRequest());
  await logged.performValidation(validationRequest({ token: 'nope', keyAuthorization: 'nope.x' }));

  const finished = lines.filter((l) => l.msg === 'validation finished');
  t.equal(finished.length, 2);
  t.match(finished[0], {
    level: 'info',
    component: 'va',
    acct: 'acct-1',
    identifier: 'example.test',
    challenge: 'http-01',
    outcome: 'valid',
    problemType: null,
    addressUsed: '127.0.0.1',
    durationMs: Number,
  });
  t.match(finished[1], { outcome: 'unauthorized', detail: /HTTP 404/ });

  const counter = await metrics.getSingleMetric('va_validations_total')!.get();
  t.same(
    counter.values.map((v) => [v.labels.type, v.labels.outcome, v.value]),
    [
      ['http-01', 'valid', 1],
      ['http-01', 'unauthorized', 1],
    ],
  );
});

t.test('logs the authz when the request carries an authorization id', async (t) => {
  const { log, lines } = captureLog();
  const logged = new ValidationAuthorityImpl({ settings: testSettings({ httpPort }), log });

  const request = { ...validationRequest(), authorizationId: 'authz-9' };
  await logged.performValidation(request as ValidationRequest);

  t.match(lines.find((l) => l.msg === 'validation finished'), { authz: 'authz-9' });
});

t.test('answers over RPC with a problem result, not an RPC error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'va-rpc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dns = await startDnsServer();
  t.teardown(() => dns.close());
  dns.setTxt('_acme-challenge.example.test', [dns01Digest(keyAuthorization)]);

  const impl = testVa(testSettings({ dnsResolver: dns.address }));
  const rpc = await startRpcServer({
    address: '127.0.0.1:0',
    tls: await ensureIdentity(dir, 'va'),
    log: createLogger('test', { level: 'silent' }),
    services: [{ def: vaService, impl }],
  });
  t.teardown(() => rpc.close());
  const address = `127.0.0.1:${rpc.port}`;
  const peer = { address, serverName: serverNameOf('va'), timeoutMs: 5_000 };
  const client = createRpcClient(vaService, peer, await ensureIdentity(dir, 'ra'));
  t.teardown(() => client.close());

  const valid = await client.performValidation(
    validationRequest({ challengeType: 'dns-01', wildcard: true }),
  );
  const invalid = await client.performValidation(
    validationRequest({ challengeType: 'dns-01', identifier: { type: 'dns', value: 'gone.test' } }),
  );

  t.equal(valid.status, 'valid');
  t.equal(invalid.status, 'invalid');
  t.equal(invalid.problem?.type, 'urn:ietf:params:acme:error:dns');
});
