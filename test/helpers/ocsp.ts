import * as asn1js from 'asn1js';
import { webcrypto } from 'node:crypto';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { createHierarchy, rootCertFile } from '../../components/ca/hierarchy.js';
import { loadIssuer, type Issuer } from '../../components/ca/issuer.js';
import { FileKeyStore } from '../../components/keys/file-store.js';
import type { KeyAlgorithm } from '../../components/keys/types.js';
import { ocspOids, type IssuerHashes } from '../../components/lib/ocsp.js';
import { pemToDer } from '../../components/lib/x509.js';
import { readFileSync } from 'node:fs';

/**
 * OCSP for tests: an issuer to sign with, requests built the way a client builds them, and
 * responses read back and verified with pkijs (an implementation other than OpenSSL's).
 */

pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as Crypto }));

/** A root and one issuing intermediate in `dir`, with its loaded key. */
export interface IssuerFixture {
  issuer: Issuer;
  certFile: string;
  rootFile: string;
  rootDer: Buffer;
}

export async function issuerFixture(
  dir: string,
  algorithm: KeyAlgorithm = 'ecdsa-p256',
): Promise<IssuerFixture> {
  const keyStore = new FileKeyStore(join(dir, 'keys'));
  const description = await createHierarchy({
    keyStore,
    dir: join(dir, 'ca'),
    algorithm,
    rootName: 'ocsp test root',
    issuerName: 'ocsp test issuer',
    urls: {
      ocspBase: 'http://127.0.0.1:4002/ocsp',
      crlBase: 'http://127.0.0.1:4002/crl',
      caIssuersBase: 'http://127.0.0.1:4002/issuer',
    },
  });
  const rootFile = rootCertFile(join(dir, 'ca'));
  return {
    issuer: await loadIssuer(description, keyStore),
    certFile: description.certFile,
    rootFile,
    rootDer: pemToDer(readFileSync(rootFile, 'utf8')),
  };
}

/** A DER OCSPRequest for one serial (or several copies of it), as RFC 5019 clients send. */
export function ocspRequestDer(
  hashes: IssuerHashes,
  serialHex: string,
  options: { hashAlgorithm?: string; copies?: number } = {},
): Buffer {
  const serial = Buffer.from(serialHex, 'hex');
  const certID = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: options.hashAlgorithm ?? ocspOids.sha1,
      algorithmParams: new asn1js.Null(),
    }),
    issuerNameHash: new asn1js.OctetString({ valueHex: hashes.nameHash }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: hashes.keyHash }),
    serialNumber: new asn1js.Integer({
      valueHex: serial[0] & 0x80 ? Buffer.concat([Buffer.from([0]), serial]) : serial,
    }),
  });
  const request = new pkijs.OCSPRequest();
  for (let i = 0; i < (options.copies ?? 1); i++) {
    request.tbsRequest.requestList.push(new pkijs.Request({ reqCert: certID }));
  }
  return Buffer.from(request.toSchema(true).toBER());
}

/** What a response says, read with pkijs. */
export interface ReadOcspResponse {
  /** RFC 6960 §4.2.1 OCSPResponseStatus. */
  responseStatus: number;
  certStatus?: 'good' | 'revoked' | 'unknown';
  serialHex?: string;
  revokedAt?: Date;
  reason?: number;
  thisUpdate?: Date;
  nextUpdate?: Date;
  basic?: pkijs.BasicOCSPResponse;
}

export function readOcspResponse(der: Uint8Array): ReadOcspResponse {
  const response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
  const responseStatus = response.responseStatus.valueBlock.valueDec;
  if (!response.responseBytes) return { responseStatus };

  const basic = pkijs.BasicOCSPResponse.fromBER(
    new Uint8Array(response.responseBytes.response.valueBlock.valueHexView),
  );
  const [single] = basic.tbsResponseData.responses;
  const status = single.certStatus as asn1js.Constructed;
  const tag = status.idBlock.tagNumber;
  const out: ReadOcspResponse = {
    responseStatus,
    certStatus: tag === 0 ? 'good' : tag === 1 ? 'revoked' : 'unknown',
    serialHex: Buffer.from(single.certID.serialNumber.valueBlock.valueHexView).toString('hex'),
    thisUpdate: single.thisUpdate,
    ...(single.nextUpdate ? { nextUpdate: single.nextUpdate } : {}),
    basic,
  };
  if (tag === 1) {
    const [time, reason] = status.valueBlock.value as asn1js.BaseBlock[];
    out.revokedAt = (time as asn1js.GeneralizedTime).toDate();
    if (reason) {
      out.reason = ((reason as asn1js.Constructed).valueBlock.value[0] as asn1js.Enumerated)
        .valueBlock.valueDec;
    }
  }
  return out;
}

/**
 * True when pkijs accepts the response as signed by the issuer itself: responderID matches
 * the issuer's key, the signature verifies, the issuer chains to the root, and it is
 * authorized for the CertID it answers.
 */
export async function pkijsVerifies(
  der: Uint8Array,
  issuerCertDer: Buffer,
  rootDer: Buffer,
): Promise<boolean> {
  const { basic } = readOcspResponse(der);
  if (!basic) return false;
  const issuerCert = pkijs.Certificate.fromBER(new Uint8Array(issuerCertDer));
  basic.certs = [issuerCert];
  return basic.verify({ trustedCerts: [pkijs.Certificate.fromBER(new Uint8Array(rootDer))] });
}
