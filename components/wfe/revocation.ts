import { createPublicKey, X509Certificate, type JsonWebKey } from 'node:crypto';
import { revocationReasons } from '../lib/acme.js';
import { CaError } from '../lib/errors.js';
import { authenticate, payloadObject } from './auth.js';
import type { WfeContext } from './context.js';
import type { AcmeRequest, AcmeResponse } from './http.js';

/**
 * RFC 8555 §7.6: revoke with the account that owns (or is authorized for) the certificate,
 * or with a JWS signed by the certificate's own key.
 */
export async function revokeCert(ctx: WfeContext, req: AcmeRequest): Promise<AcmeResponse> {
  const auth = await authenticate(ctx, req, 'either');
  const payload = payloadObject(auth);

  if (typeof payload.certificate !== 'string' || !/^[A-Za-z0-9_-]+$/.test(payload.certificate)) {
    throw new CaError('malformed', 'certificate must be a base64url-encoded DER certificate');
  }
  const der = Buffer.from(payload.certificate, 'base64url');
  const reason = payload.reason ?? revocationReasons.unspecified;
  if (typeof reason !== 'number' || !Number.isInteger(reason)) {
    throw new CaError('badRevocationReason', 'reason must be an integer (RFC 5280 §5.3.1)');
  }

  if (!auth.account) {
    let certSpki: Buffer;
    try {
      certSpki = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
    } catch {
      throw new CaError('malformed', 'certificate is not a DER X.509 certificate');
    }
    const jwkSpki = createPublicKey({ key: auth.jwk as JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'der',
    });
    if (!certSpki.equals(jwkSpki)) {
      throw new CaError('unauthorized', "the request is signed neither by an account nor by the certificate's key");
    }
  }

  await ctx.ra.revokeCertificate({
    certificate: der.toString('base64'),
    reason,
    accountId: auth.account?.id ?? null,
  });
  return { status: 200 };
}
