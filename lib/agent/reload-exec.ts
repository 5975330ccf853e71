/**
 * The exec reload action: run a command, without a shell, in a process group of its own and with an
 * environment that holds nothing of the agent's (whose own may carry a join token). The command and
 * everything it started must be done (exited, pipes closed) by the deadline; otherwise the whole group
 * gets SIGTERM, then SIGKILL after a short grace, and the run counts as failed. The wait never depends
 * on the pipes: a background child that keeps stdout open is killed with its group.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { errnoCode, ReloadError } from './reload-error.js';

/** The only PATH a reload command gets, unless the configuration's `env` sets another. */
export const EXEC_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/** Time between SIGTERM and SIGKILL to the command's process group at the deadline. */
export const TERM_GRACE_MS = 2000;
/** Most time waited, after SIGKILL, for the killed group to be reaped. */
export const REAP_WAIT_MS = 5000;
/** Most command output kept for the log line. */
const MAX_OUTPUT = 4096;
const POLL_MS = 20;

/** A command to run as a reload action. */
export interface ExecRequest {
  readonly command: readonly string[];
  readonly timeoutMs: number;
  /** NAME=value entries added to the command's environment, as configured. */
  readonly env?: readonly string[];
}

/** The environment of a reload command: PATH and only what the configuration lists. */
export function execEnvironment(env: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = { PATH: EXEC_PATH };
  for (const entry of env) {
    const eq = entry.indexOf('=');
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Waits until the group has no member left or `ms` passed; true when it is gone. */
async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return true;
}

/** Runs the command once; resolves with a short description, rejects with a ReloadError. */
export function runCommand(req: ExecRequest, abort?: AbortSignal): Promise<string> {
  const [cmd, ...args] = req.command;
  if (!cmd) return Promise.reject(new ReloadError('spawn', 'reload command is empty'));
  if (abort?.aborted) return Promise.reject(new ReloadError('stopped', `${cmd} not run: the agent is stopping`));
  return new Promise((resolve, reject) => {
    let output = '';
    let settled = false;
    let stopping = false;
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(cmd, args, {
        detached: true, // its own process group, so the whole group can be killed at the deadline
        stdio: ['ignore', 'pipe', 'pipe'],
        env: execEnvironment(req.env),
        cwd: '/',
        shell: false,
      });
    } catch (err) {
      // Arguments Node refuses before any process exists (a NUL byte).
      reject(new ReloadError('spawn', `cannot run ${cmd} (${errnoCode(err)})`, { cause: err }));
      return;
    }
    // The deadline counts from the spawn; `stop` is defined below and only called once it fires.
    const timer = setTimeout(() => void stop('timeout'), req.timeoutMs);
    const firstLine = () => (output ? `: ${output.trim().split('\n')[0]!.slice(0, 200)}` : '');
    const keep = (d: Buffer) => {
      if (output.length < MAX_OUTPUT) output += d.toString('utf8').slice(0, MAX_OUTPUT - output.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const finish = (err: ReloadError | undefined, ok?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      if (err) reject(err);
      else resolve(ok!);
    };
    // Kills the group: SIGTERM, a grace, SIGKILL, then waits (bounded) for the group to be reaped.
    const stop = async (why: 'timeout' | 'stopped') => {
      if (stopping || settled) return;
      stopping = true;
      const pgid = child.pid;
      const failure =
        why === 'timeout'
          ? new ReloadError(
              'timeout',
              `${cmd} timed out after ${req.timeoutMs} ms; its process group was killed${firstLine()}`,
            )
          : new ReloadError('stopped', `${cmd} was killed: the agent is stopping`);
      if (pgid === undefined) return finish(failure);
      killGroup(pgid, 'SIGTERM');
      if (!(await groupGone(pgid, why === 'timeout' ? TERM_GRACE_MS : 0))) {
        killGroup(pgid, 'SIGKILL');
        // Nothing more is read: a grandchild holding the pipes is dead or about to be.
        child.stdout.destroy();
        child.stderr.destroy();
        await groupGone(pgid, REAP_WAIT_MS);
      }
      finish(failure);
    };
    const onAbort = () => void stop('stopped');
    abort?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      if (child.pid === undefined)
        finish(new ReloadError('spawn', `cannot run ${cmd} (${errnoCode(err)})`, { cause: err }));
    });
    // 'close' comes once the command has exited and every holder of its pipes has closed them.
    child.once('close', (code, signal) => {
      if (stopping) return;
      if (code === 0) finish(undefined, `ran ${cmd}`);
      else
        finish(
          new ReloadError('exit', `${cmd} ${signal ? `was killed by ${signal}` : `exited ${code}`}${firstLine()}`),
        );
    });
  });
}
