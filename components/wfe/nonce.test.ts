import { randomBytes } from 'node:crypto';
import t from 'tap';
import { CaError, ConfigError } from '../lib/errors.js';
import { NonceService } from './nonce.js';

/** Matches a CaError of one kind, and its detail when given. */
function failure(kind: string, detail?: string | RegExp) {
  return detail === undefined ? { name: 'CaError', kind } : { name: 'CaError', kind, detail };
}

const key = randomBytes(32);

function badNonceDetail(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CaError && err.kind === 'badNonce') return err.detail;
    throw err;
  }
  throw new Error('expected a badNonce error');
}

t.test('redeems a nonce it issued', async (t) => {
  const nonces = new NonceService(key);
  const nonce = nonces.issue();
  t.match(nonce, /^[A-Za-z0-9_-]{54}$/);
  t.doesNotThrow(() => nonces.redeem(nonce));
});

t.test('issues a different nonce each time', async (t) => {
  const nonces = new NonceService(key);
  t.not(nonces.issue(), nonces.issue());
});

t.test('rejects a replayed nonce', async (t) => {
  const nonces = new NonceService(key);
  const nonce = nonces.issue();
  nonces.redeem(nonce);
  t.match(badNonceDetail(() => nonces.redeem(nonce)), /already been used/);
});

t.test('accepts a nonce issued by another instance with the same key', async (t) => {
  const blue = new NonceService(Buffer.from(key));
  const green = new NonceService(Buffer.from(key));
  t.doesNotThrow(() => green.redeem(blue.issue()));
});

t.test('rejects a nonce issued with another key', async (t) => {
  const blue = new NonceService(key);
  const other = new NonceService(randomBytes(32));
  t.match(badNonceDetail(() => other.redeem(blue.issue())), /not issued by this server/);
});

t.test('rejects an expired nonce', async (t) => {
  let now = 1_700_000_000_000;
  const nonces = new NonceService(key, { lifetimeMs: 60_000, now: () => now });
  const nonce = nonces.issue();
  now += 60_000;
  t.match(badNonceDetail(() => nonces.redeem(nonce)), /expired/);
});

t.test('accepts a nonce just before it expires', async (t) => {
  let now = 1_700_000_000_000;
  const nonces = new NonceService(key, { lifetimeMs: 60_000, now: () => now });
  const nonce = nonces.issue();
  now += 59_999;
  t.doesNotThrow(() => nonces.redeem(nonce));
});

t.test('rejects a nonce from far in the future', async (t) => {
  let now = 1_700_000_000_000;
  const nonces = new NonceService(key, { now: () => now });
  const nonce = nonces.issue();
  now -= 5 * 60_000;
  t.match(badNonceDetail(() => nonces.redeem(nonce)), /future/);
});

t.test('rejects garbage', async (t) => {
  const nonces = new NonceService(key);
  for (const garbage of ['', 'abc', 'x'.repeat(54), '!'.repeat(54), nonces.issue() + 'A']) {
    t.throws(() => nonces.redeem(garbage), failure('badNonce'), JSON.stringify(garbage));
  }
  t.throws(() => nonces.redeem(42 as unknown as string), failure('badNonce'));
});

t.test('rejects a nonce whose tag was altered', async (t) => {
  const nonces = new NonceService(key);
  const raw = Buffer.from(nonces.issue(), 'base64url');
  raw[raw.length - 1] ^= 1;
  t.match(badNonceDetail(() => nonces.redeem(raw.toString('base64url'))), /not issued/);
});

t.test('rejects another spelling of a redeemed nonce', async (t) => {
  const nonces = new NonceService(key);
  const nonce = nonces.issue();
  nonces.redeem(nonce);

  // The last of 54 characters holds 2 data bits and 4 spare ones.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(nonce.at(-1) ?? '');
  const respelled = nonce.slice(0, -1) + alphabet[last ^ 1];
  t.equal(Buffer.from(respelled, 'base64url').toString('base64url'), nonce);
  t.throws(() => nonces.redeem(respelled), failure('badNonce'));
});

t.test('prunes redeemed nonces once they expire', async (t) => {
  let now = 1_700_000_000_000;
  const nonces = new NonceService(key, { lifetimeMs: 60_000, now: () => now });
  for (let i = 0; i < 100; i += 1) nonces.redeem(nonces.issue());
  t.equal(nonces.redeemedCount, 100);

  now += 60_000 + 60_000 / 16;
  nonces.redeem(nonces.issue());
  t.equal(nonces.redeemedCount, 1);
});

t.test('keeps memory bounded without allowing a replay', async (t) => {
  let now = 1_700_000_000_000;
  const nonces = new NonceService(key, { lifetimeMs: 60_000, maxRedeemed: 10, now: () => now });
  const early = nonces.issue();
  nonces.redeem(early);
  now += 10_000;
  const late = nonces.issue();
  for (let i = 0; i < 20; i += 1) {
    now += 1;
    nonces.redeem(nonces.issue());
  }

  t.ok(nonces.redeemedCount <= 10, `${nonces.redeemedCount} nonces held`);
  t.throws(() => nonces.redeem(early), failure('badNonce'));
  t.throws(() => nonces.redeem(late), failure('badNonce'), 'counts as expired early');
  now += 1;
  t.doesNotThrow(() => nonces.redeem(nonces.issue()), 'a fresh nonce still works');
});

t.test('rejects a short key', async (t) => {
  t.throws(() => new NonceService(randomBytes(16)), ConfigError);
  t.throws(() => new NonceService(randomBytes(16)), /at least 32 bytes, got 16 bytes/);
});

t.test('rejects a non-positive lifetime', async (t) => {
  t.throws(() => new NonceService(key, { lifetimeMs: 0 }), /lifetimeMs .* got 0/);
});
