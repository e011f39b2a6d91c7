import { errors as joseErrors, flattenedVerify } from 'jose';
import { CaError, ConfigError } from '../lib/errors.js';
import { jwkThumbprint, parseFlattenedJws } from './jws.js';

/**
 * External account binding (RFC 8555 §7.3.4): a newAccount request proves that its sender
 * holds a MAC key the operator handed out, by MACing the new account's public key with it.
 */

/** The MAC algorithms accepted for an external account binding (RFC 7518 §3.2). */
export const eabAlgorithms = ['HS256', 'HS384', 'HS512'] as const;

export type EabAlgorithm = (typeof eabAlgorithms)[number];

/** The smallest EAB MAC key accepted: as long as the HS256 output (RFC 7518 §3.2). */
export const minEabKeyBytes = 32;

/**
 * Checks the `externalAccountBinding` member of a newAccount payload against the operator's
 * keys and returns the EAB key id it was made with. `accountJwk` is the key that signed the
 * outer JWS; `newAccountUrl` is the URL the outer JWS was sent to.
 */
export async function verifyExternalAccountBinding(
  eab: unknown,
  accountJwk: unknown,
  newAccountUrl: string,
  keys: ReadonlyMap<string, Buffer>,
): Promise<string> {
  const jws = parseFlattenedJws(eab, 'externalAccountBinding');
  const header = jws.header;

  if (header.alg === undefined) {
    throw new CaError('malformed', 'externalAccountBinding protected header has no "alg"');
  }
  if (!isEabAlgorithm(header.alg)) {
    throw new CaError(
      'badSignatureAlgorithm',
      `externalAccountBinding alg ${JSON.stringify(header.alg)} is not accepted; ` +
        `use one of ${eabAlgorithms.join(', ')}`,
    );
  }
  const alg = header.alg;

  // RFC 8555 §7.3.4: the binding is replay-protected by the outer JWS, and must not carry
  // a nonce of its own.
  if ('nonce' in header) {
    throw new CaError('malformed', 'externalAccountBinding protected header must not have "nonce"');
  }

  const kid = header.kid;
  if (typeof kid !== 'string' || kid === '') {
    throw new CaError('malformed', 'externalAccountBinding protected header has no "kid" string');
  }

  if (typeof header.url !== 'string') {
    throw new CaError('malformed', 'externalAccountBinding protected header has no "url" string');
  }
  if (header.url !== newAccountUrl) {
    throw new CaError(
      'unauthorized',
      `externalAccountBinding url ${JSON.stringify(header.url)} does not match the newAccount ` +
        `URL ${JSON.stringify(newAccountUrl)}`,
    );
  }

  const key = keys.get(kid);
  if (key === undefined) {
    throw new CaError(
      'unauthorized',
      `external account key id ${JSON.stringify(kid)} is not known`,
    );
  }

  // The MAC is checked before the payload so that a sender without the key learns nothing
  // from which check failed.
  const flattened = {
    protected: jws.protectedB64,
    payload: jws.payloadB64,
    signature: jws.signatureB64,
  };
  try {
    await flattenedVerify(flattened, new Uint8Array(key), { algorithms: [alg] });
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
      throw new CaError(
        'unauthorized',
        `externalAccountBinding MAC is invalid for key id ${JSON.stringify(kid)}`,
        { cause: err },
      );
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new CaError('malformed', `externalAccountBinding cannot be verified: ${reason}`, {
      cause: err,
    });
  }

  let payload: unknown;
  try {
    payload = JSON.parse(jws.payload.toString('utf8'));
  } catch {
    throw new CaError('malformed', 'externalAccountBinding payload is not JSON');
  }

  // RFC 8555 §7.3.4: the payload is the account key; equal thumbprints mean the same key.
  const accountThumbprint = await jwkThumbprint(accountJwk);
  const payloadThumbprint = await jwkThumbprint(payload).catch(() => undefined);
  if (payloadThumbprint !== accountThumbprint) {
    throw new CaError(
      'unauthorized',
      'externalAccountBinding payload is not the public key that signed the newAccount request',
    );
  }

  return kid;
}

/**
 * Decodes an EAB MAC key as operators hand it out: unpadded base64url, at least 32 bytes.
 * The message never repeats the key.
 */
export function parseEabKey(base64url: string): Buffer {
  if (typeof base64url !== 'string' || !/^[A-Za-z0-9_-]+$/.test(base64url)) {
    throw new ConfigError('EAB key is not unpadded base64url');
  }

  const key = Buffer.from(base64url, 'base64url');
  if (key.length < minEabKeyBytes) {
    throw new ConfigError(
      `EAB key is ${key.length} bytes after decoding; at least ${minEabKeyBytes} are required`,
    );
  }
  return key;
}

function isEabAlgorithm(value: unknown): value is EabAlgorithm {
  return typeof value === 'string' && (eabAlgorithms as readonly string[]).includes(value);
}
