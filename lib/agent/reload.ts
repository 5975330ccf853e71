/**
 * Reload actions fired after a workload's files change: a signal to the process named by a pid file
 * (nginx, Envoy's hot restarter) or a command run without a shell. The checks that keep a workload from
 * aiming either at something else live in reload-pid.ts and reload-exec.ts; reload-runner.ts runs them
 * off the rotation loop, one at a time per workload, each with its own deadline.
 */
import { constants } from 'node:os';
import type { ReloadAction } from './config.js';
import { runCommand } from './reload-exec.js';
import { type PidObservation, signalPidFile } from './reload-pid.js';

export type { ReloadAction } from './config.js';
export { ReloadError, type ReloadFailure } from './reload-error.js';

/** True when `name` is a signal this platform knows. */
export function isSignalName(name: string): name is NodeJS.Signals {
  return Object.hasOwn(constants.signals, name);
}

/** Who a reload acts for and what it may remember between runs. */
export interface ReloadContext {
  /** The workload's configured uid: the signalled process must run as it (unless `reload.signal.uid` says otherwise). */
  readonly uid?: number;
  /** Aborting kills a running command's process group. */
  readonly abort?: AbortSignal;
  /** The process the last signal reached; updated after each signal, to notice a pid reused behind an unchanged file. */
  readonly memo?: { seen?: PidObservation };
}

/** Runs a reload action once; resolves with a short description of what happened, rejects with a ReloadError (ERR_AGENT_RELOAD). */
export async function runReload(action: ReloadAction, ctx: ReloadContext = {}): Promise<string> {
  if ('signal' in action) {
    const { pidFile, signal, uid } = action.signal;
    const res = await signalPidFile({ pidFile, signal, uid: uid ?? ctx.uid }, ctx.memo?.seen);
    if (ctx.memo) ctx.memo.seen = res.seen;
    return res.message;
  }
  return runCommand(action.exec, ctx.abort);
}
