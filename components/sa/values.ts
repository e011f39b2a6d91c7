import { randomBytes } from 'node:crypto';
import { CaError } from '../lib/errors.js';

/**
 * How values cross between records and rows: ids, times, cursors, JSON. Every check names the
 * field and the value it got, since the caller is another component whose bug it reports.
 */

/** A new opaque id: 12 random bytes as base64url, 16 URL-safe characters. */
export function newId(): string {
  return randomBytes(12).toString('base64url');
}

/** The ISO 8601 layout every stored time has; see db.ts for why times are text. */
const storedTimeLength = 24;

/**
 * Normalizes a time to the one stored layout (UTC, milliseconds, 24 characters) so that text
 * comparison in SQL is time comparison. `malformed` names the field when it is no time.
 */
export function storedTime(value: unknown, field: string): string {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  const iso = Number.isNaN(ms) ? '' : new Date(ms).toISOString();
  if (iso.length !== storedTimeLength) {
    throw new CaError(
      'malformed',
      `expected ${field} to be an ISO 8601 time between years 0 and 9999, got ${JSON.stringify(value)}`,
    );
  }
  return iso;
}

/** storedTime for an optional time: null and undefined stay null. */
export function storedTimeOrNull(value: unknown, field: string): string | null {
  return value === null || value === undefined ? null : storedTime(value, field);
}

/** The value when it is a non-empty string; `malformed` naming the field otherwise. */
export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new CaError(
      'malformed',
      `expected ${field} to be a non-empty string, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Serials are lower-case hex so that one serial has one spelling and uniqueness holds. */
export function requireSerial(value: unknown, field = 'serial'): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{2,64}$/.test(value)) {
    throw new CaError(
      'malformed',
      `expected ${field} to be lower-case hex (2 to 64 digits), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** The value when it is one of `allowed`; `malformed` listing them otherwise. */
export function requireOneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  field: string,
): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new CaError(
      'malformed',
      `expected ${field} to be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** The value when it is an array of strings; `malformed` naming the field otherwise. */
export function requireStringArray(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new CaError(
      'malformed',
      `expected ${field} to be an array of strings, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Parses a JSON text column this SA wrote. */
export function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** Parses a nullable JSON text column this SA wrote. */
export function parseJsonOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** Position in an account's order list, newest first: creation time, then id. */
export interface OrderCursor {
  createdAt: string;
  id: string;
}

/** An opaque page cursor: base64url of the last order's creation time and id. */
export function encodeCursor(cursor: OrderCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

/** Reads a cursor from encodeCursor; `malformed` for anything else. */
export function decodeCursor(value: string): OrderCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    parsed = null;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 2 ||
    typeof parsed[0] !== 'string' ||
    typeof parsed[1] !== 'string' ||
    parsed[0].length !== storedTimeLength
  ) {
    throw new CaError('malformed', `cursor ${JSON.stringify(value)} is not one this SA handed out`);
  }
  return { createdAt: parsed[0], id: parsed[1] };
}
