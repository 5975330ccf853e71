/**
 * One workload's reloads, off the rotation loop: the loop asks for a reload and goes on. At most one
 * run is in flight per workload; requests made meanwhile fold into exactly one more run after it (the
 * files it reloads are the newest by then). Each run has its own deadline, so a workload whose reload
 * hangs holds back only its own later reloads, never another workload's rotation.
 */
import type { ReloadAction } from './config.js';
import { REAP_WAIT_MS, TERM_GRACE_MS } from './reload-exec.js';
import { ReloadError } from './reload-error.js';
import type { PidObservation } from './reload-pid.js';
import { runReload } from './reload.js';

/** Deadline of one signal action: opening a pid file, reading /proc and one syscall. */
export const SIGNAL_DEADLINE_MS = 5000;

/** How a runner tells its owner what happened: the description of a run, or why it failed. */
export type ReloadReport = (ok: boolean, detail: unknown) => void;

/** Runs one workload's reload action on request, never two at once. */
export class ReloadRunner {
  readonly #action: ReloadAction;
  readonly #uid: number | undefined;
  readonly #report: ReloadReport;
  readonly #abort = new AbortController();
  readonly #memo: { seen?: PidObservation } = {};
  #inFlight: Promise<void> | undefined;
  #again = false;
  #closed = false;

  /** `uid` is the workload's configured uid; `report` is called once per run. */
  constructor(action: ReloadAction, uid: number | undefined, report: ReloadReport) {
    this.#action = action;
    this.#uid = uid;
    this.#report = report;
  }

  /** Asks for a run; returns at once. */
  request(): void {
    if (this.#closed) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    this.#inFlight = this.#drain().finally(() => {
      this.#inFlight = undefined;
    });
  }

  /** True while a run is in flight. */
  get busy(): boolean {
    return this.#inFlight !== undefined;
  }

  async #drain(): Promise<void> {
    do {
      this.#again = false;
      await this.#once();
    } while (this.#again && !this.#closed);
  }

  #deadline(): number {
    if ('signal' in this.#action) return SIGNAL_DEADLINE_MS;
    // The command's own timer fires first and kills its group; this one only guards against a hang in that.
    return this.#action.exec.timeoutMs + TERM_GRACE_MS + REAP_WAIT_MS + 1000;
  }

  async #once(): Promise<void> {
    const deadline = this.#deadline();
    const op = runReload(this.#action, { uid: this.#uid, abort: this.#abort.signal, memo: this.#memo });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ReloadError('timeout', `reload action did not finish within ${deadline} ms`)),
        deadline,
      );
    });
    try {
      this.#report(true, await Promise.race([op, late]));
    } catch (err) {
      this.#report(false, err);
    } finally {
      clearTimeout(timer);
    }
    // A run past its deadline may still hang in the kernel (a dead NFS mount): the next run waits for it
    // rather than piling up another.
    await op.catch(() => undefined);
  }

  /** Stops taking requests, kills a running command's group and waits (bounded) for the run to end. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#again = false;
    this.#abort.abort();
    const running = this.#inFlight;
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([running, new Promise<void>((r) => (timer = setTimeout(r, REAP_WAIT_MS + 1000)))]);
    clearTimeout(timer);
  }
}
