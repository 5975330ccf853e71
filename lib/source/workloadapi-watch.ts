/**
 * The update lifecycle of WorkloadApiSource, apart from its state: keeps one server stream open,
 * hands each message over, and after UNAVAILABLE or a dropped stream opens it again after a backoff.
 * The backoff is injectable (tests make it zero) and bounded; it starts over after a message arrives.
 * INVALID_ARGUMENT and UNIMPLEMENTED end the watch: the standard says a client must not retry them.
 */
import type * as GrpcJs from '@grpc/grpc-js';
import { SvidkitError } from '../errors/index.js';
import { WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE } from '../workloadapi/limits.js';

/** Longest wait between two attempts, whatever the backoff function says. */
export const MAX_BACKOFF_MS = 5 * 60_000;

/** Default backoff: 100 ms doubling to 30 s, with up to 10% jitter so that many clients do not retry in step. */
export function defaultBackoff(attempt: number): number {
  const base = Math.min(30_000, 100 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (1 + Math.random() * 0.1));
}

/** The wait before attempt `attempt` (0-based) from `backoff`, bounded to [0, MAX_BACKOFF_MS]. */
export function backoffDelay(backoff: (attempt: number) => number, attempt: number): number {
  let ms: number;
  try {
    ms = backoff(attempt);
  } catch {
    ms = defaultBackoff(attempt);
  }
  if (typeof ms !== 'number' || !Number.isFinite(ms)) ms = defaultBackoff(attempt);
  return Math.min(MAX_BACKOFF_MS, Math.max(0, Math.round(ms)));
}

/** The request metadata every Workload API call carries. */
export function workloadMetadata(grpc: typeof GrpcJs): GrpcJs.Metadata {
  const md = new grpc.Metadata();
  md.set(WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE);
  return md;
}

/** A status text from the server, cut short and stripped of control characters before it enters a message. */
function safeDetails(details: unknown): string {
  if (typeof details !== 'string' || details === '') return '';
  let text = '';
  for (const ch of details.slice(0, 200)) text += ch < ' ' || ch === '\x7f' ? ' ' : ch;
  return `: ${text}`;
}

/** The SvidkitError for a failed Workload API call. */
export function statusError(
  grpc: typeof GrpcJs,
  method: string,
  err: { code?: number; details?: string },
): SvidkitError {
  const code = typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN;
  const name = grpc.status[code] ?? String(code);
  const details = safeDetails(err.details);
  const detail = { method, status: name };
  switch (code) {
    case grpc.status.PERMISSION_DENIED:
      return new SvidkitError(
        'ERR_WORKLOADAPI_PERMISSION_DENIED',
        `workloadapi: ${method}: the endpoint has no identity for this process (PERMISSION_DENIED${details})`,
        { detail },
      );
    case grpc.status.UNAVAILABLE:
      return new SvidkitError(
        'ERR_WORKLOADAPI_UNAVAILABLE',
        `workloadapi: ${method}: the endpoint is unavailable (UNAVAILABLE${details})`,
        { detail },
      );
    case grpc.status.INVALID_ARGUMENT:
      return new SvidkitError(
        'ERR_WORKLOADAPI_INVALID_ARGUMENT',
        `workloadapi: ${method}: the endpoint refused the request (INVALID_ARGUMENT${details})`,
        { detail },
      );
    case grpc.status.DEADLINE_EXCEEDED:
      return new SvidkitError('ERR_WORKLOADAPI_TIMEOUT', `workloadapi: ${method}: no answer in time`, { detail });
    default:
      return new SvidkitError('ERR_WORKLOADAPI_FAILED', `workloadapi: ${method}: failed with ${name}${details}`, {
        detail,
      });
  }
}

/** What a StreamWatcher is told. */
export interface StreamHandlers<T> {
  /** Opens the stream (with the header); called again for every reconnection. */
  open(): GrpcJs.ClientReadableStream<T>;
  /** One message of the current stream. A throw is reported and the stream stays open. */
  message(msg: T): void;
  /** The stream ended with this error; `final` when the watch stops for good. */
  failed(err: SvidkitError, final: boolean): void;
}

/** Keeps one server stream open until stop(). */
export class StreamWatcher<T> {
  readonly #grpc: typeof GrpcJs;
  readonly #method: string;
  readonly #handlers: StreamHandlers<T>;
  readonly #backoff: (attempt: number) => number;
  #call: GrpcJs.ClientReadableStream<T> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #stopped = false;

  constructor(grpc: typeof GrpcJs, method: string, handlers: StreamHandlers<T>, backoff: (attempt: number) => number) {
    this.#grpc = grpc;
    this.#method = method;
    this.#handlers = handlers;
    this.#backoff = backoff;
  }

  /** Opens the stream now. */
  start(): void {
    if (this.#stopped || this.#call !== undefined) return;
    let call: GrpcJs.ClientReadableStream<T>;
    try {
      call = this.#handlers.open();
    } catch (err) {
      const e = err instanceof SvidkitError ? err : statusError(this.#grpc, this.#method, {});
      this.#ended(undefined, e);
      return;
    }
    this.#call = call;
    call.on('data', (msg: T) => {
      if (this.#stopped || this.#call !== call) return;
      this.#attempt = 0;
      this.#handlers.message(msg);
    });
    // 'status' comes exactly once, after the last message, with or without an error; 'error' repeats it.
    call.on('error', () => undefined);
    call.on('status', (st: GrpcJs.StatusObject) => {
      const err =
        st.code === this.#grpc.status.OK
          ? new SvidkitError(
              'ERR_WORKLOADAPI_UNAVAILABLE',
              `workloadapi: ${this.#method}: the endpoint ended the stream`,
              {
                detail: { method: this.#method, status: 'OK' },
              },
            )
          : statusError(this.#grpc, this.#method, st);
      this.#ended(call, err);
    });
  }

  #ended(call: GrpcJs.ClientReadableStream<T> | undefined, err: SvidkitError): void {
    if (this.#stopped || this.#call !== call) return;
    this.#call = undefined;
    const final = err.code === 'ERR_WORKLOADAPI_INVALID_ARGUMENT' || err.detail['status'] === 'UNIMPLEMENTED';
    this.#handlers.failed(err, final);
    if (final || this.#stopped) return;
    const delay = backoffDelay(this.#backoff, this.#attempt++);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start();
    }, delay);
    // Like FileSource's timers, a pending reconnection never keeps a process alive on its own.
    this.#timer.unref();
  }

  /** Cancels the stream and any pending reconnection. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const call = this.#call;
    this.#call = undefined;
    if (call) {
      call.on('error', () => undefined);
      call.cancel();
    }
  }
}
