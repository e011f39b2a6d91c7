import type * as acme from 'acme-client';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createSecureContext, type SecureContext } from 'node:tls';

export { startHttp01Server } from '../../smoke-tests/http01.js';

/**
 * acme-client's whole flow for `csr` over http-01, answered from `tokens` (the map of an
 * http-01 server started with startHttp01Server); resolves to the PEM chain.
 */
export function issueOverHttp01(
  client: acme.Client,
  tokens: Map<string, string>,
  csr: Buffer | string,
): Promise<string> {
  return client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    skipChallengeVerification: true,
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
      tokens.set(challenge.token, keyAuthorization);
    },
    challengeRemoveFn: async (_authz, challenge) => {
      tokens.delete(challenge.token);
    },
  });
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
