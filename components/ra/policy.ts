import type { ChallengeType, Identifier } from '../lib/acme.js';
import { CaError } from '../lib/errors.js';

/**
 * Which identifiers this CA may issue for. The operator lists allowed domains; a name is
 * allowed when it equals one of them or lies under it. Everything else is rejectedIdentifier.
 */
export interface PolicyOptions {
  readonly allowedDomains: readonly string[];
  /** RFC 8555 §7.1.3 leaves the limit to the server. */
  readonly maxIdentifiers: number;
}

export interface CheckedIdentifier {
  /** The identifier as stored: wildcards keep their `*.` prefix in orders. */
  readonly identifier: Identifier;
  /** The name an authorization is for: the base domain of a wildcard. */
  readonly base: string;
  readonly wildcard: boolean;
}

const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Checks a DNS name's syntax (LDH labels, RFC 1035 lengths); returns a reason or null. */
export function nameSyntaxProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  if (name.endsWith('.')) return 'ends with a dot';

  const labels = name.split('.');
  if (labels.length < 2) return 'has fewer than two labels';
  for (const l of labels) {
    if (!label.test(l)) return `has an invalid label "${l.slice(0, 64)}"`;
  }
  if (/^\d+$/.test(labels[labels.length - 1])) return 'is an IP address or ends in a number';
  return null;
}

export class IssuancePolicy {
  private readonly allowed: readonly string[];

  constructor(private readonly options: PolicyOptions) {
    this.allowed = options.allowedDomains.map((d) => d.toLowerCase().replace(/\.$/, ''));
  }

  get allowedDomains(): readonly string[] {
    return this.allowed;
  }

  /** Whether `name` (no wildcard) is under an allowed domain. */
  allows(name: string): boolean {
    return this.allowed.some((d) => name === d || name.endsWith(`.${d}`));
  }

  /**
   * Validates and normalizes an order's identifiers: lower case, no duplicates, dns only,
   * syntax, allowed domains, and wildcards only as a whole leftmost label.
   */
  checkIdentifiers(input: unknown): CheckedIdentifier[] {
    if (!Array.isArray(input) || input.length === 0) {
      throw new CaError('malformed', 'identifiers must be a non-empty array');
    }
    if (input.length > this.options.maxIdentifiers) {
      throw new CaError(
        'rejectedIdentifier',
        `an order may have at most ${this.options.maxIdentifiers} identifiers, got ${input.length}`,
      );
    }

    const seen = new Map<string, CheckedIdentifier>();
    for (const raw of input) {
      const checked = this.checkOne(raw);
      seen.set(checked.identifier.value, checked);
    }
    return [...seen.values()];
  }

  private checkOne(raw: unknown): CheckedIdentifier {
    if (typeof raw !== 'object' || raw === null) {
      throw new CaError('malformed', 'each identifier must be an object with type and value');
    }
    const { type, value } = raw as { type?: unknown; value?: unknown };
    if (type !== 'dns') {
      throw new CaError(
        'unsupportedIdentifier',
        `identifier type ${JSON.stringify(type)} is not supported; only "dns" is`,
      );
    }
    if (typeof value !== 'string') {
      throw new CaError('malformed', 'identifier value must be a string');
    }

    const name = value.toLowerCase();
    const wildcard = name.startsWith('*.');
    const base = wildcard ? name.slice(2) : name;
    const problem = base.includes('*') ? 'has a wildcard that is not the whole leftmost label' : nameSyntaxProblem(base);
    if (problem) {
      throw new CaError('rejectedIdentifier', `identifier "${value.slice(0, 255)}" ${problem}`);
    }
    if (!this.allows(base)) {
      throw new CaError(
        'rejectedIdentifier',
        `policy forbids issuing for "${name}": allowed domains are ${this.allowed.join(', ')}`,
      );
    }

    return { identifier: { type: 'dns', value: name }, base, wildcard };
  }

  /** RFC 8555 §7.1.3: wildcards are validated only through dns-01. */
  challengeTypesFor(wildcard: boolean): ChallengeType[] {
    return wildcard ? ['dns-01'] : ['http-01', 'dns-01', 'tls-alpn-01'];
  }
}

const contactPattern = /^mailto:[^@\s,?]+@[a-z0-9.-]+\.[a-z]{2,}$/i;

/** RFC 8555 §7.3: mailto contacts only, at most ten. */
export function checkContacts(input: unknown): string[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) throw new CaError('malformed', 'contact must be an array of URLs');
  if (input.length > 10) {
    throw new CaError('invalidContact', `at most 10 contacts are allowed, got ${input.length}`);
  }

  return input.map((c) => {
    if (typeof c !== 'string') throw new CaError('malformed', 'each contact must be a string');
    if (!c.toLowerCase().startsWith('mailto:')) {
      throw new CaError('unsupportedContact', `contact "${c.slice(0, 100)}" is not a mailto: URL`);
    }
    if (!contactPattern.test(c)) {
      throw new CaError('invalidContact', `contact "${c.slice(0, 100)}" is not a valid email`);
    }
    return c;
  });
}
