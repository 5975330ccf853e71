/**
 * The signal reload action: read a pid from a pid file and signal that process. The agent is root and
 * the pid file is often written by the workload, so the file and the process are both checked before
 * anything is sent:
 *
 * - the pid file is opened without following a symlink and without blocking (a FIFO answers at once),
 *   must be a regular file of at most 64 bytes, owned by the agent or the workload's uid and writable by
 *   neither group nor others;
 * - the process must run (real and effective uid) as the uid the signal is meant for; a pid file that may
 *   name any process, even root's, must be the agent's own and sit in directories only root can change;
 * - the pid must be a process (not a thread of one), not pid 0 or 1, not the agent, never a group;
 * - the process is pinned with a pidfd before it is checked and signalled through it, so a pid reused by
 *   a new process after the check never gets the signal. Without pidfds the start time is read again just
 *   before kill(2), which leaves a window of microseconds.
 */
import { closeSync, constants as fsc } from 'node:fs';
import { lstat, open, realpath } from 'node:fs/promises';
import { constants as osc } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { errnoCode, ReloadError } from './reload-error.js';
import { pidfdOpen, pidfdSendSignal } from './reload-pidfd.js';
import { parseStat } from './caller/proc.js';

/** Largest pid file read; a pid is a few digits. */
export const MAX_PID_FILE = 64;
/** Largest /proc file read (status is about 1.5 KiB). */
const MAX_PROC_FILE = 16 * 1024;
/** PID_MAX_LIMIT of 64-bit Linux: no pid is larger. */
const MAX_PID = 4_194_304;
/** Most path components walked when checking the pid file's directories. */
const MAX_COMPONENTS = 64;

const ESRCH = osc.errno.ESRCH;
/** The sticky bit (Node's fs.constants lacks it). */
const S_ISVTX = 0o1000;

/** A signal to the process a pid file names. */
export interface SignalRequest {
  readonly pidFile: string;
  readonly signal: NodeJS.Signals;
  /**
   * The uid the process must run as (real and effective). Unset: the process may run as anyone, so the
   * pid file itself must be trusted (owned by the agent, in directories nobody else can change).
   */
  readonly uid?: number;
}

/** What a successful signal saw; passed back in on the next run to notice a pid reused behind an unchanged file. */
export interface PidObservation {
  /** Device, inode, mtime and size of the pid file. */
  readonly file: string;
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot at which the process started. */
  readonly startTime: number;
}

/** The outcome of one signal: a line for the log and what to remember. */
export interface SignalResult {
  readonly message: string;
  readonly seen: PidObservation;
}

function refuse(reason: 'pid_file' | 'pid_dir' | 'process' | 'signal', message: string, cause?: unknown): never {
  throw new ReloadError(reason, message, cause === undefined ? undefined : { cause });
}

function agentUid(): number {
  return process.getuid?.() ?? 0;
}

function octal(mode: number | bigint): string {
  return `0${(Number(mode) & 0o7777).toString(8)}`;
}

/**
 * Refuses a directory chain that anyone but root (or the agent) could change: each component must be a
 * directory owned by root or the agent and not writable by group or others unless sticky (in a sticky
 * directory others cannot replace root's entries; what they add is theirs and refused further on). A
 * symlink on the way must be root's too; where it points is checked the same way.
 */
async function checkTrustedDirs(dir: string, uid: number): Promise<void> {
  if (!isAbsolute(dir)) refuse('pid_dir', `pid file directory ${dir} is not absolute`);
  const parts = dir.split('/').filter((p) => p.length > 0);
  if (parts.length > MAX_COMPONENTS) refuse('pid_dir', `pid file directory ${dir} is too deep`);
  const check = async (path: string): Promise<'dir' | 'link'> => {
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      refuse('pid_dir', `cannot inspect pid file directory ${path} (${errnoCode(err)})`, err);
    }
    if (st.uid !== 0 && st.uid !== uid) {
      refuse(
        'pid_dir',
        `pid file directory ${path} is owned by uid ${st.uid}, so its owner could aim the signal at any process; ` +
          'keep the pid file where only root can write, or set reload.signal.uid',
      );
    }
    if (st.isSymbolicLink()) return 'link';
    if (!st.isDirectory()) refuse('pid_dir', `${path} in the pid file's path is not a directory`);
    if ((st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) === 0) {
      refuse(
        'pid_dir',
        `pid file directory ${path} is writable by group or others (mode ${octal(st.mode)}), so they could ` +
          'aim the signal at any process; keep the pid file where only root can write, or set reload.signal.uid',
      );
    }
    return 'dir';
  };
  await check('/');
  let cur = '/';
  for (const part of parts) {
    cur = join(cur, part);
    if ((await check(cur)) === 'dir') continue;
    // A root-owned symlink (/var/run -> /run): check the directories it resolves to, which hold no symlink.
    let real: string;
    try {
      real = await realpath(cur);
    } catch (err) {
      refuse('pid_dir', `cannot resolve ${cur} in the pid file's path (${errnoCode(err)})`, err);
    }
    const realParts = real.split('/').filter((p) => p.length > 0);
    let r = '/';
    for (const p of realParts) {
      r = join(r, p);
      if ((await check(r)) !== 'dir') refuse('pid_dir', `${r} changed while the pid file's path was checked`);
    }
    cur = real;
  }
}

/** Reads the pid file through one handle; `owners` are the uids that may own it. */
async function readPidFile(path: string, owners: readonly number[]): Promise<{ pid: number; file: string }> {
  let before;
  try {
    before = await lstat(path);
  } catch (err) {
    refuse('pid_file', `cannot read pid file ${path} (${errnoCode(err)})`, err);
  }
  // Checked before the open too: opening a device or a FIFO can have effects of its own.
  if (before.isSymbolicLink()) refuse('pid_file', `pid file ${path} is a symbolic link; it is not followed`);
  if (!before.isFile()) refuse('pid_file', `pid file ${path} is not a regular file`);
  let h;
  try {
    h = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    if (errnoCode(err) === 'ELOOP') refuse('pid_file', `pid file ${path} is a symbolic link; it is not followed`);
    refuse('pid_file', `cannot read pid file ${path} (${errnoCode(err)})`, err);
  }
  let text: string;
  let file: string;
  try {
    const st = await h.stat({ bigint: true });
    if (!st.isFile()) refuse('pid_file', `pid file ${path} is not a regular file`);
    if (st.dev !== BigInt(before.dev) || st.ino !== BigInt(before.ino)) {
      refuse('pid_file', `pid file ${path} was replaced while it was opened`);
    }
    if (st.size > BigInt(MAX_PID_FILE))
      refuse('pid_file', `pid file ${path} is too large (over ${MAX_PID_FILE} bytes)`);
    if (!owners.includes(Number(st.uid))) {
      refuse('pid_file', `pid file ${path} is owned by uid ${st.uid}; it must be owned by uid ${owners.join(' or ')}`);
    }
    if ((st.mode & 0o022n) !== 0n) {
      refuse('pid_file', `pid file ${path} is writable by group or others (mode ${octal(st.mode)})`);
    }
    file = `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`;
    const buf = Buffer.alloc(MAX_PID_FILE + 1);
    const { bytesRead } = await h.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_PID_FILE) refuse('pid_file', `pid file ${path} is too large (over ${MAX_PID_FILE} bytes)`);
    text = buf.subarray(0, bytesRead).toString('latin1').trim();
  } catch (err) {
    if (err instanceof ReloadError) throw err;
    refuse('pid_file', `cannot read pid file ${path} (${errnoCode(err)})`, err);
  } finally {
    await h.close();
  }
  // Only a plain positive number: never 0 (our own group), never negative (a group), never pid 1.
  if (!/^\d{1,7}$/.test(text)) refuse('pid_file', `pid file ${path} does not hold a process id`);
  const pid = Number(text);
  if (pid < 2 || pid > MAX_PID) refuse('pid_file', `pid file ${path} holds pid ${pid}, which is never signalled`);
  if (pid === process.pid) refuse('pid_file', `pid file ${path} names the agent itself`);
  return { pid, file };
}

async function readProc(path: string): Promise<string> {
  const h = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(MAX_PROC_FILE);
    let len = 0;
    for (;;) {
      const { bytesRead } = await h.read(buf, len, buf.length - len, null);
      if (bytesRead === 0 || len + bytesRead >= buf.length) {
        len += bytesRead;
        break;
      }
      len += bytesRead;
    }
    return buf.subarray(0, len).toString('latin1');
  } finally {
    await h.close();
  }
}

interface ProcessFacts {
  readonly tgid: number;
  readonly ruid: number;
  readonly euid: number;
  readonly state: string;
  readonly startTime: number;
}

async function processFacts(pid: number): Promise<ProcessFacts> {
  let status: string;
  let stat: string;
  try {
    status = await readProc(`/proc/${pid}/status`);
    stat = await readProc(`/proc/${pid}/stat`);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') refuse('process', `no process has pid ${pid}`);
    refuse('process', `cannot inspect pid ${pid} (${errnoCode(err)})`, err);
  }
  const tgid = /^Tgid:\s*(\d+)$/m.exec(status)?.[1];
  const uids = /^Uid:\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status);
  const s = parseStat(stat);
  if (tgid === undefined || !uids || !s) refuse('process', `cannot read the owner of pid ${pid} from /proc`);
  return { tgid: Number(tgid), ruid: Number(uids[1]), euid: Number(uids[2]), state: s.state, startTime: s.startTime };
}

async function startTimeNow(pid: number): Promise<number | undefined> {
  try {
    return parseStat(await readProc(`/proc/${pid}/stat`))?.startTime;
  } catch {
    return undefined;
  }
}

/** Checks the pid file and its process, then sends the signal; rejects with a ReloadError saying which check refused. */
export async function signalPidFile(req: SignalRequest, previous?: PidObservation): Promise<SignalResult> {
  const self = agentUid();
  // Without a uid to hold the process to, the pid file is the only thing saying which process is meant:
  // it must be as trustworthy as the agent itself.
  const anyProcess = req.uid === undefined || req.uid === self;
  if (anyProcess) await checkTrustedDirs(dirname(req.pidFile), self);
  const owners = req.uid === undefined || req.uid === self ? [self] : [self, req.uid];
  const { pid, file } = await readPidFile(req.pidFile, owners);
  const signo = osc.signals[req.signal];

  // Pin the process first: every check below is about the process this descriptor names.
  const pidfd = pidfdOpen(pid);
  if ('errno' in pidfd) {
    if (pidfd.errno === ESRCH) refuse('process', `no process has pid ${pid} (from ${req.pidFile})`);
    // EINVAL: the pid is a thread, not a process.
    refuse('process', `pid ${pid} (from ${req.pidFile}) cannot be pinned (errno ${pidfd.errno}); nothing was sent`);
  }
  try {
    const p = await processFacts(pid);
    if (p.tgid !== pid) refuse('process', `pid ${pid} (from ${req.pidFile}) is a thread, not a process`);
    if (p.state === 'Z' || p.state === 'X') refuse('process', `pid ${pid} (from ${req.pidFile}) has exited`);
    if (req.uid !== undefined && (p.ruid !== req.uid || p.euid !== req.uid)) {
      refuse(
        'process',
        `pid ${pid} (from ${req.pidFile}) runs as uid ${p.ruid === p.euid ? p.ruid : `${p.ruid}/${p.euid}`}, ` +
          `not uid ${req.uid}; nothing was sent`,
      );
    }
    if (previous && previous.file === file && previous.pid === pid && previous.startTime !== p.startTime) {
      refuse(
        'process',
        `pid ${pid} (from ${req.pidFile}) is a newer process than the one that wrote the pid file; nothing was sent`,
      );
    }
    if ('fd' in pidfd) {
      const errno = pidfdSendSignal(pidfd.fd, signo);
      if (errno === ESRCH) refuse('process', `pid ${pid} (from ${req.pidFile}) exited before the signal`);
      if (errno !== 0) refuse('signal', `cannot send ${req.signal} to pid ${pid} (errno ${errno})`);
    } else {
      // No pidfd on this host: the same process is the one that started at the same tick.
      if ((await startTimeNow(pid)) !== p.startTime) {
        refuse('process', `pid ${pid} (from ${req.pidFile}) changed while it was checked; nothing was sent`);
      }
      try {
        process.kill(pid, signo);
      } catch (err) {
        refuse('signal', `cannot send ${req.signal} to pid ${pid} (${errnoCode(err)})`, err);
      }
    }
    return { message: `sent ${req.signal} to pid ${pid}`, seen: { file, pid, startTime: p.startTime } };
  } finally {
    if ('fd' in pidfd) closeSync(pidfd.fd);
  }
}
