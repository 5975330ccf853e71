/**
 * The bounded cache behind JwtValidator: validated JWT-SVIDs keyed by the SHA-256 of the token, so the
 * token itself is never a key (keys show up in heap snapshots and debug dumps far more readily).
 */
import { hash } from 'node:crypto';
import { LruMap } from '../internal/lru.js';
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

/** The bounded least-recently-used map of validated tokens (see lib/internal/lru.ts). */
export class TokenCache extends LruMap<CacheEntry> {}
