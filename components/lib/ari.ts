import { CaError } from './errors.js';

/**
 * RFC 9773 §4.1 certificate identifiers: base64url(AKI keyIdentifier) "." base64url(serial
 * DER INTEGER content bytes), both without padding.
 */

export interface CertId {
  readonly authorityKeyId: Buffer;
  /** Lower-case hex of the serial's unsigned value. */
  readonly serial: string;
}

const b64url = /^[A-Za-z0-9_-]+$/;

export function parseCertId(value: unknown): CertId {
  if (typeof value !== 'string' || value.length > 512) {
    throw new CaError('malformed', 'certificate id must be a string of at most 512 characters');
  }
  const parts = value.split('.');
  if (parts.length !== 2 || !b64url.test(parts[0]) || !b64url.test(parts[1])) {
    throw new CaError(
      'malformed',
      'certificate id must be base64url(authority key id) "." base64url(serial)',
    );
  }

  const serialBytes = Buffer.from(parts[1], 'base64url');
  // A positive DER INTEGER may start with one zero byte; the serial's value does not.
  const unsigned = serialBytes[0] === 0 ? serialBytes.subarray(1) : serialBytes;
  return {
    authorityKeyId: Buffer.from(parts[0], 'base64url'),
    serial: unsigned.toString('hex'),
  };
}

export function formatCertId(authorityKeyId: Buffer, serialHex: string): string {
  let serial = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  if (serial[0] & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${authorityKeyId.toString('base64url')}.${serial.toString('base64url')}`;
}
