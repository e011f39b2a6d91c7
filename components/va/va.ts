import { Counter, Histogram, type Registry } from 'prom-client';
import { z } from 'zod';
import { challengeTypes, type Identifier, type Problem } from '../lib/acme.js';
import { describeIssues } from '../lib/config.js';
import { CaError } from '../lib/errors.js';
import { logKeys, type Logger } from '../lib/log.js';
import type { ValidationRecord } from '../lib/records.js';
import type { ValidationSettings } from './config.js';
import type { ValidationContext } from './context.js';
import { validateDns01 } from './dns01.js';
import { validateHttp01 } from './http01.js';
import { failure, validationProblem } from './problems.js';
import { isHostname, normalizeName, ValidationResolver } from './resolver.js';
import type { ValidationAuthority, ValidationRequest, ValidationResult } from './service.js';
import { validateTlsAlpn01 } from './tlsalpn01.js';

/** Extra time a validator gets after its signal aborts to report its own timeout detail. */
const graceMs = 250;

const base64url = /^[A-Za-z0-9_-]+$/;

/**
 * The request as it arrives over RPC: untrusted JSON. Unknown fields are ignored so that an RA
 * of the next release can add some (DESIGN.md: expand-only changes).
 */
const requestSchema = z.object({
  identifier: z.object({
    type: z.literal('dns'),
    value: z.string().max(253),
  }),
  wildcard: z.boolean(),
  challengeType: z.enum(challengeTypes),
  // RFC 8555 §8.1: a token is base64url; it lands in a URL path, so nothing else may pass.
  token: z.string().min(1).max(256).regex(base64url, 'expected a base64url token'),
  keyAuthorization: z.string().max(512),
  accountId: z.string().max(128),
  /** Not in ValidationRequest: logged as `authz` when an RA sends it. */
  authorizationId: z.string().max(128).optional(),
});

export interface ValidationAuthorityOptions {
  settings: ValidationSettings;
  log: Logger;
  /** Where the VA's counters go; none are kept without it. */
  metrics?: Registry;
  /** Replaces the resolver built from `settings`, for tests. */
  resolver?: ValidationResolver;
}

/**
 * Performs http-01, dns-01 and tls-alpn-01 validations. Every outcome, including hostile or
 * malformed input, is a result with a Problem; the RPC itself does not fail.
 */
export class ValidationAuthorityImpl implements ValidationAuthority {
  readonly #settings: ValidationSettings;
  readonly #log: Logger;
  readonly #resolver: ValidationResolver;
  readonly #outcomes?: Counter<'type' | 'outcome'>;
  readonly #durations?: Histogram<'type'>;

  constructor(options: ValidationAuthorityOptions) {
    this.#settings = options.settings;
    this.#log = options.log;
    this.#resolver = options.resolver ?? new ValidationResolver(options.settings);

    if (options.metrics) {
      this.#outcomes = new Counter({
        name: 'va_validations_total',
        help: 'Validations performed, by challenge type and outcome (valid or problem kind)',
        labelNames: ['type', 'outcome'],
        registers: [options.metrics],
      });
      this.#durations = new Histogram({
        name: 'va_validation_duration_seconds',
        help: 'Time one validation took, by challenge type',
        labelNames: ['type'],
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [options.metrics],
      });
    }
  }

  /** Validates one challenge; never throws for anything the applicant or RA controls. */
  async performValidation(req: ValidationRequest): Promise<ValidationResult> {
    const started = performance.now();
    const records: ValidationRecord[] = [];
    let identifier: Identifier | undefined;
    let problem: Problem | null = null;

    try {
      const checked = checkRequest(req);
      identifier = checked.identifier;
      await this.#run(checked, records);
    } catch (err) {
      problem = validationProblem(err, identifier);
      if (!(err instanceof CaError) || problem.type.endsWith(':serverInternal')) {
        this.#log.error({ [logKeys.acct]: safeString(req?.accountId), err }, 'validation crashed');
      }
    }

    const seconds = (performance.now() - started) / 1000;
    this.#record(req, problem, records, seconds);
    return { status: problem ? 'invalid' : 'valid', records, problem };
  }

  async #run(req: z.output<typeof requestSchema>, records: ValidationRecord[]): Promise<void> {
    const { timeoutMs } = this.#settings;
    const controller = new AbortController();
    const ctx: ValidationContext = {
      resolver: this.#resolver,
      httpPort: this.#settings.httpPort,
      tlsAlpnPort: this.#settings.tlsAlpnPort,
      userAgent: this.#settings.userAgent,
      timeoutMs,
      signal: controller.signal,
      records,
    };
    const name = req.identifier.value;

    const attempt =
      req.challengeType === 'http-01'
        ? validateHttp01(ctx, name, req.token, req.keyAuthorization)
        : req.challengeType === 'dns-01'
          ? validateDns01(ctx, name, req.keyAuthorization)
          : validateTlsAlpn01(ctx, name, req.keyAuthorization);

    // Validators stop on the signal; the backstop holds even if one of them forgets to.
    let backstop: NodeJS.Timeout | undefined;
    const abortTimer = setTimeout(() => controller.abort(), timeoutMs);
    const hardStop = new Promise<never>((_, reject) => {
      backstop = setTimeout(
        () => reject(failure('connection', `validation timed out after ${timeoutMs}ms`)),
        timeoutMs + graceMs,
      );
    });
    try {
      await Promise.race([attempt, hardStop]);
    } finally {
      clearTimeout(abortTimer);
      clearTimeout(backstop);
      controller.abort();
    }
  }

  #record(req: unknown, problem: Problem | null, records: ValidationRecord[], seconds: number) {
    const r = (req ?? {}) as Partial<ValidationRequest & { authorizationId: string }>;
    const type = challengeTypes.includes(r.challengeType as never) ? r.challengeType! : 'unknown';
    const outcome = problem ? problem.type.slice(problem.type.lastIndexOf(':') + 1) : 'valid';
    const authz = safeString(r.authorizationId);

    this.#outcomes?.inc({ type, outcome });
    this.#durations?.observe({ type }, seconds);
    this.#log.info(
      {
        [logKeys.acct]: safeString(r.accountId),
        ...(authz === null ? {} : { [logKeys.authz]: authz }),
        identifier: safeString(r.identifier?.value),
        wildcard: r.wildcard === true,
        challenge: type,
        outcome,
        problemType: problem?.type ?? null,
        detail: problem?.detail ?? null,
        addressUsed: records.at(-1)?.addressUsed ?? null,
        durationMs: Math.round(seconds * 1000),
      },
      'validation finished',
    );
  }
}

/** Checks the RPC request, returning it with the identifier's name normalized. */
function checkRequest(req: unknown): z.output<typeof requestSchema> {
  const parsed = requestSchema.safeParse(req);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error.issues);
    throw failure('malformed', `invalid validation request: ${issues}`);
  }
  const value = parsed.data;

  const name = normalizeName(value.identifier.value);
  if (!isHostname(name)) {
    throw failure(
      'malformed',
      `identifier ${JSON.stringify(value.identifier.value.slice(0, 64))} is not a DNS name; ` +
        'a wildcard authorization carries its base domain with wildcard: true',
    );
  }

  // RFC 8555 §7.1.3: a wildcard covers every name under the base domain, which only control
  // of its DNS (dns-01) shows; an answer from one host (http-01, tls-alpn-01) does not.
  if (value.wildcard && value.challengeType !== 'dns-01') {
    throw failure(
      'malformed',
      `challenge type ${value.challengeType} cannot validate the wildcard *.${name}; use dns-01`,
    );
  }

  // RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(thumbprint).
  const [prefix, thumbprint, ...rest] = value.keyAuthorization.split('.');
  if (prefix !== value.token || !thumbprint || !base64url.test(thumbprint) || rest.length > 0) {
    const expected = 'the token, a dot and a base64url thumbprint';
    throw failure('malformed', `keyAuthorization must be ${expected}`);
  }

  return { ...value, identifier: { type: 'dns', value: name } };
}

function safeString(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, 253) : null;
}
