import { calculateJwkThumbprint, errors as joseErrors, flattenedVerify, importJWK } from 'jose';
import { CaError } from '../lib/errors.js';

/**
 * Request authentication for ACME (RFC 8555 §6.2–6.4): the flattened JWS a client POSTs, the
 * account key that signed it, and the URL it was meant for. Nothing here knows about HTTP or
 * nonces; the handlers redeem `protected.nonce` with the NonceService themselves.
 */

/** The signature algorithms accepted for account keys (RFC 8555 §6.2; RFC 7518 §3.1). */
export const jwsAlgorithms = ['RS256', 'ES256', 'ES384', 'EdDSA'] as const;

export type JwsAlgorithm = (typeof jwsAlgorithms)[number];

/** The protected header of an ACME request, with the members RFC 8555 §6.2 requires. */
export interface JwsHeader {
  readonly alg: JwsAlgorithm;
  /** Always present, except in a JWS parsed with `nonce: 'forbidden'`. */
  readonly nonce?: string;
  readonly url: string;
  /** The signing key, for newAccount and key-signed revocation (RFC 8555 §6.2). */
  readonly jwk?: Readonly<Record<string, unknown>>;
  /** The account URL, for every other request. */
  readonly kid?: string;
  readonly [member: string]: unknown;
}

/** A flattened JWS whose shape and header have been checked but whose signature has not. */
export interface ParsedJws {
  readonly protected: JwsHeader;
  readonly protectedB64: string;
  /** `""` for POST-as-GET (RFC 8555 §6.3); `payload` is then empty too. */
  readonly payloadB64: string;
  readonly signatureB64: string;
  readonly payload: Buffer;
}

/** A flattened JWS before its header is checked, shared with the EAB verifier. */
export interface FlattenedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly protectedB64: string;
  readonly payloadB64: string;
  readonly signatureB64: string;
  readonly payload: Buffer;
}

/** How `parseJws` treats the `nonce` header parameter. */
export interface ParseJwsOptions {
  /**
   * `'forbidden'` for the inner JWS of a key change, which must not carry one (RFC 8555 §7.3.5).
   * @default 'required'
   */
  readonly nonce?: 'required' | 'forbidden';
}

/** The public members of an RSA, EC or OKP key, in RFC 7638 member order. */
export type PublicJwk =
  | { readonly e: string; readonly kty: 'RSA'; readonly n: string }
  | { readonly crv: 'P-256' | 'P-384'; readonly kty: 'EC'; readonly x: string; readonly y: string }
  | { readonly crv: 'Ed25519'; readonly kty: 'OKP'; readonly x: string };

const flattenedMembers = new Set(['protected', 'payload', 'signature']);

// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const minRsaBits = 2048;
const maxRsaBits = 4096;

const ecCoordinateBytes = { 'P-256': 32, 'P-384': 48 } as const;

const ed25519KeyBytes = 32;

const expectedKey: Record<JwsAlgorithm, { kty: string; crv?: string }> = {
  RS256: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
};

/**
 * Parses a request body as a flattened JWS (RFC 7515 §7.2.2) and checks its protected header
 * (RFC 8555 §6.2). The signature is not verified: that needs the account key, found through
 * `jwk` or `kid`.
 */
export function parseJws(
  body: Buffer,
  maxBytes: number,
  options: ParseJwsOptions = {},
): ParsedJws {
  if (body.length > maxBytes) {
    throw new CaError(
      'malformed',
      `request body is ${body.length} bytes; the limit is ${maxBytes}`,
    );
  }

  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new CaError('malformed', 'request body is not JSON');
  }

  const jws = parseFlattenedJws(json, 'JWS');
  const header = jws.header;

  if (header.alg === undefined) {
    throw new CaError('malformed', 'JWS protected header has no "alg"');
  }
  if (!isJwsAlgorithm(header.alg)) {
    throw new CaError(
      'badSignatureAlgorithm',
      `JWS alg ${JSON.stringify(header.alg)} is not accepted; use one of ${jwsAlgorithms.join(', ')}`,
    );
  }

  // RFC 8555 §6.5: a request without a nonce is refused as badNonce, like a bad one.
  if (options.nonce === 'forbidden') {
    if ('nonce' in header) {
      throw new CaError('malformed', 'inner JWS protected header must not have "nonce"');
    }
  } else if (typeof header.nonce !== 'string' || header.nonce === '') {
    throw new CaError('badNonce', 'JWS protected header has no "nonce" string');
  }

  if (typeof header.url !== 'string' || header.url === '') {
    throw new CaError('malformed', 'JWS protected header has no "url" string');
  }

  // RFC 8555 §6.2: exactly one of "jwk" and "kid".
  const hasJwk = header.jwk !== undefined;
  const hasKid = header.kid !== undefined;
  if (hasJwk === hasKid) {
    const got = hasJwk ? 'both' : 'neither';
    throw new CaError(
      'malformed',
      `JWS protected header must have exactly one of "jwk" and "kid", got ${got}`,
    );
  }
  if (hasJwk && !isPlainObject(header.jwk)) {
    throw new CaError('malformed', 'JWS protected header "jwk" is not a JSON object');
  }
  if (hasKid && (typeof header.kid !== 'string' || header.kid === '')) {
    throw new CaError('malformed', 'JWS protected header "kid" is not a non-empty string');
  }

  return {
    protected: header as JwsHeader,
    protectedB64: jws.protectedB64,
    payloadB64: jws.payloadB64,
    signatureB64: jws.signatureB64,
    payload: jws.payload,
  };
}

/**
 * Checks the shape of a flattened JWS and decodes its protected header and payload. `what`
 * names the object in error details (`JWS`, `externalAccountBinding`).
 */
export function parseFlattenedJws(value: unknown, what: string): FlattenedJws {
  if (!isPlainObject(value)) {
    throw new CaError('malformed', `${what} is not a JSON object`);
  }

  if ('signatures' in value) {
    throw new CaError(
      'malformed',
      `${what} uses the general JSON serialization; only the flattened one is accepted`,
    );
  }

  // RFC 8555 §6.2: every header parameter must be integrity-protected.
  if ('header' in value) {
    throw new CaError('malformed', `${what} has an unprotected "header"; use "protected" only`);
  }

  for (const member of Object.keys(value)) {
    if (!flattenedMembers.has(member)) {
      throw new CaError('malformed', `${what} has an unexpected member "${member}"`);
    }
  }

  const protectedB64 = base64urlMember(value, 'protected', what);
  const payloadB64 = base64urlMember(value, 'payload', what);
  const signatureB64 = base64urlMember(value, 'signature', what);
  if (protectedB64 === '') {
    throw new CaError('malformed', `${what} "protected" is empty`);
  }

  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8'));
  } catch {
    throw new CaError('malformed', `${what} "protected" is not base64url-encoded JSON`);
  }
  if (!isPlainObject(header)) {
    throw new CaError('malformed', `${what} protected header is not a JSON object`);
  }

  // ACME defines no JWS extensions, and "b64": false would change what the payload means
  // (RFC 7797 §3), so any "crit" is refused rather than interpreted.
  if ('crit' in header) {
    throw new CaError(
      'malformed',
      `${what} protected header has "crit"; no extensions are accepted`,
    );
  }

  return {
    header,
    protectedB64,
    payloadB64,
    signatureB64,
    payload: Buffer.from(payloadB64, 'base64url'),
  };
}

type ImportedKey = Awaited<ReturnType<typeof importJWK>>;

/**
 * Account keys already imported, by algorithm and public members. An account signs every
 * request with the same key, and importing one costs more than verifying with it. Bounded;
 * the oldest entry goes first.
 */
const importedKeys = new Map<string, ImportedKey>();
const importedKeysMax = 4096;

async function importAccountKey(key: PublicJwk, alg: string): Promise<ImportedKey> {
  const id = `${alg} ${JSON.stringify(key)}`;
  const known = importedKeys.get(id);
  if (known) return known;

  let imported: ImportedKey;
  try {
    imported = await importJWK(key, alg);
  } catch (err) {
    throw new CaError('badPublicKey', `JWK cannot be used as a ${alg} public key`, { cause: err });
  }
  if (importedKeys.size >= importedKeysMax) {
    importedKeys.delete(importedKeys.keys().next().value as string);
  }
  importedKeys.set(id, imported);
  return imported;
}

/**
 * Verifies the signature of a parsed JWS with a public JWK: the embedded `jwk` for newAccount,
 * or the stored account key for `kid` requests. The key must suit `alg` (RFC 8555 §6.2).
 */
export async function verifyWithJwk(parsed: ParsedJws, jwk: unknown): Promise<void> {
  const key = publicJwk(jwk);

  const alg = parsed.protected.alg;
  const expected = expectedKey[alg];
  const crv = 'crv' in key ? key.crv : undefined;
  if (key.kty !== expected.kty || crv !== expected.crv) {
    const keyName = crv === undefined ? key.kty : `${key.kty} ${crv}`;
    const wanted = expected.crv === undefined ? expected.kty : `${expected.kty} ${expected.crv}`;
    throw new CaError(
      'badSignatureAlgorithm',
      `JWS alg ${alg} needs an ${wanted} key, but the key is ${keyName}`,
    );
  }

  const cryptoKey = await importAccountKey(key, alg);

  const jws = {
    protected: parsed.protectedB64,
    payload: parsed.payloadB64,
    signature: parsed.signatureB64,
  };
  try {
    await flattenedVerify(jws, cryptoKey, { algorithms: [alg] });
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
      throw new CaError('malformed', 'JWS signature is invalid', { cause: err });
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new CaError('malformed', `JWS cannot be verified: ${reason}`, { cause: err });
  }
}

/**
 * Validates a public JWK and returns only its public members (RFC 7638 §3.2 order), which is
 * what an account stores. Private members, unknown key types and curves, and RSA moduli
 * outside 2048–4096 bits are refused as `badPublicKey`.
 */
export function publicJwk(jwk: unknown): PublicJwk {
  if (!isPlainObject(jwk)) {
    throw new CaError('badPublicKey', 'JWK is not a JSON object');
  }

  // A client that sends its private key has leaked it; refusing is kinder than storing it.
  for (const member of privateMembers) {
    if (member in jwk) {
      throw new CaError('badPublicKey', `JWK has private member "${member}"; send the public key`);
    }
  }

  switch (jwk.kty) {
    case 'RSA': {
      const n = keyMember(jwk, 'n');
      const e = keyMember(jwk, 'e');
      const bits = bitLength(Buffer.from(n, 'base64url'));
      if (bits < minRsaBits || bits > maxRsaBits) {
        throw new CaError(
          'badPublicKey',
          `RSA modulus is ${bits} bits; accepted sizes are ${minRsaBits} to ${maxRsaBits} bits`,
        );
      }
      return { e, kty: 'RSA', n };
    }

    case 'EC': {
      const crv = jwk.crv;
      if (crv !== 'P-256' && crv !== 'P-384') {
        throw new CaError(
          'badPublicKey',
          `EC curve ${JSON.stringify(crv)} is not accepted; use P-256 or P-384`,
        );
      }
      const x = keyMember(jwk, 'x', ecCoordinateBytes[crv]);
      const y = keyMember(jwk, 'y', ecCoordinateBytes[crv]);
      return { crv, kty: 'EC', x, y };
    }

    case 'OKP': {
      if (jwk.crv !== 'Ed25519') {
        throw new CaError(
          'badPublicKey',
          `OKP curve ${JSON.stringify(jwk.crv)} is not accepted; use Ed25519`,
        );
      }
      const x = keyMember(jwk, 'x', ed25519KeyBytes);
      return { crv: 'Ed25519', kty: 'OKP', x };
    }

    default:
      throw new CaError(
        'badPublicKey',
        `JWK kty ${JSON.stringify(jwk.kty)} is not accepted; use RSA, EC or OKP`,
      );
  }
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK, base64url; it identifies an account key. */
export async function jwkThumbprint(jwk: unknown): Promise<string> {
  return calculateJwkThumbprint(publicJwk(jwk), 'sha256');
}

/** Refuses a JWS whose `url` is not the URL it was sent to (RFC 8555 §6.4). */
export function checkUrl(parsed: ParsedJws, expectedUrl: string): void {
  if (parsed.protected.url !== expectedUrl) {
    throw new CaError(
      'unauthorized',
      `JWS url ${JSON.stringify(parsed.protected.url)} does not match the request URL ` +
        JSON.stringify(expectedUrl),
    );
  }
}

function isJwsAlgorithm(value: unknown): value is JwsAlgorithm {
  return typeof value === 'string' && (jwsAlgorithms as readonly string[]).includes(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBase64url(value: string): boolean {
  // A length of 1 mod 4 cannot come from any byte string.
  return /^[A-Za-z0-9_-]*$/.test(value) && value.length % 4 !== 1;
}

function base64urlMember(value: Record<string, unknown>, member: string, what: string): string {
  const field = value[member];
  if (typeof field !== 'string') {
    throw new CaError('malformed', `${what} has no "${member}" string`);
  }
  if (!isBase64url(field)) {
    throw new CaError('malformed', `${what} "${member}" is not unpadded base64url`);
  }
  return field;
}

function keyMember(jwk: Record<string, unknown>, member: string, bytes?: number): string {
  const field = jwk[member];
  if (typeof field !== 'string' || field === '' || !isBase64url(field)) {
    throw new CaError('badPublicKey', `JWK ${jwk.kty} member "${member}" is not base64url`);
  }

  const length = Buffer.from(field, 'base64url').length;
  if (bytes !== undefined && length !== bytes) {
    throw new CaError(
      'badPublicKey',
      `JWK ${jwk.kty} member "${member}" is ${length} bytes; expected ${bytes}`,
    );
  }
  return field;
}

function bitLength(bytes: Buffer): number {
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start += 1;
  if (start === bytes.length) return 0;
  return (bytes.length - start - 1) * 8 + (32 - Math.clz32(bytes[start]));
}
