import { defineService } from '../lib/rpc.js';

export interface IssueRequest {
  /** base64 DER PKCS#10; the RA has already checked its names against the order. */
  csr: string;
  /** DNS names for the SAN extension, lower case, wildcards as `*.example.test`. */
  names: string[];
  accountId: string;
  orderId: string;
  profile: string;
  /** Requested validity, ISO 8601; the profile's lifetime applies when null. */
  notBefore: string | null;
  notAfter: string | null;
}

export interface IssuedCertificate {
  /** Lower-case hex, 32 digits. */
  serial: string;
  /** base64 DER. */
  der: string;
  issuerId: string;
  notBefore: string;
  notAfter: string;
}

/** A signed precertificate (RFC 6962 §3.1) and what the publisher submits beside it. */
export interface IssuedPrecertificate {
  /** Lower-case hex, 32 digits; reserved with the SA before signing. */
  serial: string;
  /** base64 DER, with the critical poison extension. */
  precertificate: string;
  issuerId: string;
  /** base64 DER of the issuer's certificate: chain[1] of add-pre-chain. */
  issuerCertificate: string;
  notBefore: string;
  notAfter: string;
}

/** What the CA needs to turn a precertificate into its certificate. */
export interface PrecertificateCompletion {
  serial: string;
  /** base64 DER, as issuePrecertificate returned it. */
  precertificate: string;
  /** base64 TLS-encoded SCTs for the precertificate, at least one. */
  scts: string[];
  /** For the audit event and metrics: whose order this is and under which profile. */
  accountId: string;
  orderId: string;
  profile: string;
}

/**
 * The signer. Signs only through the keys interface; reserves each serial with the SA before
 * signing so a serial is never used twice. Issuance is in two steps (RFC 6962 §3.1): a
 * precertificate for the CT logs, then the certificate with their SCTs embedded.
 */
export interface CertificateAuthority {
  issuePrecertificate(req: IssueRequest): Promise<IssuedPrecertificate>;
  /**
   * Re-signs a precertificate this CA signed with its poison swapped for the SCT list; every
   * other TBS byte stays the same.
   */
  issueCertificateForPrecertificate(req: PrecertificateCompletion): Promise<IssuedCertificate>;
}

export const caService = defineService<CertificateAuthority>(
  'bluegreen.ca.CertificateAuthority',
  ['issuePrecertificate', 'issueCertificateForPrecertificate'],
  ['ra'],
);

/** Ends the detail of an `unavailable` error when the key store (an HSM) failed to sign. */
export const keyStoreUnavailable = 'the signing key store is unavailable';
