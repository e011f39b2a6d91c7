import pino, { type Logger } from 'pino';

/**
 * Log field names, defined once. Messages are constant phrases; data goes in these fields.
 * Signing, revocation and key loading are audit events (`audit: true`, full serial).
 */
export const logKeys = {
  requestId: 'requestId',
  acct: 'acct',
  order: 'order',
  authz: 'authz',
  serial: 'serial',
  issuer: 'issuer',
  env: 'env',
  color: 'color',
  step: 'step',
} as const;

export type LogFields = Partial<Record<keyof typeof logKeys, string | number>> &
  Record<string, unknown>;

export type { Logger };

/** A JSON-lines logger for one component, writing to stdout (or a given stream). */
export function createLogger(
  component: string,
  options: { level?: string; color?: string; destination?: pino.DestinationStream } = {},
): Logger {
  const base: Record<string, unknown> = { component };
  if (options.color) base[logKeys.color] = options.color;

  return pino(
    {
      level: options.level ?? 'info',
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Never log key material or PINs, whatever a caller passes.
      redact: { paths: ['pin', '*.pin', 'privateKey', '*.privateKey', 'hmacKey', '*.hmacKey'] },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** Writes an audit event: signing, revocation, key loading. */
export function audit(log: Logger, message: string, fields: LogFields): void {
  log.info({ ...fields, audit: true }, message);
}
