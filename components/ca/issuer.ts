import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { KeyStore, SigningKey } from '../keys/types.js';
import { inspectCertificate, keyIdentifierOf, pemToDer } from '../lib/x509.js';

/**
 * An issuing intermediate as the CA uses it: its certificate, the key that signs under it and
 * the URLs written into what it signs.
 */

/** Where an issuer's files, key and URLs are; the CA config's `issuers` entries. */
export interface IssuerDescription {
  /** First 8 hex digits of the SHA-256 of the intermediate's SubjectPublicKeyInfo. */
  id: string;
  /** The intermediate's certificate, PEM. */
  certFile: string;
  /** The intermediate then the root, PEM: what a client is served with its certificate. */
  chainFile: string;
  /** The signing key's id in the key store. */
  keyId: string;
  /** `<ocspBase>/<id>`: the OCSP responder for this issuer. */
  ocspUrl: string;
  /** `<crlBase>/<id>.crl`. */
  crlUrl: string;
  /** `<caIssuersBase>/<id>.der`: this intermediate's certificate, DER (RFC 5280 §4.2.2.1). */
  caIssuersUrl: string;
}

export interface Issuer {
  readonly id: string;
  readonly certDer: Buffer;
  /** The intermediate's subject Name exactly as encoded: the issuer Name of what it signs. */
  readonly subjectDer: Buffer;
  /** Its subject key identifier: the AKI of what it signs. */
  readonly subjectKeyId: Buffer;
  readonly notAfter: Date;
  readonly key: SigningKey;
  readonly ocspUrl: string;
  readonly crlUrl: string;
  readonly caIssuersUrl: string;
}

/** The stable, URL-safe id of an issuer with this public key. */
export function issuerIdOf(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex').slice(0, 8);
}

/**
 * Pairs an intermediate certificate with its signing key. Throws, naming the issuer, when the
 * certificate is not a CA, the key is not the certified key, or the id is not the key's id.
 */
export function issuerFromCertificate(
  description: Pick<IssuerDescription, 'id' | 'ocspUrl' | 'crlUrl' | 'caIssuersUrl'>,
  certDer: Buffer,
  key: SigningKey,
): Issuer {
  const facts = inspectCertificate(certDer);
  const { id } = description;

  if (!facts.isCa) throw new Error(`issuer ${id}: its certificate is not a CA certificate`);
  if (!facts.spki.equals(key.publicKeySpki)) {
    throw new Error(`issuer ${id}: key ${key.id} is not the key its certificate certifies`);
  }
  if (issuerIdOf(facts.spki) !== id) {
    throw new Error(`issuer ${id}: its certificate's key has id ${issuerIdOf(facts.spki)}`);
  }

  return {
    id,
    certDer,
    subjectDer: facts.subjectDer,
    subjectKeyId: facts.subjectKeyId ?? keyIdentifierOf(facts.spki),
    notAfter: facts.notAfter,
    key,
    ocspUrl: description.ocspUrl,
    crlUrl: description.crlUrl,
    caIssuersUrl: description.caIssuersUrl,
  };
}

/** Reads an issuer's certificate and loads its key from the store. */
export async function loadIssuer(
  description: IssuerDescription,
  keyStore: KeyStore,
): Promise<Issuer> {
  const pem = await readFile(description.certFile, 'utf8').catch((err: Error) => {
    const { id, certFile } = description;
    throw new Error(`issuer ${id}: cannot read ${certFile}: ${err.message}`);
  });

  const key = await keyStore.load(description.keyId);
  return issuerFromCertificate(description, pemToDer(pem), key);
}
