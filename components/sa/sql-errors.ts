import { CaError } from '../lib/errors.js';

/**
 * Turns driver errors into CaError kinds that callers act on, the same way for better-sqlite3
 * and pg: a unique violation is `duplicate` (the loser of a once-only write), a broken foreign
 * key is `notFound`, an unreachable or busy database is `unavailable` (worth a retry).
 */

/** What to say when a statement hits each kind of constraint; the caller knows the values. */
export interface ConstraintMessages {
  duplicate?: string;
  missing?: string;
}

/** PostgreSQL SQLSTATEs (appendix A of its manual) and better-sqlite3 extended codes. */
const uniqueCodes = new Set(['23505', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);
const foreignKeyCodes = new Set(['23503', 'SQLITE_CONSTRAINT_FOREIGNKEY']);
const unavailableCodes = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True when `err` is a unique or primary key violation from either driver. */
export function isUniqueViolation(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && uniqueCodes.has(code);
}

/** Maps a thrown value to a CaError; CaErrors pass through unchanged. */
export function toStorageError(err: unknown, messages: ConstraintMessages = {}): CaError {
  if (err instanceof CaError) return err;

  const code = codeOf(err);
  const driverMessage = err instanceof Error ? err.message : String(err);
  if (code && uniqueCodes.has(code)) {
    return new CaError('duplicate', messages.duplicate ?? driverMessage, { cause: err });
  }
  if (code && foreignKeyCodes.has(code)) {
    const detail = messages.missing ?? `a referenced row is missing: ${driverMessage}`;
    return new CaError('notFound', detail, { cause: err });
  }
  if (code && unavailableCodes.has(code)) {
    return new CaError('unavailable', `database unavailable: ${driverMessage}`, { cause: err });
  }
  return new CaError('internal', `database error: ${driverMessage}`, { cause: err });
}

/** Runs `fn`, mapping whatever it throws with `toStorageError`. */
export async function mapErrors<T>(
  fn: () => Promise<T>,
  messages?: ConstraintMessages,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toStorageError(err, messages);
  }
}
