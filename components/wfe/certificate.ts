import { parseCertId } from '../lib/ari.js';
import { certificateInfo } from '../lib/cert-info.js';
import { CaError, toCaError } from '../lib/errors.js';
import type { RenewalInfo } from '../lib/acme.js';
import { authenticate, requirePostAsGet } from './auth.js';
import type { WfeContext } from './context.js';
import type { AcmeRequest, AcmeResponse } from './http.js';

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

async function storedCertificate(ctx: WfeContext, serial: string) {
  if (!/^[0-9a-f]{1,40}$/.test(serial)) throw new CaError('notFound', 'no such certificate');
  try {
    return await ctx.sa.getCertificate({ serial });
  } catch (err) {
    if (toCaError(err).kind === 'notFound') throw new CaError('notFound', 'no such certificate');
    throw err;
  }
}

/** RFC 8555 §7.4.2: the certificate and its chain up to the root, as PEM. */
export async function certificate(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'kid');
  requirePostAsGet(auth);

  const cert = await storedCertificate(ctx, req.params.serial);
  const chain = ctx.chains.get(cert.issuerId);
  if (!chain) throw new CaError('internal', `no chain configured for issuer ${cert.issuerId}`);

  return {
    status: 200,
    raw: {
      contentType: 'application/pem-certificate-chain',
      data: toPem(Buffer.from(cert.der, 'base64')) + chain,
    },
  };
}

/**
 * RFC 9773: when to renew. The window opens two thirds into the lifetime; a revoked
 * certificate gets a window in the past, which tells the client to renew now.
 */
export async function renewalInfo(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const id = parseCertId(req.params.certId);
  const cert = await storedCertificate(ctx, id.serial);
  const info = certificateInfo(Buffer.from(cert.der, 'base64'));
  if (!info.authorityKeyId || !info.authorityKeyId.equals(id.authorityKeyId)) {
    throw new CaError('notFound', 'no such certificate');
  }

  const notBefore = new Date(cert.notBefore).getTime();
  const lifetime = new Date(cert.notAfter).getTime() - notBefore;
  let start = notBefore + (lifetime * 2) / 3;
  let end = notBefore + (lifetime * 5) / 6;
  if (cert.status === 'revoked') {
    end = Date.now() - 60_000;
    start = end - 3_600_000;
  }

  const body: RenewalInfo = {
    suggestedWindow: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
  };
  return {
    status: 200,
    body,
    headers: { 'retry-after': String(ctx.config.renewalInfoRetryAfterSeconds) },
  };
}
