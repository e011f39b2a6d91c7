import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createSecureContext, type SecureContext } from 'node:tls';

/** Answers http-01 challenges on 127.0.0.1 from a token map, as an ACME client's server would. */
export async function startHttp01Server(port: number) {
  const tokens = new Map<string, string>();
  const server: Server = createHttpServer((req, res) => {
    const prefix = '/.well-known/acme-challenge/';
    const token = req.url?.startsWith(prefix) ? req.url.slice(prefix.length) : '';
    const body = tokens.get(token);
    if (body === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    tokens,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Answers tls-alpn-01 challenges (RFC 8737) with a certificate per server name. */
export async function startTlsAlpnServer(port: number) {
  const contexts = new Map<string, SecureContext>();
  const server: TlsServer = createTlsServer({
    ALPNProtocols: ['acme-tls/1'],
    SNICallback: (name, cb) => cb(null, contexts.get(name.toLowerCase())),
  });
  server.on('secureConnection', (socket) => socket.end());
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    set(name: string, certPem: string | Buffer, keyPem: string | Buffer) {
      contexts.set(name.toLowerCase(), createSecureContext({ cert: certPem, key: keyPem }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
