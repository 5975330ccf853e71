/**
 * A source that gets its SVIDs and bundles from a SPIFFE Workload API endpoint (svidkit-agent, a
 * SPIRE agent, or any other implementation) and follows its streams, so that every tls, https,
 * http2, grpc and jwtauth helper that takes a FileSource works with it unchanged.
 *
 * The source holds state and answers getters; the streams' lifecycle (reconnect with backoff) is in
 * workloadapi-watch.ts, and the checks of every message in workloadapi-parse.ts. A message that fails
 * a check leaves the last good state in place and is reported through `options.onError`.
 * PERMISSION_DENIED means the endpoint no longer has an identity for this process: the SVID is no
 * longer served (listeners are told), and the source keeps asking, because the standard allows an
 * identity to appear later (a fresh workload whose entry has not reached the agent yet).
 */
import type * as GrpcJs from '@grpc/grpc-js';
import type { BundleSet, JwtBundle, X509Bundle } from '../bundle/index.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import type { JWTBundlesResponse__Output } from '../generated/workload/JWTBundlesResponse.js';
import type { X509SVIDResponse__Output } from '../generated/workload/X509SVIDResponse.js';
import type { JwtSvid } from '../jwtsvid/index.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';
import { MAX_HINT_BYTES } from '../workloadapi/limits.js';
import type { X509Svid } from '../x509svid/index.js';
import { now, safeCause } from './file-check.js';
import type { JwtSource, JwtSvidSource, Unsubscribe, X509Source } from './types.js';
import { checkTimeout, WorkloadApiClient } from './workloadapi-client.js';
import { checkJwtAudiences, JwtSvidKeeper } from './workloadapi-jwt.js';
import {
  joinBundles,
  jwtBundlesFingerprint,
  parseJwtBundlesResponse,
  parseX509SvidResponse,
  type ServedX509Svid,
  type ValidatedJwt,
  type X509Context,
} from './workloadapi-parse.js';
import { defaultBackoff, StreamWatcher, workloadMetadata } from './workloadapi-watch.js';

export type { ValidatedJwt } from './workloadapi-parse.js';

/** Default time open() waits for the first X.509-SVID, and a unary call for its answer. */
export const DEFAULT_WORKLOADAPI_TIMEOUT_MS = 30_000;

/** Which SVID to serve when the endpoint serves several; the first (the default) when unset. */
export interface SvidPick {
  /** The SVID with this hint. */
  hint?: string;
  /** The SVID with this SPIFFE ID (the first of them, if several). */
  spiffeId?: string;
}

/** Options of WorkloadApiSource.open. */
export interface WorkloadApiSourceOptions {
  /** `unix:///path` or `tcp://IP:port`; default the SPIFFE_ENDPOINT_SOCKET environment variable. */
  address?: string;
  /** Which SVID to serve; default the first one the endpoint sends. */
  pick?: SvidPick;
  /** Current time, for validity checks; default `new Date()`. */
  clock?: () => Date;
  /**
   * Wait in ms before reconnection attempt `attempt` (0 for the first after a failure); default 100 ms
   * doubling to 30 s. Bounded to 5 minutes whatever it returns.
   */
  backoff?: (attempt: number) => number;
  /** How long open() waits for a first usable X.509-SVID, and a unary call for its answer; default 30 s. */
  timeoutMs?: number;
  /** Also follow FetchJWTBundles, for JWT-SVID validation; default true. */
  jwtBundles?: boolean;
  /**
   * Audiences to keep a JWT-SVID fresh for (one token each, of the served SVID's SPIFFE ID), so that
   * getJwtSvid(audience) answers synchronously like a FileSource's; open() then also waits for them.
   */
  jwtAudiences?: readonly string[];
  /** Called with every problem after open(): a refused message, a dropped stream, a denial. Never holds a key or token. */
  onError?: (err: SvidkitError) => void;
}

/** What a WorkloadApiSource currently serves; safe to log. */
export interface WorkloadApiSourceStatus {
  /** The gRPC target, `unix:/path` or `IP:port`. */
  target: string;
  /** SPIFFE ID of the served X.509-SVID. */
  spiffeId: string | undefined;
  /** Its hint ('' when it has none). */
  hint: string | undefined;
  /** Serial number (hex) of its leaf. */
  serial: string | undefined;
  notAfter: Date | undefined;
  /** How many X.509-SVIDs the endpoint serves this process. */
  svids: number;
  /** When the current X.509 state was accepted. */
  updatedAt: Date | undefined;
  /** True after PERMISSION_DENIED, until the endpoint serves an identity again. */
  denied: boolean;
  lastError: string | undefined;
  lastErrorCode: ErrorCode | undefined;
  lastErrorAt: Date | undefined;
  closed: boolean;
}

interface Settings {
  address: string | undefined;
  pick: { hint: string | undefined; spiffeId: SpiffeId | undefined };
  clock: () => Date;
  backoff: (attempt: number) => number;
  timeoutMs: number;
  jwtBundles: boolean;
  jwtAudiences: string[];
  onError: ((err: SvidkitError) => void) | undefined;
}

function checkOptions(opts: WorkloadApiSourceOptions): Settings {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('source: options must be an object');
  for (const name of ['clock', 'backoff', 'onError'] as const) {
    if (opts[name] !== undefined && typeof opts[name] !== 'function') {
      throw new TypeError(`source: ${name} must be a function`);
    }
  }
  if (opts.jwtBundles !== undefined && typeof opts.jwtBundles !== 'boolean') {
    throw new TypeError('source: jwtBundles must be a boolean');
  }
  const pick = opts.pick ?? {};
  if (typeof pick !== 'object' || pick === null) throw new TypeError('source: pick must be an object');
  if (pick.hint !== undefined && (typeof pick.hint !== 'string' || Buffer.byteLength(pick.hint) > MAX_HINT_BYTES)) {
    throw new TypeError(`source: pick.hint must be a string of at most ${MAX_HINT_BYTES} bytes`);
  }
  let spiffeId: SpiffeId | undefined;
  if (pick.spiffeId !== undefined) {
    if (typeof pick.spiffeId !== 'string') throw new TypeError('source: pick.spiffeId must be a string');
    spiffeId = SpiffeId.parse(pick.spiffeId);
  }
  return {
    address: opts.address,
    pick: { hint: pick.hint, spiffeId },
    clock: opts.clock ?? (() => new Date()),
    backoff: opts.backoff ?? defaultBackoff,
    timeoutMs: checkTimeout(opts.timeoutMs, DEFAULT_WORKLOADAPI_TIMEOUT_MS),
    jwtBundles: opts.jwtBundles ?? true,
    jwtAudiences: checkJwtAudiences(opts.jwtAudiences),
    onError: opts.onError,
  };
}

function sourceError(code: ErrorCode, message: string): SvidkitError {
  return new SvidkitError(code, `source: ${message}`);
}

/**
 * An X.509 and JWT bundle source over the SPIFFE Workload API. open() waits for the first usable
 * X.509-SVID and fails closed; afterwards the source follows the endpoint's streams until close().
 */
export class WorkloadApiSource implements X509Source, JwtSource, JwtSvidSource {
  readonly #s: Settings;
  readonly #grpc: typeof GrpcJs;
  readonly #client: WorkloadApiClient;
  readonly #listeners = new Set<() => void>();
  readonly #watchers: StreamWatcher<unknown>[] = [];
  readonly #tokens: JwtSvidKeeper;
  #x509: X509Context | undefined;
  #picked: ServedX509Svid | undefined;
  #jwt: Map<string, JwtBundle> = new Map();
  #jwtFingerprint = '';
  #bundles: BundleSet;
  #updatedAt: Date | undefined;
  #denied = false;
  #closed = false;
  #lastError: SvidkitError | undefined;
  #lastErrorAt: Date | undefined;
  #ready: { resolve: () => void; reject: (err: SvidkitError) => void } | undefined;
  #jwtReady: (() => void) | undefined;

  private constructor(settings: Settings, grpc: typeof GrpcJs, client: WorkloadApiClient) {
    this.#s = settings;
    this.#grpc = grpc;
    this.#client = client;
    this.#bundles = joinBundles(new Map(), new Map());
    this.#tokens = new JwtSvidKeeper(settings.jwtAudiences, {
      fetch: async (audience) => {
        const id = this.#picked?.svid.id.toString();
        if (id === undefined) throw sourceError('ERR_SOURCE_NO_SVID', 'no X.509-SVID to fetch a JWT-SVID for');
        const [first] = await this.#client.fetchJwtSvids({ audience, spiffeId: id });
        return first!.svid;
      },
      clock: settings.clock,
      backoff: settings.backoff,
      changed: () => {
        if (this.#ready === undefined) this.#notify();
      },
      failed: (err) => this.#report(err),
    });
  }

  /**
   * Connects to the endpoint and waits (at most `timeoutMs`) for a first X.509-SVID that passes every
   * check and matches `pick`. Throws TypeError for bad options; ERR_WORKLOADAPI_ADDRESS for a bad or
   * missing address; ERR_WORKLOADAPI_GRPC_MISSING without @grpc/grpc-js; ERR_WORKLOADAPI_INVALID_ARGUMENT
   * when the endpoint refuses the request; ERR_WORKLOADAPI_TIMEOUT (with the last problem) otherwise.
   */
  static async open(options: WorkloadApiSourceOptions = {}): Promise<WorkloadApiSource> {
    const settings = checkOptions(options);
    const client = await WorkloadApiClient.connect({
      address: settings.address,
      timeoutMs: settings.timeoutMs,
      clock: settings.clock,
    });
    const { grpc } = client;
    const source = new WorkloadApiSource(settings, grpc, client);
    await source.#start();
    return source;
  }

  async #start(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => {
      this.#ready = { resolve, reject };
    });
    const jwtReady = this.#s.jwtBundles
      ? new Promise<void>((resolve) => {
          this.#jwtReady = resolve;
        })
      : Promise.resolve();
    let tokensTimedOut: (err: SvidkitError) => void = () => undefined;
    const tokens = new Promise<void>((resolve, reject) => {
      tokensTimedOut = reject;
      void this.#tokens.ready().then(resolve);
    });
    tokens.catch(() => undefined); // awaited below unless the X.509-SVID failed first
    const timer = setTimeout(() => {
      const last = this.#lastError;
      const why = last ? `; last problem: ${last.message}` : '';
      this.#ready?.reject(
        new SvidkitError(
          'ERR_WORKLOADAPI_TIMEOUT',
          `workloadapi: no usable X.509-SVID from ${this.#client.target} within ${this.#s.timeoutMs} ms${why}`,
          last ? { cause: safeCause(last) } : undefined,
        ),
      );
      this.#jwtReady?.();
      tokensTimedOut(
        new SvidkitError(
          'ERR_WORKLOADAPI_TIMEOUT',
          `workloadapi: no JWT-SVID for every one of jwtAudiences from ${this.#client.target} within ${this.#s.timeoutMs} ms${why}`,
          last ? { cause: safeCause(last) } : undefined,
        ),
      );
    }, this.#s.timeoutMs);
    this.#watch<X509SVIDResponse__Output>(
      'FetchX509SVID',
      () => this.#client.raw.FetchX509SVID({}, workloadMetadata(this.#grpc)),
      (msg) => this.#onX509(msg),
      (err, final) => this.#onX509Failure(err, final),
    );
    if (this.#s.jwtBundles) {
      this.#watch<JWTBundlesResponse__Output>(
        'FetchJWTBundles',
        () => this.#client.raw.FetchJWTBundles({}, workloadMetadata(this.#grpc)),
        (msg) => this.#onJwtBundles(msg),
        (err) => {
          // Bundles are public trust data: the last good ones stay whatever the failure.
          this.#report(err);
          // open() waits for the first answer, not for a good one: JWT bundles are an extra.
          this.#jwtReady?.();
        },
      );
    }
    try {
      await ready;
      await jwtReady;
      await tokens;
    } catch (err) {
      await this.close();
      throw err;
    } finally {
      clearTimeout(timer);
      this.#ready = undefined;
      this.#jwtReady = undefined;
    }
  }

  #watch<T>(
    method: string,
    open: () => GrpcJs.ClientReadableStream<T>,
    message: (m: T) => void,
    failed: (e: SvidkitError, final: boolean) => void,
  ): void {
    const w = new StreamWatcher<T>(this.#grpc, method, { open, message, failed }, this.#s.backoff);
    this.#watchers.push(w as StreamWatcher<unknown>);
    w.start();
  }

  #onX509(msg: X509SVIDResponse__Output): void {
    let ctx: X509Context;
    try {
      ctx = parseX509SvidResponse(msg, now(this.#s.clock));
    } catch (err) {
      this.#report(badResponse(err, 'a message that cannot be read'));
      return;
    }
    const picked = this.#pick(ctx);
    const changed = this.#x509?.fingerprint !== ctx.fingerprint || this.#denied;
    const identityChanged = picked !== undefined && !(this.#picked?.svid.id.equals(picked.svid.id) ?? false);
    this.#x509 = ctx;
    this.#picked = picked;
    this.#denied = false;
    this.#updatedAt = new Date();
    if (picked === undefined) {
      this.#report(
        sourceError(
          'ERR_SOURCE_NO_SVID',
          `the endpoint serves no X.509-SVID that matches pick ${this.#describePick()}`,
        ),
      );
    } else {
      this.#lastError = undefined;
      this.#lastErrorAt = undefined;
      this.#ready?.resolve();
    }
    // Tokens are of the served identity: a new one (or the first) needs its own tokens at once, and
    // the old ones go before listeners hear of the new identity.
    if (identityChanged) this.#tokens.restart();
    if (changed) this.#rebuildBundles();
  }

  #onX509Failure(err: SvidkitError, final: boolean): void {
    this.#report(err);
    if (err.code === 'ERR_WORKLOADAPI_PERMISSION_DENIED') {
      const had = this.#picked !== undefined;
      this.#denied = true;
      this.#picked = undefined;
      this.#x509 = this.#x509 && { ...this.#x509, svids: [], fingerprint: '' };
      this.#tokens.drop();
      if (had) this.#notify();
    }
    if (final) this.#ready?.reject(err);
  }

  #onJwtBundles(msg: JWTBundlesResponse__Output): void {
    let bundles: Map<string, JwtBundle>;
    try {
      bundles = parseJwtBundlesResponse(msg);
    } catch (err) {
      this.#report(badResponse(err, 'JWT bundles that cannot be read'));
      return;
    }
    this.#jwtReady?.();
    const fp = jwtBundlesFingerprint(bundles);
    if (fp === this.#jwtFingerprint) return;
    this.#jwt = bundles;
    this.#jwtFingerprint = fp;
    this.#rebuildBundles();
  }

  #rebuildBundles(): void {
    try {
      this.#bundles = joinBundles(this.#x509?.bundles ?? new Map<string, X509Bundle>(), this.#jwt);
    } catch (err) {
      this.#report(
        err instanceof SvidkitError
          ? err
          : new SvidkitError('ERR_WORKLOADAPI_BAD_RESPONSE', 'workloadapi: bundles cannot be joined'),
      );
      return;
    }
    if (this.#ready === undefined) this.#notify();
  }

  #pick(ctx: X509Context): ServedX509Svid | undefined {
    const { hint, spiffeId } = this.#s.pick;
    return ctx.svids.find(
      (s) => (hint === undefined || s.hint === hint) && (spiffeId === undefined || s.svid.id.equals(spiffeId)),
    );
  }

  #describePick(): string {
    const { hint, spiffeId } = this.#s.pick;
    return JSON.stringify({
      ...(hint === undefined ? {} : { hint }),
      ...(spiffeId ? { spiffeId: spiffeId.toString() } : {}),
    });
  }

  #notify(): void {
    for (const l of [...this.#listeners]) {
      if (this.#closed) return;
      try {
        l();
      } catch {
        // The listener's error may quote anything; only the fact is reported.
        this.#report(sourceError('ERR_SOURCE_LISTENER', 'an onUpdate listener threw'));
      }
    }
  }

  #report(err: SvidkitError): void {
    if (this.#closed) return;
    this.#lastError = err;
    this.#lastErrorAt = new Date();
    try {
      this.#s.onError?.(err);
    } catch {
      // A failing error handler must not stop the source.
    }
  }

  /** The served X.509-SVID; ERR_SOURCE_NO_SVID when there is none (denied, no match) or it expired at clock(). */
  getX509Svid(): X509Svid {
    const svid = this.#picked?.svid;
    if (!svid) {
      throw sourceError(
        'ERR_SOURCE_NO_SVID',
        this.#denied ? `the endpoint ${this.#client.target} has no identity for this process` : 'no X.509-SVID yet',
      );
    }
    if (svid.expiresAt.getTime() <= now(this.#s.clock).getTime()) {
      throw sourceError(
        'ERR_SOURCE_NO_SVID',
        `the last X.509-SVID from ${this.#client.target} expired at ${svid.expiresAt.toISOString()}`,
      );
    }
    return svid;
  }

  /**
   * The kept JWT-SVID for `audience` (one of `jwtAudiences`); ERR_SOURCE_NO_SVID when it is not kept,
   * not fetched yet, denied or expired at clock(). Never log it.
   */
  getJwtSvid(audience: string): string {
    const quoted = JSON.stringify(String(audience).slice(0, 64));
    if (!this.#tokens.keeps(audience)) {
      throw sourceError('ERR_SOURCE_NO_SVID', `audience ${quoted} is not one of the source's jwtAudiences`);
    }
    const token = this.#tokens.token(audience);
    if (token === undefined) throw sourceError('ERR_SOURCE_NO_SVID', `no current JWT-SVID for audience ${quoted}`);
    return token;
  }

  /** Every X.509-SVID the endpoint serves this process, the default first, with its hint. */
  getX509Svids(): readonly ServedX509Svid[] {
    return this.#x509?.svids ?? [];
  }

  /** Every trusted bundle: the X.509 bundles of the last good FetchX509SVID message and the JWT bundles. */
  getBundleSet(): BundleSet {
    return this.#bundles;
  }

  /** Bundle source interface. */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#bundles.getX509BundleForTrustDomain(td);
  }

  /** Bundle source interface. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#bundles.getJwtBundleForTrustDomain(td);
  }

  /** Calls `listener` after every accepted change of the served SVID or of any bundle, and after a denial. */
  onUpdate(listener: () => void): Unsubscribe {
    if (typeof listener !== 'function') throw new TypeError('source: listener must be a function');
    if (this.#closed) return () => undefined;
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * A fresh JWT-SVID for `audience` from the endpoint (FetchJWTSVID): of `spiffeId` when given, else
   * of the picked SVID's hint or SPIFFE ID, else the first. Get the token with `.marshal()`.
   */
  async fetchJwtSvid(params: { audience: string | readonly string[]; spiffeId?: string }): Promise<JwtSvid> {
    const svids = await this.#client.fetchJwtSvids(params);
    if (params.spiffeId !== undefined) return svids[0]!.svid;
    const { hint, spiffeId } = this.#s.pick;
    const chosen =
      hint === undefined && spiffeId === undefined
        ? svids[0]
        : svids.find(
            (s) => (hint === undefined || s.hint === hint) && (spiffeId === undefined || s.svid.id.equals(spiffeId)),
          );
    if (!chosen) {
      throw sourceError(
        'ERR_SOURCE_NO_SVID',
        `the endpoint serves no JWT-SVID that matches pick ${this.#describePick()}`,
      );
    }
    return chosen.svid;
  }

  /** Has the endpoint validate `token` for `audience` (ValidateJWTSVID); resolves to its SPIFFE ID and claims. */
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwt> {
    return this.#client.validateJwtSvid(token, audience);
  }

  /** What the source serves now, and the last problem; contains no key and no token. */
  status(): WorkloadApiSourceStatus {
    const svid = this.#picked?.svid;
    return {
      target: this.#client.target,
      spiffeId: svid?.id.toString(),
      hint: this.#picked?.hint,
      serial: svid?.leaf.serialHex,
      notAfter: svid?.expiresAt,
      svids: this.#x509?.svids.length ?? 0,
      updatedAt: this.#updatedAt,
      denied: this.#denied,
      lastError: this.#lastError?.message,
      lastErrorCode: this.#lastError?.code,
      lastErrorAt: this.#lastErrorAt,
      closed: this.#closed,
    };
  }

  /** Ends the streams and the connection; getters keep answering with the last state. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watchers) w.stop();
    this.#tokens.stop();
    this.#listeners.clear();
    this.#client.close();
  }
}

/** A refusal of what the endpoint sent: the parser's own error, or ERR_WORKLOADAPI_BAD_RESPONSE saying what. */
function badResponse(err: unknown, what: string): SvidkitError {
  return err instanceof SvidkitError
    ? err
    : new SvidkitError('ERR_WORKLOADAPI_BAD_RESPONSE', `workloadapi: the endpoint sent ${what}`);
}
