import { createServer } from 'node:net';

/** Asks the kernel for a free loopback port (released before use: fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The loopback ports one running CA uses. */
export interface CaPorts {
  /** HTTPS ACME API. */
  acme: number;
  /** Plain HTTP of the OCSP responder: OCSP, CRLs and issuer certificates. */
  publicHttp: number;
  /** Plain HTTP of the CT log stub (RFC 6962 §4). */
  ctLog: number;
  /** gRPC listeners. */
  rpc: Record<'ra' | 'sa' | 'va' | 'ca' | 'publisher', number>;
  /** Health and metrics, one per component. */
  admin: Record<
    'wfe' | 'ra' | 'sa' | 'va' | 'ca' | 'ocsp-responder' | 'ct-log' | 'publisher',
    number
  >;
  /** Where the VA reaches applicants on this machine. */
  validation: { httpPort: number; tlsAlpnPort: number };
}

/** Fixed ports of the embedded default, the ones the README names. */
export const defaultPorts: CaPorts = {
  acme: 14000,
  publicHttp: 4002,
  ctLog: 4600,
  rpc: { ra: 9094, sa: 9095, va: 9092, ca: 9093, publisher: 9096 },
  admin: {
    wfe: 8010,
    ra: 8014,
    sa: 8015,
    va: 8012,
    ca: 8013,
    'ocsp-responder': 8016,
    'ct-log': 8017,
    publisher: 8018,
  },
  validation: { httpPort: 5002, tlsAlpnPort: 5001 },
};

/** Free ports for a CA started by a test. */
export async function randomPorts(validation = defaultPorts.validation): Promise<CaPorts> {
  const n = async () => freePort();
  return {
    acme: await n(),
    publicHttp: await n(),
    ctLog: await n(),
    rpc: { ra: await n(), sa: await n(), va: await n(), ca: await n(), publisher: await n() },
    admin: {
      wfe: await n(),
      ra: await n(),
      sa: await n(),
      va: await n(),
      ca: await n(),
      'ocsp-responder': await n(),
      'ct-log': await n(),
      publisher: await n(),
    },
    validation,
  };
}
