/**
 * A small time-to-live cache in front of the SA. Hits are answered synchronously, concurrent
 * misses for one key share a single load, failed loads are not kept, and past `maxEntries`
 * the oldest entries go first (a Map iterates in insertion order).
 */

export interface TtlCacheOptions {
  /** How long a loaded value is served; 0 loads on every request. */
  ttlMs: number;
  maxEntries: number;
  /** @default Date.now */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  loadedAt: number;
}

export class TtlCache<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #loading = new Map<string, Promise<V>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: TtlCacheOptions) {
    if (!(options.ttlMs >= 0) || !Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new Error(
        `expected ttlMs >= 0 and maxEntries >= 1, got ${options.ttlMs} and ${options.maxEntries}`,
      );
    }
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries;
    this.#now = options.now ?? Date.now;
  }

  /** The value when it was loaded less than the TTL ago; undefined otherwise. */
  fresh(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry && this.#now() - entry.loadedAt < this.#ttlMs) return entry.value;
    return undefined;
  }

  /**
   * When the value held for `key` stops being fresh, on the cache's clock (exclusive); 0 when
   * nothing is held. A caller that keeps something derived from `fresh(key)` keeps it no longer.
   */
  freshBefore(key: string): number {
    const entry = this.#entries.get(key);
    return entry ? entry.loadedAt + this.#ttlMs : 0;
  }

  /** The fresh value, or the one `load` gives (shared with concurrent callers of this key). */
  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.fresh(key);
    if (hit !== undefined) return hit;

    const pending = this.#loading.get(key);
    if (pending) return pending;

    const started = load().then(
      (value) => {
        this.#loading.delete(key);
        this.#store(key, value);
        return value;
      },
      (err: unknown) => {
        this.#loading.delete(key);
        throw err;
      },
    );
    this.#loading.set(key, started);
    return started;
  }

  get size(): number {
    return this.#entries.size;
  }

  #store(key: string, value: V): void {
    // Re-inserting moves the key to the end, so eviction takes the least recently loaded.
    this.#entries.delete(key);
    this.#entries.set(key, { value, loadedAt: this.#now() });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }
}
