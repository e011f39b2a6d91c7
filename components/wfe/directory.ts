import type { Directory } from '../lib/acme.js';
import { paths, type WfeContext } from './context.js';
import type { AcmeRequest, AcmeResponse } from './http.js';

/** RFC 8555 §7.1.1, with RFC 9773's renewalInfo and the profiles of the CA. */
export function directory(ctx: WfeContext, req: AcmeRequest): AcmeResponse {
  const d = ctx.config.directory;
  const body: Directory = {
    newNonce: req.base + paths.newNonce,
    newAccount: req.base + paths.newAccount,
    newOrder: req.base + paths.newOrder,
    revokeCert: req.base + paths.revokeCert,
    keyChange: req.base + paths.keyChange,
    renewalInfo: req.base + paths.renewalInfo,
    meta: {
      ...(d.termsOfService ? { termsOfService: d.termsOfService } : {}),
      ...(d.website ? { website: d.website } : {}),
      caaIdentities: d.caaIdentities,
      externalAccountRequired: ctx.config.externalAccountRequired,
      profiles: d.profiles,
    },
  };
  return { status: 200, body };
}

/** RFC 8555 §7.2: HEAD answers 200, GET 204, both with a fresh nonce. */
export function newNonce(_ctx: WfeContext, req: AcmeRequest): AcmeResponse {
  return { status: req.method === 'HEAD' ? 200 : 204 };
}
