import { keyStoreUnavailable } from './service.js';
import { Counter, type Registry } from 'prom-client';
import { CaError, toCaError } from '../lib/errors.js';
import { audit, type Logger } from '../lib/log.js';
import {
  decodeBase64,
  decodeSct,
  extensionDer,
  poisonExtension,
  sctListExtension,
  swapPoison,
  tbsOf,
} from '../lib/sct.js';
import {
  authorityInfoAccessExtension,
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  buildCertificate,
  certificatePoliciesExtension,
  checkKeyPolicy,
  crlDistributionPointsExtension,
  extKeyUsageExtension,
  keyUsageExtension,
  oids,
  parseCsr,
  randomSerialHex,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
  type KeyUsage,
  type ParsedCsr,
} from '../lib/x509.js';
import type { StorageAuthority } from '../sa/service.js';
import type { Profile, Profiles } from './config.js';
import type { Issuer } from './issuer.js';
import { readPrecertificate, signTbs } from './precertificate.js';
import type {
  CertificateAuthority,
  IssuedCertificate,
  IssuedPrecertificate,
  IssueRequest,
  PrecertificateCompletion,
} from './service.js';

/**
 * The signer. Checks the request once more (the RA checked it first), reserves a fresh serial
 * with the SA, builds the leaf and signs it with the active issuer's key.
 */

/** RFC 5280 upper bound on a common name (ub-common-name). */
const maxCommonNameLength = 64;
/** CA/B BR §4.2.1 does not bound names per certificate; Let's Encrypt's 100 is the custom. */
const maxNames = 100;
const serialAttempts = 5;

/** `*.` then LDH labels, lower case, at most 253 characters (RFC 1035 §2.3.4). */
const dnsNamePattern =
  /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface CertificateAuthorityOptions {
  /** Every loaded issuer; only the active one signs new certificates. */
  issuers: readonly Issuer[];
  activeIssuerId: string;
  profiles: Profiles;
  /**
   * Used when a request names no profile.
   * @default 'default'
   */
  defaultProfile?: string;
  /** Only `addSerial` is used: the reservation that keeps a serial from being used twice. */
  sa: Pick<StorageAuthority, 'addSerial'>;
  log: Logger;
  /** When given, `ca_certificates_signed_total` by profile and issuer is kept in it. */
  metrics?: Registry;
  /**
   * How far notBefore is set before the time of issuance, for relying parties whose clocks lag.
   * @default 3600
   */
  backdateSeconds?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

interface Validity {
  notBefore: Date;
  notAfter: Date;
}

function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

function parseTime(value: string, field: string): Date {
  const date = new Date(value);
  if (typeof value !== 'string' || Number.isNaN(date.getTime())) {
    throw new CaError(
      'malformed',
      `expected ${field} as an ISO 8601 time, got ${JSON.stringify(value)}`,
    );
  }
  return wholeSeconds(date.getTime());
}

/** The issuing CA over one or more issuers. */
export class CertificateAuthorityImpl implements CertificateAuthority {
  readonly #issuers: ReadonlyMap<string, Issuer>;
  readonly #active: Issuer;
  readonly #profiles: Profiles;
  readonly #defaultProfile: string;
  readonly #sa: Pick<StorageAuthority, 'addSerial'>;
  readonly #log: Logger;
  readonly #backdateMs: number;
  readonly #now: () => Date;
  readonly #signed?: Counter<'profile' | 'issuer'>;
  readonly #precertificatesSigned?: Counter<'profile' | 'issuer'>;

  constructor(options: CertificateAuthorityOptions) {
    this.#issuers = new Map(options.issuers.map((issuer) => [issuer.id, issuer]));
    const active = this.#issuers.get(options.activeIssuerId);
    if (!active) {
      throw new Error(
        `expected activeIssuerId to be one of ` +
          `${[...this.#issuers.keys()].join(', ') || '(none)'}, got ${options.activeIssuerId}`,
      );
    }
    this.#active = active;

    this.#profiles = options.profiles;
    this.#defaultProfile = options.defaultProfile ?? 'default';
    if (!(this.#defaultProfile in this.#profiles)) {
      throw new Error(`default profile ${this.#defaultProfile} is not among the profiles`);
    }

    const backdateSeconds = options.backdateSeconds ?? 3600;
    if (!Number.isInteger(backdateSeconds) || backdateSeconds < 0) {
      throw new Error(
        `expected backdateSeconds to be a non-negative integer, got ${backdateSeconds}`,
      );
    }
    this.#backdateMs = backdateSeconds * 1000;

    this.#sa = options.sa;
    this.#log = options.log;
    this.#now = options.now ?? (() => new Date());
    if (options.metrics) {
      this.#signed = new Counter({
        name: 'ca_certificates_signed_total',
        help: 'Certificates signed, by profile and issuer',
        labelNames: ['profile', 'issuer'],
        registers: [options.metrics],
      });
      this.#precertificatesSigned = new Counter({
        name: 'ca_precertificates_signed_total',
        help: 'Precertificates signed, by profile and issuer',
        labelNames: ['profile', 'issuer'],
        registers: [options.metrics],
      });
    }
  }

  /**
   * Checks the request, reserves a serial with the SA and signs the precertificate: the
   * certificate to be, with the critical poison extension (RFC 6962 §3.1) so that no relying
   * party accepts it, for the CT logs to sign SCTs over.
   */
  async issuePrecertificate(req: IssueRequest): Promise<IssuedPrecertificate> {
    const profileName = this.#profileName(req.profile);
    const profile = this.#profiles[profileName];

    const names = this.#checkNames(req.names);
    const csr = this.#checkCsr(req.csr, names);
    const validity = this.#validity(profile, profileName, req);
    const issuer = this.#active;
    if (validity.notAfter > issuer.notAfter) {
      throw new CaError(
        'internal',
        `issuer ${issuer.id} expires at ${issuer.notAfter.toISOString()}, before the ` +
          `certificate would (${validity.notAfter.toISOString()}); rotate the issuer`,
      );
    }

    const serial = await this.#reserveSerial(req.accountId, validity.notAfter);

    const fields = {
      serial,
      issuer: issuer.id,
      acct: req.accountId,
      order: req.orderId,
      names,
      profile: profileName,
      notBefore: validity.notBefore.toISOString(),
      notAfter: validity.notAfter.toISOString(),
    };

    let der: Buffer;
    try {
      const template = this.#template(serial, names, csr, validity, issuer);
      // Last, so that the SCT list takes its place at the end of the final certificate.
      template.extensions.push(poisonExtension());
      der = await buildCertificate(template, issuer.key);
    } catch (err) {
      audit(this.#log, 'precertificate signing failed', { ...fields, err });
      throw signingError(`signing precertificate ${serial} with issuer ${issuer.id} failed`, err);
    }

    audit(this.#log, 'precertificate signed', fields);
    this.#precertificatesSigned?.inc({ profile: profileName, issuer: issuer.id });

    return {
      serial,
      precertificate: der.toString('base64'),
      issuerId: issuer.id,
      issuerCertificate: issuer.certDer.toString('base64'),
      notBefore: fields.notBefore,
      notAfter: fields.notAfter,
    };
  }

  /**
   * Signs the certificate for a precertificate this CA signed: its TBS byte for byte, with the
   * poison swapped in place for the SCT list (RFC 6962 §3.3). Refuses to issue without SCTs.
   */
  async issueCertificateForPrecertificate(
    req: PrecertificateCompletion,
  ): Promise<IssuedCertificate> {
    if (!Array.isArray(req.scts) || req.scts.length === 0) {
      throw new CaError('malformed', 'expected at least one SCT; no certificate is issued without');
    }
    const scts = req.scts.map((sct, i) => {
      const der = decodeBase64(sct, `scts[${i}]`);
      try {
        decodeSct(der);
      } catch (err) {
        throw new CaError('malformed', `scts[${i}]: ${toCaError(err).detail}`);
      }
      return der;
    });
    return this.#complete(req, scts);
  }

  /**
   * Issues in one call without CT: the precertificate, then the certificate with the poison
   * dropped and no SCTs. For in-process callers such as the key store tests: it is not
   * served over RPC, so every certificate the RA obtains carries SCTs.
   */
  async issueCertificate(req: IssueRequest): Promise<IssuedCertificate> {
    const precert = await this.issuePrecertificate(req);
    const { accountId, orderId, profile } = req;
    return this.#complete({ ...precert, accountId, orderId, profile }, null);
  }

  /** The final certificate: the precertificate re-signed with `scts` in place of the poison. */
  async #complete(
    req: Omit<PrecertificateCompletion, 'scts'>,
    scts: Buffer[] | null,
  ): Promise<IssuedCertificate> {
    const profileName = this.#profileName(req.profile);

    const precertDer = decodeBase64(req.precertificate, 'precertificate');
    const info = readPrecertificate(precertDer, this.#issuers.values());
    const { issuer } = info;
    if (info.serial !== req.serial) {
      throw new CaError(
        'malformed',
        `precertificate has serial ${info.serial}, not ${JSON.stringify(req.serial)}`,
      );
    }
    const sctList = scts ? extensionDer(sctListExtension(scts)) : null;
    const tbs = swapPoison(tbsOf(precertDer), sctList);

    const fields = {
      serial: info.serial,
      issuer: issuer.id,
      acct: req.accountId,
      order: req.orderId,
      names: info.names,
      profile: profileName,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      scts: scts?.length ?? 0,
      // An SCT's log id follows its version octet (RFC 6962 §3.2).
      ctLogs: scts?.map((sct) => sct.subarray(1, 33).toString('base64')) ?? [],
    };

    let der: Buffer;
    try {
      der = await signTbs(tbs, issuer.key);
    } catch (err) {
      audit(this.#log, 'certificate signing failed', { ...fields, err });
      throw signingError(`signing serial ${info.serial} with issuer ${issuer.id} failed`, err);
    }

    audit(this.#log, 'certificate signed', fields);
    this.#signed?.inc({ profile: profileName, issuer: issuer.id });

    return {
      serial: info.serial,
      der: der.toString('base64'),
      issuerId: issuer.id,
      notBefore: fields.notBefore,
      notAfter: fields.notAfter,
    };
  }

  /** A profile this CA offers; the default when the request names none. */
  #profileName(requested: string): string {
    const name = requested || this.#defaultProfile;
    if (!Object.hasOwn(this.#profiles, name)) {
      throw new CaError(
        'malformed',
        `unknown profile ${JSON.stringify(name)}; expected one of ` +
          Object.keys(this.#profiles).join(', '),
      );
    }
    return name;
  }

  /** Lower-case, LDH, deduplicated in their order; the first becomes the common name. */
  #checkNames(names: unknown): string[] {
    if (!Array.isArray(names) || names.length === 0) {
      throw new CaError('malformed', 'expected at least one name to issue for');
    }

    const unique = [...new Set(names)];
    if (unique.length > maxNames) {
      throw new CaError('malformed', `${unique.length} names; at most ${maxNames} are allowed`);
    }
    for (const name of unique) {
      if (typeof name !== 'string' || name.length > 253 || !dnsNamePattern.test(name)) {
        const shown = JSON.stringify(name);
        throw new CaError('malformed', `expected lower-case DNS names, got ${shown}`);
      }
    }
    return unique as string[];
  }

  /**
   * Re-reads the CSR: its signature, its key, and that it asks for no name beyond `names`.
   * The RA checked all of this; a CA that signs must not rely on it alone.
   */
  #checkCsr(csrBase64: unknown, names: string[]): ParsedCsr {
    if (typeof csrBase64 !== 'string' || csrBase64.length === 0) {
      throw new CaError('badCSR', 'expected the CSR as base64 DER');
    }

    const csr = parseCsr(Buffer.from(csrBase64, 'base64'));
    if (!csr.signatureValid) throw new CaError('badCSR', 'CSR signature does not verify');
    checkKeyPolicy(csr.publicKeySpki);

    const allowed = new Set(names);
    const asked = [...csr.dnsNames, ...(csr.commonName ? [csr.commonName] : [])];
    const extra = asked.map((n) => n.toLowerCase()).filter((n) => !allowed.has(n));
    if (extra.length > 0) {
      throw new CaError('badCSR', `CSR asks for names not in the request: ${extra.join(', ')}`);
    }
    return csr;
  }

  /**
   * The profile's window starts `backdateSeconds` before now and lasts its lifetime. A
   * requested notBefore or notAfter is honoured only inside that window.
   */
  #validity(profile: Profile, profileName: string, req: IssueRequest): Validity {
    const earliest = wholeSeconds(this.#now().getTime() - this.#backdateMs);
    // RFC 5280 §4.1.2.5: the validity period includes both ends, hence one second less.
    const latest = new Date(earliest.getTime() + (profile.lifetimeSeconds - 1) * 1000);

    const notBefore = req.notBefore ? parseTime(req.notBefore, 'notBefore') : earliest;
    const notAfter = req.notAfter ? parseTime(req.notAfter, 'notAfter') : latest;

    if (notBefore < earliest) {
      throw new CaError(
        'malformed',
        `notBefore ${notBefore.toISOString()} is before ${earliest.toISOString()}, the earliest ` +
          'this CA backdates to',
      );
    }
    if (notAfter > latest) {
      throw new CaError(
        'malformed',
        `notAfter ${notAfter.toISOString()} is after ${latest.toISOString()}, the latest profile ` +
          `${profileName} (${profile.lifetimeSeconds} seconds) allows now`,
      );
    }
    if (notAfter <= notBefore) {
      throw new CaError(
        'malformed',
        `notAfter ${notAfter.toISOString()} is not after notBefore ${notBefore.toISOString()}`,
      );
    }
    return { notBefore, notAfter };
  }

  /**
   * Reserves a fresh serial with the SA before anything is signed with it. A collision comes
   * back as `duplicate` and another serial is drawn; a serial the SA refused is never used.
   */
  async #reserveSerial(accountId: string, notAfter: Date): Promise<string> {
    for (let attempt = 1; attempt <= serialAttempts; attempt++) {
      const serial = randomSerialHex();
      try {
        await this.#sa.addSerial({ serial, accountId, expires: notAfter.toISOString() });
        return serial;
      } catch (err) {
        if (!(err instanceof CaError && err.kind === 'duplicate')) throw err;
        this.#log.warn({ serial, attempt }, 'serial already reserved');
      }
    }
    throw new CaError('internal', `no unused serial after ${serialAttempts} attempts`);
  }

  #template(
    serialHex: string,
    names: string[],
    csr: ParsedCsr,
    validity: Validity,
    issuer: Issuer,
  ): Parameters<typeof buildCertificate>[0] {
    const commonName = names[0].length <= maxCommonNameLength ? names[0] : undefined;
    // RSA keys may also be used for RSA key exchange in TLS 1.2; ECDSA keys only sign.
    const usages: KeyUsage[] =
      csr.keyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];

    return {
      serialHex,
      issuerName: issuer.subjectDer,
      ...(commonName ? { subject: commonName } : {}),
      spki: csr.publicKeySpki,
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      extensions: [
        keyUsageExtension(usages),
        extKeyUsageExtension([oids.serverAuth]),
        basicConstraintsExtension(false),
        subjectKeyIdentifierExtension(csr.publicKeySpki),
        authorityKeyIdentifierExtension(issuer.subjectKeyId),
        authorityInfoAccessExtension({ ocsp: issuer.ocspUrl, caIssuers: issuer.caIssuersUrl }),
        // RFC 5280 §4.2.1.6: with an empty subject, the SAN extension is critical.
        subjectAltNameExtension(names, commonName === undefined),
        certificatePoliciesExtension([oids.domainValidated]),
        crlDistributionPointsExtension(issuer.crlUrl),
      ],
    };
  }
}

/** A signing failure: `unavailable` when the key store (an HSM) could not be reached. */
function signingError(what: string, err: unknown): CaError {
  if (err instanceof CaError && err.kind === 'unavailable') {
    return new CaError('unavailable', `${what}: ${keyStoreUnavailable}`, { cause: err });
  }
  return new CaError('internal', what, { cause: err });
}
