import type { Identifier } from '../lib/acme.js';
import type { AccountRecord, AuthorizationRecord, OrderRecord } from '../lib/records.js';
import { defineService } from '../lib/rpc.js';

/**
 * The registration authority: applies policy and drives the VA, CA and SA. The WFE has already
 * verified the JWS; the RA checks what the request may do.
 */
export interface RegistrationAuthority {
  newAccount(req: {
    jwk: Record<string, unknown>;
    contact: string[];
    termsOfServiceAgreed: boolean;
    eabKeyId: string | null;
  }): Promise<AccountRecord>;
  updateAccount(req: { accountId: string; contact: string[] }): Promise<AccountRecord>;
  deactivateAccount(req: { accountId: string }): Promise<AccountRecord>;
  changeAccountKey(req: { accountId: string; jwk: Record<string, unknown> }): Promise<AccountRecord>;

  newOrder(req: {
    accountId: string;
    identifiers: Identifier[];
    notBefore: string | null;
    notAfter: string | null;
    profile: string | null;
    replaces: string | null;
  }): Promise<OrderRecord>;
  /** Starts validation of one challenge and returns at once with it `processing`. */
  performValidation(req: {
    accountId: string;
    authorizationId: string;
    challengeType: string;
  }): Promise<AuthorizationRecord>;
  deactivateAuthorization(req: {
    accountId: string;
    authorizationId: string;
  }): Promise<AuthorizationRecord>;
  /** Checks the CSR against the order and issues; the returned order is valid or invalid. */
  finalizeOrder(req: { accountId: string; orderId: string; csr: string }): Promise<OrderRecord>;

  /**
   * RFC 8555 §7.6. `accountId` is set when the request was signed by an account key (that
   * account must own the certificate or hold valid authorizations for all its names); null
   * when it was signed by the certificate's own key, which the WFE has checked.
   */
  revokeCertificate(req: {
    certificate: string;
    reason: number;
    accountId: string | null;
  }): Promise<void>;
}

export const raService = defineService<RegistrationAuthority>(
  'bluegreen.ra.RegistrationAuthority',
  [
    'newAccount',
    'updateAccount',
    'deactivateAccount',
    'changeAccountKey',
    'newOrder',
    'performValidation',
    'deactivateAuthorization',
    'finalizeOrder',
    'revokeCertificate',
  ],
  ['wfe'],
);
