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

/**
 * The signer. Signs only through the keys interface; reserves each serial with the SA before
 * signing so a serial is never used twice.
 */
export interface CertificateAuthority {
  issueCertificate(req: IssueRequest): Promise<IssuedCertificate>;
}

export const caService = defineService<CertificateAuthority>(
  'bluegreen.ca.CertificateAuthority',
  ['issueCertificate'],
  ['ra'],
);
