import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as acme from 'acme-client';
import { createHash, webcrypto } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import t, { type Test } from 'tap';
import { acmeIdentifierOid, acmeIdentifierValue } from './tlsalpn01.js';
import {
  closedPort,
  keyAuthorization,
  testSettings,
  testVa,
  validationRequest,
} from './testing.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

interface CertOptions {
  sans?: x509.JsonGeneralName[];
  /** The raw extnValue of id-pe-acmeIdentifier; null leaves the extension out. */
  value?: Buffer | null;
  critical?: boolean;
}

/** A self-signed certificate as an applicant builds one for RFC 8737 §3, with knobs to break it. */
async function alpnCertificate(options: CertOptions = {}): Promise<{ key: string; cert: string }> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const sans = options.sans ?? [{ type: 'dns', value: 'example.test' }];
  const extensions: x509.Extension[] = [new x509.SubjectAlternativeNameExtension(sans)];

  const value = options.value === undefined ? acmeIdentifierValue(keyAuthorization) : options.value;
  if (value) {
    const critical = options.critical ?? true;
    extensions.push(new x509.Extension(acmeIdentifierOid, critical, new Uint8Array(value)));
  }

  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=example.test',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: algorithm,
    extensions,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey);
  return { key: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), cert: cert.toString('pem') };
}

/** A responder on 127.0.0.1; it records the SNI each handshake asked for. */
async function responder(t: Test, options: TlsOptions) {
  const serverNames: string[] = [];
  const server = createTlsServer(
    {
      ...options,
      SNICallback: (name, done) => {
        serverNames.push(name);
        done(null, undefined);
      },
    },
    (socket) => socket.end(),
  );
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, serverNames };
}

async function validateAgainst(port: number, timeoutMs = 2_000) {
  return testVa(testSettings({ tlsAlpnPort: port, timeoutMs })).performValidation(
    validationRequest({ challengeType: 'tls-alpn-01' }),
  );
}

t.test('validates a certificate built by acme-client', async (t) => {
  const [key, cert] = await acme.crypto.createAlpnCertificate(
    { identifier: { type: 'dns', value: 'example.test' } } as acme.Authorization,
    keyAuthorization,
    await acme.crypto.createPrivateEcdsaKey(),
  );
  const { port, serverNames } = await responder(t, { key, cert, ALPNProtocols: ['acme-tls/1'] });

  const result = await validateAgainst(port);

  t.equal(result.status, 'valid', result.problem?.detail ?? 'valid');
  t.same(serverNames, ['example.test'], 'SNI is the name being validated');
  t.same(result.records, [
    { hostname: 'example.test', port, addressesResolved: ['127.0.0.1'], addressUsed: '127.0.0.1' },
  ]);
});

t.test('validates a certificate with the dNSName in another case', async (t) => {
  const { key, cert } = await alpnCertificate({ sans: [{ type: 'dns', value: 'Example.TEST' }] });
  const { port } = await responder(t, { key, cert, ALPNProtocols: ['acme-tls/1'] });

  t.equal((await validateAgainst(port)).status, 'valid');
});

t.test('fails with a tls problem when the server negotiates no ALPN protocol', async (t) => {
  const { port } = await responder(t, await alpnCertificate());

  const result = await validateAgainst(port);

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:tls');
  t.match(result.problem?.detail, /did not negotiate the acme-tls\/1 protocol/);
});

t.test('fails with a tls problem when the server offers only other ALPN protocols', async (t) => {
  const { port } = await responder(t, { ...(await alpnCertificate()), ALPNProtocols: ['h2'] });

  const result = await validateAgainst(port);

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:tls');
  t.match(result.problem?.detail, /acme-tls\/1/);
});

const broken: [string, CertOptions, RegExp][] = [
  [
    'a digest of another key authorization',
    { value: acmeIdentifierValue(`${keyAuthorization}x`) },
    /digest [0-9a-f]{64} does not match/,
  ],
  [
    'a missing id-pe-acmeIdentifier extension',
    { value: null },
    /expected one id-pe-acmeIdentifier/,
  ],
  ['a non-critical id-pe-acmeIdentifier extension', { critical: false }, /not critical/],
  [
    'an extension value that is the bare digest, not an OCTET STRING',
    { value: createHash('sha256').update(keyAuthorization).digest() },
    /not an OCTET STRING of 32 bytes/,
  ],
  [
    'a second dNSName',
    { sans: [{ type: 'dns', value: 'example.test' }, { type: 'dns', value: 'other.test' }] },
    /exactly one dNSName/,
  ],
  [
    'an IP address next to the dNSName',
    { sans: [{ type: 'dns', value: 'example.test' }, { type: 'ip', value: '127.0.0.1' }] },
    /and 1 other names/,
  ],
  ['a dNSName for another name', { sans: [{ type: 'dns', value: 'other.test' }] }, /"other.test"/],
];
for (const [what, options, detail] of broken) {
  t.test(`rejects a certificate with ${what}`, async (t) => {
    const certificate = await alpnCertificate(options);
    const { port } = await responder(t, { ...certificate, ALPNProtocols: ['acme-tls/1'] });

    const result = await validateAgainst(port);

    t.equal(result.problem?.type, 'urn:ietf:params:acme:error:unauthorized');
    t.match(result.problem?.detail, detail);
  });
}

t.test('fails with a connection problem when the port is closed', async (t) => {
  const result = await validateAgainst(await closedPort());

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
  t.match(result.problem?.detail, /connection refused/);
});

t.test('fails with a tls problem when the server does not speak TLS', async (t) => {
  const plain = createTcpServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => plain.close());

  const result = await validateAgainst((plain.address() as AddressInfo).port);

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:tls');
});

t.test('fails with a timeout when the server never completes the handshake', async (t) => {
  const sockets = new Set<import('node:net').Socket>();
  const mute = createTcpServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    mute.close();
  });
  const started = Date.now();

  const result = await validateAgainst((mute.address() as AddressInfo).port, 300);

  t.equal(result.problem?.type, 'urn:ietf:params:acme:error:connection');
  t.match(result.problem?.detail, /timed out after 300ms in the TLS handshake/);
  t.ok(Date.now() - started < 1_000, 'gives up soon after the timeout');
});
