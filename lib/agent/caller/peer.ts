/**
 * Who is on the other end of an accepted Unix socket, as the kernel recorded it when the peer called
 * connect(2): SO_PEERCRED's pid, uid and gid, and (Linux 6.5+) SO_PEERPIDFD's pidfd, which names that
 * very process and so can never be confused with a later process given the same pid. Nothing here
 * reads from the socket: it works on a socket still paused for grpc-js.
 */
import { closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { constants as osc } from 'node:os';
import { SvidkitError } from '../../errors/index.js';
import { AF_UNIX, libc, SO_DOMAIN, SO_PEERCRED, SO_PEERPIDFD, SOL_SOCKET } from './libc.js';

const ENOPROTOOPT = osc.errno.ENOPROTOOPT;
const ESRCH = osc.errno.ESRCH;
const ENOTSOCK = osc.errno.ENOTSOCK;
const EBADF = osc.errno.EBADF;

/** Options of peerCredentials. */
export interface PeerCredentialsOptions {
  /** Ask for SO_PEERPIDFD where the kernel has it (default true); false exercises the start-time checks alone. */
  readonly pidfd?: boolean;
}

/**
 * The kernel's record of a Unix socket's peer. Holds a pidfd when the kernel gave one: close() it
 * when the connection ends (it is idempotent).
 */
export class PeerCredentials {
  /** The peer's process id (its thread group), in the agent's pid namespace. */
  readonly pid: number;
  /** The peer's effective uid at connect(2). */
  readonly uid: number;
  /** The peer's effective gid at connect(2). */
  readonly gid: number;
  /**
   * CLOCK_BOOTTIME in clock ticks when the credentials were read. The process that connected started
   * before then, so a process found under the same pid that started later is another one.
   */
  readonly readAtTicks: number;
  #pidfd: number | undefined;

  /** Built by peerCredentials; exported for the attestor's own tests of its /proc handling. */
  constructor(pid: number, uid: number, gid: number, readAtTicks: number, pidfd: number | undefined) {
    this.pid = pid;
    this.uid = uid;
    this.gid = gid;
    this.readAtTicks = readAtTicks;
    this.#pidfd = pidfd;
  }

  /** The pidfd naming the peer process, or undefined (kernel before 6.5, not asked for, or closed). */
  get pidfd(): number | undefined {
    return this.#pidfd;
  }

  /** Closes the pidfd once. */
  close(): void {
    const fd = this.#pidfd;
    if (fd === undefined) return;
    this.#pidfd = undefined;
    closeSync(fd);
  }
}

/** Set once the kernel has said it has no SO_PEERPIDFD, so later connections skip the call. */
let noPeerPidfd = false;

function refuse(message: string, detail?: Record<string, string | number>): never {
  throw new SvidkitError('ERR_CALLER_CREDENTIALS', `caller: ${message}`, detail ? { detail } : undefined);
}

function socketFd(socket: Socket): number {
  // grpc-js never sees our sockets before this call; `_handle` is libuv's Pipe or TCP wrap.
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isSafeInteger(fd) || fd < 0) {
    refuse('the connection has no file descriptor (it is closed, or not an operating-system socket)');
  }
  return fd;
}

/**
 * The kernel's credentials of the peer of an accepted Unix socket. Refuses (ERR_CALLER_CREDENTIALS)
 * a socket without a descriptor, one that is not AF_UNIX, a peer whose pid is not visible in the
 * agent's pid namespace, and a host where the calls cannot be made; ERR_CALLER_GONE when the kernel
 * says the peer has already been reaped.
 */
export function peerCredentials(socket: Socket, options: PeerCredentialsOptions = {}): PeerCredentials {
  const c = libc();
  if (typeof c === 'string') refuse(`cannot read the kernel's credentials of callers: ${c}`);
  const fd = socketFd(socket);
  const value = Buffer.alloc(12);
  const length = Buffer.alloc(4);

  length.writeUInt32LE(4);
  if (c.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, value, length) !== 0) {
    const errno = c.errno();
    if (errno === ENOTSOCK || errno === EBADF) refuse('the connection is not a socket');
    refuse(`getsockopt(SO_DOMAIN) failed with errno ${errno}`, { errno });
  }
  if (value.readInt32LE(0) !== AF_UNIX)
    refuse('the connection is not a Unix socket; callers are identified only on Unix sockets');

  length.writeUInt32LE(12);
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, value, length) !== 0 || length.readUInt32LE(0) !== 12) {
    const errno = c.errno();
    refuse(`getsockopt(SO_PEERCRED) failed with errno ${errno}`, { errno });
  }
  const pid = value.readInt32LE(0);
  const uid = value.readUInt32LE(4);
  const gid = value.readUInt32LE(8);
  // pid 0: the peer lives in a pid namespace the agent cannot see into, so /proc cannot vouch for it.
  if (pid <= 0) refuse('the caller runs in a pid namespace the agent cannot see; its process cannot be inspected');
  let readAtTicks: number;
  try {
    readAtTicks = Number((c.boottimeNs() * BigInt(c.clockTicks)) / 1_000_000_000n);
  } catch (err) {
    refuse(`cannot read the boot-time clock: ${err instanceof Error ? err.message : String(err)}`);
  }

  let pidfd: number | undefined;
  if (options.pidfd !== false && !noPeerPidfd) {
    length.writeUInt32LE(4);
    if (c.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, value, length) === 0 && length.readUInt32LE(0) === 4) {
      pidfd = value.readInt32LE(0);
    } else {
      const errno = c.errno();
      if (errno === ENOPROTOOPT) noPeerPidfd = true;
      else if (errno === ESRCH) {
        throw new SvidkitError('ERR_CALLER_GONE', `caller: pid ${pid} exited before it could be identified`, {
          detail: { pid },
        });
      } else refuse(`getsockopt(SO_PEERPIDFD) failed with errno ${errno}`, { errno });
    }
  }
  return new PeerCredentials(pid, uid, gid, readAtTicks, pidfd);
}
