/**
 * A Workload API client for one-shot questions (the first message of a stream, or a unary call), each
 * answer checked as WorkloadApiSource checks it and each failure a typed error at once, without
 * retrying: what a command-line tool wants (`svidkit api fetch ...` exits on PERMISSION_DENIED), and
 * the channel WorkloadApiSource streams over. Every call carries the security header and a deadline.
 */
import type * as GrpcJs from '@grpc/grpc-js';
import type { JwtBundle, X509Bundle } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import type { JWTBundlesResponse__Output } from '../generated/workload/JWTBundlesResponse.js';
import type { JWTSVIDResponse__Output } from '../generated/workload/JWTSVIDResponse.js';
import type { SpiffeWorkloadAPIClient } from '../generated/workload/SpiffeWorkloadAPI.js';
import type { ValidateJWTSVIDResponse__Output } from '../generated/workload/ValidateJWTSVIDResponse.js';
import type { X509BundlesResponse__Output } from '../generated/workload/X509BundlesResponse.js';
import type { X509SVIDResponse__Output } from '../generated/workload/X509SVIDResponse.js';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import { resolveEndpointAddress } from '../workloadapi/address.js';
import { MAX_AUDIENCE_BYTES, MAX_AUDIENCES_PER_REQUEST, MAX_MESSAGE_BYTES } from '../workloadapi/limits.js';
import { loadWorkloadApi } from '../workloadapi/proto.js';
import { now } from './file-check.js';
import {
  parseJwtBundlesResponse,
  parseJwtSvidResponse,
  parseValidateResponse,
  parseX509BundlesResponse,
  parseX509SvidResponse,
  type ServedJwtSvid,
  type ValidatedJwt,
  type X509Context,
} from './workloadapi-parse.js';
import { statusError, workloadMetadata } from './workloadapi-watch.js';

/** Default deadline of a one-shot call. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** Options of WorkloadApiClient.connect. */
export interface WorkloadApiClientOptions {
  /** `unix:///path` or `tcp://IP:port`; default the SPIFFE_ENDPOINT_SOCKET environment variable. */
  address?: string;
  /** Deadline of every call in ms; default 30 s. */
  timeoutMs?: number;
  /** Current time, for validity checks; default `new Date()`. */
  clock?: () => Date;
}

/** The audiences of a JWT request, checked against the bounds. */
export function checkAudience(audience: string | readonly string[]): string[] {
  const list = typeof audience === 'string' ? [audience] : audience;
  const refuse = (why: string): never => {
    throw new SvidkitError('ERR_WORKLOADAPI_REQUEST', `workloadapi: audience ${why}`);
  };
  if (!Array.isArray(list) || list.length === 0) refuse('must be a non-empty string or list of strings');
  if (list.length > MAX_AUDIENCES_PER_REQUEST) refuse(`has more than ${MAX_AUDIENCES_PER_REQUEST} entries`);
  for (const a of list) {
    if (typeof a !== 'string' || a.length === 0) refuse('entries must be non-empty strings');
    if (Buffer.byteLength(a) > MAX_AUDIENCE_BYTES) refuse(`entries must be at most ${MAX_AUDIENCE_BYTES} bytes`);
  }
  return [...list];
}

/** Checks a timeout option: a positive number of milliseconds that setTimeout can hold. */
export function checkTimeout(t: number | undefined, fallback: number): number {
  if (t === undefined) return fallback;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 0x7fffffff) {
    throw new TypeError('source: timeoutMs must be a positive number of milliseconds');
  }
  return t;
}

/** One connection to a Workload API endpoint; close() when done. */
export class WorkloadApiClient {
  /** The gRPC target, `unix:/path` or `IP:port`. */
  readonly target: string;
  /** grpc-js, as loaded at connect(). */
  readonly grpc: typeof GrpcJs;
  /** The generated client; streams opened on it must carry workloadMetadata(). */
  readonly raw: SpiffeWorkloadAPIClient;
  readonly #timeoutMs: number;
  readonly #clock: () => Date;
  #closed = false;

  private constructor(
    target: string,
    grpc: typeof GrpcJs,
    raw: SpiffeWorkloadAPIClient,
    timeoutMs: number,
    clock: () => Date,
  ) {
    this.target = target;
    this.grpc = grpc;
    this.raw = raw;
    this.#timeoutMs = timeoutMs;
    this.#clock = clock;
  }

  /**
   * A client for the endpoint; the connection is made by the first call. Throws TypeError for bad
   * options, ERR_WORKLOADAPI_ADDRESS for a bad or missing address, ERR_WORKLOADAPI_GRPC_MISSING
   * without @grpc/grpc-js or @grpc/proto-loader.
   */
  static async connect(options: WorkloadApiClientOptions = {}): Promise<WorkloadApiClient> {
    if (typeof options !== 'object' || options === null) throw new TypeError('source: options must be an object');
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError('source: clock must be a function');
    }
    const timeoutMs = checkTimeout(options.timeoutMs, DEFAULT_CALL_TIMEOUT_MS);
    const target = resolveEndpointAddress(options.address);
    const { grpc, proto } = await loadWorkloadApi();
    const raw = new proto.SpiffeWorkloadAPI(target, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // The channel's own reconnection backoff (1 s to 120 s by default) would add to the caller's.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 5000,
    });
    return new WorkloadApiClient(target, grpc, raw, timeoutMs, options.clock ?? (() => new Date()));
  }

  #closedError(): SvidkitError {
    return new SvidkitError('ERR_WORKLOADAPI_CLOSED', 'workloadapi: the client is closed');
  }

  /** The first message of a server stream, then the stream is cancelled. */
  #first<T>(
    method: string,
    open: (md: GrpcJs.Metadata, opts: GrpcJs.CallOptions) => GrpcJs.ClientReadableStream<T>,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise<T>((resolve, reject) => {
      const call = open(workloadMetadata(this.grpc), { deadline: Date.now() + this.#timeoutMs });
      let done = false;
      call.on('data', (msg: T) => {
        if (done) return;
        done = true;
        resolve(msg);
        call.cancel();
      });
      call.on('error', () => undefined);
      call.on('status', (st: GrpcJs.StatusObject) => {
        if (done) return;
        done = true;
        reject(
          st.code === this.grpc.status.OK
            ? new SvidkitError('ERR_WORKLOADAPI_UNAVAILABLE', `workloadapi: ${method}: the endpoint ended the stream`)
            : statusError(this.grpc, method, st),
        );
      });
    });
  }

  #unary<Res>(
    method: string,
    call: (
      md: GrpcJs.Metadata,
      opts: GrpcJs.CallOptions,
      cb: (err: GrpcJs.ServiceError | null, res?: Res) => void,
    ) => unknown,
  ): Promise<Res> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise<Res>((resolve, reject) => {
      call(workloadMetadata(this.grpc), { deadline: Date.now() + this.#timeoutMs }, (err, res) => {
        if (err) reject(statusError(this.grpc, method, err));
        else if (res === undefined)
          reject(new SvidkitError('ERR_WORKLOADAPI_BAD_RESPONSE', `workloadapi: ${method}: no answer`));
        else resolve(res);
      });
    });
  }

  /** Every X.509-SVID of this process (the default first) and the X.509 bundles, from the first FetchX509SVID message. */
  async fetchX509Context(): Promise<X509Context> {
    const msg = await this.#first<X509SVIDResponse__Output>('FetchX509SVID', (md, opts) =>
      this.raw.FetchX509SVID({}, md, opts),
    );
    return parseX509SvidResponse(msg, now(this.#clock));
  }

  /** The X.509 bundles, from the first FetchX509Bundles message. */
  async fetchX509Bundles(): Promise<Map<string, X509Bundle>> {
    const msg = await this.#first<X509BundlesResponse__Output>('FetchX509Bundles', (md, opts) =>
      this.raw.FetchX509Bundles({}, md, opts),
    );
    return parseX509BundlesResponse(msg);
  }

  /** The JWT bundles, from the first FetchJWTBundles message. */
  async fetchJwtBundles(): Promise<Map<string, JwtBundle>> {
    const msg = await this.#first<JWTBundlesResponse__Output>('FetchJWTBundles', (md, opts) =>
      this.raw.FetchJWTBundles({}, md, opts),
    );
    return parseJwtBundlesResponse(msg);
  }

  /** Fresh JWT-SVIDs for `audience`: of `spiffeId` when given, else of every identity of this process. */
  async fetchJwtSvids(params: { audience: string | readonly string[]; spiffeId?: string }): Promise<ServedJwtSvid[]> {
    if (typeof params !== 'object' || params === null) throw new TypeError('source: params must be an object');
    const audience = checkAudience(params.audience);
    const asked = params.spiffeId === undefined ? undefined : SpiffeId.parse(params.spiffeId);
    const res = await this.#unary<JWTSVIDResponse__Output>('FetchJWTSVID', (md, opts, cb) =>
      this.raw.FetchJWTSVID({ audience, spiffeId: asked?.toString() ?? '' }, md, opts, cb),
    );
    return parseJwtSvidResponse(res, audience, asked);
  }

  /** Has the endpoint validate `token` for `audience` (ValidateJWTSVID); resolves to its SPIFFE ID and claims. */
  async validateJwtSvid(token: string, audience: string): Promise<ValidatedJwt> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_BYTES) {
      throw new SvidkitError(
        'ERR_WORKLOADAPI_REQUEST',
        `workloadapi: token must be a non-empty string of at most ${MAX_TOKEN_BYTES} bytes`,
      );
    }
    const [aud] = checkAudience(audience);
    const res = await this.#unary<ValidateJWTSVIDResponse__Output>('ValidateJWTSVID', (md, opts, cb) =>
      this.raw.ValidateJWTSVID({ audience: aud!, svid: token }, md, opts, cb),
    );
    return parseValidateResponse(res);
  }

  /** Closes the connection; later calls fail with ERR_WORKLOADAPI_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.raw.close();
  }
}
