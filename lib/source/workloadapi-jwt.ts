/**
 * JWT-SVIDs kept fresh from a Workload API endpoint for a fixed set of audiences, so that a
 * WorkloadApiSource answers the synchronous getJwtSvid(audience) of JwtSvidSource the way a FileSource
 * does for the agent's token files: every helper that attaches a token to a call (jwtCallCredentials,
 * jwtHeaderFromSource) works with it unchanged. Each token is fetched again at half its lifetime, after
 * a failure with backoff, and at once when the source's identity changes.
 */
import { SvidkitError } from '../errors/index.js';
import type { JwtSvid } from '../jwtsvid/index.js';
import { MAX_AUDIENCE_BYTES, MAX_AUDIENCES_PER_REQUEST } from '../workloadapi/limits.js';
import { backoffDelay } from './workloadapi-watch.js';

/** Fetches one JWT-SVID for one audience, for the identity the source serves now. */
export type FetchJwtSvid = (audience: string) => Promise<JwtSvid>;

/** Hooks and settings of a JwtSvidKeeper. */
export interface JwtSvidKeeperOptions {
  readonly fetch: FetchJwtSvid;
  readonly clock: () => Date;
  readonly backoff: (attempt: number) => number;
  /** A token was replaced or dropped. */
  readonly changed: () => void;
  /** A fetch failed (the last good token stays until it expires). */
  readonly failed: (err: SvidkitError) => void;
}

interface Kept {
  svid?: JwtSvid;
  timer?: NodeJS.Timeout;
  attempt: number;
  /** Increased on every restart, so that an answer to an older fetch is dropped. */
  generation: number;
}

/** Checks the audiences option of a source: unique non-empty strings within the Workload API's bounds. */
export function checkJwtAudiences(audiences: unknown): string[] {
  if (audiences === undefined) return [];
  if (!Array.isArray(audiences)) throw new TypeError('source: jwtAudiences must be an array of strings');
  if (audiences.length > MAX_AUDIENCES_PER_REQUEST) {
    throw new TypeError(`source: at most ${MAX_AUDIENCES_PER_REQUEST} jwtAudiences`);
  }
  for (const a of audiences) {
    if (typeof a !== 'string' || a === '' || Buffer.byteLength(a) > MAX_AUDIENCE_BYTES) {
      throw new TypeError(`source: each of jwtAudiences must be a string of 1 to ${MAX_AUDIENCE_BYTES} bytes`);
    }
  }
  return [...new Set(audiences as string[])];
}

/** One JWT-SVID per audience, renewed at half-life; see the file comment. */
export class JwtSvidKeeper {
  readonly #o: JwtSvidKeeperOptions;
  readonly #kept = new Map<string, Kept>();
  #waiters: (() => void)[] = [];
  #stopped = false;

  constructor(audiences: readonly string[], options: JwtSvidKeeperOptions) {
    this.#o = options;
    for (const a of audiences) this.#kept.set(a, { attempt: 0, generation: 0 });
  }

  /** True when there are audiences to keep. */
  get active(): boolean {
    return this.#kept.size > 0;
  }

  /** Fetches every audience now (at start, and when the identity changed), dropping older answers. */
  restart(): void {
    if (this.#stopped) return;
    for (const [audience, k] of this.#kept) {
      clearTimeout(k.timer);
      k.generation++;
      k.attempt = 0;
      void this.#fetch(audience, k);
    }
    // A token of the previous identity must not be served beside the new identity's X.509-SVID.
    this.drop();
  }

  /** Drops every token (the endpoint no longer has an identity for this process) and fetches again later. */
  drop(): void {
    let had = false;
    for (const k of this.#kept.values()) {
      had ||= k.svid !== undefined;
      k.svid = undefined;
    }
    if (had) this.#o.changed();
  }

  /** Resolves once every audience has a token. */
  ready(): Promise<void> {
    if (this.#allHeld()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The current token for `audience`, or undefined when there is none or it expired at clock(). */
  token(audience: string): string | undefined {
    const svid = this.#kept.get(audience)?.svid;
    if (!svid || svid.expiry.getTime() <= this.#o.clock().getTime()) return undefined;
    return svid.marshal();
  }

  /** Whether `audience` is one of the kept ones. */
  keeps(audience: string): boolean {
    return this.#kept.has(audience);
  }

  /** Stops every timer; tokens stay readable until they expire. */
  stop(): void {
    this.#stopped = true;
    for (const k of this.#kept.values()) clearTimeout(k.timer);
    this.#waiters = [];
  }

  #allHeld(): boolean {
    return [...this.#kept.values()].every((k) => k.svid !== undefined);
  }

  async #fetch(audience: string, k: Kept): Promise<void> {
    const generation = k.generation;
    let delay: number;
    try {
      const svid = await this.#o.fetch(audience);
      if (this.#stopped || generation !== k.generation) return;
      const previous = k.svid?.marshal();
      k.svid = svid;
      k.attempt = 0;
      delay = jwtRenewDelay(svid, this.#o.clock());
      if (previous !== svid.marshal()) this.#o.changed();
      if (this.#allHeld()) for (const w of this.#waiters.splice(0)) w();
    } catch (err) {
      if (this.#stopped || generation !== k.generation) return;
      this.#o.failed(
        err instanceof SvidkitError
          ? err
          : new SvidkitError('ERR_WORKLOADAPI_BAD_RESPONSE', 'workloadapi: a JWT-SVID could not be fetched'),
      );
      delay = backoffDelay(this.#o.backoff, k.attempt++);
    }
    k.timer = setTimeout(() => void this.#fetch(audience, k), delay);
    k.timer.unref();
  }
}

/** The longest delay setTimeout honours (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Time until half the token's lifetime (from its iat, else from now), at least one second, at most what a timer holds. */
export function jwtRenewDelay(svid: Pick<JwtSvid, 'issuedAt' | 'expiry'>, at: Date): number {
  const issued = svid.issuedAt?.getTime() ?? at.getTime();
  const half = issued + (svid.expiry.getTime() - issued) / 2;
  // setTimeout takes at most 2^31-1 ms and fires at once beyond it; a later wake-up only refetches.
  return Math.min(MAX_TIMER_MS, Math.max(1000, half - at.getTime()));
}
