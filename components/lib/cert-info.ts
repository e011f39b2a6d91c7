import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CaError } from './errors.js';

/** What the front end and the RA need to read back from an issued certificate. */
export interface CertificateInfo {
  /** Lower-case hex of the serial's unsigned value. */
  readonly serial: string;
  /** DNS names of the SAN extension. */
  readonly names: string[];
  /** Authority key identifier, raw bytes, if present. */
  readonly authorityKeyId: Buffer | null;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Parses a DER certificate; `malformed` when it is not one. */
export function certificateInfo(der: Buffer): CertificateInfo {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(new Uint8Array(der));
  } catch {
    throw new CaError('malformed', 'certificate is not a DER X.509 certificate');
  }

  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = (san?.names.items ?? []).filter((n) => n.type === 'dns').map((n) => n.value);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);

  return {
    serial: normalizeSerial(cert.serialNumber),
    names,
    authorityKeyId: aki?.keyId ? Buffer.from(aki.keyId, 'hex') : null,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** Hex without the sign byte DER may carry, lower case. */
export function normalizeSerial(hex: string): string {
  const lower = hex.toLowerCase();
  return lower.length > 2 && lower.length % 2 === 0 && lower.startsWith('00') ? lower.slice(2) : lower;
}
