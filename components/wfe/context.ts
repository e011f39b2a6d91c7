import type { Logger } from '../lib/log.js';
import type { RegistrationAuthority } from '../ra/service.js';
import type { StorageAuthority } from '../sa/service.js';
import type { WfeConfig } from './config.js';
import type { NonceService } from './nonce.js';

/** Everything a handler needs; built once in main.ts (or a test). */
export interface WfeContext {
  readonly ra: RegistrationAuthority;
  readonly sa: StorageAuthority;
  readonly nonces: NonceService;
  readonly config: WfeConfig;
  readonly log: Logger;
  /** Issuer id to its PEM chain (issuer first, up to the root). */
  readonly chains: ReadonlyMap<string, string>;
  /** EAB key id to HMAC key. */
  readonly eabKeys: ReadonlyMap<string, Buffer>;
}

/** Paths of every resource, relative to the request's base URL. */
export const paths = {
  directory: '/directory',
  newNonce: '/acme/new-nonce',
  newAccount: '/acme/new-account',
  newOrder: '/acme/new-order',
  revokeCert: '/acme/revoke-cert',
  keyChange: '/acme/key-change',
  renewalInfo: '/acme/renewal-info',
  account: (id: string) => `/acme/acct/${id}`,
  accountOrders: (id: string) => `/acme/acct/${id}/orders`,
  order: (id: string) => `/acme/order/${id}`,
  finalize: (id: string) => `/acme/order/${id}/finalize`,
  authorization: (id: string) => `/acme/authz/${id}`,
  challenge: (authzId: string, type: string) => `/acme/chall/${authzId}/${type}`,
  certificate: (serial: string) => `/acme/cert/${serial}`,
} as const;
