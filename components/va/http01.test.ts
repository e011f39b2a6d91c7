import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ensureIdentity } from '../lib/pki.js';
import {
  closedPort,
  keyAuthorization,
  testSettings,
  testVa,
  token,
  validationRequest,
} from './testing.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const challengePath = `/.well-known/acme-challenge/${token}`;
let handler: Handler = (_req, res) => res.writeHead(404).end();
const seen: IncomingMessage[] = [];

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

const http = createHttpServer((req, res) => {
  seen.push(req);
  handler(req, res);
});
const httpPort = await listen(http);
t.teardown(() => {
  http.closeAllConnections();
  http.close();
});

// The https side of redirects, with a certificate no one trusts: the VA must not care.
const dir = mkdtempSync(join(tmpdir(), 'va-http01-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const identity = await ensureIdentity(dir, 'applicant');
const https = createHttpsServer(
  { cert: readFileSync(identity.certFile), key: readFileSync(identity.keyFile) },
  (req, res) => handler(req, res),
);
const httpsPort = await listen(https);
t.teardown(() => {
  https.closeAllConnections();
  https.close();
});

const va = testVa(testSettings({ httpPort, tlsAlpnPort: httpsPort }));
const validate = () => va.performValidation(validationRequest());

t.beforeEach(() => {
  seen.length = 0;
});

t.test('validates a server that answers with the key authorization', async (t) => {
  handler = (req, res) =>
    req.url === challengePath ? res.end(`${keyAuthorization}\r\n \n`) : res.writeHead(404).end();

  const result = await validate();

  t.equal(result.status, 'valid');
  t.equal(result.problem, null);
  t.same(result.records, [
    {
      hostname: 'example.test',
      port: httpPort,
      url: `http://example.test:${httpPort}${challengePath}`,
      addressesResolved: ['127.0.0.1'],
      addressUsed: '127.0.0.1',
    },
  ]);
  t.equal(seen[0].headers.host, 'example.test', 'the Host header is the name being validated');
  t.equal(seen[0].headers['user-agent'], 'bluegreen-ca-va-test');
});

t.test('rejects a body that is not the key authorization', async (t) => {
  handler = (_req, res) => res.end(`${token}.someone-elses-thumbprint`);

  const result = await validate();

  t.equal(result.status, 'invalid');
  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:unauthorized');
  t.match(result.problem?.detail, /does not match this challenge.*someone-elses-thumbprint/);
});

t.test('rejects a 404 as unauthorized', async (t) => {
  handler = (_req, res) => res.writeHead(404).end('not here');

  const result = await validate();

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:unauthorized');
  t.match(result.problem?.detail, /HTTP 404/);
});

t.test('fails with a connection problem when the port is closed', async (t) => {
  const port = await closedPort();
  const closed = testVa(testSettings({ httpPort: port }));

  const result = await closed.performValidation(validationRequest());

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
  t.match(result.problem?.detail, /connection refused/);
  t.equal(result.records[0].addressUsed, '127.0.0.1');
});

t.test('follows a redirect to another name on the http-01 port', async (t) => {
  handler = (req, res) => {
    if (req.headers.host === 'example.test') {
      res.writeHead(302, { location: `http://other.test:${httpPort}/moved?x=1` }).end();
    } else if (req.url === '/moved?x=1') {
      res.end(keyAuthorization);
    } else {
      res.writeHead(404).end();
    }
  };

  const result = await validate();

  t.equal(result.status, 'valid');
  t.same(
    result.records.map((r) => r.url),
    [`http://example.test:${httpPort}${challengePath}`, `http://other.test:${httpPort}/moved?x=1`],
  );
  t.equal(seen[1].headers.host, 'other.test');
});

t.test('follows a redirect to https without checking the certificate', async (t) => {
  handler = (req, res) =>
    req.socket.localPort === httpPort
      ? res.writeHead(301, { location: `https://example.test:${httpsPort}${challengePath}` }).end()
      : res.end(keyAuthorization);

  const result = await validate();

  t.equal(result.status, 'valid');
  t.equal(result.records[1].url, `https://example.test:${httpsPort}${challengePath}`);
});

t.test('fails on a redirect loop', async (t) => {
  handler = (req, res) => res.writeHead(302, { location: req.url }).end();

  const result = await validate();

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
  t.match(result.problem?.detail, /redirect loop/);
});

t.test('fails after ten redirects', async (t) => {
  handler = (req, res) => {
    const n = Number(new URL(req.url!, 'http://x').searchParams.get('n') ?? 0);
    res.writeHead(307, { location: `/next?n=${n + 1}` }).end();
  };

  const result = await validate();

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
  t.match(result.problem?.detail, /too many redirects/);
  t.equal(result.records.length, 11, 'the first fetch and ten redirects');
});

const refusedRedirects: [string, (port: number) => string, RegExp][] = [
  ['another port', () => 'http://example.test:8080/x', /port 8080/],
  ['an IP address', (port) => `http://127.0.0.1:${port}/x`, /only DNS names/],
  ['a scheme other than http and https', () => 'ftp://example.test/x', /scheme/],
  ['an unparseable location', () => 'http://exa mple.test:99999/', /invalid URL/],
];
for (const [what, location, detail] of refusedRedirects) {
  t.test(`rejects a redirect to ${what}`, async (t) => {
    handler = (_req, res) => res.writeHead(302, { location: location(httpPort) }).end();

    const result = await validate();

    t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
    t.match(result.problem?.detail, detail);
  });
}

t.test('rejects an oversized body without reading all of it', async (t) => {
  let timer: NodeJS.Timeout | undefined;
  t.teardown(() => clearInterval(timer));
  handler = (_req, res) => {
    res.write(keyAuthorization);
    timer = setInterval(() => res.write('x'.repeat(1024)), 5);
  };

  const result = await validate();

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:unauthorized');
  t.match(result.problem?.detail, /longer than \d+ bytes/);
});

t.test('fails with a timeout when the server never answers', async (t) => {
  handler = () => {};
  const slow = testVa(testSettings({ httpPort, timeoutMs: 300 }));
  const started = Date.now();

  const result = await slow.performValidation(validationRequest());

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
  t.match(result.problem?.detail, /timed out after 300ms/);
  t.ok(Date.now() - started < 1_000, 'gives up soon after the timeout');
});

t.test('fails with incorrectResponse when the server does not speak HTTP', async (t) => {
  const garbage = createTcpServer((socket: Socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
  const port = await listen(garbage);
  t.teardown(() => garbage.close());

  const result = await testVa(testSettings({ httpPort: port })).performValidation(
    validationRequest(),
  );

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:incorrectResponse');
  t.match(result.problem?.detail, /malformed HTTP response/);
});

t.test('fails with a dns problem when the name does not resolve', async (t) => {
  const unresolved = testVa(testSettings({ httpPort, dnsResolver: '127.0.0.1:1', timeoutMs: 300 }));

  const result = await unresolved.performValidation(
    validationRequest({ identifier: { type: 'dns', value: 'example.invalid' } }),
  );

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:dns');
  t.same(result.records, [
    {
      hostname: 'example.invalid',
      port: httpPort,
      url: `http://example.invalid:${httpPort}${challengePath}`,
    },
  ]);
});
