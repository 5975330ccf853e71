/**
 * Reload actions fired after a workload's files change: a signal to the process named by a pid file
 * (nginx, Envoy's hot restarter) or a command run without a shell. Failures are reported to the caller,
 * never thrown past it: a broken reload must not stop rotation.
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { constants } from 'node:os';
import { SvidkitError } from '../errors/index.js';

/** A reload action as configured. */
export type ReloadAction =
  | { readonly signal: { readonly pidFile: string; readonly signal: NodeJS.Signals } }
  | { readonly exec: { readonly command: readonly string[]; readonly timeoutMs: number } };

/** Largest pid file read; a pid is a few digits. */
const MAX_PID_FILE = 64;
/** Most command output kept for the log line. */
const MAX_OUTPUT = 4096;

function fail(message: string, cause?: unknown): never {
  throw new SvidkitError('ERR_AGENT_RELOAD', `agent: ${message}`, cause === undefined ? undefined : { cause });
}

/** True when `name` is a signal this platform knows. */
export function isSignalName(name: string): name is NodeJS.Signals {
  return Object.hasOwn(constants.signals, name);
}

async function readPid(path: string): Promise<number> {
  let text: string;
  try {
    const h = await open(path, 'r');
    try {
      const buf = Buffer.alloc(MAX_PID_FILE + 1);
      const { bytesRead } = await h.read(buf, 0, buf.length, 0);
      if (bytesRead > MAX_PID_FILE) fail(`pid file ${path} is too large`);
      text = buf.subarray(0, bytesRead).toString('utf8').trim();
    } finally {
      await h.close();
    }
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    fail(`cannot read pid file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  // Never signal pid 0, 1 or a negative pid (a process group): only one real process.
  if (!/^\d{1,10}$/.test(text) || Number(text) < 2) fail(`pid file ${path} does not hold a process id`);
  return Number(text);
}

/** Runs a reload action once; resolves with a short description of what happened, rejects with ERR_AGENT_RELOAD. */
export async function runReload(action: ReloadAction): Promise<string> {
  if ('signal' in action) {
    const pid = await readPid(action.signal.pidFile);
    try {
      process.kill(pid, action.signal.signal);
    } catch (err) {
      fail(
        `cannot send ${action.signal.signal} to pid ${pid} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        err,
      );
    }
    return `sent ${action.signal.signal} to pid ${pid}`;
  }
  const [cmd, ...args] = action.exec.command;
  if (!cmd) fail('reload command is empty');
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: action.exec.timeoutMs, shell: false });
    const keep = (d: Buffer) => {
      if (output.length < MAX_OUTPUT) output += d.toString().slice(0, MAX_OUTPUT - output.length);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (err) =>
      reject(
        new SvidkitError(
          'ERR_AGENT_RELOAD',
          `agent: cannot run ${cmd} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          { cause: err },
        ),
      ),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve(`ran ${cmd}`);
      else
        reject(
          new SvidkitError(
            'ERR_AGENT_RELOAD',
            `agent: ${cmd} ${signal ? `was killed by ${signal}` : `exited ${code}`}${output ? `: ${output.trim().split('\n')[0]}` : ''}`,
          ),
        );
    });
  });
}
