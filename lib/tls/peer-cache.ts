/**
 * Per-source memory shared by the TLS and gRPC helpers: peers whose presented certificates already
 * passed the SPIFFE verification, and values (such as TLS secure contexts) built from the source's
 * current SVID and bundles. Everything is forgotten synchronously whenever the source reports an
 * update, because a bundle change may revoke trust and a rotation replaces the SVID.
 *
 * A remembered peer is keyed by the SHA-256 of its leaf certificate's exact DER bytes: a leaf that
 * verified against the source's bundles verifies the same way whichever intermediates come with it
 * later (its signature and its issuer were checked up to a root). An entry holds only while the instant
 * lies inside the validity window of every certificate of its verified path, so an expired (or, after a
 * clock jump, not yet valid) entry is verified again, and authorizers get the path that was verified.
 * Only successes are remembered; the authorizer is never cached: callers run it on every use.
 */
import { hash } from 'node:crypto';
import type { X509Source } from '../source/types.js';
import type { SpiffeId } from '../spiffeid/index.js';
import type { Certificate } from '../x509/certificate.js';
import { LruMap } from '../internal/lru.js';

/** Default bound of each peer cache. */
export const DEFAULT_MAX_PEER_ENTRIES = 1000;

/** A verified peer as remembered: its ID, the chain handed to authorizers, and when the entry holds. */
export interface CachedPeer {
  readonly id: SpiffeId;
  /** Frozen: the same array is handed to every authorizer call. */
  readonly chain: readonly Certificate[];
  /** Latest notBefore of the verified path, in ms since the epoch. */
  readonly validFrom: number;
  /** Earliest notAfter of the verified path, in ms since the epoch. */
  readonly validUntil: number;
}

/**
 * The cache key of certificates: base64 SHA-256 over every certificate's DER, each preceded by its
 * length, so that two different lists can never share a key.
 */
export function chainKey(ders: readonly Uint8Array[]): string {
  let size = 0;
  for (const der of ders) size += 4 + der.length;
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (const der of ders) {
    at = buf.writeUInt32BE(der.length, at);
    buf.set(der, at);
    at += der.length;
  }
  return hash('sha256', buf, 'base64');
}

/** What a verification hands the cache: the ID, the chain authorizers see, the path that was checked. */
export interface PeerVerification {
  readonly id: SpiffeId;
  readonly chain: readonly Certificate[];
  /** The certificates the verification relied on; their validity windows bound the entry's. */
  readonly path: readonly Certificate[];
}

/** A verification as a (frozen) entry, valid inside every window of its path. */
function peerEntry({ id, chain, path }: PeerVerification): CachedPeer {
  let validFrom = -Infinity;
  let validUntil = Infinity;
  for (const c of path) {
    validFrom = Math.max(validFrom, c.notBefore.getTime());
    validUntil = Math.min(validUntil, c.notAfter.getTime());
  }
  return Object.freeze({ id, chain: Object.freeze([...chain]), validFrom, validUntil });
}

/** A least-recently-used map of verified peers with a hard size bound. */
export class PeerCache {
  readonly #entries: LruMap<CachedPeer>;

  constructor(maxEntries = DEFAULT_MAX_PEER_ENTRIES) {
    this.#entries = new LruMap(maxEntries);
  }

  /** The entry for `key` when it holds at `now` (ms), marked as most recently used; stale entries are dropped. */
  get(key: string, now: number = Date.now()): CachedPeer | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || (now >= entry.validFrom && now <= entry.validUntil)) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  /**
   * Remembers a verified peer. `path` gives the validity window (the certificates the verification
   * checked); `chain` is what authorizers will see. Evicts the least recently used entries beyond the bound.
   */
  set(key: string, id: SpiffeId, chain: readonly Certificate[], path: readonly Certificate[]): CachedPeer {
    const entry = peerEntry({ id, chain, path });
    if (path.length > 0) this.#entries.set(key, entry);
    return entry;
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }
}

/** Everything remembered for one source; emptied on every update of the source. */
export class SourceCaches {
  readonly #peers = new Map<string, PeerCache>();
  readonly #values = new Map<string, unknown>();
  #generation = 0;

  /** Bumped on every update: a value built before an update is never stored after it. */
  get generation(): number {
    return this.#generation;
  }

  /** The peer cache of one verifier kind (e.g. 'tls', 'grpc-server'): kinds verify differently, so never share entries. */
  peers(kind: string): PeerCache {
    let cache = this.#peers.get(kind);
    if (cache === undefined) {
      cache = new PeerCache();
      this.#peers.set(kind, cache);
    }
    return cache;
  }

  /** The value for `key` built from the source's current contents; `build` runs once per source version. */
  memo<T>(key: string, build: () => T): T {
    if (this.#values.has(key)) return this.#values.get(key) as T;
    const generation = this.#generation;
    const value = build(); // a throw (no SVID, no roots) is not remembered
    if (generation === this.#generation) this.#values.set(key, value);
    return value;
  }

  /**
   * The peer remembered under `key` by verifier `kind` (a hit that `usable` refuses is verified again),
   * else the result of `verify()`, remembered unless the source updated while it ran. Only successes
   * are remembered: what `verify` throws passes through.
   */
  verified(
    kind: string,
    key: string,
    verify: () => PeerVerification,
    usable?: (hit: CachedPeer) => boolean,
  ): CachedPeer {
    const cache = this.peers(kind);
    const hit = cache.get(key);
    if (hit !== undefined && (usable === undefined || usable(hit))) return hit;
    const generation = this.#generation;
    const result = verify();
    return generation === this.#generation ? cache.set(key, result.id, result.chain, result.path) : peerEntry(result);
  }

  /** Forgets everything. */
  clear(): void {
    this.#generation++;
    for (const cache of this.#peers.values()) cache.clear();
    this.#values.clear();
  }
}

const bySource = new WeakMap<object, SourceCaches>();

/**
 * A peer verified through the caches of `source` (see SourceCaches.verified), or simply verified when
 * the source cannot report updates and nothing may be remembered. `key` is computed only when needed.
 */
export function verifyPeerOnce(
  source: X509Source,
  kind: string,
  key: () => string,
  verify: () => PeerVerification,
  usable?: (hit: CachedPeer) => boolean,
): CachedPeer {
  const caches = cachesOf(source);
  return caches === undefined ? peerEntry(verify()) : caches.verified(kind, key(), verify, usable);
}

/**
 * The caches of a source, created (and subscribed to the source's updates) on first use. Undefined for
 * a source that cannot report updates: nothing is remembered for it.
 */
export function cachesOf(source: X509Source): SourceCaches | undefined {
  const caches = bySource.get(source);
  if (caches !== undefined) return caches;
  if (typeof source?.onUpdate !== 'function') return undefined;
  const created = new SourceCaches();
  try {
    source.onUpdate(() => created.clear());
  } catch {
    return undefined; // no notifications, no memory
  }
  bySource.set(source, created);
  return created;
}
