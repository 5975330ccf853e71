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
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { type FSWatcher, watch } from 'chokidar';
import { BundleSet, JwtBundle, parseBundleDocument, SpiffeBundle, type X509Bundle } from '../bundle/index.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import { verify, X509Svid } from '../x509svid/index.js';
import {
  DATA_LINK as DATA,
  errnoOf,
  FILE_LAYOUTS,
  type FileLayout,
  type FileNames,
  isMissing as isMissingFile,
  isVersionDirName,
  layoutBaseNames,
  LayoutReadError,
  MAX_BUNDLE_FILE_BYTES,
  MAX_JWT_AUDIENCES,
  MAX_PEM_FILE_BYTES,
  MAX_TOKEN_FILE_BYTES,
  readBounded as readLayoutFile,
  readlinkOrUndefined,
  resolveFileNames,
  TOKEN_SUFFIX,
  tokenFileName,
} from '../layout/index.js';
import type { JwtSource, JwtSvidSource, Unsubscribe, X509Source } from './types.js';

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

/** How often a read starts again when a rewrite removed the version directory it had resolved. */
const READ_ATTEMPTS = 10;
/** Longest a burst of events can hold a read back, in debounce periods. */
const MAX_DEBOUNCE_PERIODS = 10;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

interface LoadedToken {
  token: string;
  /** The `exp` claim in ms, when present. */
  expiresAt: number | undefined;
}

/** One accepted set. */
interface State {
  svid: X509Svid;
  bundles: BundleSet;
  tokens: ReadonlyMap<string, LoadedToken>;
  fingerprint: string;
  updatedAt: Date;
}

/** The bytes of one read, before any check. */
interface RawSet {
  /** Where the files were read: the version directory resolved through `..data`, if any. */
  at: ReadAt;
  svid: Buffer;
  key: Buffer;
  /** PEM roots of the SVID's own trust domain. */
  bundlePem: Buffer | undefined;
  /** `{"trust_domains": ...}` document. */
  spiffeBundle: Buffer | undefined;
  jwtBundle: Buffer | undefined;
  /** Token file name to contents. */
  tokens: Map<string, Buffer>;
  /** Problems with single token files; they are left out, the rest is accepted. */
  tokenProblems: SvidkitError[];
}

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

/**
 * The cause to attach to a wrapping error: a copy of a SvidkitError without its own cause (a parser's
 * cause, such as a SyntaxError, may quote the input), nothing for anything else.
 */
function safeCause(err: unknown): SvidkitError | undefined {
  return err instanceof SvidkitError ? new SvidkitError(err.code, err.message) : undefined;
}

/**
 * A problem with one read of a FileSource, carrying what it is about so that callers need not parse
 * the message: the file (its name inside the directory, such as `svid.pem` or `jwt/x.token`) and the
 * version directory the read went through (the target of `..data`), when there was one.
 */
export class FileSourceError extends SvidkitError {
  /** Name of the file inside the directory (`jwt/<name>` for a token), or undefined for the directory. */
  readonly file: string | undefined;
  /** Version directory the read resolved through `..data`; undefined for plain files. */
  readonly version: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    where: { file?: string; version?: string | undefined },
    options?: { cause?: unknown },
  ) {
    super(code, `source: ${message}`, options);
    this.name = 'FileSourceError';
    this.file = where.file;
    this.version = where.version;
  }
}

/** Where a read is: the directory shown in messages and the version directory it resolved, if any. */
interface ReadAt {
  dir: string;
  version: string | undefined;
}

function fileError(code: ErrorCode, message: string, file: string | undefined, at: ReadAt, cause?: unknown) {
  return new FileSourceError(code, message, { file, version: at.version }, cause === undefined ? undefined : { cause });
}

/** A file that could not be opened; `errno` tells a missing file (ENOENT) from other failures. */
class OpenFailure extends FileSourceError {
  readonly errno: string | undefined;

  constructor(file: string, at: ReadAt, errno: string | undefined) {
    const why = errno === 'ENOENT' ? 'it does not exist' : (errno ?? 'error');
    super('ERR_SOURCE_READ', `cannot read ${file} in ${at.dir}: ${why}`, { file, version: at.version });
    this.errno = errno;
  }
}

/** True for a file or directory that is not there (any more), however the failure came. */
function isMissing(err: unknown): boolean {
  return err instanceof OpenFailure ? err.errno === 'ENOENT' : isMissingFile(err);
}

/** The layout's bounded read of one file, its failure worded as a FileSourceError about `label`. */
async function readBounded(path: string, max: number, label: string, at: ReadAt): Promise<Buffer> {
  try {
    return await readLayoutFile(path, max);
  } catch (err) {
    if (!(err instanceof LayoutReadError)) throw err;
    const { dir } = at;
    switch (err.reason) {
      case 'not-regular':
        throw fileError('ERR_SOURCE_READ', `${label} in ${dir} is not a regular file`, label, at);
      case 'too-large':
        throw fileError('ERR_SOURCE_READ', `${label} in ${dir} is larger than ${max} bytes`, label, at);
      case 'changed':
        // It grew after the stat: a writer is at work; the event of its last write brings another read.
        throw fileError('ERR_SOURCE_READ', `${label} in ${dir} changed while it was read`, label, at);
      default:
        throw new OpenFailure(label, at, err.errno);
    }
  }
}

async function readOptional(path: string, max: number, label: string, at: ReadAt): Promise<Buffer | undefined> {
  try {
    return await readBounded(path, max, label, at);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
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

function now(clock: () => Date): Date {
  const d = clock();
  if (!(d instanceof Date) || Number.isNaN(d.getTime()))
    throw new TypeError('source: clock() must return a valid Date');
  return d;
}

/** Parses one token file: a compact JWS; its `exp`, if any, is kept for getJwtSvid. */
function parseToken(name: string, data: Buffer, at: ReadAt): LoadedToken {
  const token = data.toString('utf8').trim();
  const bad = (why: string): never => {
    throw fileError('ERR_SOURCE_INVALID_JWT', `JWT-SVID file ${JSON.stringify(name)} ${why}; it is left out`, name, at);
  };
  if (token.length > MAX_TOKEN_BYTES || !COMPACT_JWS.test(token)) bad('does not hold a compact JWS');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
  } catch {
    bad('has a payload that is not JSON');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    bad('has a payload that is not an object');
  const exp = (claims as Record<string, unknown>)['exp'];
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) bad('has a non-numeric exp claim');
  return { token, expiresAt: exp === undefined ? undefined : (exp as number) * 1000 };
}

/**
 * Parses a JWT bundle file: the agent's `{"<td>": <JWKS>}` (a JWKS may also be a base64 string of
 * one, as spiffe-helper writes), a `{"trust_domains": ...}` set, or one JWKS for `ownTd`.
 */
function parseJwtBundleFile(data: Buffer, ownTd: TrustDomain): JwtBundle[] {
  const text = data.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: JWT bundle file is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: JWT bundle file must hold a JSON object');
  }
  const obj = doc as Record<string, unknown>;
  if (Array.isArray(obj['keys'])) return [JwtBundle.parse(ownTd, text)];
  if (obj['trust_domains'] !== undefined)
    return BundleSet.parse(text)
      .bundles()
      .map((b) => b.jwt);
  return Object.entries(obj).map(([name, jwks]) => {
    const td = TrustDomain.parse(name);
    if (typeof jwks === 'string') return JwtBundle.parse(td, Buffer.from(jwks, 'base64'));
    return JwtBundle.parse(td, JSON.stringify(jwks));
  });
}

/** Adds JWT bundles to a set, keeping each trust domain's X.509 roots. */
function withJwtBundles(set: BundleSet, jwt: readonly JwtBundle[]): BundleSet {
  let out = set;
  for (const b of jwt) {
    const x509: X509Bundle | undefined = out.get(b.trustDomain)?.x509;
    out = out.with(new SpiffeBundle(b.trustDomain, { x509, jwt: b }));
  }
  return out;
}

function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
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
    const raw = this.#s.layout === 'svidkit' ? await this.#readSvidkit() : await this.#readPlain();
    try {
      return this.#check(raw);
    } finally {
      raw.key.fill(0);
    }
  }

  /** The svidkit layout: `..data` resolved once, every file read from that version directory. */
  async #readSvidkit(): Promise<RawSet> {
    const { dir } = this.#s;
    for (let attempt = 1; ; attempt++) {
      let target: string;
      try {
        target = await fsp.readlink(join(dir, DATA));
      } catch (err) {
        const code = errnoOf(err);
        const why =
          code === 'ENOENT' ? 'it does not exist; is this an svidkit-agent output directory?' : (code ?? 'error');
        throw fileError('ERR_SOURCE_READ', `cannot read ${DATA} in ${dir}: ${why}`, DATA, { dir, version: undefined });
      }
      if (!isVersionDirName(target)) {
        const at = { dir, version: undefined };
        throw fileError('ERR_SOURCE_READ', `${DATA} in ${dir} does not name a version directory`, DATA, at);
      }
      const versionDir = join(dir, target);
      try {
        const raw = await this.#readFiles(versionDir, true);
        if (raw.spiffeBundle === undefined || raw.jwtBundle === undefined || raw.tokens.size === 0) {
          // Something optional was missing: make sure it was not removed with the version directory.
          await fsp.stat(versionDir);
        }
        return raw;
      } catch (err) {
        const vanished = isMissing(err);
        if (!vanished || attempt >= READ_ATTEMPTS || (await readlinkOrUndefined(join(dir, DATA))) === target) {
          if (err instanceof SvidkitError) throw err;
          const at = { dir, version: target };
          const why = `the version directory ${target} in ${dir} vanished while it was read`;
          throw fileError('ERR_SOURCE_READ', why, undefined, at);
        }
      }
    }
  }

  /**
   * Plain files. A Kubernetes volume (a Secret for cert-manager) links them through its own `..data`:
   * then they are read from the version directory it names, so that one read is consistent there too.
   */
  async #readPlain(): Promise<RawSet> {
    const { dir } = this.#s;
    for (let attempt = 1; ; attempt++) {
      const target = await readlinkOrUndefined(join(dir, DATA));
      const fromVersion = target !== undefined && isVersionDirName(target);
      try {
        return await this.#readFiles(dir, false, fromVersion ? target : undefined);
      } catch (err) {
        const vanished = isMissing(err);
        if (!vanished || !fromVersion || attempt >= READ_ATTEMPTS) throw err;
        if ((await readlinkOrUndefined(join(dir, DATA))) === target) throw err;
      }
    }
  }

  /** Where a plain name is read from: its `..data/<name>` target in `versionTarget`, else the name itself. */
  async #plainPath(dir: string, name: string, versionTarget: string | undefined): Promise<string> {
    if (versionTarget === undefined) return join(dir, name);
    const link = await readlinkOrUndefined(join(dir, name));
    const prefix = `${DATA}/`;
    if (link === undefined || !link.startsWith(prefix)) return join(dir, name);
    const rest = link.slice(prefix.length);
    if (rest.length === 0 || rest.includes('/') || rest.startsWith('..')) return join(dir, name);
    return join(dir, versionTarget, rest);
  }

  async #readFiles(base: string, svidkit: boolean, versionTarget?: string): Promise<RawSet> {
    const { dir, names, layout } = this.#s;
    const at: ReadAt = { dir, version: svidkit ? basename(base) : versionTarget };
    const path = (name: string): Promise<string> =>
      svidkit ? Promise.resolve(join(base, name)) : this.#plainPath(base, name, versionTarget);
    const key = await readBounded(await path(names.key), MAX_PEM_FILE_BYTES, names.key, at);
    try {
      const svid = await readBounded(await path(names.svid), MAX_PEM_FILE_BYTES, names.svid, at);
      const spiffeBundle = svidkit
        ? await readOptional(join(base, names.spiffeBundle), MAX_BUNDLE_FILE_BYTES, names.spiffeBundle, at)
        : undefined;
      const bundlePem =
        spiffeBundle === undefined
          ? await readBounded(await path(names.bundle), MAX_BUNDLE_FILE_BYTES, names.bundle, at)
          : undefined;
      const jwtBundle =
        layout === 'cert-manager'
          ? undefined
          : await readOptional(await path(names.jwtBundle), MAX_BUNDLE_FILE_BYTES, names.jwtBundle, at);
      const { tokens, problems } = svidkit
        ? await this.#readTokens(join(base, names.jwtDir), at)
        : { tokens: new Map<string, Buffer>(), problems: [] };
      return { at, svid, key, bundlePem, spiffeBundle, jwtBundle, tokens, tokenProblems: problems };
    } catch (err) {
      key.fill(0);
      throw err;
    }
  }

  async #readTokens(jwtDir: string, at: ReadAt): Promise<{ tokens: Map<string, Buffer>; problems: SvidkitError[] }> {
    const { dir, names } = this.#s;
    const tokens = new Map<string, Buffer>();
    const problems: SvidkitError[] = [];
    let entries: string[];
    try {
      entries = await fsp.readdir(jwtDir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return { tokens, problems };
      throw new OpenFailure(names.jwtDir, at, errnoOf(err));
    }
    const files = entries.filter((e) => e.endsWith(TOKEN_SUFFIX)).sort();
    if (files.length > MAX_JWT_AUDIENCES) {
      problems.push(
        fileError(
          'ERR_SOURCE_INVALID_JWT',
          `${names.jwtDir} in ${dir} holds ${files.length} JWT-SVID files; only the first ${MAX_JWT_AUDIENCES} are read`,
          names.jwtDir,
          at,
        ),
      );
      files.length = MAX_JWT_AUDIENCES;
    }
    for (const file of files) {
      const label = `${names.jwtDir}/${file}`;
      try {
        tokens.set(file, await readBounded(join(jwtDir, file), MAX_TOKEN_FILE_BYTES, label, at));
      } catch (err) {
        // A vanished version directory is the caller's business; anything else leaves out this token only.
        if (isMissing(err)) throw err;
        const why = err instanceof SvidkitError ? err.plainMessage : 'unreadable';
        problems.push(fileError('ERR_SOURCE_INVALID_JWT', `${why}; it is left out`, label, at));
      }
    }
    return { tokens, problems };
  }

  /** Validates a read; throws ERR_SOURCE_KEY_MISMATCH or ERR_SOURCE_INVALID for a set that must not be served. */
  #check(raw: RawSet): { state: State; problems: SvidkitError[] } {
    const { dir, names, layout } = this.#s;
    let svid: X509Svid;
    try {
      svid = X509Svid.parse(raw.svid, raw.key);
    } catch (err) {
      if (err instanceof SvidkitError && err.code === 'ERR_X509SVID_KEY_MISMATCH') {
        throw fileError(
          'ERR_SOURCE_KEY_MISMATCH',
          `${names.key} does not match ${names.svid} in ${dir} (a half-written pair?); the last good set stays`,
          names.key,
          raw.at,
          safeCause(err),
        );
      }
      const why = err instanceof SvidkitError ? err.message : 'cannot be parsed';
      const message = `${names.svid} and ${names.key} in ${dir}: ${why}`;
      throw fileError('ERR_SOURCE_INVALID', message, names.svid, raw.at, safeCause(err));
    }
    const td = svid.id.trustDomain;
    let bundles: BundleSet;
    let bundleFile = raw.spiffeBundle !== undefined ? names.spiffeBundle : names.bundle;
    try {
      bundles =
        raw.spiffeBundle !== undefined
          ? BundleSet.parse(raw.spiffeBundle)
          : parseBundleDocument(raw.bundlePem ?? Buffer.alloc(0), td);
      if (raw.jwtBundle !== undefined && raw.spiffeBundle === undefined) {
        bundleFile = names.jwtBundle;
        bundles = withJwtBundles(bundles, parseJwtBundleFile(raw.jwtBundle, td));
      }
    } catch (err) {
      const why = err instanceof SvidkitError ? err.message : 'cannot be parsed';
      throw fileError('ERR_SOURCE_INVALID', `${bundleFile} in ${dir}: ${why}`, bundleFile, raw.at, safeCause(err));
    }
    const at = now(this.#s.clock);
    try {
      verify(svid.certificates, bundles, { at });
    } catch (err) {
      const why = err instanceof SvidkitError ? err.message : 'verification failed';
      throw fileError(
        'ERR_SOURCE_INVALID',
        `${names.svid} in ${dir} does not verify against the bundle of ${td.name}: ${why}`,
        names.svid,
        raw.at,
        safeCause(err),
      );
    }
    const problems = [...raw.tokenProblems];
    const tokens = new Map<string, LoadedToken>();
    for (const [file, data] of raw.tokens) {
      try {
        tokens.set(file, parseToken(`${names.jwtDir}/${file}`, data, raw.at));
      } catch (err) {
        if (err instanceof SvidkitError) problems.push(err);
        else throw err;
      }
    }
    const fingerprint = sha256(
      layout,
      ...svid.certificates.map((c) => c.fingerprint256()),
      JSON.stringify(bundles.toJson()),
      ...[...tokens].map(([file, t]) => `${file}=${t.token}`),
    );
    return { state: { svid, bundles, tokens, fingerprint, updatedAt: new Date() }, problems };
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
