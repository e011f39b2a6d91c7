import { Counter, type Registry } from 'prom-client';

/**
 * The responder's request counter, `ocsp_responder_requests_total{route, outcome}`. A
 * prom-client increment hashes its labels every time, which shows in the profile of a
 * responder answering tens of thousands of requests a second; here each label set is a plain
 * number, added to the prom-client counter when the registry is read. Scrapes see the same
 * totals.
 */

/** Requests of one route and outcome since the registry was last read. */
export class Tally {
  pending = 0;

  inc(): void {
    this.pending++;
  }
}

/** Gives the Tally of a route and outcome, the same object every time. */
export type TallyOf = (route: string, outcome: string) => Tally;

/** Tallies whose counts reach `registry`; without one they are kept and never read. */
export function createRequestTallies(registry: Registry | undefined): TallyOf {
  const tallies = new Map<string, { tally: Tally; labels: { route: string; outcome: string } }>();

  if (registry) {
    const counter: Counter<'route' | 'outcome'> = new Counter({
      name: 'ocsp_responder_requests_total',
      help: 'HTTP requests answered, by route and outcome',
      labelNames: ['route', 'outcome'],
      registers: [registry],
      collect() {
        for (const { tally, labels } of tallies.values()) {
          if (tally.pending === 0) continue;
          counter.inc(labels, tally.pending);
          tally.pending = 0;
        }
      },
    });
  }

  return (route, outcome) => {
    const key = `${route} ${outcome}`;
    let held = tallies.get(key);
    if (!held) {
      held = { tally: new Tally(), labels: { route, outcome } };
      tallies.set(key, held);
    }
    return held.tally;
  };
}
