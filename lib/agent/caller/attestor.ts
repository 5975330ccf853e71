/**
 * Turns the kernel's credentials of a Workload API caller into SPIRE's unix selectors, and checks
 * afterwards that the process they describe is still the one on the connection.
 *
 * Pid reuse is closed in three layers. With a pidfd (SO_PEERPIDFD), the pidfd still naming the same
 * pid after /proc/<pid> was opened proves that directory is the connecting process's. Without one,
 * a process under that pid that started after the credentials were read cannot be the one that
 * connected. Either way, /proc/<pid> is read through one directory descriptor (proc.ts), and
 * recheck() requires the same start time, uid, gid and groups after the selectors were matched (SPIRE's
 * check). The effective uid and gid must also still be those the kernel recorded at connect(2): a
 * caller that connected as one user and then ran a set-uid binary is refused, not attested as root.
 */
import { SvidkitError } from '../../errors/index.js';
import { promises as fsp } from 'node:fs';
import {
  type BinaryIdentity,
  BinaryHasher,
  DEFAULT_HASH_CACHE_ENTRIES,
  DEFAULT_HASH_CONCURRENCY,
  DEFAULT_HASH_TIMEOUT_MS,
  DEFAULT_MAX_BINARY_SIZE,
} from './binary.js';
import { deadline, untilAborted } from './deadline.js';
import { DEFAULT_MAX_NAMES_FILE, NameTable } from './names.js';
import type { PeerCredentials } from './peer.js';
import {
  MAX_PROC_READ,
  parseStat,
  parseStatus,
  pidfdPid,
  procError,
  ProcDir,
  type StatFacts,
  type StatusFacts,
} from './proc.js';

/** Largest /proc/<pid>/stat read: about 300 bytes, and the command name is at most 64. */
const MAX_STAT = 4096;
/** Largest /proc/<pid>/status read: about 1.5 KiB, plus the Groups: line. */
const MAX_STATUS = MAX_PROC_READ;
/** Default limit on supplementary groups (the kernel allows 65,536, each one a selector). */
export const DEFAULT_MAX_GROUPS = 1024;
/** Default time limit of one attestation, hashing included. */
export const DEFAULT_ATTEST_TIMEOUT_MS = 30_000;

/**
 * A further attestor of a caller (the kubelet's, for pods): it reads what it needs of the caller's
 * /proc directory through the descriptor the unix attestation opened, never by a path, and returns
 * the selectors it found (none for a caller it does not describe, a process in no pod). A SvidkitError
 * refuses the caller: an attestor that cannot tell must not let a caller through with fewer selectors.
 */
export interface WorkloadAttestor {
  /** The selector type it produces (`k8s`); every selector it returns starts with `<name>:`. */
  readonly name: string;
  /** The caller's selectors of this type; `proc` reads files of /proc/<pid>, bounded by `max` bytes. */
  attest(
    proc: { readonly pid: number; read(name: string, max: number): string },
    signal: AbortSignal,
  ): Promise<readonly string[]>;
}

/** How callers are attested; every limit has a default. */
export interface CallerAttestorOptions {
  /** Attestors run after the unix one, within the same time limit (default none). */
  readonly workloadAttestors?: readonly WorkloadAttestor[];
  /** Where procfs is mounted (default /proc). */
  readonly procRoot?: string;
  /** The passwd file for unix:user (default /etc/passwd). */
  readonly passwdFile?: string;
  /** The group file for unix:group and unix:supplementary_group (default /etc/group). */
  readonly groupFile?: string;
  /** Add unix:path and unix:sha256 from /proc/<pid>/exe (default false, as in SPIRE). */
  readonly discoverPath?: boolean;
  /** Binaries larger than this get no unix:sha256 selector (default 256 MiB). */
  readonly maxBinarySize?: number;
  /** Time limit of hashing one binary version (default 60 s); later callers find it done. */
  readonly hashTimeoutMs?: number;
  /** Binary versions whose hash is remembered (default 1,024). */
  readonly hashCacheEntries?: number;
  /** Binaries hashed at once (default 2). */
  readonly hashConcurrency?: number;
  /** Time limit of one attestation (default 30 s). */
  readonly timeoutMs?: number;
  /** Callers with more supplementary groups are refused (default 1,024). */
  readonly maxGroups?: number;
  /** Cap on the size of the passwd and group files (default 8 MiB). */
  readonly maxNamesFile?: number;
}

/** Per-call options of attest() and recheck(). */
export interface AttestOptions {
  /** Gives up (ERR_CALLER_PROC, reason "cancelled") when the connection goes away. */
  readonly signal?: AbortSignal;
}

/** A caller as attestation found it. */
export interface AttestedCaller {
  readonly pid: number;
  /** Effective uid (the kernel's record at connect, equal to /proc's now). */
  readonly uid: number;
  /** Effective gid. */
  readonly gid: number;
  /** Supplementary groups, from Groups: in /proc/<pid>/status. */
  readonly groups: readonly number[];
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot at which the process started. */
  readonly startTime: number;
  /** SPIRE's unix selectors ("unix:uid:1000", ...), without duplicates. */
  readonly selectors: readonly string[];
  /** The executable's path, with discoverPath. */
  readonly path?: string;
  /** The executable's SHA-256 in hex, with discoverPath and when it could be hashed. */
  readonly sha256?: string;
  /** Why a selector was left out (a name file unreadable, a binary over the cap); never secret. */
  readonly notes: readonly string[];
}

interface Held {
  readonly credentials: PeerCredentials;
  readonly binary: BinaryIdentity | undefined;
}

function changed(pid: number, reason: string, message: string): SvidkitError {
  return new SvidkitError('ERR_CALLER_CHANGED', `caller: pid ${pid} ${message}`, { detail: { pid, reason } });
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`caller: ${name} must be a positive integer`);
  return value;
}

/** Attests Workload API callers from /proc; one per agent, shared by every connection. */
export class CallerAttestor {
  readonly #procRoot: string;
  readonly #discoverPath: boolean;
  readonly #timeoutMs: number;
  readonly #maxGroups: number;
  readonly #users: NameTable;
  readonly #groupNames: NameTable;
  readonly #hasher: BinaryHasher;
  readonly #held = new WeakMap<AttestedCaller, Held>();
  readonly #workloadAttestors: readonly WorkloadAttestor[];

  constructor(options: CallerAttestorOptions = {}) {
    this.#workloadAttestors = [...(options.workloadAttestors ?? [])];
    this.#procRoot = options.procRoot ?? '/proc';
    this.#discoverPath = options.discoverPath ?? false;
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs, DEFAULT_ATTEST_TIMEOUT_MS);
    this.#maxGroups = positive('maxGroups', options.maxGroups, DEFAULT_MAX_GROUPS);
    const maxNames = positive('maxNamesFile', options.maxNamesFile, DEFAULT_MAX_NAMES_FILE);
    this.#users = new NameTable(options.passwdFile ?? '/etc/passwd', maxNames);
    this.#groupNames = new NameTable(options.groupFile ?? '/etc/group', maxNames);
    this.#hasher = new BinaryHasher({
      maxBytes: positive('maxBinarySize', options.maxBinarySize, DEFAULT_MAX_BINARY_SIZE),
      timeoutMs: positive('hashTimeoutMs', options.hashTimeoutMs, DEFAULT_HASH_TIMEOUT_MS),
      cacheEntries: options.hashCacheEntries ?? DEFAULT_HASH_CACHE_ENTRIES,
      concurrency: positive('hashConcurrency', options.hashConcurrency, DEFAULT_HASH_CONCURRENCY),
    });
  }

  /** How many binary versions have been read and hashed so far (cache hits excluded). */
  get binariesHashed(): number {
    return this.#hasher.hashed;
  }

  /**
   * The caller's selectors. Refuses with ERR_CALLER_GONE (the process exited), ERR_CALLER_CHANGED
   * (the pid now names another process, or its uid or gid is not the one it connected with) or
   * ERR_CALLER_PROC (/proc unreadable or malformed, or the time limit passed).
   */
  async attest(credentials: PeerCredentials, options: AttestOptions = {}): Promise<AttestedCaller> {
    const { pid } = credentials;
    const dir = ProcDir.open(this.#procRoot, pid);
    const limit = deadline(this.#timeoutMs, options.signal);
    const { signal } = limit;
    try {
      // After the open: a pidfd still naming this pid proves the directory is the connecting process's.
      this.#checkPidfd(credentials, 'attest');
      const stat = this.#stat(dir);
      if (stat.startTime > credentials.readAtTicks) {
        throw changed(pid, 'pid_reused', 'now names a process that started after the connection was made');
      }
      const status = this.#status(dir);
      if (status.euid !== credentials.uid || status.egid !== credentials.gid) {
        throw changed(
          pid,
          'ids',
          `runs as uid ${status.euid} gid ${status.egid} but connected as uid ${credentials.uid} gid ${credentials.gid}`,
        );
      }
      const notes: string[] = [];
      let path: string | undefined;
      let sha256: string | undefined;
      let binary: BinaryIdentity | undefined;
      const [users, groups, found] = await untilAborted(
        Promise.all([
          this.#users.lookup([status.euid]),
          this.#groupNames.lookup([status.egid, ...status.groups]),
          this.#discoverPath ? this.#binary(dir, signal) : undefined,
        ]),
        signal,
        pid,
      );
      if (found !== undefined) {
        path = found.path;
        sha256 = found.sha256;
        binary = found.binary;
        notes.push(...found.notes);
      }

      const selectors = new Set<string>([`unix:uid:${status.euid}`]);
      if ('names' in users) {
        const user = users.names.get(status.euid);
        if (user !== undefined) selectors.add(`unix:user:${user}`);
      } else notes.push(`no unix:user selector: ${users.note}`);
      selectors.add(`unix:gid:${status.egid}`);
      const groupName = (gid: number) => ('names' in groups ? groups.names.get(gid) : undefined);
      if (!('names' in groups)) notes.push(`no unix:group selectors: ${groups.note}`);
      const primary = groupName(status.egid);
      if (primary !== undefined) selectors.add(`unix:group:${primary}`);
      for (const gid of status.groups) selectors.add(`unix:supplementary_gid:${gid}`);
      for (const gid of status.groups) {
        const name = groupName(gid);
        if (name !== undefined) selectors.add(`unix:supplementary_group:${name}`);
      }
      if (path !== undefined) selectors.add(`unix:path:${path}`);
      if (sha256 !== undefined) selectors.add(`unix:sha256:${sha256}`);
      for (const attestor of this.#workloadAttestors) {
        const found = await untilAborted(attestor.attest(dir, signal), signal, pid);
        for (const sel of found) {
          if (!sel.startsWith(`${attestor.name}:`)) {
            throw procError(pid, `the ${attestor.name} attestor`, `it returned a selector of another type`);
          }
          selectors.add(sel);
        }
      }

      const caller: AttestedCaller = Object.freeze({
        pid,
        uid: status.euid,
        gid: status.egid,
        groups: Object.freeze([...status.groups]),
        startTime: stat.startTime,
        selectors: Object.freeze([...selectors]),
        ...(path === undefined ? {} : { path }),
        ...(sha256 === undefined ? {} : { sha256 }),
        notes: Object.freeze(notes),
      });
      this.#held.set(caller, { credentials, binary });
      return caller;
    } finally {
      limit.done();
      dir.close();
    }
  }

  /**
   * Checks, after attestation, that the process is still there with the same start time, uid, gid,
   * groups and (with discoverPath) executable; ERR_CALLER_CHANGED otherwise. Call it after matching
   * the selectors and before answering, on every RPC.
   */
  async recheck(caller: AttestedCaller, options: AttestOptions = {}): Promise<void> {
    const held = this.#held.get(caller);
    if (held === undefined) throw new TypeError('caller: recheck() takes a caller this attestor attested');
    const { pid } = caller;
    let dir: ProcDir;
    try {
      dir = ProcDir.open(this.#procRoot, pid);
    } catch (err) {
      if (err instanceof SvidkitError && err.code === 'ERR_CALLER_GONE') throw changed(pid, 'exited', 'has exited');
      throw err;
    }
    try {
      this.#checkPidfd(held.credentials, 'recheck');
      let stat: StatFacts;
      let status: StatusFacts;
      try {
        stat = this.#stat(dir);
        status = this.#status(dir);
      } catch (err) {
        if (err instanceof SvidkitError && err.code === 'ERR_CALLER_GONE') throw changed(pid, 'exited', 'has exited');
        throw err;
      }
      if (stat.startTime !== caller.startTime) {
        throw changed(pid, 'pid_reused', 'now names another process (its start time changed)');
      }
      if (status.euid !== caller.uid || status.egid !== caller.gid || !sameIds(status.groups, caller.groups)) {
        throw changed(pid, 'ids', 'changed its uid, gid or groups since it was attested');
      }
      if (caller.path !== undefined) {
        const link = dir.readlink('exe');
        if (!('path' in link) || link.path !== caller.path) {
          throw changed(pid, 'exe', 'runs another executable than when it was attested');
        }
      }
      if (held.binary !== undefined) {
        const limit = deadline(this.#timeoutMs, options.signal);
        let st;
        try {
          st = await untilAborted(fsp.stat(dir.at('exe'), { bigint: true }), limit.signal, pid);
        } catch (err) {
          if (err instanceof SvidkitError) throw err;
          throw changed(pid, 'exe', 'has no executable any more');
        } finally {
          limit.done();
        }
        if (st.dev !== held.binary.dev || st.ino !== held.binary.ino) {
          throw changed(pid, 'exe', 'runs another executable than when it was attested');
        }
      }
    } finally {
      dir.close();
    }
  }

  #checkPidfd(credentials: PeerCredentials, when: 'attest' | 'recheck'): void {
    const fd = credentials.pidfd;
    if (fd === undefined) return;
    const now = pidfdPid(fd);
    if (now === credentials.pid) return;
    const { pid } = credentials;
    if (now === undefined) throw procError(pid, 'the fdinfo of its pidfd', 'no Pid: line');
    if (when === 'recheck') throw changed(pid, 'exited', 'has exited');
    throw new SvidkitError('ERR_CALLER_GONE', `caller: pid ${pid} exited before it could be attested`, {
      detail: { pid },
    });
  }

  #stat(dir: ProcDir): StatFacts {
    const stat = parseStat(dir.read('stat', MAX_STAT));
    if (stat === undefined) throw procError(dir.pid, 'stat', 'it is not in the kernel format');
    // A zombie keeps its /proc entry (and its uid) until reaped, but nobody runs there any more.
    if (stat.state === 'Z' || stat.state === 'X') {
      throw new SvidkitError('ERR_CALLER_GONE', `caller: pid ${dir.pid} has exited`, { detail: { pid: dir.pid } });
    }
    return stat;
  }

  #status(dir: ProcDir): StatusFacts {
    const status = parseStatus(dir.read('status', MAX_STATUS), this.#maxGroups);
    if (status === 'too many groups') {
      throw procError(dir.pid, 'status', `it lists more than ${this.#maxGroups} supplementary groups`);
    }
    if (status === undefined) throw procError(dir.pid, 'status', 'it is not in the kernel format');
    if (status.tgid !== dir.pid) throw procError(dir.pid, 'status', `it describes thread group ${status.tgid}`);
    return status;
  }

  async #binary(
    dir: ProcDir,
    signal: AbortSignal,
  ): Promise<{ path?: string; sha256?: string; binary?: BinaryIdentity; notes: string[] }> {
    const link = dir.readlink('exe');
    // Leaving a selector out can only match fewer entries, so an unreadable exe is a note, not a refusal.
    if (!('path' in link)) return { notes: [`no unix:path or unix:sha256 selector: exe unreadable (${link.errno})`] };
    const { outcome, id } = await this.#hasher.hash(dir.at('exe'), dir.pid, signal);
    if ('sha256' in outcome) return { path: link.path, sha256: outcome.sha256, binary: id, notes: [] };
    return { path: link.path, binary: id, notes: [`no unix:sha256 selector: ${outcome.note}`] };
  }
}
