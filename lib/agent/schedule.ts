/**
 * When the agent renews a credential and how long it waits after a failure. Pure functions of their
 * arguments: the randomness comes in as a `rand` function returning a number in [0, 1), so tests pass
 * fixed values or a seeded generator and nothing here reads the clock.
 *
 * Why randomness at all: a CA issues many SVIDs at the same moment (every agent after a CA restart,
 * every workload of a node after the agent starts). Renewing at exactly half-life would bring all of
 * them back at the same instant, one lifetime after another, and retrying failures on a fixed schedule
 * would make every agent that lost the CA in an outage hit it in the same second when it returns. Both
 * are thundering herds; spreading each agent's times at random flattens them.
 */

/** Renew at this fraction of the lifetime by default (half-life, as SPIRE does). */
export const DEFAULT_RENEW_FRACTION = 0.5;
/** Spread renewals by up to this fraction of the nominal renewal offset either way (±10%). */
export const DEFAULT_RENEW_JITTER = 0.1;
/** Renewal is never scheduled later than this fraction of the lifetime before notAfter. */
export const RENEW_MARGIN = 0.05;
/** Default shortest wait after a failure, in milliseconds. */
export const DEFAULT_BACKOFF_MIN_MS = 1000;
/** Default longest wait after a failure, in milliseconds. */
export const DEFAULT_BACKOFF_MAX_MS = 60_000;

// 2^53 already exceeds any safe millisecond count, so larger exponents change nothing.
const MAX_EXPONENT = 53;

function checkDate(d: Date, name: string): number {
  const t = d instanceof Date ? d.getTime() : Number.NaN;
  if (Number.isNaN(t)) throw new RangeError(`schedule: ${name} must be a valid Date`);
  return t;
}

function draw(rand: () => number): number {
  const r = rand();
  if (typeof r !== 'number' || !(r >= 0 && r < 1)) {
    throw new RangeError('schedule: rand() must return a number in [0, 1)');
  }
  return r;
}

/**
 * The moment to renew a credential valid from `notBefore` to `notAfter`:
 *
 *     notBefore + lifetime × fraction × (1 + jitter × (2 × rand() − 1))
 *
 * rounded to the millisecond, so half-life ±10% with the defaults (rand() = 0 gives the earliest time,
 * 0.5 exactly `fraction`, values near 1 the latest). The result is clamped to
 * [notBefore, notAfter − 5% of the lifetime]: a large fraction or jitter can never push renewal into
 * the last stretch of validity, where one failed attempt would let the credential expire. A zero or
 * negative lifetime returns `notBefore`, which is already past: renew now.
 *
 * `fraction` must be in (0, 1] and `jitter` in [0, 1]; anything else is a programming error (RangeError).
 */
export function renewalTime(
  notBefore: Date,
  notAfter: Date,
  rand: () => number,
  fraction = DEFAULT_RENEW_FRACTION,
  jitter = DEFAULT_RENEW_JITTER,
): Date {
  const start = checkDate(notBefore, 'notBefore');
  const end = checkDate(notAfter, 'notAfter');
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError('schedule: fraction must be in (0, 1]');
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError('schedule: jitter must be in [0, 1]');
  const lifetime = end - start;
  if (lifetime <= 0) return new Date(start);
  const spread = 1 + jitter * (2 * draw(rand) - 1);
  // Rounding (not truncating) keeps float noise such as 1619999.9999999998 from moving a result by 1 ms.
  const offset = Math.round(lifetime * fraction * spread);
  // The margin is RENEW_MARGIN (1/20) of the lifetime, computed as one division so that float noise in
  // 0.05 cannot add a millisecond, and rounded up so that it is never less than 5%.
  const latest = lifetime - Math.ceil(lifetime / 20);
  return new Date(start + Math.min(Math.max(offset, 0), latest));
}

/** How token renewal is spread and retried: the agent's rotation settings. */
export interface TokenRenewalPolicy {
  readonly rand: () => number;
  readonly fraction: number;
  readonly jitter: number;
  /** The pause before asking again for a token that has already expired by our clock. */
  readonly minRetryMs: number;
}

/**
 * When to renew a token received at `received` (ms) that the issuer dated `issuedAt` (may be absent)
 * and that expires at `expiry`. The lifetime counts from when it was received, clamped to [iat, exp]:
 * counted from the issuer's iat, an issuer clock behind ours would make the token due again at once
 * and the agent fetch it in a loop. A token already expired by our clock is asked for again after a
 * pause of one to two minRetryMs, never at once.
 */
export function tokenRenewalTime(
  issuedAt: Date | undefined,
  expiry: Date,
  received: number,
  policy: TokenRenewalPolicy,
): number {
  const expires = expiry.getTime();
  const start = Math.min(Math.max(issuedAt?.getTime() ?? received, received), expires);
  const renewAt = renewalTime(new Date(start), expiry, policy.rand, policy.fraction, policy.jitter).getTime();
  return renewAt > received ? renewAt : received + policy.minRetryMs * (1 + policy.rand());
}

/** True when a renewal scheduled for `renewAt` is due at `now`. */
export function shouldRenew(now: Date, renewAt: Date): boolean {
  return checkDate(now, 'now') >= checkDate(renewAt, 'renewAt');
}

/**
 * When a scheduler should wake next: the earliest of `times` strictly after `now`, but no later than
 * `now + maxMs`. Times at or before `now` are ignored: they are due, and the caller handles them (or
 * schedules their retry with a Backoff) before it sleeps, so a due item can never make the loop spin.
 * With no future time the result is `now + maxMs`; the cap also bounds how long a clock jump can delay
 * the next look.
 */
export function nextWakeup(times: readonly Date[], now: Date, maxMs: number): Date {
  const t0 = checkDate(now, 'now');
  if (!(maxMs >= 0) || !Number.isFinite(maxMs)) throw new RangeError('schedule: maxMs must be a finite number >= 0');
  let best = t0 + maxMs;
  for (const [i, d] of times.entries()) {
    const t = checkDate(d, `times[${i}]`);
    if (t > t0 && t < best) best = t;
  }
  return new Date(best);
}

function checkBounds(minMs: number, maxMs: number): void {
  if (!Number.isSafeInteger(minMs) || minMs < 1) throw new RangeError('schedule: minMs must be an integer >= 1');
  if (!Number.isSafeInteger(maxMs) || maxMs < minMs)
    throw new RangeError('schedule: maxMs must be an integer >= minMs');
}

/**
 * How long to wait before retry number `attempt` (0 for the first retry after a failure), in whole
 * milliseconds: exponential backoff with "full jitter" above a floor.
 *
 *     ceiling = min(maxMs, minMs × 2^(attempt + 1))
 *     delay   = minMs + floor(rand() × (ceiling − minMs))
 *
 * So attempt 0 waits in [minMs, 2·minMs), attempt 1 in [minMs, 4·minMs), attempt n in
 * [minMs, minMs·2^(n+1)), until the ceiling reaches maxMs; from then on every wait is in
 * [minMs, maxMs). The wait is never below minMs and never above maxMs (it equals maxMs only when
 * minMs = maxMs). Drawing the whole range rather than adding a little noise to a fixed delay is what
 * breaks up a herd: agents that failed together are spread over the full window, not a narrow band
 * around the same instant. Any non-negative integer attempt is safe: the exponent stops growing at 53.
 */
export function backoffDelay(
  attempt: number,
  rand: () => number,
  minMs = DEFAULT_BACKOFF_MIN_MS,
  maxMs = DEFAULT_BACKOFF_MAX_MS,
): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError('schedule: attempt must be an integer >= 0');
  checkBounds(minMs, maxMs);
  const ceiling = Math.min(maxMs, minMs * 2 ** (Math.min(attempt, MAX_EXPONENT) + 1));
  return minMs + Math.floor(draw(rand) * (ceiling - minMs));
}

/** Successive backoff delays for one failing operation; reset it after a success. */
export class Backoff {
  readonly #rand: () => number;
  readonly #minMs: number;
  readonly #maxMs: number;
  #attempts = 0;

  /** `rand` defaults to Math.random (jitter needs spread, not secrecy); bounds as backoffDelay. */
  constructor(rand: () => number = Math.random, minMs = DEFAULT_BACKOFF_MIN_MS, maxMs = DEFAULT_BACKOFF_MAX_MS) {
    checkBounds(minMs, maxMs);
    this.#rand = rand;
    this.#minMs = minMs;
    this.#maxMs = maxMs;
  }

  /** The wait before the next retry, in milliseconds; each call counts one more attempt. */
  next(): number {
    const delay = backoffDelay(this.#attempts, this.#rand, this.#minMs, this.#maxMs);
    this.#attempts++;
    return delay;
  }

  /** Starts over from the shortest waits (call after a success). */
  reset(): void {
    this.#attempts = 0;
  }

  /** How many delays next() has handed out since construction or the last reset. */
  get attempts(): number {
    return this.#attempts;
  }
}
