/**
 * Atomic delivery of one workload's SVID files, in the layout of Kubernetes' atomic writer: every
 * version is written complete into a hidden directory, then a `..data` symlink is swapped to it by
 * rename(2), and the stable names are symlinks through `..data`. A reader that resolves `..data`
 * once never pairs the certificate of one version with the key of another, and a failed write
 * leaves the previous version exactly as it was.
 *
 * ```
 * <dir>/..2026_11_23_13_22_04.Ab3xYz/   version directory holding the real files
 * <dir>/..data -> ..2026_11_23_13_22_04.Ab3xYz
 * <dir>/svid.pem -> ..data/svid.pem      (and svid_key.pem, svid_bundle.pem, bundle.spiffe.json,
 * <dir>/jwt -> ..data/jwt                 jwt_bundle.json, meta.json; jwt/<audience>.token)
 * ```
 */
import * as nodeFs from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { BundleSet } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';
import { privateKeyToPem } from '../keys/index.js';
import { verify, type X509Svid } from '../x509svid/index.js';

/** Everything delivered to one workload's directory in one atomic step. */
export interface WorkloadFiles {
  /** The workload's X.509-SVID (chain and key). */
  svid: X509Svid;
  /** Every trusted trust domain; the SVID must verify against its own trust domain's roots. */
  bundles: BundleSet;
  /** JWT-SVIDs by audience; each goes to `<jwtDir>/<tokenFileName(audience)>`. */
  jwtTokens: ReadonlyMap<string, string>;
  /** Monotonic version number recorded in meta.json. */
  version: number;
}

/** The stable file names of the layout; each must be a plain file name. */
export interface FileNames {
  /** Leaf and intermediates, PEM. */
  svid: string;
  /** The private key, PKCS#8 PEM. */
  key: string;
  /** Roots of the SVID's own trust domain, PEM. */
  bundle: string;
  /** `{"trust_domains": {...}}` of every trusted trust domain. */
  spiffeBundle: string;
  /** `{"<td>": <JWKS>}` of every trusted trust domain. */
  jwtBundle: string;
  /** Directory of `<audience>.token` files. */
  jwtDir: string;
  /** meta.json: SPIFFE ID, serial, expiry, version, write time. */
  meta: string;
}

/** Default file names, as spiffe-helper names them. */
export const DEFAULT_FILE_NAMES: Readonly<FileNames> = Object.freeze({
  svid: 'svid.pem',
  key: 'svid_key.pem',
  bundle: 'svid_bundle.pem',
  spiffeBundle: 'bundle.spiffe.json',
  jwtBundle: 'jwt_bundle.json',
  jwtDir: 'jwt',
  meta: 'meta.json',
});

/** Options of writeWorkloadFiles. */
export interface WriteOptions {
  /** The workload's output directory; created (0755) if missing. */
  dir: string;
  /** Overrides of DEFAULT_FILE_NAMES. */
  names?: Partial<FileNames>;
  /** Mode of certificate, bundle and meta files; default 0644. */
  certMode?: number;
  /** Mode of the key and of JWT token files; default 0600. */
  keyMode?: number;
  /** Owner of every file and directory of a version; needs root or CAP_CHOWN. */
  uid?: number;
  /** Group of every file and directory of a version; needs root or CAP_CHOWN. */
  gid?: number;
  /** Current time, for meta.json and the version directory name; default `new Date()`. */
  clock?: () => Date;
  /** Instant at which the SVID must be valid before it is delivered; default clock(). */
  at?: Date;
}

/** meta.json as written. */
export interface WorkloadMeta {
  spiffe_id: string;
  serial: string;
  not_after: string;
  version: number;
  written_at: string;
}

/** One consistent read of a workload's files, all taken from the same version directory. */
export interface WorkloadFilesSnapshot {
  svidPem: string;
  keyPem: string;
  bundlePem: string;
  meta: WorkloadMeta;
  /** Absolute path of the version directory that was read. */
  versionDir: string;
}

/** An open file as the writer uses it (a subset of fs/promises FileHandle). */
export interface WriterFileHandle {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  chmod(mode: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file-system calls the writer makes (a subset of node:fs/promises); tests inject failures here. */
export interface WriterFs {
  mkdir(path: string, options: { recursive?: boolean; mode?: number }): Promise<unknown>;
  mkdtemp(prefix: string): Promise<string>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  open(path: string, flags: string, mode?: number): Promise<WriterFileHandle>;
  symlink(target: string, path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  readlink(path: string): Promise<string>;
  lstat(path: string): Promise<{ isDirectory(): boolean; isSymbolicLink(): boolean }>;
  readdir(path: string): Promise<string[]>;
  rm(path: string, options: { recursive?: boolean; force?: boolean }): Promise<void>;
  unlink(path: string): Promise<void>;
}

const DATA = '..data';
const DATA_TMP = '..data_tmp';
const LINK_TMP = '..link_tmp';
const DIR_MODE = 0o755;
const MAX_NAME_BYTES = 255;
/** Most JWT-SVIDs one workload directory holds. */
export const MAX_JWT_AUDIENCES = 256;
/** Largest file readWorkloadFiles reads (a bundle set may be 4 MiB). */
const MAX_READ_BYTES = 8 * 1024 * 1024;
/** How often a read is retried when a rewrite removed the version it had resolved. */
const READ_ATTEMPTS = 20;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const defaultFs: WriterFs = nodeFs;

/** The token file name of an audience: every char outside [A-Za-z0-9._-] becomes '_', plus '.token'. */
export function tokenFileName(audience: string): string {
  return `${audience.replace(/[^A-Za-z0-9._-]/gu, '_')}.token`;
}

/** DEFAULT_FILE_NAMES with `names` applied; throws TypeError for a name that is not a plain file name. */
export function resolveFileNames(names: Partial<FileNames> = {}): FileNames {
  if (typeof names !== 'object' || names === null) throw new TypeError('agent: names must be an object');
  const out: FileNames = { ...DEFAULT_FILE_NAMES };
  for (const [field, value] of Object.entries(names)) {
    if (!Object.hasOwn(DEFAULT_FILE_NAMES, field)) throw new TypeError(`agent: unknown file name "${field}"`);
    if (value === undefined) continue;
    out[field as keyof FileNames] = checkFileName(field, value);
  }
  const seen = new Map<string, string>();
  for (const [field, value] of Object.entries(out)) {
    const other = seen.get(value);
    if (other) throw new TypeError(`agent: names.${field} and names.${other} are both "${value}"`);
    seen.set(value, field);
  }
  return out;
}

function checkFileName(field: string, value: unknown): string {
  const bad = (why: string): never => {
    throw new TypeError(`agent: names.${field} ${why}`);
  };
  if (typeof value !== 'string' || value.length === 0) return bad('must be a non-empty string');
  if (value.includes('/') || value.includes('\0')) bad('must be a plain file name (no "/" or NUL)');
  // '..'-prefixed names belong to the layout itself (..data, version directories).
  if (value === '.' || value.startsWith('..')) bad('must not be "." or start with ".."');
  if (Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES) bad(`must be at most ${MAX_NAME_BYTES} bytes`);
  return value;
}

interface Settings {
  dir: string;
  certMode: number;
  keyMode: number;
  uid: number | undefined;
  gid: number | undefined;
  now: Date;
  at: Date;
}

function checkMode(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > 0o777) {
    throw new TypeError(`agent: ${name} must be a permission mode between 0 and 0o777`);
  }
  return value;
}

function checkId(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  // -1 means "unchanged" to chown(2); a caller who means that leaves the option out.
  if (!Number.isInteger(value) || value < 0 || value >= 0xffffffff) {
    throw new TypeError(`agent: ${name} must be a non-negative integer`);
  }
  return value;
}

function validDate(name: string, d: unknown): Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new TypeError(`agent: ${name} must be a valid Date`);
  return d;
}

function checkOptions(opts: WriteOptions): Settings {
  if (typeof opts.dir !== 'string' || opts.dir.length === 0 || opts.dir.includes('\0')) {
    throw new TypeError('agent: dir must be a non-empty path');
  }
  const now = validDate('clock()', (opts.clock ?? (() => new Date()))());
  return {
    dir: resolve(opts.dir),
    certMode: checkMode('certMode', opts.certMode, 0o644),
    keyMode: checkMode('keyMode', opts.keyMode, 0o600),
    uid: checkId('uid', opts.uid),
    gid: checkId('gid', opts.gid),
    now,
    at: opts.at === undefined ? now : validDate('at', opts.at),
  };
}

interface Entry {
  name: string;
  data: Buffer;
  mode: number;
  secret: boolean;
}

interface Payload {
  files: Entry[];
  tokens: Entry[];
}

function invalidSvid(message: string, cause?: unknown): SvidkitError {
  return new SvidkitError('ERR_AGENT_INVALID_SVID', `agent: ${message}`, cause === undefined ? undefined : { cause });
}

function invalidJwt(message: string): SvidkitError {
  return new SvidkitError('ERR_AGENT_INVALID_JWT', `agent: ${message}`);
}

/** A short, quoted form of an untrusted string for messages. */
function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

/** Validates everything and renders every file in memory, so that a refusal touches nothing on disk. */
function preparePayload(files: WorkloadFiles, names: FileNames, s: Settings): Payload {
  if (!Number.isSafeInteger(files.version) || files.version < 0) {
    throw new TypeError('agent: version must be a non-negative integer');
  }
  const svid = files.svid;
  let keyPem: string;
  try {
    // X509Svid already guarantees this; a second look is cheap and catches a forged or mixed-up object.
    if (svid.privateKey.type !== 'private' || !svid.certificates[0]!.hasPublicKey(svid.privateKey)) {
      throw invalidSvid('private key does not match the leaf certificate');
    }
    keyPem = privateKeyToPem(svid.privateKey);
  } catch (err) {
    if (err instanceof SvidkitError && err.code === 'ERR_AGENT_INVALID_SVID') throw err;
    throw invalidSvid('cannot check the SVID key against its leaf', err);
  }
  let verified: ReturnType<typeof verify>;
  try {
    verified = verify(svid.certificates, files.bundles, { at: s.at });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw invalidSvid(`refusing to deliver an SVID that does not verify: ${why}`, err);
  }
  const td = verified.id.trustDomain;
  const ownRoots = files.bundles.getX509BundleForTrustDomain(td);
  const jwtBundles: Record<string, unknown> = {};
  for (const b of files.bundles.bundles()) jwtBundles[b.trustDomain.name] = b.jwt.toJwks();
  const leaf = svid.certificates[0]!;
  const meta: WorkloadMeta = {
    spiffe_id: verified.id.toString(),
    serial: leaf.serialHex,
    not_after: leaf.notAfter.toISOString(),
    version: files.version,
    written_at: s.now.toISOString(),
  };
  const cert = (name: string, data: Buffer): Entry => ({ name, data, mode: s.certMode, secret: false });
  const out: Entry[] = [
    cert(names.svid, Buffer.from(svid.certificates.map((c) => c.toPem()).join(''), 'utf8')),
    { name: names.key, data: Buffer.from(keyPem, 'utf8'), mode: s.keyMode, secret: true },
    cert(names.bundle, Buffer.from(ownRoots?.toPem() ?? '', 'utf8')),
    cert(names.spiffeBundle, json(files.bundles.toJson())),
    cert(names.jwtBundle, json(jwtBundles)),
    cert(names.meta, json(meta)),
  ];
  return { files: out, tokens: prepareTokens(files.jwtTokens, s.keyMode) };
}

function prepareTokens(tokens: ReadonlyMap<string, string>, mode: number): Entry[] {
  if (typeof tokens !== 'object' || tokens === null || typeof tokens.size !== 'number') {
    throw new TypeError('agent: jwtTokens must be a Map of audience to token');
  }
  if (tokens.size > MAX_JWT_AUDIENCES) throw invalidJwt(`more than ${MAX_JWT_AUDIENCES} JWT-SVID audiences`);
  const byName = new Map<string, string>();
  const out: Entry[] = [];
  for (const [audience, token] of tokens) {
    if (typeof audience !== 'string' || audience.length === 0) throw invalidJwt('a JWT-SVID audience is empty');
    // The name is built only from the sanitized audience: no '/' can survive, so no path escapes the directory.
    const name = tokenFileName(audience);
    if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
      throw invalidJwt(`audience ${quote(audience)} is too long for a file name`);
    }
    const other = byName.get(name);
    if (other !== undefined) {
      throw invalidJwt(`audiences ${quote(other)} and ${quote(audience)} both map to the file name "${name}"`);
    }
    byName.set(name, audience);
    // The token is a credential: say which audience, never what the token is.
    if (typeof token !== 'string' || token.length > MAX_TOKEN_BYTES || !COMPACT_JWS.test(token)) {
      throw invalidJwt(
        `the JWT-SVID for audience ${quote(audience)} is not a compact JWS of at most ${MAX_TOKEN_BYTES} bytes`,
      );
    }
    out.push({ name, data: Buffer.from(`${token}\n`, 'utf8'), mode, secret: true });
  }
  return out;
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function writeError(dir: string, err: unknown): SvidkitError {
  if (err instanceof SvidkitError) return err;
  return new SvidkitError('ERR_AGENT_WRITE', `agent: cannot write ${dir}: ${errnoOf(err) ?? 'error'}`, { cause: err });
}

/** Serializes writers of one directory within this process; two interleaved swaps would share temp names. */
const locks = new Map<string, Promise<void>>();

async function exclusive<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(dir) ?? Promise.resolve();
  const run = previous.then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  locks.set(dir, tail);
  try {
    return await run;
  } finally {
    if (locks.get(dir) === tail) locks.delete(dir);
  }
}

/** UTC `YYYY_MM_DD_HH_MM_SS`, as Kubernetes names its version directories. */
function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const parts = [d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
  return [String(d.getUTCFullYear()), ...parts.map(p)].join('_');
}

async function syncDir(fs: WriterFs, dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function unlinkIfPresent(fs: WriterFs, path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}

async function lstatOrUndefined(
  fs: WriterFs,
  path: string,
): Promise<{ isDirectory(): boolean; isSymbolicLink(): boolean } | undefined> {
  try {
    return await fs.lstat(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function readlinkOrUndefined(fs: WriterFs, path: string): Promise<string | undefined> {
  try {
    return await fs.readlink(path);
  } catch (err) {
    // EINVAL: it exists but is not a symlink.
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'EINVAL') return undefined;
    throw err;
  }
}

class Owner {
  constructor(
    private readonly dir: string,
    private readonly uid: number | undefined,
    private readonly gid: number | undefined,
  ) {}

  get wanted(): boolean {
    return this.uid !== undefined || this.gid !== undefined;
  }

  /** Runs one chown call, turning a failure into a message that says what was asked for. */
  async apply(chown: (uid: number, gid: number) => Promise<void>): Promise<void> {
    if (!this.wanted) return;
    try {
      await chown(this.uid ?? -1, this.gid ?? -1);
    } catch (err) {
      const code = errnoOf(err) ?? 'error';
      const who = `${this.uid ?? '-'}:${this.gid ?? '-'}`;
      throw new SvidkitError(
        'ERR_AGENT_WRITE',
        `agent: cannot write ${this.dir}: ${code} (chown to ${who} failed; it needs root or CAP_CHOWN)`,
        { cause: err },
      );
    }
  }
}

/** Creates `path` exclusively with `mode` from the start (never widened later), owner, data, fsync. */
async function writeOne(fs: WriterFs, path: string, entry: Entry, owner: Owner): Promise<void> {
  const h = await fs.open(path, 'wx', entry.mode);
  try {
    // The umask may have narrowed the mode; fix it while the file is still empty.
    await h.chmod(entry.mode);
    await owner.apply((u, g) => h.chown(u, g));
    let off = 0;
    while (off < entry.data.length) {
      const { bytesWritten } = await h.write(entry.data, off, entry.data.length - off);
      off += bytesWritten;
    }
    await h.sync();
  } finally {
    if (entry.secret) entry.data.fill(0);
    await h.close();
  }
}

async function makeDir(fs: WriterFs, path: string, owner: Owner): Promise<void> {
  await fs.chmod(path, DIR_MODE);
  await owner.apply((u, g) => fs.chown(path, u, g));
}

/** Refuses, before anything is written, entries in the way that rename(2) could not replace. */
async function checkExistingLayout(fs: WriterFs, dir: string, names: FileNames): Promise<void> {
  for (const name of [DATA, ...Object.values(names)]) {
    const st = await lstatOrUndefined(fs, join(dir, name));
    if (st && st.isDirectory()) {
      throw new SvidkitError(
        'ERR_AGENT_WRITE',
        `agent: cannot write ${dir}: "${name}" is a directory, where the layout needs a symlink`,
      );
    }
  }
}

/** Points `dir/name` at `target` unless it already does, through a temporary symlink and rename(2). */
async function ensureLink(fs: WriterFs, dir: string, name: string, target: string): Promise<void> {
  if ((await readlinkOrUndefined(fs, join(dir, name))) === target) return;
  const tmp = join(dir, LINK_TMP);
  await unlinkIfPresent(fs, tmp);
  await fs.symlink(target, tmp);
  await fs.rename(tmp, join(dir, name));
}

/** True for a stable-name symlink of this layout: a relative link into ..data. */
function isLayoutLink(target: string | undefined): boolean {
  return target !== undefined && target.startsWith(`${DATA}/`);
}

async function removeStaleLinks(fs: WriterFs, dir: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith('..') || keep.has(name)) continue;
    if (isLayoutLink(await readlinkOrUndefined(fs, join(dir, name)))) await unlinkIfPresent(fs, join(dir, name));
  }
}

/** Removes version directories other than `keep`; best effort, the next write tries again. */
async function removeOldVersions(fs: WriterFs, dir: string, keep: ReadonlySet<string>): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    if (!name.startsWith('..') || name === DATA || keep.has(name)) continue;
    try {
      const st = await fs.lstat(join(dir, name));
      if (st.isDirectory()) await fs.rm(join(dir, name), { recursive: true, force: true });
      else if (name === DATA_TMP || name === LINK_TMP) await unlinkIfPresent(fs, join(dir, name));
    } catch {
      // left for the next write
    }
  }
}

async function deliver(payload: Payload, names: FileNames, s: Settings, fs: WriterFs): Promise<{ versionDir: string }> {
  const { dir } = s;
  const owner = new Owner(dir, s.uid, s.gid);
  try {
    await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
    await checkExistingLayout(fs, dir, names);
    // Leftovers of an interrupted write.
    await unlinkIfPresent(fs, join(dir, DATA_TMP));
    await unlinkIfPresent(fs, join(dir, LINK_TMP));
  } catch (err) {
    throw writeError(dir, err);
  }

  let versionDir: string | undefined;
  let swapped = false;
  try {
    versionDir = await fs.mkdtemp(join(dir, `..${stamp(s.now)}.`));
    await makeDir(fs, versionDir, owner);
    for (const entry of payload.files) await writeOne(fs, join(versionDir, entry.name), entry, owner);
    const jwtDir = join(versionDir, names.jwtDir);
    await fs.mkdir(jwtDir, { mode: DIR_MODE });
    await makeDir(fs, jwtDir, owner);
    for (const entry of payload.tokens) await writeOne(fs, join(jwtDir, entry.name), entry, owner);
    await syncDir(fs, jwtDir);
    await syncDir(fs, versionDir);

    const tmp = join(dir, DATA_TMP);
    await fs.symlink(basename(versionDir), tmp);
    await fs.rename(tmp, join(dir, DATA));
    swapped = true;
    await syncDir(fs, dir);
  } catch (err) {
    for (const e of [...payload.files, ...payload.tokens]) if (e.secret) e.data.fill(0);
    if (!swapped) {
      // ..data still names the previous version; only this attempt's debris goes.
      if (versionDir !== undefined) await fs.rm(versionDir, { recursive: true, force: true }).catch(() => undefined);
      await unlinkIfPresent(fs, join(dir, DATA_TMP)).catch(() => undefined);
    }
    throw writeError(dir, err);
  }

  // From here on the new version is live; a failure is reported, and the next write repairs it.
  try {
    const keep = new Set<string>();
    for (const name of Object.values(names)) {
      await ensureLink(fs, dir, name, `${DATA}/${name}`);
      keep.add(name);
    }
    await removeStaleLinks(fs, dir, keep);
    await syncDir(fs, dir);
  } catch (err) {
    throw writeError(dir, err);
  }
  const live = await readlinkOrUndefined(fs, join(dir, DATA)).catch(() => undefined);
  await removeOldVersions(fs, dir, new Set([basename(versionDir), live ?? '']));
  return { versionDir };
}

/**
 * Validates an SVID, its bundles and JWT-SVIDs, then delivers them atomically into `opts.dir`.
 * Refusals (ERR_AGENT_INVALID_SVID, ERR_AGENT_INVALID_JWT, TypeError) touch nothing on disk; a write
 * failure (ERR_AGENT_WRITE) leaves `..data` and the version it names untouched. `fs` is for tests.
 */
export async function writeWorkloadFiles(
  files: WorkloadFiles,
  opts: WriteOptions,
  fs: WriterFs = defaultFs,
): Promise<{ versionDir: string }> {
  const names = resolveFileNames(opts.names);
  const settings = checkOptions(opts);
  const payload = preparePayload(files, names, settings);
  return exclusive(settings.dir, () => deliver(payload, names, settings, fs));
}

function readError(dir: string, why: string, cause?: unknown): SvidkitError {
  return new SvidkitError(
    'ERR_AGENT_READ',
    `agent: cannot read ${dir}: ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

async function readBounded(path: string): Promise<string> {
  const h = await nodeFs.open(path, 'r');
  try {
    const st = await h.stat();
    if (st.size > MAX_READ_BYTES) throw new RangeError(`${basename(path)} is larger than ${MAX_READ_BYTES} bytes`);
    return await h.readFile('utf8');
  } finally {
    await h.close();
  }
}

function parseMeta(dir: string, text: string): WorkloadMeta {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw readError(dir, 'meta file is not JSON', err);
  }
  const m = doc as Partial<Record<keyof WorkloadMeta, unknown>>;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    typeof m.spiffe_id !== 'string' ||
    typeof m.serial !== 'string' ||
    typeof m.not_after !== 'string' ||
    typeof m.version !== 'number' ||
    typeof m.written_at !== 'string'
  ) {
    throw readError(dir, 'meta file lacks spiffe_id, serial, not_after, version or written_at');
  }
  return {
    spiffe_id: m.spiffe_id,
    serial: m.serial,
    not_after: m.not_after,
    version: m.version,
    written_at: m.written_at,
  };
}

/** The version directory `..data` names, checked to be a plain `..`-prefixed entry of `dir`. */
async function resolveData(dir: string): Promise<string> {
  let target: string;
  try {
    target = await nodeFs.readlink(join(dir, DATA));
  } catch (err) {
    throw readError(dir, `no ${DATA} link (${errnoOf(err) ?? 'error'})`, err);
  }
  if (!target.startsWith('..') || target === '..' || target === DATA || target.includes('/')) {
    throw readError(dir, `${DATA} does not name a version directory`);
  }
  return target;
}

/**
 * Reads the SVID, key, bundle and meta files of one version: `..data` is resolved once and every
 * file is read from that version directory, so the result is never a mix of two versions. When a
 * concurrent rewrite removes that version mid-read, the read starts again from the new `..data`.
 */
export async function readWorkloadFiles(dir: string, names?: Partial<FileNames>): Promise<WorkloadFilesSnapshot> {
  const n = resolveFileNames(names);
  const abs = resolve(dir);
  for (let attempt = 1; ; attempt++) {
    const target = await resolveData(abs);
    const versionDir = join(abs, target);
    try {
      const [svidPem, keyPem, bundlePem, metaText] = await Promise.all(
        [n.svid, n.key, n.bundle, n.meta].map((name) => readBounded(join(versionDir, name))),
      );
      return { svidPem: svidPem!, keyPem: keyPem!, bundlePem: bundlePem!, meta: parseMeta(abs, metaText!), versionDir };
    } catch (err) {
      if (err instanceof SvidkitError) throw err;
      const code = errnoOf(err);
      const moved = code === 'ENOENT' && (await resolveData(abs)) !== target;
      if (!moved || attempt >= READ_ATTEMPTS) {
        throw readError(abs, code ?? (err instanceof Error ? err.message : 'error'), err);
      }
    }
  }
}

/**
 * Removes a workload's layout from `dir`: stable names that are symlinks into `..data`, `..data`
 * itself, temporary links and version directories. Other files and `dir` itself stay.
 */
export async function removeWorkloadFiles(
  dir: string,
  names?: Partial<FileNames>,
  fs: WriterFs = defaultFs,
): Promise<void> {
  resolveFileNames(names);
  const abs = resolve(dir);
  await exclusive(abs, async () => {
    try {
      let entries: string[];
      try {
        entries = await fs.readdir(abs);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return;
        throw err;
      }
      // Stable names first, so that no reader finds a name whose target is already gone.
      await removeStaleLinks(fs, abs, new Set());
      for (const name of [DATA, DATA_TMP, LINK_TMP]) {
        if ((await readlinkOrUndefined(fs, join(abs, name))) !== undefined) await unlinkIfPresent(fs, join(abs, name));
      }
      for (const name of entries) {
        if (!name.startsWith('..') || name === DATA) continue;
        const st = await lstatOrUndefined(fs, join(abs, name));
        if (st?.isDirectory()) await fs.rm(join(abs, name), { recursive: true, force: true });
      }
      await syncDir(fs, abs);
    } catch (err) {
      throw writeError(abs, err);
    }
  });
}
