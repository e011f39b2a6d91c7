import { X509Certificate, type KeyObject } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { normalizeSerial } from '../lib/cert-info.js';
import { CaError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import {
  decodeBase64,
  encodeSct,
  isPrecertificate,
  logIdOf,
  sctFromResponse,
  spkiOf,
  verifySct,
  type SignedCertificateTimestamp,
} from '../lib/sct.js';
import type {
  Publisher,
  SubmitPrecertificateRequest,
  SubmitPrecertificateResponse,
} from './service.js';

/**
 * Submits a precertificate to every configured CT log at once (RFC 6962 §4.1 add-pre-chain),
 * each under its own timeout, and keeps only SCTs that verify against that log's key. Fewer
 * than the minimum fails the issuance: no SCTs, no certificate.
 */

/** A CT log as the publisher reaches it. */
export interface CtLogTarget {
  readonly name: string;
  /** Base URL, without a trailing slash. */
  readonly url: string;
  readonly publicKey: KeyObject;
}

/** The logs to submit to and how strict to be about their answers. */
export interface PublisherOptions {
  logs: readonly CtLogTarget[];
  timeoutMs: number;
  minimumScts: number;
  log: Logger;
  metrics?: Registry;
}

/** A log's answer is one small JSON object; anything longer is not an SCT. */
const maxResponseBytes = 64 * 1024;

/** The publisher: parallel submissions, verified SCTs, a minimum that fails closed. */
export class PublisherImpl implements Publisher {
  readonly #logs: readonly (CtLogTarget & { logId: Buffer })[];
  readonly #timeoutMs: number;
  readonly #minimum: number;
  readonly #log: Logger;
  readonly #submissions?: Counter<'log' | 'outcome'>;

  constructor(o: PublisherOptions) {
    if (o.logs.length === 0) throw new Error('expected at least one CT log');
    if (!Number.isInteger(o.minimumScts) || o.minimumScts < 1 || o.minimumScts > o.logs.length) {
      throw new Error(`expected minimumScts from 1 to ${o.logs.length}, got ${o.minimumScts}`);
    }
    this.#logs = o.logs.map((l) => ({ ...l, logId: logIdOf(l.publicKey) }));
    this.#timeoutMs = o.timeoutMs;
    this.#minimum = o.minimumScts;
    this.#log = o.log;
    if (o.metrics) {
      this.#submissions = new Counter({
        name: 'publisher_submissions_total',
        help: 'Precertificate submissions, by CT log and outcome',
        labelNames: ['log', 'outcome'],
        registers: [o.metrics],
      });
    }
  }

  async submitPrecertificate(
    req: SubmitPrecertificateRequest,
  ): Promise<SubmitPrecertificateResponse> {
    const precertificate = decodeBase64(req?.precertificate, 'precertificate');
    const issuer = decodeBase64(req?.issuer, 'issuer');
    if (!isPrecertificate(precertificate)) {
      throw new CaError('malformed', 'precertificate carries no critical poison extension');
    }
    const issuerSpki = spkiOf(issuer);
    let serial: string;
    try {
      serial = normalizeSerial(new X509Certificate(precertificate).serialNumber);
    } catch (err) {
      throw new CaError('malformed', 'precertificate is not a DER X.509 certificate', { cause: err });
    }

    const body = JSON.stringify({
      chain: [precertificate.toString('base64'), issuer.toString('base64')],
    });
    const outcomes = await Promise.allSettled(
      this.#logs.map((target) => this.#submit(target, body, precertificate, issuerSpki)),
    );

    const scts: string[] = [];
    const failures: string[] = [];
    outcomes.forEach((outcome, i) => {
      const { name } = this.#logs[i];
      if (outcome.status === 'fulfilled') {
        scts.push(outcome.value.toString('base64'));
        this.#submissions?.inc({ log: name, outcome: 'ok' });
        return;
      }

      const reason = outcome.reason instanceof Error ? outcome.reason.message : 'failed';
      failures.push(`${name}: ${reason}`);
      this.#submissions?.inc({ log: name, outcome: 'failed' });
      this.#log.warn({ serial, ctLog: name, reason }, 'ct log submission failed');
    });

    if (scts.length < this.#minimum) {
      throw new CaError(
        'unavailable',
        `only ${scts.length} of ${this.#logs.length} CT logs returned an SCT; certificate not ` +
          `issued (${this.#minimum} required; ${failures.join('; ')})`,
      );
    }
    this.#log.info({ serial, scts: scts.length, logs: this.#logs.length }, 'precertificate logged');
    return { scts };
  }

  /** One log's SCT, TLS-encoded, or a rejection whose message says what went wrong. */
  async #submit(
    target: CtLogTarget & { logId: Buffer },
    body: string,
    precertificateDer: Buffer,
    issuerSpki: Buffer,
  ): Promise<Buffer> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let text: string;
    try {
      const res = await fetch(`${target.url}/ct/v1/add-pre-chain`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal,
      });
      text = await readLimited(res, maxResponseBytes);
      if (!res.ok) throw new Error(`answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    } catch (err) {
      if (signal.aborted) throw new Error(`no answer within ${this.#timeoutMs} ms`);
      throw new Error(describeFetchError(err));
    }

    let sct: SignedCertificateTimestamp;
    try {
      sct = sctFromResponse(JSON.parse(text));
    } catch (err) {
      throw new Error(`answered with something that is not an SCT: ${(err as Error).message}`);
    }
    if (!sct.logId.equals(target.logId)) {
      throw new Error(`answered with log id ${sct.logId.toString('base64')}, not its own`);
    }
    const valid = verifySct(sct, {
      precertificateDer,
      issuerSpki,
      logPublicKey: target.publicKey,
    });
    if (!valid) throw new Error('returned an SCT whose signature does not verify');
    return encodeSct(sct);
  }
}

/** The body as text, refusing to read past `maxBytes`. */
async function readLimited(res: Response, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = res.body?.getReader();
  for (let read = await reader?.read(); read && !read.done; read = await reader?.read()) {
    length += read.value.length;
    if (length > maxBytes) {
      await reader?.cancel();
      throw new Error(`answered with more than ${maxBytes} bytes`);
    }
    chunks.push(read.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fetch() says "fetch failed"; the reason is in its cause, e.g. ECONNREFUSED. */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `cannot connect (${cause.code})`;
  return (err as Error).message ?? String(err);
}
