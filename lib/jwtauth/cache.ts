/**
 * The bounded cache behind JwtValidator: validated JWT-SVIDs keyed by the SHA-256 of the token, so the
 * token itself is never a key (keys show up in heap snapshots and debug dumps far more readily).
 */
import { hash } from 'node:crypto';
import type { JwtSvid } from '../jwtsvid/index.js';

/** Default number of validated tokens a JwtValidator remembers. */
export const DEFAULT_MAX_CACHE_ENTRIES = 10_000;

/** One validated token: the parsed SVID and its exp claim in seconds, read once at insertion. */
export interface CacheEntry {
  readonly svid: JwtSvid;
  readonly expSeconds: number;
}

/** The cache key of a token: base64 of its SHA-256. Irreversible, and collisions are not a concern. */
export function tokenKey(token: string): string {
  return hash('sha256', token, 'base64');
}

/**
 * A least-recently-used map with a hard size bound. A Map keeps insertion order, so moving an entry
 * to the end on every hit makes the first key the least recently used one.
 */
export class TokenCache {
  readonly #max: number;
  readonly #entries = new Map<string, CacheEntry>();

  /** `maxEntries` 0 disables caching entirely. */
  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  /** The entry for a key, marked as most recently used. */
  get(key: string): CacheEntry | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Adds or replaces an entry, evicting the least recently used ones beyond the bound. */
  set(key: string, entry: CacheEntry): void {
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
