import { keyStoreUnavailable } from '../ca/service.js';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { createPublicKey, randomBytes, type JsonWebKey as NodeJsonWebKey } from 'node:crypto';
import type { Identifier, Problem } from '../lib/acme.js';
import type { CrlGenerator, OcspGenerator } from '../ca/revocation-service.js';
import type { CertificateAuthority, IssuedPrecertificate } from '../ca/service.js';
import { CaError, toCaError } from '../lib/errors.js';
import { audit, type Logger } from '../lib/log.js';
import type {
  AccountRecord,
  AuthorizationRecord,
  CertificateRecord,
  OrderRecord,
} from '../lib/records.js';
import { parseCsr, checkKeyPolicy } from '../lib/x509.js';
import { certificateInfo } from '../lib/cert-info.js';
import type { Publisher } from '../publisher/service.js';
import type { StorageAuthority } from '../sa/service.js';
import type { ValidationAuthority } from '../va/service.js';
import { checkContacts, IssuancePolicy } from './policy.js';
import type { RegistrationAuthority } from './service.js';
import { parseCertId } from '../lib/ari.js';

export interface RaLifetimes {
  /** How long a new order and its pending authorizations stay usable. */
  readonly pendingSeconds: number;
  /** How long a valid authorization may be reused for new orders. */
  readonly validAuthorizationSeconds: number;
}

export interface RaOptions {
  readonly sa: StorageAuthority;
  readonly va: ValidationAuthority;
  readonly ca: CertificateAuthority;
  /** Gets SCTs for precertificates from the CT logs. */
  readonly publisher: Publisher;
  /** The CA's OCSP and CRL signers (same process, services of their own). */
  readonly ocsp: OcspGenerator;
  readonly crl: CrlGenerator;
  readonly policy: IssuancePolicy;
  readonly profiles: readonly string[];
  readonly defaultProfile: string;
  readonly lifetimes: RaLifetimes;
  readonly log: Logger;
  readonly now?: () => Date;
}

/** The problem detail of an order that failed because too few CT logs returned an SCT. */
const hsmUnavailableDetail =
  "the CA's signing key store (HSM) is unavailable, so no certificate was issued; create a new order";

const ctUnavailableDetail =
  'the CT logs could not be reached, so no certificate was issued; create a new order';

/** RFC 5280 §5.3.1 reasons a subscriber may give (RFC 8555 §7.6); others are refused. */
const allowedReasons = new Set([0, 1, 3, 4, 5]);

const iso = (d: Date) => d.toISOString();

/** The registration authority: policy and orchestration, no storage of its own. */
export class RegistrationAuthorityImpl implements RegistrationAuthority {
  private readonly now: () => Date;
  /** Validations in flight, so shutdown can wait for them. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: RaOptions) {
    this.now = o.now ?? (() => new Date());
  }

  async newAccount(req: Parameters<RegistrationAuthority['newAccount']>[0]) {
    const contact = checkContacts(req.contact);
    const keyThumbprint = await calculateJwkThumbprint(req.jwk as JWK, 'sha256');
    const account = await this.o.sa.newAccount({
      jwk: req.jwk,
      keyThumbprint,
      contact,
      termsOfServiceAgreed: req.termsOfServiceAgreed,
      eabKeyId: req.eabKeyId,
    });
    this.o.log.info({ acct: account.id, eabKeyId: req.eabKeyId }, 'account created');
    return account;
  }

  async updateAccount(req: { accountId: string; contact: string[] }) {
    await this.validAccount(req.accountId);
    return this.o.sa.updateAccount({ id: req.accountId, contact: checkContacts(req.contact) });
  }

  async deactivateAccount(req: { accountId: string }) {
    await this.validAccount(req.accountId);
    const account = await this.o.sa.updateAccount({ id: req.accountId, status: 'deactivated' });
    this.o.log.info({ acct: account.id }, 'account deactivated');
    return account;
  }

  async changeAccountKey(req: { accountId: string; jwk: Record<string, unknown> }) {
    await this.validAccount(req.accountId);
    const keyThumbprint = await calculateJwkThumbprint(req.jwk as JWK, 'sha256');
    const account = await this.o.sa.changeAccountKey({
      id: req.accountId,
      jwk: req.jwk,
      keyThumbprint,
    });
    audit(this.o.log, 'account key changed', { acct: account.id, keyThumbprint });
    return account;
  }

  async newOrder(req: Parameters<RegistrationAuthority['newOrder']>[0]): Promise<OrderRecord> {
    const account = await this.validAccount(req.accountId);
    const checked = this.o.policy.checkIdentifiers(req.identifiers);
    const profile = req.profile ?? this.o.defaultProfile;
    if (!this.o.profiles.includes(profile)) {
      throw new CaError(
        'invalidProfile',
        `profile "${String(profile).slice(0, 64)}" is not offered; offered: ${this.o.profiles.join(', ')}`,
      );
    }
    const notBefore = optionalDate(req.notBefore, 'notBefore');
    const notAfter = optionalDate(req.notAfter, 'notAfter');
    if (notBefore && notAfter && notAfter <= notBefore) {
      throw new CaError('malformed', 'notAfter must be later than notBefore');
    }
    if (req.replaces !== null) await this.checkReplaces(account, req.replaces);

    const now = this.now();
    const expires = new Date(now.getTime() + this.o.lifetimes.pendingSeconds * 1000);
    const reusable = await this.o.sa.getValidAuthorizations({
      accountId: account.id,
      identifiers: checked.map((c) => ({ type: 'dns', value: c.base })),
      validUntilAfter: iso(expires),
    });

    const reuseAuthorizationIds: string[] = [];
    const newAuthorizations: Parameters<StorageAuthority['newOrderAndAuthorizations']>[0]['newAuthorizations'] = [];
    for (const c of checked) {
      const found = reusable.find((a) => a.identifier.value === c.base && a.wildcard === c.wildcard);
      if (found) {
        reuseAuthorizationIds.push(found.id);
        continue;
      }
      newAuthorizations.push({
        identifier: { type: 'dns', value: c.base },
        wildcard: c.wildcard,
        expires: iso(expires),
        challenges: this.o.policy.challengeTypesFor(c.wildcard).map((type) => ({
          type,
          token: randomBytes(32).toString('base64url'),
        })),
      });
    }

    const order = await this.o.sa.newOrderAndAuthorizations({
      accountId: account.id,
      identifiers: checked.map((c) => c.identifier),
      profile,
      notBefore: notBefore ? iso(notBefore) : null,
      notAfter: notAfter ? iso(notAfter) : null,
      expires: iso(expires),
      replaces: req.replaces,
      reuseAuthorizationIds,
      newAuthorizations,
    });
    this.o.log.info(
      { acct: account.id, order: order.id, names: order.identifiers.length, reused: reuseAuthorizationIds.length },
      'order created',
    );
    return order;
  }

  async performValidation(req: { accountId: string; authorizationId: string; challengeType: string }) {
    const account = await this.validAccount(req.accountId);
    const authz = await this.ownedAuthorization(req.accountId, req.authorizationId);
    const challenge = authz.challenges.find((c) => c.type === req.challengeType);
    if (!challenge) {
      throw new CaError('malformed', `authorization has no ${req.challengeType} challenge`);
    }
    // RFC 8555 §7.5.1: a repeated request for a challenge already under way changes nothing.
    if (authz.status !== 'pending' || challenge.status !== 'pending') return authz;

    const processing = await this.o.sa.setChallengeProcessing({
      id: authz.id,
      challengeType: challenge.type,
    });
    const work = this.validate(account, processing, challenge.type, challenge.token).finally(() =>
      this.inFlight.delete(work),
    );
    this.inFlight.add(work);
    return processing;
  }

  private async validate(
    account: AccountRecord,
    authz: AuthorizationRecord,
    challengeType: string,
    token: string,
  ): Promise<void> {
    const fields = { acct: account.id, authz: authz.id, challenge: challengeType };
    let status: 'valid' | 'invalid' = 'invalid';
    let problem: Problem | null = null;
    let records: AuthorizationRecord['challenges'][number]['validationRecords'] = [];

    try {
      const result = await this.o.va.performValidation({
        identifier: authz.identifier,
        wildcard: authz.wildcard,
        challengeType: challengeType as 'http-01',
        token,
        keyAuthorization: `${token}.${account.keyThumbprint}`,
        accountId: account.id,
        authorizationId: authz.id,
      });
      status = result.status;
      problem = result.problem;
      records = result.records;
    } catch (err) {
      this.o.log.error({ ...fields, err }, 'validation could not run');
      problem = {
        type: 'urn:ietf:params:acme:error:serverInternal',
        detail: 'the validation authority could not be reached',
        status: 500,
      };
    }

    const now = this.now();
    const expires =
      status === 'valid'
        ? new Date(now.getTime() + this.o.lifetimes.validAuthorizationSeconds * 1000)
        : new Date(authz.expires);
    try {
      await this.o.sa.finalizeAuthorization({
        id: authz.id,
        challengeType,
        status,
        validated: iso(now),
        expires: iso(expires),
        error: problem,
        validationRecords: [...records],
      });
      this.o.log.info({ ...fields, status, problem: problem?.type }, 'authorization finalized');
    } catch (err) {
      this.o.log.error({ ...fields, err }, 'authorization outcome not stored');
    }
  }

  async deactivateAuthorization(req: { accountId: string; authorizationId: string }) {
    await this.validAccount(req.accountId);
    await this.ownedAuthorization(req.accountId, req.authorizationId);
    return this.o.sa.deactivateAuthorization({ id: req.authorizationId });
  }

  async finalizeOrder(req: { accountId: string; orderId: string; csr: string }): Promise<OrderRecord> {
    const account = await this.validAccount(req.accountId);
    const order = await this.o.sa.getOrder({ id: req.orderId });
    if (order.accountId !== account.id) throw new CaError('unauthorized', 'order belongs to another account');
    if (order.status !== 'ready') {
      throw new CaError('orderNotReady', `order is ${order.status}, not ready for finalization`);
    }

    const names = this.checkCsr(req.csr, order, account);
    let processing: OrderRecord;
    try {
      processing = await this.o.sa.setOrderProcessing({ id: order.id });
    } catch (err) {
      if (toCaError(err).kind === 'conflict') {
        throw new CaError('orderNotReady', 'order is already being finalized');
      }
      throw err;
    }

    const fields = { acct: account.id, order: order.id };
    try {
      // RFC 6962 §3.1: a precertificate to the CT logs, then the certificate with their SCTs.
      const precert = await this.o.ca.issuePrecertificate({
        csr: req.csr,
        names,
        accountId: account.id,
        orderId: order.id,
        profile: processing.profile,
        notBefore: processing.notBefore,
        notAfter: processing.notAfter,
      });
      const scts = await this.sctsFor(precert, fields);
      const issued = await this.o.ca.issueCertificateForPrecertificate({
        serial: precert.serial,
        precertificate: precert.precertificate,
        scts,
        accountId: account.id,
        orderId: order.id,
        profile: processing.profile,
      });
      await this.o.sa.addCertificate({
        serial: issued.serial,
        accountId: account.id,
        orderId: order.id,
        issuerId: issued.issuerId,
        der: issued.der,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
      });
      // A valid order always has a response to serve: it is stored before the order turns.
      await this.storeFirstOcspResponse(issued.serial, issued.issuerId);
      const valid = await this.o.sa.finalizeOrder({ id: order.id, certificateSerial: issued.serial });
      this.o.log.info({ ...fields, serial: issued.serial }, 'order finalized');
      return valid;
    } catch (thrown) {
      const err = toCaError(thrown);
      this.o.log.error({ ...fields, err: thrown }, 'issuance failed');
      const detail =
        err.detail === ctUnavailableDetail
          ? err.detail
          : err.kind === 'unavailable' && err.detail.endsWith(keyStoreUnavailable)
            ? hsmUnavailableDetail
            : err.kind === 'internal' || err.kind === 'unavailable'
            ? 'issuance failed inside the CA; the order cannot be finalized, create a new one'
            : err.detail;
      return this.o.sa.setOrderError({
        id: order.id,
        error: { type: 'urn:ietf:params:acme:error:serverInternal', detail, status: 500 },
      });
    }
  }

  /**
   * SCTs for a precertificate through the publisher. When too few CT logs answer, the order
   * fails with a detail that says so, and no certificate is signed or stored.
   */
  private async sctsFor(
    precert: IssuedPrecertificate,
    fields: Record<string, string>,
  ): Promise<string[]> {
    try {
      const { scts } = await this.o.publisher.submitPrecertificate({
        precertificate: precert.precertificate,
        issuer: precert.issuerCertificate,
      });
      return scts;
    } catch (err) {
      if (toCaError(err).kind !== 'unavailable') throw err;
      this.o.log.error({ ...fields, serial: precert.serial, err }, 'no scts for precertificate');
      throw new CaError('unavailable', ctUnavailableDetail, { cause: err });
    }
  }

  /** Checks the CSR against the order (RFC 8555 §7.4): same names, acceptable key. */
  private checkCsr(csrB64: string, order: OrderRecord, account: AccountRecord): string[] {
    const csr = parseCsr(Buffer.from(csrB64, 'base64'));
    if (!csr.signatureValid) throw new CaError('badCSR', 'CSR signature does not verify');
    checkKeyPolicy(csr.publicKeySpki);

    const wanted = new Set(order.identifiers.map((i) => i.value));
    const names = new Set(csr.dnsNames.map((n) => n.toLowerCase()));
    if (csr.commonName) names.add(csr.commonName.toLowerCase());
    const missing = [...wanted].filter((n) => !names.has(n));
    const extra = [...names].filter((n) => !wanted.has(n));
    if (missing.length || extra.length) {
      throw new CaError(
        'badCSR',
        `CSR names must equal the order's identifiers` +
          (missing.length ? `; missing ${missing.slice(0, 5).join(', ')}` : '') +
          (extra.length ? `; not in the order ${extra.slice(0, 5).join(', ')}` : ''),
      );
    }

    const accountSpki = createPublicKey({ key: account.jwk as NodeJsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'der',
    });
    if (accountSpki.equals(csr.publicKeySpki)) {
      throw new CaError('badCSR', 'the CSR must not use the account key');
    }
    return [...wanted];
  }

  async revokeCertificate(req: { certificate: string; reason: number; accountId: string | null }) {
    if (!allowedReasons.has(req.reason)) {
      throw new CaError(
        'badRevocationReason',
        `reason ${req.reason} is not accepted; use 0, 1, 3, 4 or 5 (RFC 5280 §5.3.1)`,
      );
    }
    const der = Buffer.from(req.certificate, 'base64');
    const info = certificateInfo(der);
    const serial = info.serial;
    const cert = await this.o.sa.getCertificate({ serial }).catch((err: unknown) => {
      if (toCaError(err).kind === 'notFound') {
        throw new CaError('notFound', 'this CA did not issue that certificate');
      }
      throw err;
    });
    if (!Buffer.from(cert.der, 'base64').equals(der)) {
      throw new CaError('notFound', 'this CA did not issue that certificate');
    }

    if (req.accountId !== null && req.accountId !== cert.accountId) {
      await this.validAccount(req.accountId);
      await this.requireAuthorizationsFor(req.accountId, info.names);
    }

    const revoked = await this.o.sa.revokeCertificate({
      serial,
      reason: req.reason,
      revokedAt: iso(this.now()),
    });
    audit(this.o.log, 'certificate revoked', {
      serial,
      issuer: cert.issuerId,
      acct: req.accountId ?? cert.accountId,
      reason: req.reason,
      byKey: req.accountId === null,
    });
    await this.publishRevocation(revoked);
  }

  /**
   * Signs and stores a new certificate's first OCSP response. A `conflict` means a response
   * at least as new is stored already (the CA's refresher got there first), which will do.
   */
  private async storeFirstOcspResponse(serial: string, issuerId: string): Promise<void> {
    const signed = await this.o.ocsp.signOcspResponse({ serial, issuerId, status: 'good' });
    await this.o.sa.storeOcspResponse(signed).catch((err: unknown) => {
      if (toCaError(err).kind !== 'conflict') throw err;
    });
  }

  /**
   * Publishes a recorded revocation: a revoked OCSP response and a new CRL of the issuer.
   * Failures are logged, not thrown: the revocation stands, the client could not retry it,
   * and the CA's refresher signs whatever is missing on its next pass.
   */
  private async publishRevocation(cert: CertificateRecord): Promise<void> {
    const fields = { serial: cert.serial, issuer: cert.issuerId };
    const ocsp = async () => {
      const signed = await this.o.ocsp.signOcspResponse({
        serial: cert.serial,
        issuerId: cert.issuerId,
        status: 'revoked',
        revokedAt: cert.revokedAt,
        reason: cert.revokedReason,
      });
      await this.o.sa.storeOcspResponse(signed);
    };
    const crl = async () => {
      const signed = await this.o.crl.signCrl({ issuerId: cert.issuerId });
      const { issuerId, number, der, thisUpdate, nextUpdate } = signed;
      await this.o.sa.storeCrl({ issuerId, number, der, thisUpdate, nextUpdate });
    };

    const [ocspDone, crlDone] = await Promise.allSettled([ocsp(), crl()]);
    if (ocspDone.status === 'rejected') {
      this.o.log.error({ ...fields, err: ocspDone.reason }, 'revoked ocsp response not stored');
    }
    // A conflict here is a newer CRL stored first, which lists this revocation too.
    if (crlDone.status === 'rejected' && toCaError(crlDone.reason).kind !== 'conflict') {
      this.o.log.error({ ...fields, err: crlDone.reason }, 'crl not reissued after revocation');
    }
  }

  /** RFC 8555 §7.6: another account may revoke when it holds valid authorizations for all names. */
  private async requireAuthorizationsFor(accountId: string, names: string[]): Promise<void> {
    const authzs = await this.o.sa.getValidAuthorizations({
      accountId,
      identifiers: names.map((n) => ({ type: 'dns', value: n.replace(/^\*\./, '') })),
      validUntilAfter: iso(this.now()),
    });
    const held = new Set(authzs.map((a) => (a.wildcard ? '*.' : '') + a.identifier.value));
    const missing = names.filter((n) => !held.has(n));
    if (missing.length) {
      throw new CaError(
        'unauthorized',
        `the account neither owns the certificate nor holds authorizations for ${missing.slice(0, 5).join(', ')}`,
      );
    }
  }

  private async checkReplaces(account: AccountRecord, certId: string): Promise<void> {
    const { serial } = parseCertId(certId);
    const cert = await this.o.sa.getCertificate({ serial }).catch(() => {
      throw new CaError('malformed', `replaces names a certificate this CA did not issue`);
    });
    if (cert.accountId !== account.id) {
      throw new CaError('unauthorized', 'replaces names a certificate of another account');
    }
  }

  private async validAccount(id: string): Promise<AccountRecord> {
    const account = await this.o.sa.getAccount({ id });
    if (account.status !== 'valid') {
      throw new CaError('unauthorized', `account is ${account.status}`);
    }
    return account;
  }

  private async ownedAuthorization(accountId: string, id: string): Promise<AuthorizationRecord> {
    const authz = await this.o.sa.getAuthorization({ id });
    if (authz.accountId !== accountId) {
      throw new CaError('unauthorized', 'authorization belongs to another account');
    }
    return authz;
  }

  /** Waits for validations in flight, for a clean shutdown. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}

function optionalDate(value: string | null, field: string): Date | null {
  if (value === null || value === undefined) return null;
  const d = new Date(value);
  if (typeof value !== 'string' || Number.isNaN(d.getTime())) {
    throw new CaError('malformed', `${field} must be an RFC 3339 date, got ${JSON.stringify(value).slice(0, 64)}`);
  }
  return d;
}

export type { Identifier };
