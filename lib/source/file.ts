/**
 * A source that reads an SVID, its bundles and JWT-SVIDs from a directory and follows it as files
 * are rotated: the svidkit-agent's atomic layout (`..data` swapped by rename), or the plain files of
 * spiffe-helper and cert-manager.
 *
 * Every read is checked before it is accepted: the key matches the leaf, the chain verifies against
 * the bundle of the SVID's own trust domain at `clock()`. A read that fails any check leaves the last
 * good set in place and is reported through `options.onError`; the source never switches to an invalid
 * set and logs nothing by itself. The directory (not the files) is watched with chokidar, because a
 * watch on a file path misses replaced inodes on Linux; a slow periodic re-read is the safety net.
 */
import * as fsp from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { BundleSet, type JwtBundle, type X509Bundle } from '../bundle/index.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import {
  DATA_LINK as DATA,
  errnoOf,
  FILE_LAYOUTS,
  type FileLayout,
  type FileNames,
  layoutBaseNames,
  resolveFileNames,
  tokenFileName,
} from '../layout/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { X509Svid } from '../x509svid/index.js';
import { checkSet, now, safeCause, type State } from './file-check.js';
import { readSet } from './file-read.js';
import type { JwtSource, JwtSvidSource, Unsubscribe, X509Source } from './types.js';

export { FileSourceError } from './file-read.js';

/** Default interval of the safety-net re-read. */
export const DEFAULT_POLL_INTERVAL_MS = 30_000;
/** Default quiet time after a file event before the directory is read. */
export const DEFAULT_DEBOUNCE_MS = 50;

/** Options of FileSource.open. */
export interface FileSourceOptions {
  /** Default 'svidkit'. */
  layout?: FileLayout;
  /**
   * Overrides of the file names, with the keys of the agent's FileNames. Defaults: the agent's names
   * for 'svidkit' and 'spiffe-helper' (svid.pem, svid_key.pem, svid_bundle.pem, jwt_bundle.json);
   * tls.crt, tls.key and ca.crt (as svid, key, bundle) for 'cert-manager'.
   */
  names?: Partial<FileNames>;
  /** Current time, for validity checks; default `new Date()`. */
  clock?: () => Date;
  /** Interval of the safety-net re-read in ms; default 30 s; 0 disables it. */
  pollIntervalMs?: number;
  /** Quiet time in ms after a file event before reading; default 50. */
  debounceMs?: number;
  /** Watch the directory for changes; default true. Without it only the periodic re-read notices changes. */
  watch?: boolean;
  /**
   * Called with every problem found after open(): an unreadable or invalid set (the last good set
   * stays), a JWT-SVID file that was left out, a watcher or listener failure. Messages never quote
   * file contents. A problem with a read is a FileSourceError, which names the file and the version
   * directory it was read from.
   */
  onError?: (err: SvidkitError) => void;
}

/** What a FileSource currently serves; safe to log. */
export interface FileSourceStatus {
  dir: string;
  layout: FileLayout;
  /** SPIFFE ID of the current X.509-SVID. */
  spiffeId: string | undefined;
  /** Serial number (hex) of the current leaf. */
  serial: string | undefined;
  notAfter: Date | undefined;
  /** When the current set was accepted. */
  updatedAt: Date | undefined;
  /** File names of the loaded JWT-SVIDs. */
  jwtSvidFiles: string[];
  /** Message of the last problem, cleared by the next read without problems; never file contents. */
  lastError: string | undefined;
  lastErrorCode: ErrorCode | undefined;
  lastErrorAt: Date | undefined;
  closed: boolean;
}

/** Longest a burst of events can hold a read back, in debounce periods. */
const MAX_DEBOUNCE_PERIODS = 10;

interface Settings {
  dir: string;
  layout: FileLayout;
  names: FileNames;
  clock: () => Date;
  pollIntervalMs: number;
  debounceMs: number;
  watch: boolean;
  onError: ((err: SvidkitError) => void) | undefined;
}

function sourceError(code: ErrorCode, message: string, cause?: unknown): SvidkitError {
  return new SvidkitError(code, `source: ${message}`, cause === undefined ? undefined : { cause });
}

function checkNumber(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 0x7fffffff) {
    throw new TypeError(`source: ${name} must be a non-negative number of milliseconds`);
  }
  return value;
}

function layoutNames(layout: FileLayout, names: Partial<FileNames> | undefined): FileNames {
  if (names !== undefined && (typeof names !== 'object' || names === null)) {
    throw new TypeError('source: names must be an object');
  }
  return resolveFileNames({ ...layoutBaseNames(layout), ...names }, 'source');
}

function checkOptions(dir: string, opts: FileSourceOptions): Settings {
  if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) {
    throw new TypeError('source: dir must be a non-empty path');
  }
  if (typeof opts !== 'object' || opts === null) throw new TypeError('source: options must be an object');
  const layout = opts.layout ?? 'svidkit';
  if (!FILE_LAYOUTS.includes(layout)) {
    throw new TypeError(`source: layout must be one of ${FILE_LAYOUTS.join(', ')}`);
  }
  if (opts.clock !== undefined && typeof opts.clock !== 'function') {
    throw new TypeError('source: clock must be a function');
  }
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw new TypeError('source: onError must be a function');
  }
  if (opts.watch !== undefined && typeof opts.watch !== 'boolean')
    throw new TypeError('source: watch must be a boolean');
  return {
    dir: resolve(dir),
    layout,
    names: layoutNames(layout, opts.names),
    clock: opts.clock ?? (() => new Date()),
    pollIntervalMs: checkNumber('pollIntervalMs', opts.pollIntervalMs, DEFAULT_POLL_INTERVAL_MS),
    debounceMs: checkNumber('debounceMs', opts.debounceMs, DEFAULT_DEBOUNCE_MS),
    watch: opts.watch ?? true,
    onError: opts.onError,
  };
}

/**
 * An X.509 and JWT source over a directory of files. open() reads it once and fails closed (no
 * source without a valid SVID); afterwards it follows changes until close(). Getters serve the last
 * good set; onUpdate listeners run only when the accepted set actually changed.
 */
export class FileSource implements X509Source, JwtSource, JwtSvidSource {
  readonly #s: Settings;
  #state: State | undefined;
  readonly #listeners = new Set<() => void>();
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #burstStart = 0;
  #inflight: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #lastError: SvidkitError | undefined;
  #lastErrorAt: Date | undefined;

  private constructor(settings: Settings) {
    this.#s = settings;
  }

  /**
   * Reads `dir` and starts following it. Throws TypeError for bad options and a SvidkitError
   * (ERR_SOURCE_READ, ERR_SOURCE_INVALID, ERR_SOURCE_KEY_MISMATCH) when the first read gives no valid set.
   */
  static async open(dir: string, options: FileSourceOptions = {}): Promise<FileSource> {
    const source = new FileSource(checkOptions(dir, options));
    await source.#start();
    return source;
  }

  async #start(): Promise<void> {
    const { dir } = this.#s;
    let st: Awaited<ReturnType<typeof fsp.stat>>;
    try {
      st = await fsp.stat(dir);
    } catch (err) {
      const why = errnoOf(err) === 'ENOENT' ? 'it does not exist' : (errnoOf(err) ?? 'error');
      throw sourceError('ERR_SOURCE_READ', `cannot open directory ${dir}: ${why}`);
    }
    if (!st.isDirectory()) throw sourceError('ERR_SOURCE_READ', `${dir} is not a directory`);
    try {
      // Watch first, then read: a change between the two is not lost.
      if (this.#s.watch) await this.#startWatcher();
      const { state, problems } = await this.#load();
      // A read that an event started meanwhile may already hold a newer set: keep that one.
      this.#state ??= state;
      this.#recordProblems(problems);
    } catch (err) {
      if (this.#state === undefined) {
        await this.close();
        throw err;
      }
    }
    if (this.#s.pollIntervalMs > 0) {
      this.#poll = setInterval(() => void this.refresh(), this.#s.pollIntervalMs);
      this.#poll.unref();
    }
  }

  /** The names whose events mean "read again". */
  #relevant(name: string): boolean {
    if (name === DATA) return true;
    if (this.#s.layout === 'svidkit') return false;
    const n = this.#s.names;
    const names = [n.svid, n.key, n.bundle];
    if (this.#s.layout === 'spiffe-helper') names.push(n.jwtBundle);
    return names.includes(name);
  }

  async #startWatcher(): Promise<void> {
    const { dir } = this.#s;
    const watcher = watch(dir, {
      depth: 0,
      followSymlinks: false,
      ignoreInitial: true,
      // The source never keeps a process alive on its own.
      persistent: false,
      ignored: (path: string) => path !== dir && !this.#relevant(basename(path)),
    });
    this.#watcher = watcher;
    watcher.on('all', (_event, path) => {
      if (path === dir || this.#relevant(basename(path))) this.#schedule();
    });
    watcher.on('error', (err) => {
      const why = errnoOf(err) ?? (err instanceof Error ? err.name : 'error');
      this.#report(sourceError('ERR_SOURCE_WATCH', `watching ${dir} failed: ${why}`));
    });
    await new Promise<void>((res) => watcher.once('ready', res));
  }

  /** Debounces a burst of events into one read, held back at most MAX_DEBOUNCE_PERIODS periods. */
  #schedule(): void {
    if (this.#closed) return;
    const t = Date.now();
    if (this.#debounce === undefined) this.#burstStart = t;
    else if (t - this.#burstStart >= this.#s.debounceMs * MAX_DEBOUNCE_PERIODS) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.refresh();
    }, this.#s.debounceMs);
    this.#debounce.unref();
  }

  /**
   * Reads the directory now; resolves once the read (and one more, if a change was signalled meanwhile)
   * is done. Problems go to onError, never to the returned promise. A no-op after close().
   */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#inflight) {
      this.#again = true;
      return this.#inflight;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.#again = false;
          await this.#readOnce();
        } while (this.#again && !this.#closed);
      } finally {
        // Cleared in the same step that ends the loop: a refresh() after it starts a new read.
        this.#inflight = undefined;
      }
    };
    // run() awaits before it can finish, so this assignment always precedes its finally.
    this.#inflight = run();
    return this.#inflight;
  }

  async #readOnce(): Promise<void> {
    let loaded: { state: State; problems: SvidkitError[] };
    try {
      loaded = await this.#load();
    } catch (err) {
      if (this.#closed) return;
      this.#report(
        err instanceof SvidkitError
          ? err
          : sourceError('ERR_SOURCE_READ', `cannot read ${this.#s.dir}`, safeCause(err)),
      );
      return;
    }
    if (this.#closed) return;
    this.#recordProblems(loaded.problems);
    if (this.#state && this.#state.fingerprint === loaded.state.fingerprint) return;
    this.#state = loaded.state;
    for (const l of [...this.#listeners]) {
      if (this.#closed) return;
      try {
        l();
      } catch (err) {
        this.#report(sourceError('ERR_SOURCE_LISTENER', 'an onUpdate listener threw', safeCause(err)));
      }
    }
  }

  /** Reports the problems of an accepted read; a read without any clears the last error. */
  #recordProblems(problems: readonly SvidkitError[]): void {
    if (problems.length === 0) {
      this.#lastError = undefined;
      this.#lastErrorAt = undefined;
    }
    for (const p of problems) this.#report(p);
  }

  #report(err: SvidkitError): void {
    if (this.#closed) return;
    this.#lastError = err;
    this.#lastErrorAt = new Date();
    try {
      this.#s.onError?.(err);
    } catch {
      // A failing error handler must not stop the source.
    }
  }

  /** One read, checked; throws when the set is unreadable or invalid. */
  async #load(): Promise<{ state: State; problems: SvidkitError[] }> {
    const raw = await readSet(this.#s);
    try {
      return checkSet(this.#s, raw);
    } finally {
      raw.key.fill(0);
    }
  }

  /** The last good X.509-SVID; ERR_SOURCE_NO_SVID when it expired (at clock()) or the source holds none. */
  getX509Svid(): X509Svid {
    const svid = this.#state?.svid;
    if (!svid) throw sourceError('ERR_SOURCE_NO_SVID', 'no X.509-SVID yet');
    if (svid.expiresAt.getTime() <= now(this.#s.clock).getTime()) {
      throw sourceError(
        'ERR_SOURCE_NO_SVID',
        `the last good X.509-SVID from ${this.#s.dir} expired at ${svid.expiresAt.toISOString()}`,
      );
    }
    return svid;
  }

  /** Every trusted bundle of the last good set. */
  getBundleSet(): BundleSet {
    return this.#state?.bundles ?? new BundleSet();
  }

  /** Bundle source interface. */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#state?.bundles.getX509BundleForTrustDomain(td);
  }

  /** Bundle source interface. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#state?.bundles.getJwtBundleForTrustDomain(td);
  }

  /**
   * The JWT-SVID for `audience`, from `<jwtDir>/<tokenFileName(audience)>` of the last good set;
   * ERR_SOURCE_NO_SVID when there is none or it expired (at clock()).
   */
  getJwtSvid(audience: string): string {
    const name = typeof audience === 'string' && audience.length > 0 ? tokenFileName(audience) : undefined;
    const t = name === undefined ? undefined : this.#state?.tokens.get(name);
    const quoted = JSON.stringify(String(audience).slice(0, 64));
    if (t === undefined) throw sourceError('ERR_SOURCE_NO_SVID', `no JWT-SVID for audience ${quoted}`);
    if (t.expiresAt !== undefined && t.expiresAt <= now(this.#s.clock).getTime()) {
      throw sourceError('ERR_SOURCE_NO_SVID', `the JWT-SVID for audience ${quoted} expired`);
    }
    return t.token;
  }

  /** Calls `listener` after every accepted change of the SVID, the bundles or the JWT-SVIDs. */
  onUpdate(listener: () => void): Unsubscribe {
    if (typeof listener !== 'function') throw new TypeError('source: listener must be a function');
    if (this.#closed) return () => undefined;
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** What the source serves now, and the last problem; contains no secret and no file contents. */
  status(): FileSourceStatus {
    const svid = this.#state?.svid;
    return {
      dir: this.#s.dir,
      layout: this.#s.layout,
      spiffeId: svid?.id.toString(),
      serial: svid?.leaf.serialHex,
      notAfter: svid?.expiresAt,
      updatedAt: this.#state?.updatedAt,
      jwtSvidFiles: [...(this.#state?.tokens.keys() ?? [])],
      lastError: this.#lastError?.message,
      lastErrorCode: this.#lastError?.code,
      lastErrorAt: this.#lastErrorAt,
      closed: this.#closed,
    };
  }

  /**
   * Stops watching and polling and drops every listener; no callback runs afterwards. The getters
   * keep serving the last good set (getX509Svid until it expires).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
    this.#debounce = undefined;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    await watcher?.close();
    await this.#inflight?.catch(() => undefined);
  }
}
