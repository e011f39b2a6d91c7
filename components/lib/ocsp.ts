import { createHash } from 'node:crypto';
import { inspectCertificate, keyIdentifierOf } from './x509.js';

/**
 * OCSP facts the CA (which signs responses) and the responder (which serves them) share: the
 * status codes, the object identifiers, and how an issuer appears in a CertID.
 */

/** RFC 6960 §4.2.1 OCSPResponseStatus. */
export const ocspResponseStatus = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = keyof typeof ocspResponseStatus;

export const ocspOids = {
  /** RFC 6960 §4.2.1 id-pkix-ocsp-basic. */
  basicResponse: '1.3.6.1.5.5.7.48.1.1',
  /** RFC 6960 §4.4.1 id-pkix-ocsp-nonce. */
  nonce: '1.3.6.1.5.5.7.48.1.2',
  /** SHA-1, the CertID hash RFC 5019 §2.1.1 requires of clients. */
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/**
 * The one-field OCSPResponse of an error status: `SEQUENCE { ENUMERATED status }` without
 * responseBytes (RFC 6960 §4.2.1). Such responses are never signed.
 */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, 'successful'>): Buffer {
  return Buffer.from([0x30, 0x03, 0x0a, 0x01, ocspResponseStatus[status]]);
}

/** How an issuer is named in a CertID hashed with SHA-1 (RFC 6960 §4.1.1). */
export interface IssuerHashes {
  /** SHA-1 of the issuer's subject Name, DER. */
  nameHash: Buffer;
  /** SHA-1 of the issuer's subjectPublicKey bits (no tag, length or unused-bits octet). */
  keyHash: Buffer;
}

/** The SHA-1 CertID hashes of the issuer with this subject Name and key. */
export function issuerHashes(subjectDer: Buffer, spki: Buffer): IssuerHashes {
  return {
    nameHash: createHash('sha1').update(subjectDer).digest(),
    // RFC 6960 §4.1.1 hashes the same bits RFC 5280 §4.2.1.2 method 1 does.
    keyHash: keyIdentifierOf(spki),
  };
}

/** The SHA-1 CertID hashes of an issuer certificate, DER. */
export function issuerHashesOfCertificate(certDer: Buffer): IssuerHashes {
  const facts = inspectCertificate(certDer);
  return issuerHashes(facts.subjectDer, facts.spki);
}
