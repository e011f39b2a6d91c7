import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createSecureContext, type SecureContext } from 'node:tls';

export { startHttp01Server } from '../../smoke-tests/http01.js';

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
