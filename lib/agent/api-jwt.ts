/**
 * JWT-SVIDs for Workload API callers: minted by the CA for an entry and a set of audiences, and
 * remembered until their renewal time (half-life by default, as for X.509-SVIDs) so that a client that
 * asks on every request costs the CA one call per token lifetime. Concurrent requests for the same
 * entry and audiences share one CA call. The cache is bounded; tokens are never logged.
 */
import { LruMap } from '../internal/lru.js';
import { parseInsecure } from '../jwtsvid/index.js';
import { tokenRenewalTime, type TokenRenewalPolicy } from './schedule.js';

/** Most cached tokens (entry × audience set); the least recently used go first. */
export const MAX_CACHED_API_JWTS = 4096;

/** Asks the CA for a JWT-SVID of an entry for the audiences; rejects with the CA's error. */
export type MintJwt = (entryId: string, audience: readonly string[]) => Promise<string>;

interface Cached {
  readonly token: string;
  readonly renewAt: number;
  readonly expiresAt: number;
}

/** The Workload API's JWT-SVID cache of one agent. */
export class ApiJwtCache {
  readonly #mint: MintJwt;
  readonly #clock: () => number;
  readonly #policy: TokenRenewalPolicy;
  readonly #cache: LruMap<Cached>;
  readonly #inFlight = new Map<string, Promise<string>>();

  constructor(mint: MintJwt, clock: () => number, policy: TokenRenewalPolicy, maxEntries = MAX_CACHED_API_JWTS) {
    this.#mint = mint;
    this.#clock = clock;
    this.#policy = policy;
    this.#cache = new LruMap(maxEntries);
  }

  /** A JWT-SVID of `entryId` for `audience` (order and repeats do not matter), cached until its renewal time. */
  get(entryId: string, audience: readonly string[]): Promise<string> {
    const audiences = [...new Set(audience)].sort();
    // JSON keeps the key unambiguous whatever the audiences contain.
    const key = JSON.stringify([entryId, audiences]);
    const now = this.#clock();
    const hit = this.#cache.get(key);
    if (hit && now < hit.renewAt && now < hit.expiresAt) return Promise.resolve(hit.token);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const p = this.#fetch(key, entryId, audiences).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  /** Forgets the tokens of entries no longer held (their identity went away). */
  retain(entryIds: ReadonlySet<string>): void {
    for (const key of this.#cache.keys()) {
      const [entryId] = JSON.parse(key) as [string];
      if (!entryIds.has(entryId)) this.#cache.delete(key);
    }
  }

  /** How many tokens are cached. */
  get size(): number {
    return this.#cache.size;
  }

  async #fetch(key: string, entryId: string, audiences: readonly string[]): Promise<string> {
    const token = await this.#mint(entryId, audiences);
    // The CA's own token: only its times are read, to know when to ask again.
    const parsed = parseInsecure(token);
    const received = this.#clock();
    const renewAt = tokenRenewalTime(parsed.issuedAt, parsed.expiry, received, this.#policy);
    this.#cache.set(key, { token, renewAt, expiresAt: parsed.expiry.getTime() });
    return token;
  }
}
