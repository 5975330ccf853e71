/** Time limits for the asynchronous parts of an attestation. */
import { SvidkitError } from '../../errors/index.js';

/** The refusal of an attestation whose signal fired (its time limit, or the connection went away). */
export function abortError(signal: AbortSignal, pid: number): SvidkitError {
  const timedOut = signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError';
  return new SvidkitError(
    'ERR_CALLER_PROC',
    timedOut
      ? `caller: attesting pid ${pid} took longer than its time limit`
      : `caller: attesting pid ${pid} was cancelled`,
    { detail: { pid, reason: timedOut ? 'timeout' : 'cancelled' } },
  );
}

/**
 * `work`, or a rejection as soon as `signal` fires. A file read cannot be withdrawn from the kernel
 * once issued, so `work` runs on; only the waiting stops. Its late failure is swallowed here rather
 * than left unhandled, and a late value is handed to `release` (to close a descriptor).
 */
export function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
  pid: number,
  release?: (late: T) => unknown,
): Promise<T> {
  let abandoned = false;
  const late = (value: T) => {
    if (release !== undefined) Promise.resolve(release(value)).catch(() => undefined);
  };
  if (signal.aborted) {
    work.then(late, () => undefined);
    return Promise.reject(abortError(signal, pid));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      abandoned = true;
      reject(abortError(signal, pid));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        // A descriptor that arrives after the wait was given up is closed, not leaked.
        if (abandoned) late(value);
        else resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** A signal that fires after `ms` or when `outer` does; done() releases the timer and the listener. */
export interface Deadline {
  readonly signal: AbortSignal;
  done(): void;
}

/**
 * A per-call deadline. Built by hand rather than with AbortSignal.any: a connection's signal lives as
 * long as the connection, and one dependent signal per RPC must not accumulate on it.
 */
export function deadline(ms: number, outer: AbortSignal | undefined): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('time limit reached', 'TimeoutError')), ms);
  timer.unref();
  const onOuter = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuter();
  else outer?.addEventListener('abort', onOuter, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}
