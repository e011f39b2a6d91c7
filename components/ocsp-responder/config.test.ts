import t from 'tap';
import { parseConfig } from '../lib/config.js';
import { ocspResponderConfig } from './config.js';

/** The responder's config: safe defaults for what is left out, and errors naming the field. */

const minimal = {
  listen: '127.0.0.1:4002',
  adminListen: '127.0.0.1:8016',
  tls: { certFile: 'r.pem', keyFile: 'r.key', caFile: 'root.pem' },
  sa: { address: '127.0.0.1:9095', serverName: 'sa.bluegreen-ca.internal' },
  issuers: [{ id: '991a2113', certFile: 'issuer.pem' }],
};

t.test('fills in the cache, max-age and size defaults', async (t) => {
  t.match(parseConfig(ocspResponderConfig, minimal, 'test'), {
    cacheSeconds: 1,
    maxAgeSeconds: 60,
    maxRequestBytes: 8192,
    cacheEntries: 100_000,
    log: { level: 'info' },
  });
});

t.test('rejects a duplicate issuer id, naming its path', async (t) => {
  const issuers = [minimal.issuers[0], minimal.issuers[0]];
  t.throws(() => parseConfig(ocspResponderConfig, { ...minimal, issuers }, 'test'), {
    name: 'ConfigError',
    message: /issuers\.1\.id: duplicate issuer id 991a2113/,
  });
});

t.test('rejects a cache longer than five minutes and an unknown field', async (t) => {
  t.throws(() => parseConfig(ocspResponderConfig, { ...minimal, cacheSeconds: 600 }, 'test'), {
    message: /cacheSeconds/,
  });
  t.throws(() => parseConfig(ocspResponderConfig, { ...minimal, cacheTtl: 5 }, 'test'), {
    message: /cacheTtl/,
  });
});
