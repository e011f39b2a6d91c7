import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Counter, type Registry } from 'prom-client';
import type { SigningKey } from '../keys/types.js';
import { CaError } from '../lib/errors.js';
import { audit, type Logger } from '../lib/log.js';
import { issuerHashes, ocspOids, ocspResponseStatus } from '../lib/ocsp.js';
import { signChecked, signatureAlgorithmOf } from '../lib/x509.js';
import type { Issuer } from './issuer.js';
import {
  revocationReasonCodes,
  type OcspGenerator,
  type SignOcspRequest,
  type SignedOcspResponse,
} from './revocation-service.js';

/**
 * OCSP responses (RFC 6960) as the CA signs them ahead of any request, in the RFC 5019 profile:
 * one SingleResponse, a SHA-1 CertID, responderID byKey, no nonce, signed by the issuer key
 * itself so that a client needs no delegated responder certificate.
 */

/** What one response says about one certificate. */
export interface OcspResponseTemplate {
  /** Lower-case hex of the serial's unsigned value. */
  serialHex: string;
  status: 'good' | 'revoked';
  /** Required when revoked. */
  revokedAt?: Date;
  /** RFC 5280 §5.3.1 CRLReason; 0 (unspecified) is left out, as CRL entries leave it out. */
  reason?: number;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** The issuer a response speaks for: its Name and its key, which signs. */
export interface OcspSigner {
  readonly subjectDer: Buffer;
  readonly key: SigningKey;
}

/** Whole seconds: RFC 5019 §2.2.4 and most clients expect GeneralizedTime without fractions. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** A positive INTEGER from unsigned hex, with a zero octet when the top bit is set. */
export function serialInteger(serialHex: string): asn1js.Integer {
  if (!/^(?:[0-9a-f]{2}){1,20}$/.test(serialHex)) {
    throw new Error(
      `expected serialHex to be lower-case hex of 1 to 20 octets, got ${JSON.stringify(serialHex)}`,
    );
  }
  const bytes = Buffer.from(serialHex, 'hex');
  const valueHex = bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return new asn1js.Integer({ valueHex });
}

/** RFC 6960 §4.2.1 CertStatus: good [0] NULL or revoked [1] RevokedInfo, both IMPLICIT. */
function certStatus(template: OcspResponseTemplate): asn1js.BaseBlock {
  if (template.status === 'good') {
    return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
  }

  if (!template.revokedAt) throw new Error('expected revokedAt for a revoked response');
  const info: asn1js.BaseBlock[] = [
    new asn1js.GeneralizedTime({ valueDate: wholeSeconds(template.revokedAt) }),
  ];
  if (template.reason !== undefined && template.reason !== 0) {
    // revocationReason [0] EXPLICIT CRLReason (RFC 6960 §4.2.1).
    info.push(
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Enumerated({ value: template.reason })],
      }),
    );
  }
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value: info });
}

/** Encodes and signs a successful OCSPResponse with one SingleResponse; returns DER. */
export async function buildOcspResponse(
  template: OcspResponseTemplate,
  signer: OcspSigner,
): Promise<Buffer> {
  if (!(template.thisUpdate.getTime() < template.nextUpdate.getTime())) {
    throw new Error(
      `expected thisUpdate before nextUpdate, got ${template.thisUpdate.toISOString()} and ` +
        `${template.nextUpdate.toISOString()}`,
    );
  }

  const hashes = issuerHashes(signer.subjectDer, signer.key.publicKeySpki);
  const certID = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: ocspOids.sha1,
      algorithmParams: new asn1js.Null(),
    }),
    issuerNameHash: new asn1js.OctetString({ valueHex: hashes.nameHash }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: hashes.keyHash }),
    serialNumber: serialInteger(template.serialHex),
  });

  const single = new pkijs.SingleResponse({
    certID,
    certStatus: certStatus(template),
    thisUpdate: wholeSeconds(template.thisUpdate),
    nextUpdate: wholeSeconds(template.nextUpdate),
  });

  // No `version`: it is DEFAULT v1, which DER leaves out (X.690 §11.5).
  const data = new pkijs.ResponseData({
    responderID: new asn1js.OctetString({ valueHex: hashes.keyHash }),
    producedAt: wholeSeconds(template.thisUpdate),
    responses: [single],
  });

  const tbs = Buffer.from(data.toSchema(true).toBER());
  const signature = await signChecked(tbs, signer.key);
  data.tbsView = new Uint8Array(tbs);

  const basic = new pkijs.BasicOCSPResponse({
    tbsResponseData: data,
    signatureAlgorithm: signatureAlgorithmOf(signer.key.algorithm),
    signature: new asn1js.BitString({ valueHex: signature }),
  });

  const response = new asn1js.Sequence({
    value: [
      new asn1js.Enumerated({ value: ocspResponseStatus.successful }),
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [
          new asn1js.Sequence({
            value: [
              new asn1js.ObjectIdentifier({ value: ocspOids.basicResponse }),
              new asn1js.OctetString({ valueHex: basic.toSchema().toBER() }),
            ],
          }),
        ],
      }),
    ],
  });
  return Buffer.from(response.toBER());
}

export interface OcspGeneratorOptions {
  /** Every loaded issuer: a retired one still answers for what it signed. */
  issuers: readonly Issuer[];
  /** From thisUpdate to nextUpdate; CA/B BR §4.9.10 allows 8 hours to 10 days. */
  lifetimeSeconds: number;
  log: Logger;
  /** When given, `ca_ocsp_responses_signed_total` by issuer and status is kept in it. */
  metrics?: Registry;
  /** @default () => new Date() */
  now?: () => Date;
}

/** Lower-case hex of a serial, as the SA stores it. */
const serialPattern = /^(?:[0-9a-f]{2}){1,20}$/;

/** The CA's OCSP signer over every loaded issuer. */
export class OcspGeneratorImpl implements OcspGenerator {
  readonly #issuers: ReadonlyMap<string, Issuer>;
  readonly #lifetimeMs: number;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #signed?: Counter<'issuer' | 'status'>;

  constructor(options: OcspGeneratorOptions) {
    if (!Number.isInteger(options.lifetimeSeconds) || options.lifetimeSeconds <= 0) {
      throw new Error(
        `expected lifetimeSeconds to be a positive integer, got ${options.lifetimeSeconds}`,
      );
    }
    this.#issuers = new Map(options.issuers.map((issuer) => [issuer.id, issuer]));
    this.#lifetimeMs = options.lifetimeSeconds * 1000;
    this.#log = options.log;
    this.#now = options.now ?? (() => new Date());
    if (options.metrics) {
      this.#signed = new Counter({
        name: 'ca_ocsp_responses_signed_total',
        help: 'OCSP responses signed, by issuer and certificate status',
        labelNames: ['issuer', 'status'],
        registers: [options.metrics],
      });
    }
  }

  async signOcspResponse(req: SignOcspRequest): Promise<SignedOcspResponse> {
    const template = this.#template(req);
    const issuer = this.#issuer(req.issuerId);
    const fields = {
      serial: template.serialHex,
      issuer: issuer.id,
      status: template.status,
      ...(template.status === 'revoked'
        ? { revokedAt: template.revokedAt?.toISOString(), reason: template.reason }
        : {}),
      thisUpdate: template.thisUpdate.toISOString(),
      nextUpdate: template.nextUpdate.toISOString(),
    };

    let der: Buffer;
    try {
      der = await buildOcspResponse(template, issuer);
    } catch (err) {
      audit(this.#log, 'ocsp response signing failed', { ...fields, err });
      throw new CaError(
        'internal',
        `signing the OCSP response for serial ${template.serialHex} with issuer ${issuer.id} failed`,
        { cause: err },
      );
    }

    audit(this.#log, 'ocsp response signed', fields);
    this.#signed?.inc({ issuer: issuer.id, status: template.status });
    return {
      serial: template.serialHex,
      issuerId: issuer.id,
      status: template.status,
      der: der.toString('base64'),
      thisUpdate: fields.thisUpdate,
      nextUpdate: fields.nextUpdate,
    };
  }

  #issuer(issuerId: unknown): Issuer {
    const issuer = typeof issuerId === 'string' ? this.#issuers.get(issuerId) : undefined;
    if (!issuer) {
      throw new CaError(
        'notFound',
        `issuer ${JSON.stringify(issuerId)} is not loaded; loaded: ` +
          ([...this.#issuers.keys()].join(', ') || '(none)'),
      );
    }
    return issuer;
  }

  #template(req: SignOcspRequest): OcspResponseTemplate {
    if (typeof req.serial !== 'string' || !serialPattern.test(req.serial)) {
      throw new CaError(
        'malformed',
        `expected serial to be lower-case hex of 1 to 20 octets, got ${JSON.stringify(req.serial)}`,
      );
    }
    const thisUpdate = wholeSeconds(this.#now());
    const nextUpdate = new Date(thisUpdate.getTime() + this.#lifetimeMs);

    if (req.status === 'good') {
      return { serialHex: req.serial, status: 'good', thisUpdate, nextUpdate };
    }
    if (req.status !== 'revoked') {
      throw new CaError(
        'malformed',
        `expected status to be good or revoked, got ${JSON.stringify(req.status)}`,
      );
    }

    const revokedAt = typeof req.revokedAt === 'string' ? new Date(req.revokedAt) : null;
    if (!revokedAt || Number.isNaN(revokedAt.getTime())) {
      throw new CaError(
        'malformed',
        `expected revokedAt as an ISO 8601 time for a revoked response, got ${JSON.stringify(req.revokedAt)}`,
      );
    }
    if (typeof req.reason !== 'number' || !revocationReasonCodes.has(req.reason)) {
      throw new CaError(
        'malformed',
        `expected reason to be an RFC 5280 CRLReason code (0-6, 8-10), got ${JSON.stringify(req.reason)}`,
      );
    }
    return {
      serialHex: req.serial,
      status: 'revoked',
      revokedAt,
      reason: req.reason,
      thisUpdate,
      nextUpdate,
    };
  }
}
