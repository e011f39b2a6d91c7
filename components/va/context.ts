import type { CaError } from '../lib/errors.js';
import type { ValidationRecord } from '../lib/records.js';
import { failure } from './problems.js';
import type { ValidationResolver } from './resolver.js';

/** What one validation attempt works with; validators throw a CaError when it fails. */
export interface ValidationContext {
  readonly resolver: ValidationResolver;
  readonly httpPort: number;
  readonly tlsAlpnPort: number;
  readonly userAgent: string;
  readonly timeoutMs: number;
  /** Aborted when the attempt's time is up; every socket and query listens to it. */
  readonly signal: AbortSignal;
  /** Appended to as the attempt goes, so that a failure still reports what was reached. */
  readonly records: ValidationRecord[];
}

const connectionReasons: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EPIPE: 'connection reset by peer',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
};

/**
 * Maps a socket, TLS or HTTP parser error to the problem an applicant can act on: transport
 * failures are `connection`, TLS failures `tls`, unparseable HTTP `incorrectResponse`.
 */
export function socketFailure(err: unknown, target: string): CaError {
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const message = err instanceof Error ? err.message : String(err);

  if (connectionReasons[code]) {
    return failure('connection', `${target}: ${connectionReasons[code]}`, err);
  }
  if (code.startsWith('HPE_')) {
    return failure('incorrectResponse', `${target}: malformed HTTP response (${code})`, err);
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return failure('tls', `${target}: TLS error: ${message.slice(0, 200)}`, err);
  }
  return failure('connection', `${target}: ${code || message.slice(0, 200)}`, err);
}

/** The `connection` failure for an attempt whose time ran out while `doing`. */
export function timeoutFailure(ctx: ValidationContext, doing: string): CaError {
  return failure('connection', `timed out after ${ctx.timeoutMs}ms ${doing}`);
}

/** `host:port`, with brackets around IPv6 addresses, for problem details. */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
