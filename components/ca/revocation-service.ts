import { defineService } from '../lib/rpc.js';

/**
 * What the CA signs about certificates after issuing them: OCSP responses and CRLs. Two gRPC
 * services beside the CertificateAuthority on the CA's server, as Boulder splits its CA, so
 * that only the process holding the issuer keys signs and the RA may ask for each apart.
 */

/** RFC 5280 §5.3.1 CRLReason codes this CA writes; 7 is unassigned. */
export const revocationReasonCodes: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);

export interface SignOcspRequest {
  /** Lower-case hex of the certificate's serial. */
  serial: string;
  /** The issuer that signed the certificate: it signs the response too (RFC 6960 §4.2.2.2). */
  issuerId: string;
  status: 'good' | 'revoked';
  /** ISO 8601; required when revoked. */
  revokedAt?: string | null;
  /** RFC 5280 §5.3.1 CRLReason; required when revoked. */
  reason?: number | null;
}

export interface SignedOcspResponse {
  serial: string;
  issuerId: string;
  status: 'good' | 'revoked';
  /** base64 DER OCSPResponse. */
  der: string;
  /** ISO 8601, whole seconds, as in the response. */
  thisUpdate: string;
  nextUpdate: string;
}

/** Signs OCSP responses with the issuer key itself (responderID byKey, no delegated signer). */
export interface OcspGenerator {
  signOcspResponse(req: SignOcspRequest): Promise<SignedOcspResponse>;
}

export interface SignedCrl {
  issuerId: string;
  /** base64 DER CertificateList. */
  der: string;
  /** RFC 5280 §5.2.3 cRLNumber, decimal. */
  number: string;
  thisUpdate: string;
  nextUpdate: string;
  /** How many revoked certificates it lists. */
  entries: number;
}

/** Signs one full CRL per issuer from the revoked, unexpired certificates the SA holds. */
export interface CrlGenerator {
  signCrl(req: { issuerId: string }): Promise<SignedCrl>;
}

export const ocspGeneratorService = defineService<OcspGenerator>(
  'bluegreen.ca.OcspGenerator',
  ['signOcspResponse'],
  ['ra'],
);

export const crlGeneratorService = defineService<CrlGenerator>(
  'bluegreen.ca.CrlGenerator',
  ['signCrl'],
  ['ra'],
);
