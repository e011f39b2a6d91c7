import * as acme from 'acme-client';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { startHttp01Server } from './http01.js';
import { Skip, StepRunner, type SmokeRecord, type SmokeStep } from './steps.js';

const run = promisify(execFile);

export interface SmokeOptions {
  /** The color's preview ACME directory. */
  readonly directoryUrl: string;
  /** PEM of every root a client must trust (CA roots and the ACME endpoint's TLS root). */
  readonly trustBundlePem: string;
  /** The port the color's VA fetches http-01 answers from. */
  readonly httpPort: number;
  readonly deploymentId: string;
  /** A name under an allowed domain; a unique label is prepended. */
  readonly domain: string;
  /**
   * Origin (`http://host:port`) of the color's preview OCSP and CRL endpoint. Certificates
   * name the public endpoint, which answers for the active color; the path is kept.
   */
  readonly previewHttpBase?: string;
  /** Which features the deployed release has; an absent one is skipped, never passed. */
  readonly features: { readonly scts: boolean; readonly ocsp: boolean; readonly crl: boolean };
  /** Checks the SCTs of a final certificate; throws naming the first that fails. */
  readonly verifyScts?: (leafDer: Buffer, issuerDer: Buffer) => Promise<number>;
  readonly onStep?: (step: SmokeStep) => void;
}

/**
 * Proves one color for real: a stock ACME client gets a certificate over http-01 through the
 * color's preview endpoints, OpenSSL judges the chain, OCSP and the CRL, and a revocation
 * turns OCSP to revoked and puts the serial on the CRL.
 */
export async function runSmoke(o: SmokeOptions): Promise<SmokeRecord> {
  const steps = new StepRunner(o.onStep);
  const dir = mkdtempSync(join(tmpdir(), 'bluegreen-smoke-'));
  const agent = new Agent({ ca: o.trustBundlePem, keepAlive: true });
  acme.axios.defaults.httpsAgent = agent;
  const http01 = await startHttp01Server(o.httpPort).catch((err: Error) => {
    throw new Error(`cannot answer http-01 on port ${o.httpPort}: ${err.message}`);
  });
  const name = `smoke-${Date.now().toString(36)}.${o.domain}`;
  const files = { leaf: join(dir, 'leaf.pem'), issuer: join(dir, 'issuer.pem'), roots: join(dir, 'roots.pem') };
  writeFileSync(files.roots, o.trustBundlePem);

  let client: acme.Client | undefined;
  let chain: string[] = [];

  try {
    await steps.run('directory', async () => {
      client = new acme.Client({
        directoryUrl: o.directoryUrl,
        accountKey: await acme.crypto.createPrivateEcdsaKey(),
        backoffMin: 50,
        backoffMax: 1000,
        backoffAttempts: 30,
      });
      const url = await client.getTermsOfServiceUrl().catch((err: Error) => {
        throw new Error(`directory did not answer: ${err.message}`);
      });
      return url ? `terms of service ${url}` : undefined;
    });

    await steps.run('account', async () => {
      await client!.createAccount({ termsOfServiceAgreed: true });
      return client!.getAccountUrl();
    });

    await steps.run('order, http-01, finalize', async () => {
      const [, csr] = await acme.crypto.createCsr({ commonName: name });
      const pem = await client!.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        skipChallengeVerification: true,
        challengeCreateFn: async (_a, c, keyAuthorization) => {
          http01.tokens.set(c.token, keyAuthorization);
        },
        challengeRemoveFn: async (_a, c) => {
          http01.tokens.delete(c.token);
        },
      });
      chain = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
      if (chain.length < 2) throw new Error(`expected a chain of at least 2 certificates, got ${chain.length}`);
      writeFileSync(files.leaf, chain[0]);
      writeFileSync(files.issuer, chain[1]);
      return name;
    });

    await steps.run('chain verifies against the trust bundle', async () => {
      const untrusted = join(dir, 'untrusted.pem');
      writeFileSync(untrusted, chain.slice(1).join(''));
      const { stdout } = await run('openssl', ['verify', '-CAfile', files.roots, '-untrusted', untrusted, files.leaf]);
      if (!stdout.includes(': OK')) throw new Error(`openssl verify: ${stdout.trim()}`);
    });

    await steps.run('SCTs present and valid', async () => {
      if (!o.features.scts) throw new Skip('the release has no CT publisher');
      if (!o.verifyScts) throw new Error('no SCT verifier configured');
      const leaf = new X509Certificate(chain[0]).raw;
      const issuer = new X509Certificate(chain[1]).raw;
      return `${await o.verifyScts(leaf, issuer)} SCTs verified`;
    });

    await steps.run('OCSP good', async () => {
      if (!o.features.ocsp) throw new Skip('the release has no OCSP responder');
      const status = await ocspStatus(files, previewUrl(ocspUrlOf(chain[0]), o.previewHttpBase));
      if (status !== 'good') throw new Error(`OCSP says ${status}, expected good`);
    });

    await steps.run('revocation', async () => {
      await client!.revokeCertificate(chain[0], { reason: 4 });
    });

    await steps.run('OCSP revoked', async () => {
      if (!o.features.ocsp) throw new Skip('the release has no OCSP responder');
      const url = previewUrl(ocspUrlOf(chain[0]), o.previewHttpBase);
      const status = await poll(() => ocspStatus(files, url), (s) => s === 'revoked', 15_000);
      if (status !== 'revoked') throw new Error(`OCSP says ${status} after revocation`);
    });

    await steps.run('CRL lists the serial', async () => {
      if (!o.features.crl) throw new Skip('the release publishes no CRL');
      const serial = new X509Certificate(chain[0]).serialNumber.toUpperCase().replace(/^0+/, '');
      const url = previewUrl(crlUrlOf(chain[0]), o.previewHttpBase);
      const listed = await poll(() => crlSerials(url, dir), (s) => s.includes(serial), 15_000);
      if (!listed.includes(serial)) throw new Error(`CRL at ${url} does not list ${serial}`);
    });
  } finally {
    await http01.close();
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }

  return {
    deploymentId: o.deploymentId,
    passed: steps.passed,
    at: new Date().toISOString(),
    steps: steps.steps,
  };
}

function ocspUrlOf(pem: string): string {
  const aia = new x509.X509Certificate(pem).getExtension(x509.AuthorityInfoAccessExtension);
  const url = aia?.ocsp.find((n) => n.type === 'url')?.value;
  if (!url) throw new Error('certificate names no OCSP URL');
  return url;
}

function crlUrlOf(pem: string): string {
  const dp = new x509.X509Certificate(pem).getExtension(x509.CRLDistributionPointsExtension);
  for (const point of dp?.distributionPoints ?? []) {
    for (const name of point.distributionPoint?.fullName ?? []) {
      if (name.uniformResourceIdentifier) return name.uniformResourceIdentifier;
    }
  }
  throw new Error('certificate names no CRL distribution point');
}

function previewUrl(url: string, base: string | undefined): string {
  if (!base) return url;
  const u = new URL(url);
  return base.replace(/\/$/, '') + u.pathname + u.search;
}

async function ocspStatus(files: { leaf: string; issuer: string; roots: string }, url: string) {
  const { stdout } = await run('openssl', [
    'ocsp',
    '-issuer', files.issuer,
    '-cert', files.leaf,
    '-url', url,
    '-CAfile', files.roots,
    '-no_nonce',
  ]);
  const m = /leaf\.pem: (good|revoked|unknown)/.exec(stdout);
  return m ? m[1] : `no status (${stdout.trim().split('\n')[0]})`;
}

async function crlSerials(url: string, dir: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`CRL at ${url} answered ${res.status}`);
  const file = join(dir, 'current.crl');
  writeFileSync(file, Buffer.from(await res.arrayBuffer()));
  const { stdout } = await run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text']);
  return stdout.toUpperCase().replace(/SERIAL NUMBER: 0*/g, 'SERIAL NUMBER: ');
}

async function poll<T>(fn: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await fn();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    value = await fn();
  }
  return value;
}
