import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/**
 * Reading an OCSPRequest (RFC 6960 §4.1.1) from what a client sent. Anything that is not one
 * DER OCSPRequest asking about exactly one certificate is malformed (RFC 5019 §2.1.1 allows
 * clients one Request); the caller answers `malformedRequest`, never an HTTP 5xx.
 */

/** The request could not be read; the message says why, for logs only. */
export class MalformedOcspRequest extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MalformedOcspRequest';
  }
}

/** The one CertID a request asks about. */
export interface OcspQuestion {
  /** OID of the CertID hash; SHA-1 in RFC 5019 requests. */
  hashAlgorithm: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Lower-case hex of the serial's unsigned value, as the SA keys it. */
  serialHex: string;
}

/** Reads one DER OCSPRequest; throws MalformedOcspRequest for anything else. */
export function parseOcspRequest(der: Uint8Array): OcspQuestion {
  if (der.byteLength === 0) throw new MalformedOcspRequest('empty request');

  const asn1 = asn1js.fromBER(der);
  if (asn1.offset === -1) {
    throw new MalformedOcspRequest(`not ASN.1: ${asn1.result.error}`);
  }
  if (asn1.offset !== der.byteLength) {
    throw new MalformedOcspRequest(`${der.byteLength - asn1.offset} bytes after the request`);
  }

  let request: pkijs.OCSPRequest;
  try {
    request = new pkijs.OCSPRequest({ schema: asn1.result });
  } catch (err) {
    throw new MalformedOcspRequest('not an OCSPRequest', { cause: err });
  }

  const list = request.tbsRequest.requestList;
  if (list.length !== 1) {
    throw new MalformedOcspRequest(`asks about ${list.length} certificates; expected 1`);
  }

  const { reqCert } = list[0];
  const serial = Buffer.from(reqCert.serialNumber.valueBlock.valueHexView);
  if (serial.length === 0 || serial.length > 21 || serial[0] & 0x80) {
    throw new MalformedOcspRequest('serial number is empty, too long or negative');
  }

  // DER puts a zero octet before a serial whose top bit is set; the SA keys serials without it.
  const unsigned = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  return {
    hashAlgorithm: reqCert.hashAlgorithm.algorithmId,
    issuerNameHash: Buffer.from(reqCert.issuerNameHash.valueBlock.valueHexView),
    issuerKeyHash: Buffer.from(reqCert.issuerKeyHash.valueBlock.valueHexView),
    serialHex: unsigned.toString('hex'),
  };
}
