/**
 * The rotation policy of the CA keys as pure functions: given the keys, their lifetimes, the
 * configured limits and the clock's now, which keys to drop, which kinds need a prepared key and
 * which prepared key to activate. No store, no disk, no clock: CaKeyManager feeds them and carries
 * the decisions out, so the schedule is tested as a table of instants.
 *
 * With the lifetime L of the active key (start to end), the next key is prepared at start + L/2 and
 * activated at start + 5L/6 (never after the end). An X.509-SVID lives at most L/6, so what a key
 * signed is valid no later than its own end. An old X.509 CA is dropped after its end; an old JWT
 * key once the longest JWT-SVID it can have signed has expired (when it stopped signing + the
 * longest JWT-SVID lifetime). Times are ms since the epoch; the comparisons at each boundary are the
 * decisions: `now >= halfLife` prepares, `now >= activationPoint` activates, `now > end` drops.
 */
import type { CaKeyKind, CaKeyState } from '../store/types.js';

/** Key kinds in the order every pass handles them. */
export const KEY_KINDS: readonly CaKeyKind[] = ['x509', 'jwt'];

/** What the policy needs to know of a key. */
export interface PolicyKey {
  readonly id: string;
  readonly kind: CaKeyKind;
  readonly state: CaKeyState;
  readonly tainted: boolean;
  /** Start and end of the key's lifetime, ms. */
  readonly start: number;
  readonly end: number;
  /** x509: a self-signed root (embedded mode) rather than an upstream intermediate. */
  readonly selfSigned: boolean;
  /** Its private key is loaded and usable. */
  readonly loaded: boolean;
}

/** The configuration the policy reads. */
export interface PolicySettings {
  /** The X.509 CA is an upstream intermediate, which cannot be rotated here. */
  readonly upstream: boolean;
  /** Longest JWT-SVID lifetime the CA issues. */
  readonly maxJwtSvidTtlMs: number;
}

/** A key to move to `dropped`, with the reason logged. */
export interface DropDecision<K extends PolicyKey> {
  readonly key: K;
  readonly reason: string;
}

/** The activation of `next` in place of `previous`; `dropPrevious` when the previous key cannot stay old. */
export interface ActivationDecision<K extends PolicyKey> {
  readonly next: K;
  readonly previous: K;
  readonly dropPrevious: boolean;
}

/** When the next key is prepared: half-way through the key's life. */
export function halfLife(k: Pick<PolicyKey, 'start' | 'end'>): number {
  return k.start + (k.end - k.start) / 2;
}

/** When the next key takes over: 5/6 of the key's life, and never after its end. */
export function activationPoint(k: Pick<PolicyKey, 'start' | 'end'>): number {
  return Math.min(k.start + ((k.end - k.start) * 5) / 6, k.end);
}

/** Whether this CA may rotate keys of `kind`: an upstream intermediate only changes upstream. */
export function rotatable(kind: CaKeyKind, settings: PolicySettings): boolean {
  return kind === 'jwt' || !settings.upstream;
}

/** A prepared key of the wrong mode: an upstream intermediate in embedded mode, any prepared X.509 key upstream. */
export function wrongMode(k: PolicyKey, settings: PolicySettings): boolean {
  return k.kind === 'x509' && (!k.selfSigned || settings.upstream);
}

/** A prepared key that may become active: untainted, loaded, of the right mode, not half-way through its life. */
export function usablePrepared(k: PolicyKey, settings: PolicySettings, now: number): boolean {
  if (k.tainted || !k.loaded) return false;
  if (wrongMode(k, settings)) return false;
  return now < halfLife(k);
}

/** The prepared key of `kind` that would be activated next: the newest usable one. */
export function nextPrepared<K extends PolicyKey>(
  keys: readonly K[],
  kind: CaKeyKind,
  settings: PolicySettings,
  now: number,
): K | undefined {
  return keys.filter((k) => k.kind === kind && k.state === 'prepared' && usablePrepared(k, settings, now)).at(-1);
}

/**
 * Whether an old key has left nothing valid behind. `stoppedSigning` is when the key stopped signing
 * (for JWT keys, which the journal does not record; the manager passes the time it opened when unknown).
 */
export function dropDue(k: PolicyKey, now: number, stoppedSigning: number, settings: PolicySettings): boolean {
  // An X.509-SVID never outlives its issuer, so after the CA's end nothing it signed is valid.
  if (k.kind === 'x509') return now > k.end;
  return now > stoppedSigning + settings.maxJwtSvidTtlMs;
}

/** First pass of a tick: tainted or expired old keys, and prepared keys that can no longer be activated. */
export function dropsDue<K extends PolicyKey>(
  keys: readonly K[],
  settings: PolicySettings,
  now: number,
  stoppedSigning: (k: K) => number,
): DropDecision<K>[] {
  const out: DropDecision<K>[] = [];
  for (const k of keys) {
    if (k.state === 'old' && (k.tainted || dropDue(k, now, stoppedSigning(k), settings))) {
      out.push({ key: k, reason: k.tainted ? 'tainted' : 'everything it signed has expired' });
    } else if (k.state === 'prepared' && !usablePrepared(k, settings, now)) {
      out.push({ key: k, reason: k.tainted ? 'tainted' : 'prepared key no longer usable' });
    }
  }
  return out;
}

/** Prepared keys a start drops before anything else: unloadable, or of the wrong mode. */
export function unusableAtStart<K extends PolicyKey>(keys: readonly K[], settings: PolicySettings): K[] {
  return keys.filter((k) => k.state === 'prepared' && (!k.loaded || wrongMode(k, settings)));
}

/**
 * Whether a key of the active key's kind must be prepared: none usable is prepared yet, and the
 * rotation is forced, the active key is tainted, or it is half-way through its life.
 */
export function prepareDue(active: PolicyKey, next: PolicyKey | undefined, forced: boolean, now: number): boolean {
  if (next) return false;
  return forced || active.tainted || now >= halfLife(active);
}

/**
 * Whether `next` replaces `active` now: forced, tainted, or at the activation point. The previous
 * key is dropped at once rather than kept old when it is tainted, or when it is an X.509 CA past its
 * end (nothing it signed is still valid).
 */
export function activationDue<K extends PolicyKey>(
  active: K,
  next: K | undefined,
  forced: boolean,
  now: number,
): ActivationDecision<K> | undefined {
  if (!next) return undefined;
  if (!(forced || active.tainted || now >= activationPoint(active))) return undefined;
  return { next, previous: active, dropPrevious: active.tainted || (active.kind === 'x509' && now > active.end) };
}
