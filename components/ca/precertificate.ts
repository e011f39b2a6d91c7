import { X509Certificate } from 'node:crypto';
import type { SigningKey } from '../keys/types.js';
import { bytesOf, childrenOf, derTags, encodeTlv, readWhole } from '../lib/der.js';
import { normalizeSerial } from '../lib/cert-info.js';
import { CaError } from '../lib/errors.js';
import { publicKeyObject, signatureAlgorithmOf, signChecked } from '../lib/x509.js';
import type { Issuer } from './issuer.js';

/**
 * The precertificate half of RFC 6962 §3.1 issuance: which issuer signed a precertificate, and
 * signing a TBSCertificate given as bytes, so the final certificate keeps the precertificate's
 * TBS byte for byte apart from the extension swapped in.
 */

/** What the CA reads back from a precertificate before completing it. */
export interface PrecertificateFacts {
  /** The loaded issuer whose key signed it. */
  issuer: Issuer;
  /** Lower-case hex, without a sign octet. */
  serial: string;
  /** The DNS names of its subjectAltName. */
  names: string[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * Reads a precertificate and finds the issuer that signed it. The CA re-signs only what it
 * signed itself, so a caller cannot slip fields past the checks made at precertificate time.
 */
export function readPrecertificate(
  precertDer: Buffer,
  issuers: Iterable<Issuer>,
): PrecertificateFacts {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(precertDer);
  } catch (err) {
    throw new CaError('malformed', 'precertificate is not a DER X.509 certificate', { cause: err });
  }

  for (const issuer of issuers) {
    const key = publicKeyObject(issuer.key.publicKeySpki);
    if (!cert.verify(key)) continue;

    // OpenSSL lists the names as `DNS:a, DNS:b`; a DNS name holds no comma or space.
    const names = (cert.subjectAltName ?? '')
      .split(', ')
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice('DNS:'.length));
    return {
      issuer,
      serial: normalizeSerial(cert.serialNumber),
      names,
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
    };
  }
  throw new CaError('malformed', 'precertificate was not signed by any issuer of this CA');
}

/**
 * Signs a TBSCertificate as it is and returns the certificate's DER. The TBS must name the
 * signer's algorithm in its `signature` field (RFC 5280 §4.1.1.2 wants both fields equal).
 */
export async function signTbs(tbs: Buffer, signer: SigningKey): Promise<Buffer> {
  const fields = childrenOf(tbs, readWhole(tbs, 'TBSCertificate'));
  // With the optional `[0] version`, `signature` is the third field, else the second.
  const algorithm = bytesOf(tbs, fields[fields[0]?.tag === derTags.version ? 2 : 1]);
  const expected = Buffer.from(signatureAlgorithmOf(signer.algorithm).toSchema().toBER());
  if (!algorithm.equals(expected)) {
    throw new Error(`TBSCertificate names another signature algorithm than key ${signer.id}'s`);
  }

  const signature = await signChecked(tbs, signer);
  // X.690 §8.6.2.2: the first content octet of a BIT STRING counts unused bits, here none.
  const bits = encodeTlv(derTags.bitString, Buffer.concat([Buffer.from([0]), signature]));
  return encodeTlv(derTags.sequence, Buffer.concat([tbs, algorithm, bits]));
}
