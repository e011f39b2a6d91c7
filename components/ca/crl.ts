import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Counter, type Registry } from 'prom-client';
import type { SigningKey } from '../keys/types.js';
import { CaError } from '../lib/errors.js';
import { audit, type Logger } from '../lib/log.js';
import {
  authorityKeyIdentifierExtension,
  extension,
  signChecked,
  signatureAlgorithmOf,
} from '../lib/x509.js';
import type { StorageAuthority } from '../sa/service.js';
import type { Issuer } from './issuer.js';
import { serialInteger, wholeSeconds } from './ocsp.js';
import type { CrlGenerator, SignedCrl } from './revocation-service.js';

/**
 * Full CRLs (RFC 5280 §5), one per issuer, naming every revoked certificate of that issuer
 * that has not long expired. The CRL number is the signing time in milliseconds, so that CRLs
 * signed by either color's CA grow without any shared counter.
 */

export const crlOids = {
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  issuingDistributionPoint: '2.5.29.28',
} as const;

export interface CrlEntry {
  /** Lower-case hex of the serial's unsigned value. */
  serialHex: string;
  revokedAt: Date;
  /** RFC 5280 §5.3.1 CRLReason; 0 (unspecified) writes no reasonCode, as §5.3.1 advises. */
  reason: number;
}

export interface CrlTemplate {
  /** RFC 5280 §5.2.3: a non-negative integer, larger than any earlier CRL's of this issuer. */
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: readonly CrlEntry[];
  /**
   * The URL the issuer's certificates carry in CRLDistributionPoints, written into a critical
   * IssuingDistributionPoint (RFC 5280 §5.2.5) so the CRL's scope is the one those name.
   */
  distributionPoint?: string;
}

/** The issuer a CRL is signed by: its Name, its key identifier and its key. */
export interface CrlSigner {
  readonly subjectDer: Buffer;
  readonly subjectKeyId: Buffer;
  readonly key: SigningKey;
}

/** RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime after; whole seconds. */
function crlTime(date: Date): pkijs.Time {
  const value = wholeSeconds(date);
  const year = value.getUTCFullYear();
  const utc = year >= 1950 && year < 2050;
  return new pkijs.Time({
    type: utc ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime,
    value,
  });
}

function integerOf(value: bigint): asn1js.Integer {
  if (value < 0n) throw new Error(`expected a non-negative CRL number, got ${value}`);
  const hex = value.toString(16);
  return serialInteger(hex.length % 2 ? `0${hex}` : hex);
}

function entryOf(entry: CrlEntry): pkijs.RevokedCertificate {
  const reasonExtensions =
    entry.reason === 0
      ? undefined
      : new pkijs.Extensions({
          extensions: [
            extension(crlOids.reasonCode, false, new asn1js.Enumerated({ value: entry.reason })),
          ],
        });
  return new pkijs.RevokedCertificate({
    userCertificate: serialInteger(entry.serialHex),
    revocationDate: crlTime(entry.revokedAt),
    ...(reasonExtensions ? { crlEntryExtensions: reasonExtensions } : {}),
  });
}

/** Encodes a v2 CRL from a template and signs it with the issuer's key; returns DER. */
export async function buildCrl(template: CrlTemplate, signer: CrlSigner): Promise<Buffer> {
  if (!(template.thisUpdate.getTime() < template.nextUpdate.getTime())) {
    throw new Error(
      `expected thisUpdate before nextUpdate, got ${template.thisUpdate.toISOString()} and ` +
        `${template.nextUpdate.toISOString()}`,
    );
  }

  const extensions = [
    // RFC 5280 §5.2.1 and §5.2.3: conforming CRL issuers MUST include both.
    authorityKeyIdentifierExtension(signer.subjectKeyId),
    extension(crlOids.cRLNumber, false, integerOf(template.number)),
  ];
  if (template.distributionPoint) {
    const idp = new pkijs.IssuingDistributionPoint({
      distributionPoint: [new pkijs.GeneralName({ type: 6, value: template.distributionPoint })],
      onlyContainsUserCerts: true,
    });
    extensions.push(extension(crlOids.issuingDistributionPoint, true, idp.toSchema()));
  }

  const issuerSchema = asn1js.fromBER(signer.subjectDer);
  if (issuerSchema.offset === -1) throw new Error('issuer Name is not valid DER');

  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    signature: signatureAlgorithmOf(signer.key.algorithm),
    issuer: new pkijs.RelativeDistinguishedNames({ schema: issuerSchema.result }),
    thisUpdate: crlTime(template.thisUpdate),
    nextUpdate: crlTime(template.nextUpdate),
    crlExtensions: new pkijs.Extensions({ extensions }),
  });
  // RFC 5280 §5.1.2.6: with nothing revoked the list is absent, not empty.
  if (template.entries.length > 0) crl.revokedCertificates = template.entries.map(entryOf);

  const unsigned = crl.toSchema(true) as asn1js.Sequence;
  const tbs = Buffer.from(unsigned.valueBlock.value[0].toBER());
  const signature = await signChecked(tbs, signer.key);

  crl.tbsView = new Uint8Array(tbs);
  crl.signatureAlgorithm = signatureAlgorithmOf(signer.key.algorithm);
  crl.signatureValue = new asn1js.BitString({ valueHex: signature });
  return Buffer.from(crl.toSchema(false).toBER());
}

export interface CrlGeneratorOptions {
  /** Every loaded issuer: a retired one still publishes revocations of what it signed. */
  issuers: readonly Issuer[];
  /** From thisUpdate to nextUpdate; CA/B BR §4.9.7 allows at most 10 days. */
  lifetimeSeconds: number;
  sa: Pick<StorageAuthority, 'getRevokedCertificates'>;
  log: Logger;
  /** When given, `ca_crls_signed_total` by issuer is kept in it. */
  metrics?: Registry;
  /** @default () => new Date() */
  now?: () => Date;
}

/** The CA's CRL signer over every loaded issuer. */
export class CrlGeneratorImpl implements CrlGenerator {
  readonly #issuers: ReadonlyMap<string, Issuer>;
  readonly #lifetimeMs: number;
  readonly #sa: Pick<StorageAuthority, 'getRevokedCertificates'>;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #signed?: Counter<'issuer'>;
  /** The last number this process used, so two CRLs in one millisecond still differ. */
  #lastNumber = 0n;

  constructor(options: CrlGeneratorOptions) {
    if (!Number.isInteger(options.lifetimeSeconds) || options.lifetimeSeconds <= 0) {
      throw new Error(
        `expected lifetimeSeconds to be a positive integer, got ${options.lifetimeSeconds}`,
      );
    }
    this.#issuers = new Map(options.issuers.map((issuer) => [issuer.id, issuer]));
    this.#lifetimeMs = options.lifetimeSeconds * 1000;
    this.#sa = options.sa;
    this.#log = options.log;
    this.#now = options.now ?? (() => new Date());
    if (options.metrics) {
      this.#signed = new Counter({
        name: 'ca_crls_signed_total',
        help: 'CRLs signed, by issuer',
        labelNames: ['issuer'],
        registers: [options.metrics],
      });
    }
  }

  async signCrl(req: { issuerId: string }): Promise<SignedCrl> {
    const issuer = typeof req.issuerId === 'string' ? this.#issuers.get(req.issuerId) : undefined;
    if (!issuer) {
      throw new CaError(
        'notFound',
        `issuer ${JSON.stringify(req.issuerId)} is not loaded; loaded: ` +
          ([...this.#issuers.keys()].join(', ') || '(none)'),
      );
    }

    // The time is taken before the list is read: every revocation the SA held by thisUpdate
    // is in this CRL, and a CRL read later carries a larger number.
    const now = this.#now();
    const millis = BigInt(now.getTime());
    const number = millis > this.#lastNumber ? millis : this.#lastNumber + 1n;
    this.#lastNumber = number;
    const thisUpdate = wholeSeconds(now);
    const nextUpdate = new Date(thisUpdate.getTime() + this.#lifetimeMs);

    // RFC 5280 §3.3: an entry stays until at least one regular CRL after the certificate
    // expired; one lifetime past expiry covers that.
    const expiresAfter = new Date(thisUpdate.getTime() - this.#lifetimeMs).toISOString();
    const revoked = await this.#sa.getRevokedCertificates({ issuerId: issuer.id, expiresAfter });
    const entries = revoked.map((r) => ({
      serialHex: r.serial,
      revokedAt: new Date(r.revokedAt),
      reason: r.revokedReason,
    }));

    const fields = {
      issuer: issuer.id,
      number: number.toString(),
      entries: entries.length,
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
    };
    let der: Buffer;
    try {
      der = await buildCrl(
        { number, thisUpdate, nextUpdate, entries, distributionPoint: issuer.crlUrl },
        issuer,
      );
    } catch (err) {
      audit(this.#log, 'crl signing failed', { ...fields, err });
      throw new CaError('internal', `signing the CRL of issuer ${issuer.id} failed`, {
        cause: err,
      });
    }

    audit(this.#log, 'crl signed', fields);
    this.#signed?.inc({ issuer: issuer.id });
    return {
      issuerId: issuer.id,
      der: der.toString('base64'),
      number: fields.number,
      thisUpdate: fields.thisUpdate,
      nextUpdate: fields.nextUpdate,
      entries: entries.length,
    };
  }
}
