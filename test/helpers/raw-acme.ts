import { exportJWK, FlattenedSign, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { request, type Agent } from 'node:https';

/** A response as the raw client saw it. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

export interface SignOptions {
  /** Sign with this key; its public JWK goes in `jwk` unless `kid` is set. */
  key: { privateKey: CryptoKey; jwk: JWK; alg: string };
  kid?: string;
  nonce?: string | null;
  url?: string;
  /** Extra or replacing protected header members. */
  header?: Record<string, unknown>;
  contentType?: string;
}

/**
 * A deliberately low-level ACME client for tests that must send what a good client never
 * would: replayed nonces, wrong URLs, odd algorithms, oversized bodies.
 */
export class RawAcme {
  directory: Record<string, string> = {};

  constructor(
    readonly directoryUrl: string,
    readonly agent: Agent,
  ) {}

  async init(): Promise<this> {
    this.directory = (await this.fetch('GET', this.directoryUrl)).json;
    return this;
  }

  fetch(method: string, url: string, body?: string | Buffer, contentType?: string): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: this.agent, headers: contentType ? { 'content-type': contentType } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async nonce(): Promise<string> {
    const res = await this.fetch('HEAD', this.directory.newNonce);
    return String(res.headers['replay-nonce']);
  }

  async jws(url: string, payload: unknown, o: SignOptions): Promise<string> {
    const nonce = o.nonce === undefined ? await this.nonce() : o.nonce;
    const header: Record<string, unknown> = { alg: o.key.alg, url: o.url ?? url };
    if (nonce !== null) header.nonce = nonce;
    if (o.kid) header.kid = o.kid;
    else header.jwk = o.key.jwk;
    Object.assign(header, o.header ?? {});
    for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];

    const bytes = payload === '' ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    const signed = await new FlattenedSign(bytes).setProtectedHeader(header as never).sign(o.key.privateKey);
    return JSON.stringify(signed);
  }

  async post(url: string, payload: unknown, o: SignOptions): Promise<RawResponse> {
    const body = await this.jws(url, payload, o);
    return this.fetch('POST', url, body, o.contentType ?? 'application/jose+json');
  }
}

export async function newKey(alg: 'ES256' | 'ES384' | 'RS256' | 'EdDSA' = 'ES256', modulusLength = 2048) {
  const { privateKey, publicKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'RS256' ? { modulusLength } : {}),
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
  return { privateKey, jwk: await exportJWK(publicKey), alg };
}

/** A JWS assembled by hand, for what a JOSE library refuses to produce. */
export function handmadeJws(
  header: Record<string, unknown>,
  payload: unknown,
  sign: (signingInput: Buffer) => Buffer = () => Buffer.from('not a signature'),
): string {
  const protectedB64 = Buffer.from(JSON.stringify(header)).toString('base64url');
  const payloadB64 = payload === '' ? '' : Buffer.from(JSON.stringify(payload)).toString('base64url');
  const signature = sign(Buffer.from(`${protectedB64}.${payloadB64}`)).toString('base64url');
  return JSON.stringify({ protected: protectedB64, payload: payloadB64, signature });
}
