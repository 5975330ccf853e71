/**
 * A least-recently-used map with a hard size bound, shared by the token and peer caches. A Map keeps
 * insertion order, so moving an entry to the end on every hit makes the first key the least recently
 * used one.
 */
export class LruMap<V> {
  readonly #max: number;
  readonly #entries = new Map<string, V>();

  /** `maxEntries` 0 disables remembering entirely. */
  constructor(maxEntries: number) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
      throw new RangeError('lru: maxEntries must be a non-negative integer');
    }
    this.#max = maxEntries;
  }

  /** The entry for a key, marked as most recently used. */
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Adds or replaces an entry, evicting the least recently used ones beyond the bound. */
  set(key: string, entry: V): void {
    if (this.#max === 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  /** Drops one entry. */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** The keys, least recently used first (a snapshot: deleting while iterating is safe). */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The configured bound. */
  get maxEntries(): number {
    return this.#max;
  }
}
