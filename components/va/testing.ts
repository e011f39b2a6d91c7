import { createServer } from 'node:net';
import { createLogger, type Logger } from '../lib/log.js';
import type { ValidationSettings } from './config.js';
import type { ValidationRequest } from './service.js';
import { ValidationAuthorityImpl } from './va.js';

/** Test support for the VA's own tests; nothing in production imports it. */

/** A token and key authorization in the RFC 8555 §8.1 form. */
export const token = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
export const keyAuthorization = `${token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;

/** Settings for loopback tests: every name under `test` is 127.0.0.1. */
export function testSettings(overrides: Partial<ValidationSettings> = {}): ValidationSettings {
  return {
    httpPort: 5002,
    tlsAlpnPort: 5001,
    dnsResolver: undefined,
    hostOverrides: [{ suffix: 'test', address: '127.0.0.1' }],
    timeoutMs: 2_000,
    userAgent: 'bluegreen-ca-va-test',
    ...overrides,
  };
}

/** A logger whose JSON lines land in `lines`, parsed. */
export function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('va', {
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
  });
  return { log, lines };
}

/** A VA with a silent logger unless one is given. */
export function testVa(settings: ValidationSettings, log?: Logger): ValidationAuthorityImpl {
  log ??= createLogger('va', { level: 'silent' });
  return new ValidationAuthorityImpl({ settings, log });
}

export function validationRequest(overrides: Partial<ValidationRequest> = {}): ValidationRequest {
  return {
    identifier: { type: 'dns', value: 'example.test' },
    wildcard: false,
    challengeType: 'http-01',
    token,
    keyAuthorization,
    accountId: 'acct-1',
    ...overrides,
  };
}

/** A loopback TCP port that nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
