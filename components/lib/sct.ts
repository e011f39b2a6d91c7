import * as asn1js from 'asn1js';
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import { bytesOf, childrenOf, derTags, encodeTlv, readWhole } from './der.js';
import { CaError } from './errors.js';
import { extension, oids } from './x509.js';

/**
 * Certificate Transparency v1 (RFC 6962): signed certificate timestamps in their TLS encoding,
 * the structures a log signs, the poison and SCT-list extensions, and SCT verification against
 * a log's public key. The CT log stub, the publisher, the CA and the smoke tests share it.
 */

/** RFC 6962 §3.2 `Version`: v1 is the only one. */
export const sctVersionV1 = 0;

/** RFC 5246 §7.4.1.4.1 `HashAlgorithm` codes; RFC 6962 §2.1.4 allows only SHA-256. */
export const tlsHash = { sha256: 4 } as const;
/** RFC 5246 §7.4.1.4.1 `SignatureAlgorithm` codes a log may sign with. */
export const tlsSignature = { rsa: 1, ecdsa: 3 } as const;

/** RFC 6962 §3.2 `SignatureType`. */
const signatureType = { certificateTimestamp: 0, treeHash: 1 } as const;

/** RFC 6962 §3.1 `LogEntryType`. */
export const logEntryTypes = { x509: 0, precert: 1 } as const;

/** RFC 5246 §4.7: an algorithm pair and the signature bytes. */
export interface DigitallySigned {
  readonly hashAlgorithm: number;
  readonly signatureAlgorithm: number;
  readonly signature: Buffer;
}

/** RFC 6962 §3.2 `SignedCertificateTimestamp`. */
export interface SignedCertificateTimestamp {
  readonly version: number;
  /** SHA-256 of the log's SubjectPublicKeyInfo. */
  readonly logId: Buffer;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  /** `CtExtensions`; empty in v1 practice. */
  readonly extensions: Buffer;
  readonly signature: DigitallySigned;
}

/** What a log signs over (RFC 6962 §3.1): a whole certificate, or a precertificate's parts. */
export type LogEntry =
  | { readonly type: 'x509'; readonly certificate: Buffer }
  | { readonly type: 'precert'; readonly issuerKeyHash: Buffer; readonly tbsCertificate: Buffer };

function malformed(what: string): CaError {
  return new CaError('malformed', what);
}

// ---------------------------------------------------------------------------------------------
// TLS presentation language (RFC 5246 §4)

function uint(value: number | bigint, bytes: 1 | 2 | 3 | 8): Buffer {
  const out = Buffer.alloc(bytes);
  if (bytes === 8) out.writeBigUInt64BE(BigInt(value));
  else out.writeUIntBE(Number(value), 0, bytes);
  return out;
}

/** `opaque <0..2^(8*lengthBytes)-1>`: a length prefix, then the bytes. */
function vector(data: Buffer, lengthBytes: 2 | 3, what: string): Buffer {
  if (data.length >= 2 ** (8 * lengthBytes)) {
    throw malformed(`${what} of ${data.length} bytes does not fit a ${lengthBytes}-byte length`);
  }
  return Buffer.concat([uint(data.length, lengthBytes), data]);
}

/** Reads a TLS structure front to back, refusing to run past its end. */
class TlsReader {
  #at = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  #take(n: number, field: string): Buffer {
    if (this.#at + n > this.buf.length) {
      throw malformed(`${this.what} ends inside ${field} (${this.buf.length} bytes)`);
    }
    const out = this.buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  uint(bytes: 1 | 2 | 3, field: string): number {
    return this.#take(bytes, field).readUIntBE(0, bytes);
  }

  uint64(field: string): number {
    const value = this.#take(8, field).readBigUInt64BE();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw malformed(`${this.what} ${field} ${value} is out of range`);
    }
    return Number(value);
  }

  bytes(n: number, field: string): Buffer {
    return Buffer.from(this.#take(n, field));
  }

  vector(lengthBytes: 2 | 3, field: string): Buffer {
    return this.bytes(this.uint(lengthBytes, `${field} length`), field);
  }

  end(): void {
    const left = this.buf.length - this.#at;
    if (left !== 0) throw malformed(`${this.what} has ${left} bytes after its end`);
  }

  get done(): boolean {
    return this.#at === this.buf.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** RFC 5246 §4.7: hash and signature algorithm octets, then a two-byte-length signature. */
export function encodeDigitallySigned(ds: DigitallySigned): Buffer {
  return Buffer.concat([
    uint(ds.hashAlgorithm, 1),
    uint(ds.signatureAlgorithm, 1),
    vector(ds.signature, 2, 'signature'),
  ]);
}

/** Decodes a `DigitallySigned` that must fill `buf`. */
export function decodeDigitallySigned(buf: Buffer): DigitallySigned {
  const r = new TlsReader(buf, 'DigitallySigned');
  const out = {
    hashAlgorithm: r.uint(1, 'hash algorithm'),
    signatureAlgorithm: r.uint(1, 'signature algorithm'),
    signature: r.vector(2, 'signature'),
  };
  r.end();
  return out;
}

/** RFC 6962 §3.2: the TLS encoding of one SCT, as a TLS extension or the X.509 list carries it. */
export function encodeSct(sct: SignedCertificateTimestamp): Buffer {
  if (sct.logId.length !== 32) {
    throw malformed(`expected a 32-byte SCT log id, got ${sct.logId.length} bytes`);
  }
  return Buffer.concat([
    uint(sct.version, 1),
    sct.logId,
    uint(sct.timestamp, 8),
    vector(sct.extensions, 2, 'SCT extensions'),
    encodeDigitallySigned(sct.signature),
  ]);
}

/** Decodes one TLS-encoded SCT that must fill `buf`; only v1 is understood. */
export function decodeSct(buf: Buffer): SignedCertificateTimestamp {
  const r = new TlsReader(buf, 'SCT');
  const version = r.uint(1, 'version');
  if (version !== sctVersionV1) throw malformed(`expected SCT version 0 (v1), got ${version}`);

  const logId = r.bytes(32, 'log id');
  const timestamp = r.uint64('timestamp');
  const extensions = r.vector(2, 'extensions');
  const signature = {
    hashAlgorithm: r.uint(1, 'hash algorithm'),
    signatureAlgorithm: r.uint(1, 'signature algorithm'),
    signature: r.vector(2, 'signature'),
  };
  r.end();
  return { version, logId, timestamp, extensions, signature };
}

/**
 * RFC 6962 §3.3 `SignedCertificateTimestampList`: `SerializedSCT sct_list <1..2^16-1>`, each
 * `opaque SerializedSCT <1..2^16-1>`. Takes SCTs already TLS-encoded.
 */
export function encodeSctList(scts: readonly Buffer[]): Buffer {
  if (scts.length === 0) throw malformed('expected at least one SCT for an SCT list');
  for (const sct of scts) {
    if (sct.length === 0) throw malformed('expected a non-empty SCT in the SCT list');
  }
  const body = Buffer.concat(scts.map((sct) => vector(sct, 2, 'SCT')));
  return vector(body, 2, 'SCT list');
}

/** The TLS-encoded SCTs of a list, each checked to decode. */
export function decodeSctList(buf: Buffer): Buffer[] {
  const outer = new TlsReader(buf, 'SCT list');
  const body = outer.vector(2, 'SCTs');
  outer.end();

  const r = new TlsReader(body, 'SCT list');
  const out: Buffer[] = [];
  while (!r.done) {
    const sct = r.vector(2, `SCT ${out.length + 1}`);
    decodeSct(sct);
    out.push(sct);
  }
  if (out.length === 0) throw malformed('expected at least one SCT in the SCT list');
  return out;
}

// ---------------------------------------------------------------------------------------------
// What logs sign

function signedEntry(entry: LogEntry): Buffer {
  if (entry.type === 'x509') {
    const certificate = vector(entry.certificate, 3, 'certificate');
    return Buffer.concat([uint(logEntryTypes.x509, 2), certificate]);
  }
  if (entry.issuerKeyHash.length !== 32) {
    throw malformed(`expected a 32-byte issuer key hash, got ${entry.issuerKeyHash.length} bytes`);
  }
  return Buffer.concat([
    uint(logEntryTypes.precert, 2),
    entry.issuerKeyHash,
    vector(entry.tbsCertificate, 3, 'TBSCertificate'),
  ]);
}

/** RFC 6962 §3.2: the `digitally-signed` struct behind an SCT's signature. */
export function sctSignedData(
  sct: Pick<SignedCertificateTimestamp, 'version' | 'timestamp' | 'extensions'>,
  entry: LogEntry,
): Buffer {
  return Buffer.concat([
    uint(sct.version, 1),
    uint(signatureType.certificateTimestamp, 1),
    uint(sct.timestamp, 8),
    signedEntry(entry),
    vector(sct.extensions, 2, 'SCT extensions'),
  ]);
}

/** RFC 6962 §3.4 `MerkleTreeLeaf` (v1, timestamped_entry): the leaf a log's tree hashes. */
export function merkleTreeLeaf(timestamp: number, entry: LogEntry, extensions: Buffer): Buffer {
  const timestampedEntryLeafType = 0;
  return Buffer.concat([
    uint(sctVersionV1, 1),
    uint(timestampedEntryLeafType, 1),
    uint(timestamp, 8),
    signedEntry(entry),
    vector(extensions, 2, 'SCT extensions'),
  ]);
}

/** RFC 6962 §3.5: the `digitally-signed` struct behind a tree head signature. */
export function treeHeadSignedData(head: {
  timestamp: number;
  treeSize: number;
  rootHash: Buffer;
}): Buffer {
  return Buffer.concat([
    uint(sctVersionV1, 1),
    uint(signatureType.treeHash, 1),
    uint(head.timestamp, 8),
    uint(head.treeSize, 8),
    head.rootHash,
  ]);
}

/** Signs with SHA-256 as RFC 6962 §2.1.4 requires: ECDSA (DER signature) or RSA PKCS#1 v1.5. */
export function signDigitally(data: Buffer, privateKey: KeyObject): DigitallySigned {
  const ecdsa = privateKey.asymmetricKeyType === 'ec';
  return {
    hashAlgorithm: tlsHash.sha256,
    signatureAlgorithm: ecdsa ? tlsSignature.ecdsa : tlsSignature.rsa,
    signature: sign('sha256', data, ecdsa ? { key: privateKey, dsaEncoding: 'der' } : privateKey),
  };
}

/** Whether `ds` is a SHA-256 signature over `data` by `publicKey`, of the key's own type. */
export function verifyDigitallySigned(
  ds: DigitallySigned,
  data: Buffer,
  publicKey: KeyObject,
): boolean {
  const ecdsa = publicKey.asymmetricKeyType === 'ec';
  const expected = ecdsa ? tlsSignature.ecdsa : tlsSignature.rsa;
  if (ds.hashAlgorithm !== tlsHash.sha256 || ds.signatureAlgorithm !== expected) return false;

  try {
    const key = ecdsa ? { key: publicKey, dsaEncoding: 'der' as const } : publicKey;
    return verify('sha256', data, key, ds.signature);
  } catch {
    return false;
  }
}

/** RFC 6962 §3.2: a log's id is the SHA-256 of its SubjectPublicKeyInfo. */
export function logIdOf(key: KeyObject): Buffer {
  const spki = publicKeyFrom(key).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest();
}

/** RFC 6962 §3.2 `issuer_key_hash`: SHA-256 of the issuer's SubjectPublicKeyInfo. */
export function issuerKeyHashOf(issuerSpki: Buffer): Buffer {
  return createHash('sha256').update(issuerSpki).digest();
}

/** A public key from SPKI DER, a PEM text, or a KeyObject. */
export function publicKeyFrom(value: KeyObject | Buffer | string): KeyObject {
  if (typeof value === 'string') return createPublicKey(value);
  if (Buffer.isBuffer(value)) return createPublicKey({ key: value, format: 'der', type: 'spki' });
  return value.type === 'private' ? createPublicKey(value) : value;
}

// ---------------------------------------------------------------------------------------------
// The response of add-chain and add-pre-chain (RFC 6962 §4.1)

/** The JSON a log answers add-chain and add-pre-chain with. */
export interface AddChainResponse {
  sct_version: number;
  /** base64 log id. */
  id: string;
  timestamp: number;
  /** base64 `CtExtensions`. */
  extensions: string;
  /** base64 TLS `DigitallySigned`. */
  signature: string;
}

/** An SCT as the JSON a log answers add-chain with. */
export function sctToResponse(sct: SignedCertificateTimestamp): AddChainResponse {
  return {
    sct_version: sct.version,
    id: sct.logId.toString('base64'),
    timestamp: sct.timestamp,
    extensions: sct.extensions.toString('base64'),
    signature: encodeDigitallySigned(sct.signature).toString('base64'),
  };
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64: node's decoder skips what it does not understand, so check first. */
export function decodeBase64(value: unknown, field: string): Buffer {
  if (typeof value !== 'string' || !base64Pattern.test(value)) {
    const shown = typeof value === 'string' ? `${value.length} characters` : typeof value;
    throw malformed(`expected ${field} as base64, got ${shown} that is not`);
  }
  return Buffer.from(value, 'base64');
}

/** Reads a log's add-chain answer, naming the field that is wrong. */
export function sctFromResponse(value: unknown): SignedCertificateTimestamp {
  if (typeof value !== 'object' || value === null) {
    throw malformed(`expected an add-chain response object, got ${typeof value}`);
  }
  const v = value as Record<string, unknown>;
  if (v.sct_version !== sctVersionV1) {
    throw malformed(`expected sct_version 0, got ${JSON.stringify(v.sct_version)}`);
  }
  if (typeof v.timestamp !== 'number' || !Number.isSafeInteger(v.timestamp) || v.timestamp < 0) {
    throw malformed(`expected timestamp in milliseconds, got ${JSON.stringify(v.timestamp)}`);
  }

  const logId = decodeBase64(v.id, 'id');
  if (logId.length !== 32) throw malformed(`expected a 32-byte id, got ${logId.length} bytes`);

  return {
    version: sctVersionV1,
    logId,
    timestamp: v.timestamp,
    extensions: decodeBase64(v.extensions ?? '', 'extensions'),
    signature: decodeDigitallySigned(decodeBase64(v.signature, 'signature')),
  };
}

// ---------------------------------------------------------------------------------------------
// Certificates

const oidDer = (oid: string) => Buffer.from(new asn1js.ObjectIdentifier({ value: oid }).toBER());
const poisonOid = oidDer(oids.ctPoison);
const sctListOid = oidDer(oids.sctList);

/** RFC 6962 §3.1: the precertificate poison, critical, its value an ASN.1 NULL. */
export function poisonExtension(): pkijs.Extension {
  return extension(oids.ctPoison, true, new asn1js.Null());
}

/** RFC 6962 §3.3: the SCT list, not critical, an OCTET STRING holding the TLS list. */
export function sctListExtension(scts: readonly Buffer[]): pkijs.Extension {
  return extension(oids.sctList, false, new asn1js.OctetString({ valueHex: encodeSctList(scts) }));
}

/** The DER of one extension, as it sits in a TBSCertificate. */
export function extensionDer(ext: pkijs.Extension): Buffer {
  return Buffer.from(ext.toSchema().toBER());
}

/** A certificate's TBSCertificate, byte for byte. */
export function tbsOf(certDer: Buffer): Buffer {
  return asMalformed(() => {
    const cert = readWhole(certDer, 'certificate');
    const [tbs] = childrenOf(certDer, cert);
    if (cert.tag !== derTags.sequence || tbs?.tag !== derTags.sequence) {
      throw malformed('certificate is not a SEQUENCE starting with a TBSCertificate');
    }
    return bytesOf(certDer, tbs);
  });
}

/**
 * A certificate's SubjectPublicKeyInfo exactly as encoded, found by walking the DER: the issuer
 * key hash must be over these bytes (RFC 6962 §3.2), and a full parse costs milliseconds.
 */
export function spkiOf(certDer: Buffer): Buffer {
  const tbs = tbsOf(certDer);
  return asMalformed(() => {
    const fields = childrenOf(tbs, readWhole(tbs, 'TBSCertificate'));
    // The version is an optional [0]; without it every field sits one place earlier.
    const spki = fields[(fields[0]?.tag === derTags.version ? 1 : 0) + 5];
    if (spki?.tag !== derTags.sequence) {
      throw malformed('TBSCertificate has no subjectPublicKeyInfo');
    }
    return bytesOf(tbs, spki);
  });
}

/** Runs a DER walk, reporting what the DER reader throws as `malformed`. */
function asMalformed<T>(walk: () => T): T {
  try {
    return walk();
  } catch (err) {
    throw err instanceof CaError ? err : malformed((err as Error).message);
  }
}

/** A TBSCertificate taken apart: its fields before the extensions, then each extension. */
interface TbsParts {
  readonly fields: Buffer[];
  readonly extensions: { readonly oid: Buffer; readonly der: Buffer }[];
}

function splitTbs(tbsDer: Buffer): TbsParts {
  return asMalformed(() => {
    const fields = childrenOf(tbsDer, readWhole(tbsDer, 'TBSCertificate'));
    const last = fields[fields.length - 1];
    if (last?.tag !== derTags.extensions) {
      return { fields: fields.map((f) => bytesOf(tbsDer, f)), extensions: [] };
    }

    const [list] = childrenOf(tbsDer, last);
    if (list?.tag !== derTags.sequence) {
      throw malformed('TBSCertificate extensions are not a SEQUENCE');
    }
    const extensions = childrenOf(tbsDer, list).map((ext) => {
      const [oid] = childrenOf(tbsDer, ext);
      if (oid?.tag !== derTags.oid) throw malformed('a TBSCertificate extension has no OID');
      return { oid: bytesOf(tbsDer, oid), der: bytesOf(tbsDer, ext) };
    });
    return { fields: fields.slice(0, -1).map((f) => bytesOf(tbsDer, f)), extensions };
  });
}

/** Puts a TBSCertificate together again; no extensions means no `[3]` element, as DER wants. */
function joinTbs(fields: Buffer[], extensions: Buffer[]): Buffer {
  const list = extensions.length
    ? [encodeTlv(derTags.extensions, encodeTlv(derTags.sequence, Buffer.concat(extensions)))]
    : [];
  return encodeTlv(derTags.sequence, Buffer.concat([...fields, ...list]));
}

/**
 * RFC 6962 §3.2: the TBSCertificate an SCT for this certificate signs. For a precertificate
 * that is its TBS without the poison; for the final certificate, its TBS without the SCT list,
 * which is the same bytes when the CA built one from the other.
 */
export function precertTbsOf(certDer: Buffer): Buffer {
  const { fields, extensions } = splitTbs(tbsOf(certDer));
  const kept = extensions.filter((e) => !e.oid.equals(poisonOid) && !e.oid.equals(sctListOid));
  return joinTbs(fields, kept.map((e) => e.der));
}

/**
 * The final certificate's TBS from a precertificate's (RFC 6962 §3.1): the poison swapped in
 * place for `replacement` (an SCT list extension), or dropped when none is given. Throws when
 * the TBS carries no poison.
 */
export function swapPoison(precertTbs: Buffer, replacement: Buffer | null): Buffer {
  const { fields, extensions } = splitTbs(precertTbs);
  const found = extensions.filter((e) => e.oid.equals(poisonOid)).length;
  if (found !== 1) {
    throw malformed(`expected one poison extension in the precertificate, got ${found}`);
  }

  const swapped = extensions.flatMap((e) => {
    if (!e.oid.equals(poisonOid)) return [e.der];
    return replacement ? [replacement] : [];
  });
  return joinTbs(fields, swapped);
}

/** The DER of a certificate's extension with this OID, if it has one. */
function findExtension(certDer: Buffer, oid: Buffer): Buffer | undefined {
  return splitTbs(tbsOf(certDer)).extensions.find((e) => e.oid.equals(oid))?.der;
}

/** Whether a certificate carries the critical poison extension. */
export function isPrecertificate(certDer: Buffer): boolean {
  const poison = findExtension(certDer, poisonOid);
  if (!poison) return false;

  // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue }
  const [, critical] = asMalformed(() => childrenOf(poison, readWhole(poison, 'extension')));
  return critical?.tag === 0x01 && poison[critical.contentStart] !== 0;
}

/** The TLS-encoded SCTs embedded in a certificate; empty when it has no SCT list. */
export function embeddedScts(certDer: Buffer): Buffer[] {
  const ext = findExtension(certDer, sctListOid);
  if (!ext) return [];

  const list = asMalformed(() => {
    const parts = childrenOf(ext, readWhole(ext, 'SCT list extension'));
    const extnValue = parts[parts.length - 1];
    // extnValue is an OCTET STRING wrapping the DER OCTET STRING of the TLS list.
    const wrapped = ext.subarray(extnValue.contentStart, extnValue.end);
    const inner = readWhole(wrapped, 'SCT list');
    return wrapped.subarray(inner.contentStart);
  });
  return decodeSctList(list);
}

/** What `verifySct` checks an SCT against: one certificate, its issuer, the log's key. */
export interface SctVerification {
  /** The certificate the SCT is embedded in; its SCT list is removed to rebuild the TBS. */
  finalCertDer?: Buffer;
  /** Or the precertificate the SCT was issued for; its poison is removed. */
  precertificateDer?: Buffer;
  /** The issuer's SubjectPublicKeyInfo, DER, or its certificate. */
  issuerSpki?: Buffer;
  issuerCertDer?: Buffer;
  /** The log's public key: SPKI DER, PEM, or a KeyObject. */
  logPublicKey: KeyObject | Buffer | string;
}

/**
 * Whether an SCT is the given log's v1 signature over the precertificate entry of this
 * certificate (RFC 6962 §3.2). False for another log's id or a signature that does not verify;
 * throws when the inputs themselves are unusable.
 */
export function verifySct(sct: SignedCertificateTimestamp | Buffer, o: SctVerification): boolean {
  const decoded = Buffer.isBuffer(sct) ? decodeSct(sct) : sct;
  const certDer = o.finalCertDer ?? o.precertificateDer;
  if (!certDer) throw new Error('expected finalCertDer or precertificateDer to verify an SCT');

  const issuerSpki = o.issuerSpki ?? (o.issuerCertDer && spkiOf(o.issuerCertDer));
  if (!issuerSpki) throw new Error('expected issuerSpki or issuerCertDer to verify an SCT');

  const key = publicKeyFrom(o.logPublicKey);
  if (decoded.version !== sctVersionV1 || !decoded.logId.equals(logIdOf(key))) return false;

  const entry: LogEntry = {
    type: 'precert',
    issuerKeyHash: issuerKeyHashOf(issuerSpki),
    tbsCertificate: precertTbsOf(certDer),
  };
  return verifyDigitallySigned(decoded.signature, sctSignedData(decoded, entry), key);
}
