import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CaError, ConfigError } from '../lib/errors.js';

/**
 * Anti-replay nonces (RFC 8555 §6.5). A nonce carries its own issue time and an HMAC tag, so
 * it needs no storage until it is redeemed, and every WFE holding the shared nonce key (both
 * colors during a flip) accepts the others' nonces.
 *
 * Layout before base64url: issuedAt (ms, uint64 big-endian) | random | tag.
 */

const timestampBytes = 8;

// RFC 8555 §6.5.1 asks for at least 128 bits of entropy per nonce.
const randomPartBytes = 16;

const tagBytes = 16;
const signedBytes = timestampBytes + randomPartBytes;
const nonceBytes = signedBytes + tagBytes;
const nonceChars = Math.ceil((nonceBytes * 8) / 6);
const base64urlPattern = /^[A-Za-z0-9_-]+$/;

// A nonce that the other color minted with a clock running ahead of ours is still fine;
// anything further in the future than this was not minted by an honest peer.
const maxClockSkewMs = 60_000;

// Redeemed nonces are grouped by expiry time in this many buckets per lifetime, so pruning
// drops whole buckets instead of scanning every entry.
const bucketsPerLifetime = 16;

/** The smallest nonce key accepted: as long as the SHA-256 output (RFC 2104 §3). */
export const minNonceKeyBytes = 32;

export interface NonceServiceOptions {
  /**
   * How long a nonce stays redeemable after it is issued.
   * @default 600000 (10 minutes)
   */
  readonly lifetimeMs?: number;
  /**
   * The most redeemed nonces kept in memory. Past it, the oldest ones are dropped early and
   * every nonce that expires no later than them counts as expired, so memory stays bounded
   * without ever allowing a replay.
   * @default 250000
   */
  readonly maxRedeemed?: number;
  /**
   * The clock, in milliseconds since the epoch; tests inject one.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** Issues and redeems single-use nonces authenticated with a key shared by both colors. */
export class NonceService {
  readonly lifetimeMs: number;
  readonly maxRedeemed: number;

  private readonly key: Buffer;
  private readonly now: () => number;
  private readonly bucketMs: number;

  // Limitation: each color keeps its own redeemed set, so during a flip one nonce can be
  // redeemed once at blue and once at green. See docs/limitations.md#nonces-across-colors.
  private readonly redeemed = new Map<number, RedeemedBucket>();
  private redeemedTotal = 0;

  // When maxRedeemed is reached, the oldest bucket is dropped before it expires and every
  // nonce expiring no later than its newest entry is refused, so none can be replayed.
  private refuseExpiringBy = Number.NEGATIVE_INFINITY;

  constructor(key: Buffer, options: NonceServiceOptions = {}) {
    if (!Buffer.isBuffer(key) || key.length < minNonceKeyBytes) {
      const got = Buffer.isBuffer(key) ? `${key.length} bytes` : typeof key;
      throw new ConfigError(`nonce key must be at least ${minNonceKeyBytes} bytes, got ${got}`);
    }

    const lifetimeMs = options.lifetimeMs ?? 10 * 60 * 1000;
    if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs <= 0) {
      throw new ConfigError(`expected lifetimeMs to be a positive integer, got ${lifetimeMs}`);
    }

    const maxRedeemed = options.maxRedeemed ?? 250_000;
    if (!Number.isSafeInteger(maxRedeemed) || maxRedeemed <= 0) {
      throw new ConfigError(`expected maxRedeemed to be a positive integer, got ${maxRedeemed}`);
    }

    this.key = Buffer.from(key);
    this.lifetimeMs = lifetimeMs;
    this.maxRedeemed = maxRedeemed;
    this.now = options.now ?? Date.now;
    this.bucketMs = Math.max(1, Math.ceil(lifetimeMs / bucketsPerLifetime));
  }

  /** How many redeemed nonces are held in memory right now. */
  get redeemedCount(): number {
    return this.redeemedTotal;
  }

  /** Mints a fresh nonce for a `Replay-Nonce` header (RFC 8555 §6.5.1). */
  issue(): string {
    const nonce = Buffer.alloc(nonceBytes);
    nonce.writeBigUInt64BE(BigInt(this.now()), 0);
    randomBytes(randomPartBytes).copy(nonce, timestampBytes);
    this.tag(nonce.subarray(0, signedBytes)).copy(nonce, signedBytes);
    return nonce.toString('base64url');
  }

  /**
   * Accepts a nonce once (RFC 8555 §6.5.2). Throws `badNonce` when the nonce is malformed,
   * was not minted with this key, has expired, or was redeemed here before.
   */
  redeem(nonce: string): void {
    if (typeof nonce !== 'string' || nonce.length !== nonceChars || !base64urlPattern.test(nonce)) {
      throw new CaError('badNonce', `nonce must be ${nonceChars} base64url characters`);
    }

    // The last character carries spare bits; only the canonical spelling is accepted, or one
    // nonce could be replayed under several spellings.
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== nonceBytes || raw.toString('base64url') !== nonce) {
      throw new CaError('badNonce', 'nonce is not canonical base64url');
    }

    const expected = this.tag(raw.subarray(0, signedBytes));
    if (!timingSafeEqual(expected, raw.subarray(signedBytes))) {
      throw new CaError('badNonce', 'nonce was not issued by this server');
    }

    const now = this.now();
    const issuedAt = Number(raw.readBigUInt64BE(0));
    const expiresAt = issuedAt + this.lifetimeMs;
    if (now >= expiresAt) {
      throw new CaError('badNonce', 'nonce has expired');
    }
    if (issuedAt > now + maxClockSkewMs) {
      throw new CaError('badNonce', 'nonce was issued in the future');
    }

    this.prune(now);

    const index = Math.floor(expiresAt / this.bucketMs);
    if (this.redeemed.get(index)?.nonces.has(nonce)) {
      throw new CaError('badNonce', 'nonce has already been used');
    }

    while (this.redeemedTotal >= this.maxRedeemed) {
      this.evictOldest();
    }
    if (expiresAt <= this.refuseExpiringBy) {
      throw new CaError('badNonce', 'nonce has expired');
    }

    let bucket = this.redeemed.get(index);
    if (bucket === undefined) {
      bucket = { nonces: new Set(), latestExpiresAt: expiresAt };
      this.redeemed.set(index, bucket);
    }
    bucket.nonces.add(nonce);
    bucket.latestExpiresAt = Math.max(bucket.latestExpiresAt, expiresAt);
    this.redeemedTotal += 1;
  }

  private tag(signed: Buffer): Buffer {
    return createHmac('sha256', this.key).update(signed).digest().subarray(0, tagBytes);
  }

  // A bucket whose end has passed holds only expired nonces; those are refused by their
  // timestamp alone, so forgetting them cannot let one be replayed.
  private prune(now: number): void {
    for (const [index, bucket] of this.redeemed) {
      if ((index + 1) * this.bucketMs <= now) {
        this.redeemed.delete(index);
        this.redeemedTotal -= bucket.nonces.size;
      }
    }
  }

  private evictOldest(): void {
    const oldest = Math.min(...this.redeemed.keys());
    const bucket = this.redeemed.get(oldest);
    if (bucket === undefined) return;

    this.redeemed.delete(oldest);
    this.redeemedTotal -= bucket.nonces.size;
    this.refuseExpiringBy = Math.max(this.refuseExpiringBy, bucket.latestExpiresAt);
  }
}

interface RedeemedBucket {
  readonly nonces: Set<string>;
  latestExpiresAt: number;
}
