import { Registry } from 'prom-client';
import t from 'tap';
import { createRequestTallies } from './tally.js';

/** Request tallies reach the registry as ocsp_responder_requests_total when it is read. */

const line = (route: string, outcome: string, n: number) =>
  `ocsp_responder_requests_total{route="${route}",outcome="${outcome}"} ${n}`;

t.test('adds what was tallied since the last read, per route and outcome', async (t) => {
  const registry = new Registry();
  const tallyOf = createRequestTallies(registry);
  const good = tallyOf('ocsp', 'good');
  t.equal(tallyOf('ocsp', 'good'), good, 'one Tally per label set');

  good.inc();
  good.inc();
  tallyOf('crl', '404').inc();
  const first = await registry.metrics();
  t.match(first, line('ocsp', 'good', 2));
  t.match(first, line('crl', '404', 1));

  good.inc();
  const second = await registry.metrics();
  t.match(second, line('ocsp', 'good', 3));
  t.match(second, line('crl', '404', 1), 'a read adds nothing twice');
});

t.test('registers nothing without a registry', async (t) => {
  const tallyOf = createRequestTallies(undefined);
  tallyOf('ocsp', 'good').inc();
  t.equal(tallyOf('ocsp', 'good').pending, 1);
});
