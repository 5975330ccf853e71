/**
 * SHA-256 of a caller's executable, for the unix:sha256 selector. The file is opened through
 * /proc/<pid>/exe, so it is the binary the process runs even when its path was replaced or deleted.
 *
 * A binary is hostile input: it may be huge, on a FUSE mount that never answers, or rewritten while
 * read. So hashing is asynchronous and in chunks, capped in size and in time, shared by every caller
 * running the same binary version, limited in how many run at once, and cancelled when nobody waits
 * for it any more. Each version, named by (device, inode, size, mtime, ctime), is hashed at most once
 * while it stays in a bounded LRU; a version that was too large, timed out or changed while read is
 * remembered too, so a hanging file costs one stuck read, not one per caller.
 */
import { createHash } from 'node:crypto';
import { type BigIntStats, constants, promises as fsp } from 'node:fs';
import { LruMap } from '../../internal/lru.js';
import { errnoOf } from '../../layout/index.js';
import { untilAborted } from './deadline.js';

/** Default size cap of a hashed binary. */
export const DEFAULT_MAX_BINARY_SIZE = 256 * 1024 * 1024;
/** Default time limit of hashing one binary version. */
export const DEFAULT_HASH_TIMEOUT_MS = 60_000;
/** Default number of binary versions remembered. */
export const DEFAULT_HASH_CACHE_ENTRIES = 1024;
/** Default number of binaries hashed at once (each holds a thread-pool thread while it reads). */
export const DEFAULT_HASH_CONCURRENCY = 2;

const CHUNK = 1024 * 1024;

/** The hash of a binary, or why there is none. */
export type HashOutcome = { readonly sha256: string } | { readonly note: string };

/** The limits of a BinaryHasher. */
export interface BinaryHasherOptions {
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly cacheEntries: number;
  readonly concurrency: number;
}

/** The identity of an opened binary: what it was hashed under, and what a recheck compares. */
export interface BinaryIdentity {
  readonly key: string;
  readonly dev: bigint;
  readonly ino: bigint;
}

function identity(st: BigIntStats): BinaryIdentity {
  return { key: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, dev: st.dev, ino: st.ino };
}

interface Job {
  readonly key: string;
  readonly promise: Promise<HashOutcome>;
  readonly controller: AbortController;
  waiters: number;
}

/** Hashes binaries under the limits it was built with; one per attestor. */
export class BinaryHasher {
  readonly #options: BinaryHasherOptions;
  readonly #done: LruMap<HashOutcome>;
  readonly #running = new Map<string, Job>();
  readonly #queue: Array<() => void> = [];
  #active = 0;
  #hashed = 0;

  constructor(options: BinaryHasherOptions) {
    this.#options = options;
    this.#done = new LruMap(options.cacheEntries);
  }

  /** How many binary versions have been read and hashed (a cache hit does not count). */
  get hashed(): number {
    return this.#hashed;
  }

  /**
   * The hash of the binary at `exe` (a /proc/self/fd/<fd>/exe path), with its identity; `signal`
   * gives up waiting (and, when no other caller waits for the same version, the hashing itself).
   */
  async hash(exe: string, pid: number, signal: AbortSignal): Promise<{ outcome: HashOutcome; id?: BinaryIdentity }> {
    let h: fsp.FileHandle;
    try {
      // O_NONBLOCK: the kernel only runs regular files, but nothing here may wait on a FIFO's writer.
      const opening = fsp.open(exe, constants.O_RDONLY | constants.O_NONBLOCK);
      h = await untilAborted(opening, signal, pid, (late) => late.close());
    } catch (err) {
      if (signal.aborted) throw err;
      return { outcome: { note: `its binary could not be opened (${errnoOf(err) ?? String(err)})` } };
    }
    let handOver = false;
    try {
      const st = await untilAborted(h.stat({ bigint: true }), signal, pid);
      if (!st.isFile()) return { outcome: { note: 'its binary is not a regular file' } };
      const id = identity(st);
      const known = this.#done.get(id.key);
      if (known !== undefined) return { outcome: known, id };
      if (st.size > BigInt(this.#options.maxBytes)) {
        const outcome = { note: `its binary is larger than the ${this.#options.maxBytes}-byte cap on hashing` };
        this.#done.set(id.key, outcome);
        return { outcome, id };
      }
      let job = this.#running.get(id.key);
      if (job === undefined) {
        handOver = true;
        job = this.#start(h, id.key);
      }
      return { outcome: await this.#wait(job, signal, pid), id };
    } finally {
      // The job that reads the file closes it; a caller that found the version known closes its own.
      if (!handOver) h.close().catch(() => undefined);
    }
  }

  #start(h: fsp.FileHandle, key: string): Job {
    const controller = new AbortController();
    const timeout = AbortSignal.timeout(this.#options.timeoutMs);
    const signal = AbortSignal.any([controller.signal, timeout]);
    const promise = this.#read(h, signal)
      .then(
        (outcome) => {
          // A cancelled job is not remembered: the next caller of that version tries again.
          if (!controller.signal.aborted) this.#done.set(key, outcome);
          return outcome;
        },
        (err: unknown) => {
          const outcome = { note: `its binary could not be read (${errnoOf(err) ?? String(err)})` };
          this.#done.set(key, outcome);
          return outcome;
        },
      )
      .finally(() => this.#forget(key, job));
    const job: Job = { key, promise, controller, waiters: 0 };
    this.#running.set(key, job);
    return job;
  }

  #forget(key: string, job: Job): void {
    if (this.#running.get(key) === job) this.#running.delete(key);
  }

  async #wait(job: Job, signal: AbortSignal, pid: number): Promise<HashOutcome> {
    job.waiters++;
    try {
      return await untilAborted(job.promise, signal, pid);
    } finally {
      job.waiters--;
      if (job.waiters === 0 && signal.aborted) {
        // Nobody waits any more: stop reading, and let the next caller of this version start afresh.
        this.#forget(job.key, job);
        job.controller.abort();
      }
    }
  }

  async #slot(signal: AbortSignal): Promise<boolean> {
    if (this.#active < this.#options.concurrency) {
      this.#active++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const take = () => {
        signal.removeEventListener('abort', leave);
        this.#active++;
        resolve(true);
      };
      const leave = () => {
        const i = this.#queue.indexOf(take);
        if (i >= 0) this.#queue.splice(i, 1);
        resolve(false);
      };
      this.#queue.push(take);
      signal.addEventListener('abort', leave, { once: true });
    });
  }

  #release(): void {
    this.#active--;
    this.#queue.shift()?.();
  }

  async #read(h: fsp.FileHandle, signal: AbortSignal): Promise<HashOutcome> {
    let stuck: Promise<unknown> | undefined;
    try {
      if (!(await this.#slot(signal))) return { note: 'hashing its binary was cancelled or timed out while queued' };
      try {
        const before = await h.stat({ bigint: true });
        const digest = createHash('sha256');
        const buf = Buffer.alloc(CHUNK);
        let total = 0;
        for (;;) {
          if (signal.aborted) return { note: 'hashing its binary was cancelled or took longer than its time limit' };
          const reading = h.read(buf, 0, buf.length, total);
          let n: number;
          try {
            n = (await untilAborted(reading, signal, 0)).bytesRead;
          } catch {
            // The read is still in the kernel (a FUSE file that never answers): leave it be, but keep
            // its slot until it returns, so hung binaries pin at most `concurrency` pool threads.
            stuck = reading.catch(() => undefined);
            return { note: 'hashing its binary was cancelled or took longer than its time limit' };
          }
          if (n === 0) break;
          total += n;
          if (total > this.#options.maxBytes) {
            return { note: `its binary grew past the ${this.#options.maxBytes}-byte cap while hashed` };
          }
          digest.update(buf.subarray(0, n));
        }
        const after = await h.stat({ bigint: true });
        if (identity(after).key !== identity(before).key || BigInt(total) !== after.size) {
          return { note: 'its binary changed while it was hashed' };
        }
        this.#hashed++;
        return { sha256: digest.digest('hex') };
      } finally {
        if (stuck === undefined) this.#release();
        else void stuck.then(() => this.#release());
      }
    } finally {
      // Closing waits for a pending read, so a stuck one is not waited for.
      const closing = h.close().catch(() => undefined);
      if (stuck === undefined) await closing;
    }
  }
}
