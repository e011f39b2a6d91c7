import { z } from 'zod';
import { allowList, commonConfig, listenAddress, peerConfig } from '../lib/config.js';
import { keyStoreConfig } from '../keys/index.js';
import { revocationConfig } from './revocation-config.js';

/**
 * The CA's config file, validated at start-up. Issuer entries have the shape that
 * `createHierarchy` returns, so a deployment writes them as they come.
 */

const day = 86_400;

/** One certificate profile (draft-aaron-acme-profiles); its description is shown to clients. */
export const profileConfig = z.strictObject({
  description: z.string().min(1),
  /** From notBefore to notAfter; at most 398 days (CA/B BR §6.3.2). */
  lifetimeSeconds: z
    .number()
    .int()
    .min(3600, 'expected at least 3600 seconds')
    .max(398 * day, `expected at most ${398 * day} seconds (398 days)`),
});
export type Profile = z.output<typeof profileConfig>;

/** Profile names as clients send them in newOrder. */
export const profileName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected a profile name of [a-z0-9-], up to 64 characters');

export const profilesConfig = z
  .record(profileName, profileConfig)
  .refine((p) => Object.keys(p).length > 0, 'expected at least one profile');
export type Profiles = z.output<typeof profilesConfig>;

/** The profiles a CA offers when its config names none. */
export const defaultProfiles: Profiles = {
  default: {
    description: 'A 90-day certificate for a TLS server',
    lifetimeSeconds: 90 * day,
  },
  shortlived: {
    description: 'A certificate valid for 160 hours (under 7 days), for clients that renew often',
    lifetimeSeconds: 160 * 3600,
  },
};

const httpUrl = z
  .url()
  .refine((v) => v.startsWith('http://'), 'expected an http:// URL (CA/B BR §7.1.2.7.7)');

/** An issuing intermediate: its files, its key's id in the key store, its URLs. */
export const issuerConfig = z.strictObject({
  id: z.string().regex(/^[a-z0-9-]{1,64}$/, 'expected an issuer id of [a-z0-9-]'),
  certFile: z.string().min(1),
  chainFile: z.string().min(1),
  keyId: z.string().min(1),
  ocspUrl: httpUrl,
  crlUrl: httpUrl,
  caIssuersUrl: httpUrl,
});
export type IssuerConfig = z.output<typeof issuerConfig>;

export const caConfig = z
  .strictObject({
    listen: listenAddress,
    ...commonConfig,
    sa: peerConfig,
    keyStore: keyStoreConfig,
    issuers: z.array(issuerConfig).min(1, 'expected at least one issuer'),
    /** The issuer that signs new certificates; the others stay loaded for rotation. */
    activeIssuer: z.string().min(1),
    profiles: profilesConfig.default(defaultProfiles),
    /** Used when an order names no profile. */
    defaultProfile: profileName.default('default'),
    allowedClients: allowList.optional(),
    /** OCSP and CRL lifetimes and the refresher; defaults when absent. */
    revocation: revocationConfig,
  })
  .superRefine((config, ctx) => {
    const ids = config.issuers.map((i) => i.id);
    ids.forEach((id, index) => {
      if (ids.indexOf(id) !== index) {
        const path = ['issuers', index, 'id'];
        ctx.addIssue({ code: 'custom', path, message: `duplicate issuer id ${id}` });
      }
    });
    if (!ids.includes(config.activeIssuer)) {
      ctx.addIssue({
        code: 'custom',
        path: ['activeIssuer'],
        message: `expected one of the issuers (${ids.join(', ')}), got ${config.activeIssuer}`,
      });
    }
    if (!(config.defaultProfile in config.profiles)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultProfile'],
        message:
          `expected one of the profiles (${Object.keys(config.profiles).join(', ')}), ` +
          `got ${config.defaultProfile}`,
      });
    }
  });
export type CaConfig = z.output<typeof caConfig>;
