import * as http from 'node:http';
import { Agent, request } from 'node:https';
import type { Endpoints } from '../../pipelines/targets/types.js';
import { issuerHashesOfCertificate } from '../../components/lib/ocsp.js';
import { ocspRequestDer } from './ocsp.js';

/**
 * Keeps requesting the directory, new nonces, an OCSP GET (RFC 6960 appendix A), the CRL and
 * the issuer certificate through the public side until stopped; any 5xx or socket error counts
 * as failed.
 */
export function publicLoad(pub: Endpoints, agent: Agent, ocspGetUrl?: string) {
  let stopped = false;
  const counts = { ok: 0, failed: 0, errors: [] as string[] };
  const get = (url: string, method = 'GET') =>
    new Promise<void>((resolve) => {
      const lib = url.startsWith('https') ? request : (http.request as typeof request);
      const req = lib(url, { method, agent: url.startsWith('https') ? agent : undefined, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode && res.statusCode < 500) counts.ok++;
          else (counts.failed++, counts.errors.push(`${url} ${res.statusCode}`));
          resolve();
        });
      });
      req.on('error', (err) => {
        counts.failed++;
        counts.errors.push(`${url} ${err.message}`);
        resolve();
      });
      req.end();
    });
  const worker = async (url: string, method?: string) => {
    while (!stopped) await get(url, method);
  };
  const done = Promise.all([
    worker(pub.acme),
    worker(pub.acme.replace('/directory', '/acme/new-nonce'), 'HEAD'),
    worker(pub.crl[0]),
    ...(ocspGetUrl ? [worker(ocspGetUrl)] : []),
    worker(`${pub.httpBase}/issuer/${pub.crl[0].split('/crl/')[1].replace('.crl', '.der')}`),
  ]);
  return {
    counts,
    async stop() {
      stopped = true;
      await done;
      return counts;
    },
  };
}



/** An OCSP GET URL for `serialHex` under the issuer whose certificate is `issuerDer`. */
export function ocspGetUrl(ocspUrl: string, issuerDer: Buffer, serialHex: string): string {
  const request = ocspRequestDer(issuerHashesOfCertificate(issuerDer), serialHex);
  return `${ocspUrl}/${encodeURIComponent(request.toString('base64'))}`;
}
