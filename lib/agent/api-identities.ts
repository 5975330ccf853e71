/**
 * The identities the agent serves over the Workload API: one per registration entry that has
 * selectors, minted ahead of use by the agent's loop, held in memory only (their keys never reach the
 * disk), and rotated on the same schedule as file workloads. The Workload API server reads them by
 * the caller's selectors and listens for changes; one change event fans out to every open stream.
 *
 * This class keeps the state and answers questions about it; it never calls the CA itself. The agent's
 * loop asks which entries are due, mints them in its CSR batches and hands back the results, so an
 * entry served over the API costs the CA exactly what a file workload costs.
 */
import { entryMatches } from '../ca-api/index.js';
import type { KeyType } from '../keys/index.js';
import type { SpiffeId } from '../spiffeid/index.js';
import type { X509Svid } from '../x509svid/index.js';

/** A registration entry served over the Workload API (an entry with selectors), as the agent holds it. */
export interface ApiEntry {
  readonly id: string;
  readonly spiffeId: SpiffeId;
  /** Canonical selectors (validated, sorted, unique); a caller matches when it has all of them. */
  readonly selectors: readonly string[];
  /** Creation time in Unix seconds: the order in which a caller's SVIDs are listed (oldest first). */
  readonly createdAt: number;
}

/** An entry and its current SVID. */
export interface ApiSvid {
  readonly entry: ApiEntry;
  readonly svid: X509Svid;
}

/** How one identity's rotation stands, as `svidkit-agent status` shows it (file workloads too). */
export interface RotationStatus {
  readonly serial?: string;
  readonly expiresAt?: string;
  readonly nextRotation?: string;
  readonly lastError?: string;
  readonly rotations: number;
  readonly failures: number;
}

/** The rotation status of an identity held with its renewal time and counters. */
export function rotationStatus(h: {
  readonly svid?: X509Svid | undefined;
  readonly renewAt: number;
  readonly lastError?: string | undefined;
  readonly rotations: number;
  readonly failures: number;
}): RotationStatus {
  return {
    serial: h.svid?.leaf.serialHex,
    expiresAt: h.svid?.expiresAt.toISOString(),
    nextRotation: h.svid ? new Date(h.renewAt).toISOString() : undefined,
    lastError: h.lastError,
    rotations: h.rotations,
    failures: h.failures,
  };
}

/** What `svidkit-agent status` shows for one Workload API entry. */
export interface ApiEntryStatus extends RotationStatus {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly selectors: readonly string[];
}

/** Most Workload API entries one agent holds; entries beyond it are refused (logged by the agent). */
export const MAX_API_ENTRIES = 10_000;
/** Key type of the SVIDs minted for Workload API entries. */
export const API_KEY_TYPE: KeyType = 'ec-p256';

interface Held {
  entry: ApiEntry;
  svid?: X509Svid;
  renewAt: number;
  rotations: number;
  failures: number;
  lastError?: string;
}

function sameEntry(a: ApiEntry, b: ApiEntry): boolean {
  return (
    a.spiffeId.equals(b.spiffeId) &&
    a.selectors.length === b.selectors.length &&
    a.selectors.every((s, i) => s === b.selectors[i])
  );
}

/** What the Workload API server may do with the identities: read them and listen, never change them. */
export type ApiIdentitiesView = Pick<
  ApiIdentities,
  'entriesFor' | 'svidsFor' | 'settled' | 'subscribe' | 'version' | 'status' | 'size'
>;

/** The Workload API entries of one agent and their in-memory SVIDs. */
export class ApiIdentities {
  readonly #held = new Map<string, Held>();
  readonly #listeners = new Set<() => void>();
  #version = 0;

  /**
   * Replaces the set of entries with what the CA listed. New entries are due at once; an entry whose ID
   * or selectors changed is minted again; removed ones drop their SVID. Returns how many were refused
   * over MAX_API_ENTRIES (the oldest are kept).
   */
  setEntries(entries: readonly ApiEntry[]): number {
    const sorted = [...entries].sort(byAge);
    const kept = sorted.slice(0, MAX_API_ENTRIES);
    const ids = new Set(kept.map((e) => e.id));
    let changed = false;
    for (const id of [...this.#held.keys()]) {
      if (ids.has(id)) continue;
      this.#held.delete(id);
      changed = true;
    }
    for (const entry of kept) {
      const cur = this.#held.get(entry.id);
      if (cur && sameEntry(cur.entry, entry)) {
        cur.entry = entry;
        continue;
      }
      this.#held.set(entry.id, { entry, renewAt: 0, rotations: 0, failures: 0 });
      changed = changed || cur?.svid !== undefined;
    }
    if (changed) this.#changed();
    return sorted.length - kept.length;
  }

  /** Entries that need an SVID now: none yet, or past their renewal time. */
  due(now: number): ApiEntry[] {
    return [...this.#held.values()].filter((h) => h.renewAt <= now).map((h) => h.entry);
  }

  /** The earliest renewal time of any entry (Infinity when there is none). */
  nextRenewal(): number {
    let next = Infinity;
    for (const h of this.#held.values()) next = Math.min(next, h.renewAt);
    return next;
  }

  /** Takes a freshly minted SVID for an entry, to be renewed at `renewAt`; ignored when the entry went away. */
  adopt(entryId: string, svid: X509Svid, renewAt: number): void {
    const h = this.#held.get(entryId);
    if (!h) return;
    h.svid = svid;
    h.renewAt = renewAt;
    h.rotations++;
    h.lastError = undefined;
    this.#changed();
  }

  /** Records a failed mint; the entry is tried again at `retryAt` and keeps the SVID it had. */
  failed(entryId: string, reason: string, retryAt: number): void {
    const h = this.#held.get(entryId);
    if (!h) return;
    h.failures++;
    h.lastError = reason;
    h.renewAt = retryAt;
    // Listeners waiting for a first SVID learn that this entry will not have one for now.
    if (!h.svid) this.#changed();
  }

  /** Drops SVIDs that have expired (the agent could not renew them in time): a caller must not get them. */
  dropExpired(now: number): void {
    let changed = false;
    for (const h of this.#held.values()) {
      if (h.svid && h.svid.expiresAt.getTime() <= now) {
        h.svid = undefined;
        changed = true;
      }
    }
    if (changed) this.#changed();
  }

  /** The entries a caller with `selectors` matches, oldest first, with or without an SVID yet. */
  entriesFor(selectors: ReadonlySet<string>): ApiEntry[] {
    return [...this.#held.values()]
      .filter((h) => entryMatches(h.entry.selectors, selectors))
      .map((h) => h.entry)
      .sort(byAge);
  }

  /** The SVIDs a caller with `selectors` gets, oldest entry first (the first is the default SVID). */
  svidsFor(selectors: ReadonlySet<string>): ApiSvid[] {
    const out: ApiSvid[] = [];
    for (const entry of this.entriesFor(selectors)) {
      const svid = this.#held.get(entry.id)!.svid;
      if (svid) out.push({ entry, svid });
    }
    return out;
  }

  /** True when every entry in `entryIds` has an SVID or has failed at least once since it was listed. */
  settled(entryIds: readonly string[]): boolean {
    return entryIds.every((id) => {
      const h = this.#held.get(id);
      return h === undefined || h.svid !== undefined || h.failures > 0;
    });
  }

  /** Counts every change (an SVID minted, rotated, dropped or its entry removed); streams compare it. */
  get version(): number {
    return this.#version;
  }

  /** Calls `listener` after every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Signals a change that is not an SVID's (the trust bundle): every stream sends its state again. */
  notify(): void {
    this.#changed();
  }

  /** Per-entry status for `svidkit-agent status`. */
  status(): ApiEntryStatus[] {
    return [...this.#held.values()]
      .sort((a, b) => byAge(a.entry, b.entry))
      .map((h) => ({
        entryId: h.entry.id,
        spiffeId: h.entry.spiffeId.toString(),
        selectors: h.entry.selectors,
        ...rotationStatus(h),
      }));
  }

  /** How many entries are held. */
  get size(): number {
    return this.#held.size;
  }

  #changed(): void {
    this.#version++;
    for (const l of [...this.#listeners]) {
      try {
        l();
      } catch {
        // One listener's failure must not keep the change from the others; each stream handles its own.
      }
    }
  }
}

function byAge(a: ApiEntry, b: ApiEntry): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
