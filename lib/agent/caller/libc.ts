/**
 * The three libc calls caller attestation needs and Node lacks: getsockopt(2) for the kernel's record
 * of who is on the other end of a Unix socket, clock_gettime(CLOCK_BOOTTIME) to compare with a
 * process's start time, and sysconf(_SC_CLK_TCK) for the unit of that start time. They go through
 * koffi, as the pidfd calls do (docs/decisions.md): each call costs about a microsecond, far below
 * the RPC it guards, and no compiler is needed at install time.
 */
import { koffiLibc } from '../koffi-libc.js';

/** SOL_SOCKET and the option names below are the generic ones, shared by x86-64 and arm64. */
export const SOL_SOCKET = 1;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } of the peer, as it was at connect(2). */
export const SO_PEERCRED = 17;
/** The address family of the socket itself. */
export const SO_DOMAIN = 39;
/** A pidfd for the peer process (Linux 6.5). */
export const SO_PEERPIDFD = 77;
/** AF_UNIX as SO_DOMAIN reports it. */
export const AF_UNIX = 1;

const CLOCK_BOOTTIME = 7;
const SC_CLK_TCK = 2;

/** The bound libc functions; buffers are passed by reference, never copied. */
export interface Libc {
  /** getsockopt(2) into `value`; `length` holds the socklen_t in and out. Returns 0 or -1. */
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Buffer): number;
  /** errno of the last call on this thread. */
  errno(): number;
  /** CLOCK_BOOTTIME in nanoseconds: the clock /proc/<pid>/stat's start time counts on. */
  boottimeNs(): bigint;
  /** Clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat's start time. */
  readonly clockTicks: number;
}

let loaded: Libc | string | undefined;

/** The bound calls, or why they are not available on this host (the reason is kept, not retried). */
export function libc(): Libc | string {
  if (loaded !== undefined) return loaded;
  const base = koffiLibc('socket option numbers');
  if (typeof base === 'string') {
    loaded = base;
    return loaded;
  }
  try {
    const { koffi, lib } = base;
    const getsockopt = lib.func('int getsockopt(int, int, int, void *, void *)');
    const clockGettime = lib.func('int clock_gettime(int, void *)');
    const sysconf = lib.func('long sysconf(int)');
    const timespec = Buffer.alloc(16);
    const ticks = Number(sysconf(SC_CLK_TCK));
    loaded = {
      getsockopt: (fd, level, name, value, length) => Number(getsockopt(fd, level, name, value, length)),
      errno: () => koffi.errno(),
      boottimeNs: () => {
        if (Number(clockGettime(CLOCK_BOOTTIME, timespec)) !== 0) {
          throw new Error(`clock_gettime(CLOCK_BOOTTIME) failed with errno ${koffi.errno()}`);
        }
        return timespec.readBigInt64LE(0) * 1_000_000_000n + timespec.readBigInt64LE(8);
      },
      // USER_HZ is 100 on every Linux architecture koffi is used on; sysconf only confirms it.
      clockTicks: Number.isSafeInteger(ticks) && ticks > 0 ? ticks : 100,
    };
  } catch (err) {
    loaded = `libc's calls did not bind (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
  }
  return loaded;
}
