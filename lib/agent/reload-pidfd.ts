/**
 * Process file descriptors (Linux 5.3+): a pidfd names one process, not a number, so a signal sent
 * through it can never reach a later process that was given the same pid. Node has no API for them;
 * libc's syscall() is called through koffi. When koffi cannot load, the architecture's numbers are
 * unknown or the kernel answers ENOSYS, callers fall back to plain kill(2) (see reload-pid.ts).
 */
import { koffiLibc } from './koffi-libc.js';

/** What the pidfd calls answered: an fd, a refusal with its errno, or "not available here". */
export type PidfdResult = { readonly fd: number } | { readonly errno: number } | { readonly unavailable: string };

interface Syscalls {
  open(pid: number): number;
  sendSignal(fd: number, signal: number): number;
  errno(): number;
}

// The generic syscall table: the same on x86-64 and arm64 (other architectures offset them).
const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;
const ENOSYS = 38;

let loaded: Syscalls | string | undefined;

function load(): Syscalls | string {
  if (loaded !== undefined) return loaded;
  const base = koffiLibc('pidfd syscall numbers');
  if (typeof base === 'string') {
    loaded = base;
    return loaded;
  }
  try {
    const { koffi, lib } = base;
    const syscall = lib.func('long syscall(long, ...)');
    loaded = {
      open: (pid) => Number(syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', 0)),
      sendSignal: (fd, signal) =>
        Number(syscall(SYS_PIDFD_SEND_SIGNAL, 'int', fd, 'int', signal, 'void *', null, 'unsigned int', 0)),
      errno: () => koffi.errno(),
    };
  } catch (err) {
    loaded = `libc's syscall did not bind (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
  return loaded;
}

/** pidfd_open(pid, 0): a descriptor for the process that holds `pid` now. */
export function pidfdOpen(pid: number): PidfdResult {
  const s = load();
  if (typeof s === 'string') return { unavailable: s };
  const fd = s.open(pid);
  if (fd >= 0) return { fd };
  const errno = s.errno();
  if (errno === ENOSYS) {
    loaded = 'the kernel has no pidfd_open (before Linux 5.3)';
    return { unavailable: loaded };
  }
  return { errno };
}

/** pidfd_send_signal(fd, signal, NULL, 0): 0, or the errno. */
export function pidfdSendSignal(fd: number, signal: number): number {
  const s = load();
  if (typeof s === 'string') return ENOSYS;
  return s.sendSignal(fd, signal) === 0 ? 0 : s.errno();
}

/** Why pidfds are not used on this host, or undefined when they are. */
export function pidfdUnavailable(): string | undefined {
  const s = load();
  return typeof s === 'string' ? s : undefined;
}
