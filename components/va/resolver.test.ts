import t from 'tap';
import { startDnsServer } from '../../test/helpers/dns-server.js';
import { CaError } from '../lib/errors.js';
import { isHostname, ValidationResolver } from './resolver.js';

const dns = await startDnsServer({
  a: { 'www.example.org': '192.0.2.7', '*.wild.org': '192.0.2.8' },
});
t.teardown(() => dns.close());

const resolver = new ValidationResolver({
  dnsResolver: dns.address,
  timeoutMs: 1_000,
  hostOverrides: [
    { suffix: 'test', address: '127.0.0.1' },
    { suffix: 'v6.test', address: '::1' },
  ],
});
const signal = () => AbortSignal.timeout(2_000);

t.test('resolves names equal to or under an override suffix to its address', async (t) => {
  t.same(await resolver.resolveAddresses('test', signal()), ['127.0.0.1']);
  t.same(await resolver.resolveAddresses('a.b.example.test', signal()), ['127.0.0.1']);
  t.same(await resolver.resolveAddresses('WWW.Example.TEST.', signal()), ['127.0.0.1']);
  t.same(dns.queries, [], 'without asking DNS');
});

t.test('prefers the longest matching override suffix', async (t) => {
  t.same(await resolver.resolveAddresses('host.v6.test', signal()), ['::1']);
  t.same(await resolver.resolveAddresses('v6.test', signal()), ['::1']);
});

t.test('does not treat a longer label as under the suffix', async (t) => {
  t.equal(resolver.overrideFor('attest'), undefined);
  t.equal(resolver.overrideFor('test.org'), undefined);
});

t.test('resolves other names through the configured resolver', async (t) => {
  t.same(await resolver.resolveAddresses('www.example.org', signal()), ['192.0.2.7']);
  t.same(await resolver.resolveAddresses('x.wild.org', signal()), ['192.0.2.8']);
  t.ok(dns.queries.includes('A www.example.org'));
  t.ok(dns.queries.includes('AAAA www.example.org'));
});

t.test('rejects a name that does not exist with a dns error', async (t) => {
  const err = await resolver.resolveAddresses('nope.example.org', signal()).catch((e) => e);
  t.type(err, CaError);
  t.equal(err.kind, 'dns');
  t.match(err.detail, /NXDOMAIN looking up A for nope.example.org/);
});

t.test('rejects a name with only TXT records as having no addresses', async (t) => {
  dns.setTxt('txt-only.example.org', ['hello']);
  const err = await resolver.resolveAddresses('txt-only.example.org', signal()).catch((e) => e);
  t.equal(err.kind, 'dns');
  t.match(err.detail, /no A or AAAA records/);
});

t.test('joins the strings of one TXT record', async (t) => {
  const long = 'a'.repeat(255) + 'b'.repeat(10);
  dns.setTxt('long.example.org', [long]);
  t.same(await resolver.lookupTxt('long.example.org', signal()), [long]);
});

t.test('fails at once when the signal has already aborted', async (t) => {
  const controller = new AbortController();
  controller.abort();
  const err = await resolver.resolveAddresses('www.example.org', controller.signal).catch((e) => e);
  t.equal(err.kind, 'dns');
  t.match(err.detail, /timed out/);
});

const names: [string, boolean][] = [
  ['example.test', true],
  ['xn--bcher-kva.example', true],
  ['localhost', true],
  ['127.0.0.1', false],
  ['-bad.example', false],
  ['a..b', false],
  ['under_score.example', false],
  ['example.test/path', false],
  ['a'.repeat(64) + '.example', false],
  ['', false],
];
for (const [name, ok] of names) {
  const verb = ok ? 'accepts' : 'rejects';
  t.test(`${verb} ${JSON.stringify(name.slice(0, 20))} as a host name`, async (t) => {
    t.equal(isHostname(name), ok);
  });
}
