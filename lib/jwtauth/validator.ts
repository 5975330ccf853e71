/**
 * JwtValidator: authenticates a request by the JWT-SVID in its `Authorization: Bearer` header, for
 * one audience (this service), then authorizes the token's subject.
 *
 * Failures are JwtAuthErrors with one of two codes: ERR_JWTAUTH_UNAUTHENTICATED (status 401: no
 * usable token) or ERR_JWTAUTH_FORBIDDEN (status 403: a valid token whose subject is refused). The
 * token never appears in an error message, and token parsing errors are not attached as causes,
 * because a lower-level parser's message may quote the decoded input.
 */
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import type { Authorizer } from '../authorize/index.js';
import { type JwtSvid, MAX_TOKEN_BYTES, parseAndValidate } from '../jwtsvid/index.js';
import type { JwtSource, JwtSvidSource, Unsubscribe } from '../source/types.js';
import { SpiffeId } from '../spiffeid/index.js';
import { DEFAULT_MAX_CACHE_ENTRIES, TokenCache, tokenKey } from './cache.js';

/** Largest leeway parseAndValidate accepts, in seconds. */
const MAX_LEEWAY_SECONDS = 300;
const DEFAULT_LEEWAY_SECONDS = 30;
const BEARER = 'bearer';

/** HTTP status of a JwtAuthError. */
export type JwtAuthStatus = 401 | 403;

/** A refused request: `status` says whether the caller is unauthenticated (401) or forbidden (403). */
export class JwtAuthError extends SvidkitError {
  /** 401 when there is no valid token, 403 when a valid token's subject is refused. */
  readonly status: JwtAuthStatus;
  /** The underlying reason, e.g. ERR_JWTSVID_EXPIRED or ERR_AUTHZ_DENIED, when there is one. */
  readonly reason: ErrorCode | undefined;

  constructor(status: JwtAuthStatus, message: string, options: { reason?: ErrorCode; cause?: unknown } = {}) {
    super(
      status === 401 ? 'ERR_JWTAUTH_UNAUTHENTICATED' : 'ERR_JWTAUTH_FORBIDDEN',
      `jwtauth: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'JwtAuthError';
    this.status = status;
    this.reason = options.reason;
  }
}

function unauthenticated(message: string, reason?: ErrorCode): JwtAuthError {
  return new JwtAuthError(401, message, reason === undefined ? {} : { reason });
}

/**
 * The HTTP status for an error from JwtValidator.validate: 401, 403, or 500 for anything that is not
 * a refusal of the request (a failing bundle source, a broken clock: the server's fault, not the caller's).
 */
export function httpStatusOf(err: unknown): 401 | 403 | 500 {
  if (err instanceof SvidkitError) {
    if (err.code === 'ERR_JWTAUTH_UNAUTHENTICATED') return 401;
    if (err.code === 'ERR_JWTAUTH_FORBIDDEN') return 403;
  }
  return 500;
}

/** gRPC status codes used by grpcStatusOf (the values of @grpc/grpc-js's `status` enum). */
export const GRPC_STATUS = Object.freeze({ INTERNAL: 13, UNAUTHENTICATED: 16, PERMISSION_DENIED: 7 } as const);

/** The gRPC status for an error from JwtValidator.validate: UNAUTHENTICATED, PERMISSION_DENIED or INTERNAL. */
export function grpcStatusOf(err: unknown): 16 | 7 | 13 {
  const http = httpStatusOf(err);
  if (http === 401) return GRPC_STATUS.UNAUTHENTICATED;
  if (http === 403) return GRPC_STATUS.PERMISSION_DENIED;
  return GRPC_STATUS.INTERNAL;
}

/** `Bearer <token>`: the Authorization header value (or gRPC `authorization` metadata) for a token. */
export function bearer(token: string): string {
  if (typeof token !== 'string' || token === '') throw new TypeError('jwtauth: token must be a non-empty string');
  return `Bearer ${token}`;
}

/** The Authorization header value for `audience`, read from the source on every call so it is always current. */
export function jwtHeaderFromSource(source: JwtSvidSource, audience: string): string {
  if (typeof source?.getJwtSvid !== 'function') throw new TypeError('jwtauth: source must be a JwtSvidSource');
  if (typeof audience !== 'string' || audience === '') {
    throw new TypeError('jwtauth: audience must be a non-empty string');
  }
  return bearer(source.getJwtSvid(audience));
}

/**
 * The token of an Authorization header value (`Bearer <token>`, scheme case-insensitive, exactly one
 * space) or of a bare token. Messages never quote the input.
 */
function tokenOf(input: string | undefined): string {
  if (input === undefined) throw unauthenticated('no Authorization header');
  if (typeof input !== 'string') throw new TypeError('jwtauth: the Authorization value must be a string');
  if (input === '') throw unauthenticated('empty Authorization header');
  const space = input.indexOf(' ');
  if (space === -1) {
    if (input.length === BEARER.length && input.toLowerCase() === BEARER) {
      throw unauthenticated('Authorization header has no token');
    }
    return input; // a bare token, e.g. from a caller that already stripped the scheme
  }
  if (space !== BEARER.length || input.slice(0, space).toLowerCase() !== BEARER) {
    throw unauthenticated('Authorization scheme is not Bearer');
  }
  const token = input.slice(space + 1);
  if (token === '') throw unauthenticated('Authorization header has no token');
  return token;
}

/** The 401 for a token that parseAndValidate refused; anything else (source, clock) passes through. */
function rejection(err: unknown, token: string): unknown {
  if (!(err instanceof SvidkitError) || !err.code.startsWith('ERR_JWTSVID_')) return err;
  // jwtsvid messages never hold the token; the check is a last line of defence. The cause is left
  // off: its own cause may be a JSON parser error quoting decoded token bytes.
  const detail = err.plainMessage;
  return unauthenticated(detail.includes(token) ? 'token rejected' : `token rejected: ${detail}`, err.code);
}

/** The 403 for a subject the authorizer refused. */
function refused(id: SpiffeId, err: unknown): JwtAuthError {
  return new JwtAuthError(403, `token subject "${id.toString()}" is not authorized`, {
    reason: err instanceof SvidkitError ? err.code : 'ERR_AUTHZ_DENIED',
    cause: err,
  });
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** Options of JwtValidator. */
export interface JwtValidatorOptions {
  /** JWT bundles; the validator drops its cache whenever the source reports an update. */
  source: JwtSource;
  /** This service's audience; a token must name it in aud. Required. */
  audience: string;
  /** Runs on every successful validation (cache hits too) with the token's subject; throw to refuse (403). */
  authorizer?: Authorizer;
  /** Require the token's sub to equal the mTLS peer ID passed to validate (403 otherwise, or when none is). */
  requireSubjectEquals?: boolean;
  /** Cache of validated tokens; maxEntries 0 turns it off. */
  cache?: { maxEntries?: number };
  /** Current time; injected so tests and replays do not depend on the wall clock. */
  clock?: () => Date;
  /** Clock-skew allowance for exp and nbf, 0 to 300 seconds; 30 when absent. */
  leewaySeconds?: number;
}

/** A successful validation: the caller's SPIFFE ID and its JWT-SVID. */
export interface JwtAuthResult {
  readonly id: SpiffeId;
  readonly svid: JwtSvid;
}

/** Counters of the token cache. */
export interface JwtCacheStats {
  readonly entries: number;
  readonly maxEntries: number;
  readonly hits: number;
  readonly misses: number;
}

/**
 * Validates JWT-SVIDs presented to this service. A token that validated once is remembered (by its
 * SHA-256) until it expires, it is evicted, or the source's bundles change; a remembered token skips
 * signature verification, but expiry, the peer check and the authorizer still run on every call.
 */
export class JwtValidator {
  readonly #source: JwtSource;
  readonly #audience: string;
  readonly #authorizer: Authorizer | undefined;
  readonly #requireSubjectEquals: boolean;
  readonly #clock: () => Date;
  readonly #leeway: number;
  readonly #cache: TokenCache;
  readonly #unsubscribe: Unsubscribe;
  // Bumped on every bundle update: a verification that started before an update must not be cached.
  #generation = 0;
  #closed = false;
  #hits = 0;
  #misses = 0;

  constructor(options: JwtValidatorOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('jwtauth: options must be an object');
    const { source, audience, authorizer, requireSubjectEquals = false, cache = {}, clock, leewaySeconds } = options;
    if (typeof source?.getJwtBundleForTrustDomain !== 'function' || typeof source.onUpdate !== 'function') {
      throw new TypeError('jwtauth: source must be a JwtSource (getJwtBundleForTrustDomain and onUpdate)');
    }
    if (typeof audience !== 'string' || audience === '') {
      throw new TypeError('jwtauth: audience is required and must be a non-empty string');
    }
    if (authorizer !== undefined && typeof authorizer !== 'function') {
      throw new TypeError('jwtauth: authorizer must be a function');
    }
    if (typeof requireSubjectEquals !== 'boolean') {
      throw new TypeError('jwtauth: requireSubjectEquals must be a boolean');
    }
    if (typeof cache !== 'object' || cache === null) throw new TypeError('jwtauth: cache must be an object');
    const maxEntries = cache.maxEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
    if (typeof maxEntries !== 'number') throw new TypeError('jwtauth: cache.maxEntries must be a number');
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) {
      throw new RangeError('jwtauth: cache.maxEntries must be a non-negative integer');
    }
    if (clock !== undefined && typeof clock !== 'function') throw new TypeError('jwtauth: clock must be a function');
    const leeway = leewaySeconds ?? DEFAULT_LEEWAY_SECONDS;
    if (typeof leeway !== 'number' || Number.isNaN(leeway)) {
      throw new TypeError('jwtauth: leewaySeconds must be a number');
    }
    if (leeway < 0 || leeway > MAX_LEEWAY_SECONDS) {
      throw new RangeError(`jwtauth: leewaySeconds must be between 0 and ${MAX_LEEWAY_SECONDS}`);
    }

    this.#source = source;
    this.#audience = audience;
    this.#authorizer = authorizer;
    this.#requireSubjectEquals = requireSubjectEquals;
    this.#clock = clock ?? (() => new Date());
    this.#leeway = leeway;
    this.#cache = new TokenCache(maxEntries);
    // A bundle change may have removed the key that signed a remembered token: forget them all.
    this.#unsubscribe = source.onUpdate(() => {
      this.#generation++;
      this.#cache.clear();
    });
  }

  /** The audience tokens must carry. */
  get audience(): string {
    return this.#audience;
  }

  /** True when validate needs the mTLS peer ID (requireSubjectEquals). */
  get requiresPeerId(): boolean {
    return this.#requireSubjectEquals;
  }

  /** Cache counters, for metrics. */
  cacheStats(): JwtCacheStats {
    return { entries: this.#cache.size, maxEntries: this.#cache.maxEntries, hits: this.#hits, misses: this.#misses };
  }

  /** Forgets every remembered token (the next validation of each verifies its signature again). */
  clearCache(): void {
    this.#generation++;
    this.#cache.clear();
  }

  /** Stops listening to the source and empties the cache; validate keeps working, uncached. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.clearCache();
  }

  /**
   * Validates an Authorization header value (`Bearer <token>`) or a bare token. `peerId` is the mTLS
   * peer's SPIFFE ID, needed when requireSubjectEquals is set. Throws a JwtAuthError (401 or 403);
   * errors of the source or the clock pass through unchanged (httpStatusOf maps them to 500).
   */
  async validate(authorizationHeaderOrToken: string | undefined, peerId?: SpiffeId): Promise<JwtAuthResult> {
    return this.check(authorizationHeaderOrToken, peerId);
  }

  /**
   * validate for hot paths: the result itself when no asynchronous work is needed (a remembered token
   * and a synchronous authorizer), else a promise. Refusals are thrown synchronously on the first path
   * and reject the promise on the second, so callers must handle both.
   */
  check(authorizationHeaderOrToken: string | undefined, peerId?: SpiffeId): JwtAuthResult | Promise<JwtAuthResult> {
    if (peerId !== undefined && !(peerId instanceof SpiffeId)) {
      throw new TypeError('jwtauth: peerId must be a SpiffeId');
    }
    const token = tokenOf(authorizationHeaderOrToken);
    // Bound the hashing work an unauthenticated caller can cause; parseAndValidate would refuse it too.
    if (token.length > MAX_TOKEN_BYTES) throw unauthenticated('token is too large', 'ERR_JWTSVID_TOO_LARGE');

    const key = tokenKey(token);
    const cached = this.#cache.get(key);
    if (cached === undefined) return this.#verifyAndAccept(token, key, peerId);
    if (this.#nowSeconds() > cached.expSeconds + this.#leeway) {
      this.#cache.delete(key);
      throw unauthenticated('token rejected: token expired', 'ERR_JWTSVID_EXPIRED');
    }
    this.#hits++;
    return this.#accept(cached.svid, peerId);
  }

  /** The first sight of a token: full verification, then the same checks as a remembered token. */
  async #verifyAndAccept(token: string, key: string, peerId: SpiffeId | undefined): Promise<JwtAuthResult> {
    this.#misses++;
    const generation = this.#generation;
    let svid: JwtSvid;
    try {
      svid = await parseAndValidate(token, this.#source, this.#audience, {
        clock: this.#clock,
        leewaySeconds: this.#leeway,
      });
    } catch (err) {
      throw rejection(err, token);
    }
    if (generation === this.#generation && !this.#closed) {
      this.#cache.set(key, { svid, expSeconds: svid.claims['exp'] as number });
    }
    return this.#accept(svid, peerId);
  }

  /** The checks that run on every call: the peer comparison and the authorizer. */
  #accept(svid: JwtSvid, peerId: SpiffeId | undefined): JwtAuthResult | Promise<JwtAuthResult> {
    const id = svid.id;
    this.#checkPeer(id, peerId);
    const result: JwtAuthResult = { id, svid };
    // Only an async authorizer costs an extra await; the cache-hit path stays synchronous.
    const pending = this.#authorize(id);
    return pending === undefined ? result : pending.then(() => result);
  }

  #nowSeconds(): number {
    const now = this.#clock();
    if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
      throw new TypeError('jwtauth: clock must return a valid Date');
    }
    return now.getTime() / 1000;
  }

  #checkPeer(id: SpiffeId, peerId: SpiffeId | undefined): void {
    if (!this.#requireSubjectEquals) return;
    if (peerId === undefined) {
      throw new JwtAuthError(403, 'no mTLS peer ID to compare the token subject with', {
        reason: 'ERR_SPIFFEID_MISMATCH',
      });
    }
    if (!id.equals(peerId)) {
      throw new JwtAuthError(403, `token subject "${id.toString()}" is not the mTLS peer "${peerId.toString()}"`, {
        reason: 'ERR_SPIFFEID_MISMATCH',
      });
    }
  }

  /** Runs the authorizer; returns a promise only when the authorizer is asynchronous. */
  #authorize(id: SpiffeId): Promise<void> | undefined {
    if (this.#authorizer === undefined) return undefined;
    let result: unknown;
    try {
      result = this.#authorizer(id, []);
    } catch (err) {
      throw refused(id, err);
    }
    // The type says synchronous, but an async function fits it too: await it, or a rejection
    // would go unnoticed and the request through.
    if (!isThenable(result)) return undefined;
    return Promise.resolve(result).then(
      () => undefined,
      (err: unknown) => {
        throw refused(id, err);
      },
    );
  }
}
