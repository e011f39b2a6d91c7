import { Counter, type Registry } from 'prom-client';
import { toCaError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { OcspRefreshCandidate } from '../lib/records.js';
import type { StorageAuthority } from '../sa/service.js';
import type { CrlGenerator, OcspGenerator } from './revocation-service.js';

/**
 * Keeps what relying parties fetch fresh: re-signs OCSP responses and CRLs once a fraction of
 * their lifetime has passed, signs responses the RA failed to store (a CA or SA outage during
 * issuance or revocation), and re-signs a CRL older than a revocation of its issuer. It runs
 * in the CA process, which holds the keys, and talks to the SA like any client.
 */

type RefresherSa = Pick<
  StorageAuthority,
  'getOcspRefreshCandidates' | 'storeOcspResponse' | 'getCrlRefreshCandidates' | 'storeCrl'
>;

export interface RefresherOptions {
  /** The issuers whose responses and CRLs this CA signs. */
  issuerIds: readonly string[];
  ocsp: OcspGenerator;
  crl: CrlGenerator;
  sa: RefresherSa;
  ocspLifetimeSeconds: number;
  crlLifetimeSeconds: number;
  /** Re-sign once this fraction (0 < f < 1) of the lifetime has passed. */
  refreshFraction: number;
  intervalSeconds: number;
  batchSize: number;
  log: Logger;
  /** When given, `ca_revocation_refreshes_total` by kind and outcome is kept in it. */
  metrics?: Registry;
  /** @default () => new Date() */
  now?: () => Date;
}

/** What one pass did. */
export interface RefreshFigures {
  ocspSigned: number;
  ocspFailed: number;
  crlsSigned: number;
  crlsFailed: number;
}

/** Stale responses are signed this many at a time. */
const signingConcurrency = 4;
/** A pass stops after this many pages, so a huge backlog cannot hold `stop()` for long. */
const maxPagesPerPass = 50;

/** The periodic re-signing job. `start()` runs a pass at once, then one per interval. */
export class RevocationRefresher {
  readonly #o: RefresherOptions;
  readonly #now: () => Date;
  readonly #outcomes?: Counter<'kind' | 'outcome'>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(options: RefresherOptions) {
    if (!(options.refreshFraction > 0 && options.refreshFraction < 1)) {
      throw new Error(
        `expected refreshFraction between 0 and 1, got ${options.refreshFraction}`,
      );
    }
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    if (options.metrics) {
      this.#outcomes = new Counter({
        name: 'ca_revocation_refreshes_total',
        help: 'OCSP responses and CRLs the refresher signed, by kind and outcome',
        labelNames: ['kind', 'outcome'],
        registers: [options.metrics],
      });
    }
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.refresh()
        .catch((err: unknown) => this.#o.log.warn({ err }, 'revocation refresh failed'))
        .finally(() => {
          if (this.#stopped) return;
          this.#timer = setTimeout(loop, this.#o.intervalSeconds * 1000);
          this.#timer.unref();
        });
    };
    loop();
  }

  /** Stops scheduling and waits for a pass under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One pass over OCSP responses, then CRLs. */
  async refresh(): Promise<RefreshFigures> {
    const figures: RefreshFigures = { ocspSigned: 0, ocspFailed: 0, crlsSigned: 0, crlsFailed: 0 };
    await this.#refreshOcsp(figures);
    await this.#refreshCrls(figures);

    if (Object.values(figures).some((n) => n > 0)) {
      this.#o.log.info(figures, 'revocation refresh done');
    }
    return figures;
  }

  async #refreshOcsp(figures: RefreshFigures): Promise<void> {
    const now = this.#now();
    const age = this.#o.refreshFraction * this.#o.ocspLifetimeSeconds * 1000;
    const thisUpdateBefore = new Date(now.getTime() - age).toISOString();

    for (let page = 0; page < maxPagesPerPass && !this.#stopped; page++) {
      const candidates = await this.#o.sa.getOcspRefreshCandidates({
        issuerIds: [...this.#o.issuerIds],
        thisUpdateBefore,
        expiresAfter: now.toISOString(),
        limit: this.#o.batchSize,
      });

      const failedBefore = figures.ocspFailed;
      for (let i = 0; i < candidates.length; i += signingConcurrency) {
        const slice = candidates.slice(i, i + signingConcurrency);
        await Promise.all(slice.map((c) => this.#refreshOne(c, figures)));
      }

      // A short page was the last; a page that failed whole would come back the same.
      const failedAll = figures.ocspFailed - failedBefore === candidates.length;
      if (candidates.length < this.#o.batchSize || failedAll) return;
    }
  }

  async #refreshOne(c: OcspRefreshCandidate, figures: RefreshFigures): Promise<void> {
    try {
      const signed = await this.#o.ocsp.signOcspResponse({
        serial: c.serial,
        issuerId: c.issuerId,
        status: c.status,
        ...(c.status === 'revoked' ? { revokedAt: c.revokedAt, reason: c.revokedReason } : {}),
      });
      await this.#o.sa.storeOcspResponse(signed);
      figures.ocspSigned++;
      this.#outcomes?.inc({ kind: 'ocsp', outcome: 'stored' });
    } catch (err) {
      if (isConflict(err)) {
        // Someone stored a newer response (the RA revoking, the other color): nothing to do.
        this.#outcomes?.inc({ kind: 'ocsp', outcome: 'superseded' });
        return;
      }
      figures.ocspFailed++;
      this.#outcomes?.inc({ kind: 'ocsp', outcome: 'failed' });
      this.#o.log.warn({ serial: c.serial, issuer: c.issuerId, err }, 'ocsp refresh failed');
    }
  }

  async #refreshCrls(figures: RefreshFigures): Promise<void> {
    const age = this.#o.refreshFraction * this.#o.crlLifetimeSeconds * 1000;
    const thisUpdateBefore = new Date(this.#now().getTime() - age).toISOString();
    const stale = await this.#o.sa.getCrlRefreshCandidates({
      issuerIds: [...this.#o.issuerIds],
      thisUpdateBefore,
    });

    for (const issuerId of stale) {
      try {
        const signed = await this.#o.crl.signCrl({ issuerId });
        await this.#o.sa.storeCrl(signed);
        figures.crlsSigned++;
        this.#outcomes?.inc({ kind: 'crl', outcome: 'stored' });
      } catch (err) {
        if (isConflict(err)) {
          this.#outcomes?.inc({ kind: 'crl', outcome: 'superseded' });
          continue;
        }
        figures.crlsFailed++;
        this.#outcomes?.inc({ kind: 'crl', outcome: 'failed' });
        this.#o.log.warn({ issuer: issuerId, err }, 'crl refresh failed');
      }
    }
  }
}

function isConflict(err: unknown): boolean {
  return toCaError(err).kind === 'conflict';
}
