/**
 * A minimal DER reader and writer that works on exact bytes. Certificate Transparency needs a
 * certificate's TBSCertificate with one extension taken out or swapped while every other byte
 * stays as it was (RFC 6962 §3.1), which re-encoding through an ASN.1 library cannot promise.
 */

/** One tag-length-value element inside a buffer, by offsets. */
export interface Tlv {
  /** The identifier octet; high tag numbers (X.690 §8.1.2.4) are not needed here. */
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/** DER tags this module's callers look for. */
export const derTags = {
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  sequence: 0x30,
  /** TBSCertificate's `[0] EXPLICIT Version`. */
  version: 0xa0,
  /** TBSCertificate's `[3] EXPLICIT Extensions`. */
  extensions: 0xa3,
} as const;

/** Reads the element at `offset`; throws when it runs past `limit` or uses an indefinite length. */
export function readTlv(der: Uint8Array, offset = 0, limit = der.length): Tlv {
  if (offset + 2 > limit) throw new Error(`DER element at ${offset} is truncated`);

  const tag = der[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error(`DER element at ${offset} has a high tag number`);

  let length = der[offset + 1];
  let contentStart = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    // X.690 §10.1: DER forbids the indefinite form; four octets cover any certificate.
    if (octets === 0 || octets > 4) {
      throw new Error(`DER element at ${offset} has a length of ${octets} octets`);
    }
    if (contentStart + octets > limit) throw new Error(`DER length at ${offset} is truncated`);

    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[contentStart + i];
    contentStart += octets;
  }

  const end = contentStart + length;
  if (end > limit) throw new Error(`DER element at ${offset} runs ${end - limit} bytes too far`);
  return { tag, start: offset, contentStart, end };
}

/** The elements directly inside a constructed element, in order. */
export function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** Reads the one element that must fill `der` exactly. */
export function readWhole(der: Uint8Array, what: string): Tlv {
  let tlv: Tlv;
  try {
    tlv = readTlv(der);
  } catch (err) {
    throw new Error(`${what} is not DER: ${(err as Error).message}`);
  }
  if (tlv.end !== der.length) {
    throw new Error(`${what} has ${der.length - tlv.end} bytes after its end`);
  }
  return tlv;
}

/** The bytes of an element, header included. */
export function bytesOf(der: Uint8Array, tlv: Tlv): Buffer {
  return Buffer.from(der.subarray(tlv.start, tlv.end));
}

/** Encodes one element with a minimal DER length. */
export function encodeTlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) {
    header = [tag, n];
  } else {
    const octets: number[] = [];
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest & 0xff);
    header = [tag, 0x80 | octets.length, ...octets];
  }
  return Buffer.concat([Buffer.from(header), content]);
}
