import { defineService } from '../lib/rpc.js';

/** A precertificate and its issuer: chain[0] and chain[1] of add-pre-chain. */
export interface SubmitPrecertificateRequest {
  /** base64 DER of the precertificate, with its poison extension. */
  precertificate: string;
  /** base64 DER of the certificate of the issuer that signed it. */
  issuer: string;
}

/** The SCTs to embed, at least the configured minimum. */
export interface SubmitPrecertificateResponse {
  /** base64 TLS-encoded SCTs (RFC 6962 §3.2), each verified against its log's key. */
  scts: string[];
}

/**
 * Submits precertificates to the configured CT logs and returns their SCTs. Fails with
 * `unavailable` when fewer logs than the configured minimum answered with a valid SCT: no
 * SCTs, no certificate.
 */
export interface Publisher {
  submitPrecertificate(req: SubmitPrecertificateRequest): Promise<SubmitPrecertificateResponse>;
}

/** The publisher's gRPC service; only the RA may call it. */
export const publisherService = defineService<Publisher>(
  'bluegreen.publisher.Publisher',
  ['submitPrecertificate'],
  ['ra'],
);
