import * as asn1js from 'asn1js';
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import { signatureHashOf } from '../keys/algorithms.js';
import type { KeyAlgorithm, SigningKey } from '../keys/types.js';
import { CaError } from './errors.js';

/**
 * X.509 helpers over pkijs and asn1js: reading CSRs, the public key policy, building and
 * signing certificates through a `SigningKey`, and the extensions a CA puts in them. Signatures
 * are made and checked with node:crypto, so no WebCrypto engine is involved.
 */

/** Object identifiers this CA reads or writes. */
export const oids = {
  commonName: '2.5.4.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocsp: '1.3.6.1.5.5.7.48.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  /** CA/Browser Forum BR §7.1.6.1: domain validated. */
  domainValidated: '2.23.140.1.2.1',
  /** RFC 6962 §3.1: the precertificate poison extension. */
  ctPoison: '1.3.6.1.4.1.11129.2.4.3',
  /** RFC 6962 §3.3: the embedded SCT list. */
  sctList: '1.3.6.1.4.1.11129.2.4.2',
} as const;

/** Hashes a CSR may be signed with; SHA-1 and RSA-PSS are refused. */
const csrSignatureHashes: Record<string, string> = {
  [oids.sha256WithRsa]: 'sha256',
  [oids.sha384WithRsa]: 'sha384',
  [oids.sha512WithRsa]: 'sha512',
  [oids.ecdsaWithSha256]: 'sha256',
  [oids.ecdsaWithSha384]: 'sha384',
  [oids.ecdsaWithSha512]: 'sha512',
};

/** Decodes one DER value that must fill `der` exactly. */
function fromDer(der: Uint8Array, what: string): asn1js.AsnType {
  const asn1 = asn1js.fromBER(der);
  if (asn1.offset === -1) throw new Error(`${what} is not valid ASN.1: ${asn1.result.error}`);
  if (asn1.offset !== der.byteLength) {
    throw new Error(`${what} has ${der.byteLength - asn1.offset} bytes after its end`);
  }
  return asn1.result;
}

/** The encoded bytes of a decoded element, exactly as they were read. */
function encodedBytes(block: asn1js.AsnType): Buffer {
  return Buffer.from((block as asn1js.BaseBlock).valueBeforeDecodeView);
}

function stringValue(block: unknown): string | undefined {
  const value = (block as { valueBlock?: { value?: unknown } }).valueBlock?.value;
  return typeof value === 'string' ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// Public keys

export type PublicKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa';

export interface PublicKeyDescription {
  keyType: PublicKeyType;
  /** Modulus length in bits, for RSA. */
  rsaBits?: number;
  /** Public exponent, for RSA. */
  rsaExponent?: bigint;
  rsaModulus?: bigint;
}

function unsignedBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/**
 * Public keys already read, by their DER. OpenSSL 3 takes a good fraction of a millisecond to
 * import a key, and the same key comes back often: the CA's own keys on every signature, a
 * subscriber's key in the RA and again in the CA. Bounded; the oldest entry goes first.
 */
const knownKeys = new Map<string, { description: PublicKeyDescription; key: KeyObject }>();
const knownKeysMax = 512;

function readPublicKey(spki: Buffer): { description: PublicKeyDescription; key: KeyObject } {
  const id = spki.toString('base64');
  const known = knownKeys.get(id);
  if (known) return known;

  const description = describeUncached(spki);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    const reason =
      description.keyType === 'rsa'
        ? 'RSA public key cannot be imported'
        : `ECDSA public key is not a point on ${description.keyType}`;
    throw new CaError('badPublicKey', reason, { cause: err });
  }
  const entry = { description, key };
  if (knownKeys.size >= knownKeysMax) knownKeys.delete(knownKeys.keys().next().value as string);
  knownKeys.set(id, entry);
  return entry;
}

/** The public key of a SubjectPublicKeyInfo, ready for `verify`; `badPublicKey` if unusable. */
export function publicKeyObject(spki: Buffer): KeyObject {
  return readPublicKey(spki).key;
}

/**
 * Says what kind of key a SubjectPublicKeyInfo holds. Throws `badPublicKey` for anything other
 * than RSA (parameters NULL) or ECDSA on a named P-256 or P-384 curve with a point on it.
 */
export function describePublicKey(spki: Buffer): PublicKeyDescription {
  return readPublicKey(spki).description;
}

function describeUncached(spki: Buffer): PublicKeyDescription {
  let info: pkijs.PublicKeyInfo;
  try {
    info = new pkijs.PublicKeyInfo({ schema: fromDer(spki, 'public key') });
  } catch (err) {
    throw new CaError('badPublicKey', 'public key is not a DER SubjectPublicKeyInfo', {
      cause: err,
    });
  }

  const algorithm = info.algorithm.algorithmId;
  const params = info.algorithm.algorithmParams as unknown;
  const keyBits = info.subjectPublicKey.valueBlock.valueHexView;

  if (algorithm === oids.rsaEncryption) {
    // RFC 3279 §2.3.1: the parameters MUST be NULL.
    if (!(params instanceof asn1js.Null)) {
      throw new CaError('badPublicKey', 'RSA public key parameters must be NULL');
    }

    let modulus: Uint8Array;
    let exponent: Uint8Array;
    try {
      const sequence = fromDer(keyBits, 'RSA public key') as asn1js.Sequence;
      const [n, e] = sequence.valueBlock.value as asn1js.Integer[];
      modulus = n.valueBlock.valueHexView;
      exponent = e.valueBlock.valueHexView;
    } catch (err) {
      throw new CaError('badPublicKey', 'RSA public key is not a DER RSAPublicKey', { cause: err });
    }
    if (modulus[0] & 0x80 || exponent[0] & 0x80) {
      throw new CaError('badPublicKey', 'RSA public key has a negative modulus or exponent');
    }

    const n = unsignedBigInt(modulus);
    return {
      keyType: 'rsa',
      rsaBits: n.toString(2).length,
      rsaExponent: unsignedBigInt(exponent),
      rsaModulus: n,
    };
  }

  if (algorithm === oids.ecPublicKey) {
    const curve = params instanceof asn1js.ObjectIdentifier ? params.getValue() : undefined;
    const keyType = curve === oids.p256 ? 'ecdsa-p256' : curve === oids.p384 ? 'ecdsa-p384' : null;
    if (!keyType) {
      throw new CaError(
        'badPublicKey',
        `ECDSA curve ${curve ?? '(explicit parameters)'} is not supported; expected P-256 or P-384`,
      );
    }

    // readPublicKey imports the key next; OpenSSL refuses a point that is not on the curve.
    return { keyType };
  }

  throw new CaError(
    'badPublicKey',
    `public key algorithm ${algorithm} is not supported; expected RSA or ECDSA`,
  );
}

/** Odd primes below 1000, for the small-factor test of RSA moduli. */
const smallPrimes: bigint[] = (() => {
  const out: bigint[] = [];
  for (let n = 3; n < 1000; n += 2) {
    if (out.every((p) => BigInt(n) % p !== 0n)) out.push(BigInt(n));
  }
  return out;
})();

/**
 * Refuses a subscriber key the CA will not certify (`badPublicKey`): RSA must be 2048 to 4096
 * bits with e = 65537 and no small factor; ECDSA must be P-256 or P-384.
 */
export function checkKeyPolicy(spki: Buffer): PublicKeyDescription {
  const key = describePublicKey(spki);
  if (key.keyType !== 'rsa') return key;

  const bits = key.rsaBits ?? 0;
  if (bits < 2048 || bits > 4096) {
    throw new CaError('badPublicKey', `RSA key of ${bits} bits; expected 2048 to 4096 bits`);
  }
  if (key.rsaExponent !== 65537n) {
    throw new CaError('badPublicKey', `RSA public exponent ${key.rsaExponent}; expected 65537`);
  }

  const modulus = key.rsaModulus ?? 0n;
  if (modulus % 2n === 0n || smallPrimes.some((p) => modulus % p === 0n)) {
    throw new CaError('badPublicKey', 'RSA modulus has a small prime factor');
  }
  return key;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifierOf(spki: Buffer): Buffer {
  const info = new pkijs.PublicKeyInfo({ schema: fromDer(spki, 'public key') });
  return createHash('sha1').update(info.subjectPublicKey.valueBlock.valueHexView).digest();
}

// ---------------------------------------------------------------------------------------------
// CSRs

export interface ParsedCsr {
  /** The SubjectPublicKeyInfo exactly as the CSR encodes it. */
  publicKeySpki: Buffer;
  keyType: PublicKeyType;
  rsaBits?: number;
  commonName?: string;
  /** DNS names of the extensionRequest's subjectAltName, as written. */
  dnsNames: string[];
  signatureValid: boolean;
}

/**
 * Reads a DER PKCS#10 request. Throws `badCSR` when it cannot be parsed or uses an unsupported
 * signature algorithm, and `badPublicKey` for a key type this CA does not know; a signature
 * that does not verify is reported in `signatureValid`, for the caller to refuse.
 */
export function parseCsr(der: Buffer): ParsedCsr {
  let csr: pkijs.CertificationRequest;
  let spki: Buffer;
  try {
    csr = new pkijs.CertificationRequest({ schema: fromDer(der, 'CSR') });
    const info = fromDer(csr.tbsView, 'CSR info') as asn1js.Sequence;
    spki = encodedBytes(info.valueBlock.value[2]);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new CaError('badCSR', `CSR is not a DER PKCS#10 request: ${reason}`, { cause: err });
  }

  if (csr.version !== 0) throw new CaError('badCSR', `CSR version ${csr.version}; expected 0`);

  const signatureOid = csr.signatureAlgorithm.algorithmId;
  const hash = csrSignatureHashes[signatureOid];
  if (!hash) {
    throw new CaError(
      'badCSR',
      `CSR signature algorithm ${signatureOid} is not supported; expected RSA PKCS#1 v1.5 or ` +
        'ECDSA with SHA-256, SHA-384 or SHA-512',
    );
  }

  const key = describePublicKey(spki);
  const commonName = csr.subject.typesAndValues.find((tv) => tv.type === oids.commonName);

  return {
    publicKeySpki: spki,
    keyType: key.keyType,
    ...(key.rsaBits === undefined ? {} : { rsaBits: key.rsaBits }),
    ...(commonName ? { commonName: stringValue(commonName.value) } : {}),
    dnsNames: csrDnsNames(csr),
    signatureValid: verifies(hash, Buffer.from(csr.tbsView), spki, csr.signatureValue),
  };
}

function verifies(hash: string, data: Buffer, spki: Buffer, signature: asn1js.BitString): boolean {
  try {
    const key = publicKeyObject(spki);
    const bytes = signature.valueBlock.valueHexView;
    return verify(hash, data, { key, dsaEncoding: 'der' }, bytes);
  } catch {
    return false;
  }
}

function csrDnsNames(csr: pkijs.CertificationRequest): string[] {
  const request = csr.attributes?.find((a) => a.type === oids.extensionRequest);
  if (!request) return [];

  const names: string[] = [];
  try {
    const extensions = new pkijs.Extensions({ schema: request.values[0] });
    for (const ext of extensions.extensions) {
      if (ext.extnID !== oids.subjectAltName) continue;

      const schema = fromDer(ext.extnValue.valueBlock.valueHexView, 'subjectAltName');
      for (const name of new pkijs.GeneralNames({ schema }).names) {
        if (name.type === 2 && typeof name.value === 'string') names.push(name.value);
      }
    }
  } catch (err) {
    throw new CaError('badCSR', 'CSR extensionRequest cannot be parsed', { cause: err });
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Names, times, serials

/** A Name holding at most a common name (UTF8String); an empty Name when none is given. */
export function nameFromCommonName(commonName?: string): Buffer {
  const rdns =
    commonName === undefined
      ? []
      : [
          new asn1js.Set({
            value: [
              new asn1js.Sequence({
                value: [
                  new asn1js.ObjectIdentifier({ value: oids.commonName }),
                  new asn1js.Utf8String({ value: commonName }),
                ],
              }),
            ],
          }),
        ];
  return Buffer.from(new asn1js.Sequence({ value: rdns }).toBER());
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds only. */
function certificateTime(date: Date): pkijs.Time {
  const value = new Date(Math.floor(date.getTime() / 1000) * 1000);
  const year = value.getUTCFullYear();
  const utc = year >= 1950 && year < 2050;
  const type = utc ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime;
  return new pkijs.Time({ type, value });
}

/**
 * Throws unless `serialHex` is lower-case hex of a positive INTEGER in its minimal DER form,
 * at most 20 octets (RFC 5280 §4.1.2.2).
 */
function checkSerialHex(serialHex: string): void {
  const bytes = /^(?:[0-9a-f]{2}){1,20}$/.test(serialHex) ? Buffer.from(serialHex, 'hex') : null;
  const minimalPositive =
    bytes !== null &&
    (bytes[0] & 0x80) === 0 &&
    (bytes[0] !== 0 || (bytes.length > 1 && (bytes[1] & 0x80) !== 0));
  if (!minimalPositive) {
    throw new Error(
      'expected serialHex to be lower-case hex of a positive, minimally encoded integer of at ' +
        `most 20 octets, got ${JSON.stringify(serialHex)}`,
    );
  }
}

/**
 * A fresh serial: 16 random octets with the top bit cleared, so the INTEGER is positive, and
 * drawn again when the first octet is zero, so DER keeps all 16 octets and the hex is always 32
 * digits. That leaves a little under 127 bits of entropy, above CA/B BR §7.1's 64.
 */
export function randomSerialHex(): string {
  for (;;) {
    const bytes = randomBytes(16);
    bytes[0] &= 0x7f;
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
}

/** Lower-case hex of a certificate's serial number, without a sign octet. */
export function serialFromCertificate(der: Buffer): string {
  let cert: pkijs.Certificate;
  try {
    cert = new pkijs.Certificate({ schema: fromDer(der, 'certificate') });
  } catch (err) {
    throw new CaError('malformed', 'not a DER X.509 certificate', { cause: err });
  }

  const bytes = Buffer.from(cert.serialNumber.valueBlock.valueHexView);
  return (bytes.length > 1 && bytes[0] === 0 ? bytes.subarray(1) : bytes).toString('hex');
}

export interface CertificateFacts {
  serialHex: string;
  /** The subject and issuer Names and the key, exactly as encoded. */
  subjectDer: Buffer;
  issuerDer: Buffer;
  spki: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** The subjectKeyIdentifier extension's value, when present. */
  subjectKeyId?: Buffer;
  isCa: boolean;
}

/** Reads the fields of a certificate that issuing under it or about it needs. */
export function inspectCertificate(der: Buffer): CertificateFacts {
  let cert: pkijs.Certificate;
  let tbs: asn1js.AsnType[];
  try {
    cert = new pkijs.Certificate({ schema: fromDer(der, 'certificate') });
    tbs = (fromDer(cert.tbsView, 'TBSCertificate') as asn1js.Sequence).valueBlock.value;
  } catch (err) {
    throw new CaError('malformed', 'not a DER X.509 certificate', { cause: err });
  }

  // The version is an optional [0]; without it every field sits one place earlier.
  const at = (tbs[0] as asn1js.BaseBlock).idBlock.tagClass === 3 ? 1 : 0;
  const ski = cert.extensions?.find((e) => e.extnID === oids.subjectKeyIdentifier);
  const bc = cert.extensions?.find((e) => e.extnID === oids.basicConstraints);

  return {
    serialHex: serialFromCertificate(der),
    issuerDer: encodedBytes(tbs[at + 2]),
    subjectDer: encodedBytes(tbs[at + 4]),
    spki: encodedBytes(tbs[at + 5]),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    ...(ski
      ? {
          subjectKeyId: Buffer.from(
            (fromDer(ski.extnValue.valueBlock.valueHexView, 'SKI') as asn1js.OctetString)
              .valueBlock.valueHexView,
          ),
        }
      : {}),
    isCa: bc?.parsedValue instanceof pkijs.BasicConstraints ? bc.parsedValue.cA : false,
  };
}

// ---------------------------------------------------------------------------------------------
// Building and signing

/** The signatureAlgorithm a key signs certificates, OCSP responses and CRLs with. */
export function signatureAlgorithmOf(algorithm: KeyAlgorithm): pkijs.AlgorithmIdentifier {
  if (algorithm === 'ecdsa-p256' || algorithm === 'ecdsa-p384') {
    // RFC 5758 §3.2: ECDSA algorithm identifiers carry no parameters.
    const algorithmId = algorithm === 'ecdsa-p256' ? oids.ecdsaWithSha256 : oids.ecdsaWithSha384;
    return new pkijs.AlgorithmIdentifier({ algorithmId });
  }

  // RFC 4055 §5: the PKCS#1 v1.5 identifiers carry NULL parameters.
  return new pkijs.AlgorithmIdentifier({
    algorithmId: oids.sha256WithRsa,
    algorithmParams: new asn1js.Null(),
  });
}

/**
 * Signs `tbs` and checks the signature against the signer's own public key before it is used,
 * so a faulty token or a wrong key is caught here rather than by a relying party.
 */
export async function signChecked(tbs: Buffer, signer: SigningKey): Promise<Buffer> {
  const signature = await signer.sign(tbs);

  const key = publicKeyObject(signer.publicKeySpki);
  const hash = signatureHashOf(signer.algorithm);
  if (!verify(hash, tbs, { key, dsaEncoding: 'der' }, signature)) {
    throw new Error(`key ${signer.id} returned a signature that does not verify`);
  }
  return signature;
}

export interface CertificateTemplate {
  /** Lower-case hex of a positive serial, minimal encoding, up to 20 octets. */
  serialHex: string;
  /** The issuer's subject Name as DER, or `'self'` for a self-signed certificate. */
  issuerName: Buffer | 'self';
  /** The subject's common name; the subject Name is empty when absent. */
  subject?: string;
  /** The certified key's SubjectPublicKeyInfo, DER. */
  spki: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Written in this order; see the extension helpers below. */
  extensions: pkijs.Extension[];
}

/** Encodes a v3 certificate from a template and signs it with `signer`; returns DER. */
export async function buildCertificate(
  template: CertificateTemplate,
  signer: SigningKey,
): Promise<Buffer> {
  checkSerialHex(template.serialHex);
  if (!(template.notBefore.getTime() < template.notAfter.getTime())) {
    throw new Error(
      `expected notBefore before notAfter, got ${template.notBefore.toISOString()} and ` +
        `${template.notAfter.toISOString()}`,
    );
  }
  if (template.issuerName === 'self' && !template.spki.equals(signer.publicKeySpki)) {
    throw new Error(`a self-signed certificate must certify its signer's key ${signer.id}`);
  }

  const subjectDer = nameFromCommonName(template.subject);
  const issuerDer = template.issuerName === 'self' ? subjectDer : template.issuerName;

  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ valueHex: Buffer.from(template.serialHex, 'hex') });
  cert.signature = signatureAlgorithmOf(signer.algorithm);
  // Names parsed from DER keep their bytes, so the issuer matches its certificate exactly.
  cert.issuer = new pkijs.RelativeDistinguishedNames({ schema: fromDer(issuerDer, 'issuer') });
  cert.subject = new pkijs.RelativeDistinguishedNames({ schema: fromDer(subjectDer, 'subject') });
  cert.notBefore = certificateTime(template.notBefore);
  cert.notAfter = certificateTime(template.notAfter);
  cert.subjectPublicKeyInfo = new pkijs.PublicKeyInfo({ schema: fromDer(template.spki, 'spki') });
  if (template.extensions.length > 0) cert.extensions = template.extensions;

  const tbs = Buffer.from(cert.encodeTBS().toBER());
  const signature = await signChecked(tbs, signer);

  cert.tbsView = new Uint8Array(tbs);
  cert.signatureAlgorithm = signatureAlgorithmOf(signer.algorithm);
  cert.signatureValue = new asn1js.BitString({ valueHex: signature });
  return Buffer.from(cert.toSchema(false).toBER());
}

// ---------------------------------------------------------------------------------------------
// Extensions

/** Any extension from its DER value; the helpers below cover the usual ones. */
export function extension(
  extnID: string,
  critical: boolean,
  value: { toBER(sizeOnly?: boolean): ArrayBuffer },
): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical, extnValue: value.toBER(false) });
}

/**
 * RFC 5280 §4.2.1.6 dNSName entries. Critical when the subject is empty, as that section
 * requires.
 */
export function subjectAltNameExtension(dnsNames: string[], critical = false): pkijs.Extension {
  if (dnsNames.length === 0) throw new Error('expected at least one DNS name for subjectAltName');

  const names = dnsNames.map((value) => new pkijs.GeneralName({ type: 2, value }));
  return extension(oids.subjectAltName, critical, new pkijs.GeneralNames({ names }).toSchema());
}

/** Bit positions of RFC 5280 §4.2.1.3 KeyUsage. */
export const keyUsageBits = {
  digitalSignature: 0,
  contentCommitment: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;
export type KeyUsage = keyof typeof keyUsageBits;

/** KeyUsage, critical; DER drops trailing zero bits of a named bit list (X.690 §11.2.2). */
export function keyUsageExtension(usages: KeyUsage[]): pkijs.Extension {
  if (usages.length === 0) throw new Error('expected at least one key usage');

  const highest = Math.max(...usages.map((u) => keyUsageBits[u]));
  const bytes = Buffer.alloc((highest >> 3) + 1);
  for (const usage of usages) {
    const bit = keyUsageBits[usage];
    bytes[bit >> 3] |= 0x80 >> (bit & 7);
  }

  const value = new asn1js.BitString({ valueHex: bytes, unusedBits: 7 - (highest & 7) });
  return extension(oids.keyUsage, true, value);
}

/** ExtendedKeyUsage, not critical (CA/B BR §7.1.2.7.10). */
export function extKeyUsageExtension(purposes: string[]): pkijs.Extension {
  const value = new pkijs.ExtKeyUsage({ keyPurposes: purposes });
  return extension(oids.extKeyUsage, false, value.toSchema());
}

/** BasicConstraints, critical; `pathLength` only for a CA. */
export function basicConstraintsExtension(ca: boolean, pathLength?: number): pkijs.Extension {
  const value = new pkijs.BasicConstraints(
    ca && pathLength !== undefined ? { cA: true, pathLenConstraint: pathLength } : { cA: ca },
  );
  return extension(oids.basicConstraints, true, value.toSchema());
}

/** SubjectKeyIdentifier of the certified key (RFC 5280 §4.2.1.2 method 1). */
export function subjectKeyIdentifierExtension(spki: Buffer): pkijs.Extension {
  const value = new asn1js.OctetString({ valueHex: keyIdentifierOf(spki) });
  return extension(oids.subjectKeyIdentifier, false, value);
}

/** AuthorityKeyIdentifier holding the issuer's subject key identifier only. */
export function authorityKeyIdentifierExtension(issuerKeyId: Buffer): pkijs.Extension {
  const value = new pkijs.AuthorityKeyIdentifier({
    keyIdentifier: new asn1js.OctetString({ valueHex: issuerKeyId }),
  });
  return extension(oids.authorityKeyIdentifier, false, value.toSchema());
}

/** AuthorityInfoAccess with the issuer's OCSP responder and certificate URLs. */
export function authorityInfoAccessExtension(urls: {
  ocsp?: string;
  caIssuers?: string;
}): pkijs.Extension {
  const descriptions: pkijs.AccessDescription[] = [];
  for (const [method, url] of [
    [oids.ocsp, urls.ocsp],
    [oids.caIssuers, urls.caIssuers],
  ] as const) {
    if (!url) continue;
    descriptions.push(
      new pkijs.AccessDescription({
        accessMethod: method,
        accessLocation: new pkijs.GeneralName({ type: 6, value: url }),
      }),
    );
  }
  if (descriptions.length === 0) throw new Error('expected an OCSP or caIssuers URL for AIA');

  const value = new pkijs.InfoAccess({ accessDescriptions: descriptions });
  return extension(oids.authorityInfoAccess, false, value.toSchema());
}

/** CRLDistributionPoints with one full-name URI. */
export function crlDistributionPointsExtension(url: string): pkijs.Extension {
  const point = new pkijs.DistributionPoint({
    distributionPoint: [new pkijs.GeneralName({ type: 6, value: url })],
  });
  const value = new pkijs.CRLDistributionPoints({ distributionPoints: [point] });
  return extension(oids.crlDistributionPoints, false, value.toSchema());
}

/** CertificatePolicies with bare policy identifiers (no qualifiers). */
export function certificatePoliciesExtension(policies: string[]): pkijs.Extension {
  const value = new pkijs.CertificatePolicies({
    certificatePolicies: policies.map(
      (policyIdentifier) => new pkijs.PolicyInformation({ policyIdentifier }),
    ),
  });
  return extension(oids.certificatePolicies, false, value.toSchema());
}

// ---------------------------------------------------------------------------------------------
// PEM

/** DER to PEM with 64-column base64 lines and a final newline. */
export function derToPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function certificateToPem(der: Buffer): string {
  return derToPem(der, 'CERTIFICATE');
}

/** Every DER block of `label` in a PEM text, in order (a chain file gives several). */
export function pemToDers(pem: string, label = 'CERTIFICATE'): Buffer[] {
  const body = '([A-Za-z0-9+/=\\s]*?)';
  const pattern = new RegExp(`-----BEGIN ${label}-----${body}-----END ${label}-----`, 'g');
  return [...pem.matchAll(pattern)].map((m) => Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
}

/** The first DER block of `label` in a PEM text; throws when there is none. */
export function pemToDer(pem: string, label = 'CERTIFICATE'): Buffer {
  const [first] = pemToDers(pem, label);
  if (!first) throw new Error(`expected a PEM block "${label}", found none`);
  return first;
}
