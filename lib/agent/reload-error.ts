/**
 * The error every reload action rejects with: ERR_AGENT_RELOAD plus which step refused, so callers and
 * tests switch on `reason` instead of reading the message.
 */
import { SvidkitError } from '../errors/index.js';

/** The step of a reload action that failed. */
export type ReloadFailure =
  /** The pid file is missing, not a regular file, too large, owned or writable by the wrong uid, or holds no pid. */
  | 'pid_file'
  /** The directory holding the pid file can be written by someone the agent does not trust. */
  | 'pid_dir'
  /** The process the pid names is gone, is not the workload's, or is not the one seen before. */
  | 'process'
  /** The kernel refused the signal. */
  | 'signal'
  /** The command could not be started. */
  | 'spawn'
  /** The command exited non-zero or was killed by a signal it did not get from the agent. */
  | 'exit'
  /** The action did not finish within its deadline (for a command: it and everything it started). */
  | 'timeout'
  /** The agent was stopping. */
  | 'stopped';

/** A reload action that did not happen, with the step that refused. */
export class ReloadError extends SvidkitError {
  /** The step that failed. */
  readonly reason: ReloadFailure;

  constructor(reason: ReloadFailure, message: string, options?: { cause?: unknown }) {
    super('ERR_AGENT_RELOAD', `agent: ${message}`, options);
    this.name = 'ReloadError';
    this.reason = reason;
  }
}

/** The errno code of a Node error, for messages. */
export function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}
