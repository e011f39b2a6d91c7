import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../lib/log.js';
import { CaError } from '../lib/errors.js';
import { problemFor } from './problems.js';

/**
 * The HTTP plumbing of the ACME front end: request bodies with a size limit, JSON and problem
 * responses, and the headers RFC 8555 wants on every response.
 */

export interface AcmeRequest {
  readonly method: string;
  readonly path: string;
  /** `https://host[:port]` as the client addressed us; every URL we hand out starts with it. */
  readonly base: string;
  /** The exact URL of this request, for the JWS `url` check (RFC 8555 §6.4). */
  readonly url: string;
  readonly params: Readonly<Record<string, string>>;
  readonly contentType: string;
  readonly body: Buffer;
  readonly requestId: string;
}

export interface AcmeResponse {
  status: number;
  body?: unknown;
  /** Sent as-is instead of JSON (certificate chains). */
  raw?: { contentType: string; data: string | Buffer };
  headers?: Record<string, string | string[]>;
}

export function directoryUrl(base: string): string {
  return `${base}/directory`;
}

const hostPattern = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

/** Builds the request's base URL from its Host header; refuses a Host that is not a host. */
export function baseUrlOf(req: IncomingMessage): string {
  const host = req.headers.host;
  if (!host || !hostPattern.test(host)) {
    throw new CaError('malformed', 'the Host header is missing or not a host name');
  }
  return `https://${host}`;
}

/** Reads the body, refusing more than `limit` bytes before reading them all. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(new CaError('malformed', `request body exceeds ${limit} bytes`));
      return;
    }

    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new CaError('malformed', `request body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Writes a response; `nonce` is a fresh Replay-Nonce, `base` gives the index Link. */
export function send(
  res: ServerResponse,
  out: AcmeResponse,
  extra: { nonce?: string; base?: string },
): void {
  const headers: Record<string, string | string[]> = { 'cache-control': 'no-store' };
  if (extra.nonce) headers['replay-nonce'] = extra.nonce;

  const links: string[] = [];
  if (extra.base) links.push(`<${directoryUrl(extra.base)}>;rel="index"`);
  for (const [name, value] of Object.entries(out.headers ?? {})) {
    if (name === 'link') links.push(...(Array.isArray(value) ? value : [value]));
    else headers[name] = value;
  }
  if (links.length) headers.link = links;

  if (out.raw) {
    headers['content-type'] = out.raw.contentType;
    res.writeHead(out.status, headers).end(out.raw.data);
  } else if (out.body === undefined) {
    // An explicit length lets Node's HTTP client keep the connection after a HEAD or a 204.
    if (out.status !== 204) headers['content-length'] = '0';
    res.writeHead(out.status, headers).end();
  } else {
    const isProblem = typeof out.body === 'object' && out.body !== null && 'type' in out.body && out.status >= 400;
    headers['content-type'] = isProblem ? 'application/problem+json' : 'application/json';
    res.writeHead(out.status, headers).end(JSON.stringify(out.body, null, 2));
  }
}

/** The response for anything thrown by a handler. */
export function problemResponse(err: unknown, log: Logger, requestId: string): AcmeResponse {
  const { status, body } = problemFor(err);
  if (status >= 500) log.error({ requestId, err }, 'request failed');
  return { status, body };
}
