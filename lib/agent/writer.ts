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
import { basename, dirname, join, resolve } from 'node:path';
import type { BundleSet } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import { looksLikeCompactJws, quote } from '../jws/index.js';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';
import { privateKeyToPem } from '../keys/index.js';
import { verify, type X509Svid } from '../x509svid/index.js';
import { Dir, errnoOf, type NewFile, systemFs, type WriterFs, type WriterDirent, type WriterStat } from './dirfd.js';
import {
  DATA_LINK,
  DATA_TMP_LINK,
  type FileNames,
  LINK_TMP,
  MAX_FILE_NAME_BYTES,
  MAX_JWT_AUDIENCES,
  resolveFileNames,
  tokenFileName,
} from '../layout/index.js';
import type { WorkloadMeta } from './writer-read.js';
import { unsafeDirError, untrustedReason } from './trust.js';

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

export type { WriterFs } from './dirfd.js';

const DATA = DATA_LINK;
const DATA_TMP = DATA_TMP_LINK;
const DIR_MODE = 0o755;
/**
 * Most entries an output directory may hold: the layout needs about a dozen (stable links, ..data,
 * the live and the previous version), the rest is what someone else put there.
 */
const MAX_ENTRIES = 1024;
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
    if (Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) {
      throw invalidJwt(`audience ${quote(audience)} is too long for a file name`);
    }
    const other = byName.get(name);
    if (other !== undefined) {
      throw invalidJwt(`audiences ${quote(other)} and ${quote(audience)} both map to the file name "${name}"`);
    }
    byName.set(name, audience);
    // The token is a credential: say which audience, never what the token is.
    if (typeof token !== 'string' || token.length > MAX_TOKEN_BYTES || !looksLikeCompactJws(token)) {
      throw invalidJwt(
        `the JWT-SVID for audience ${quote(audience)} is not a compact JWS of at most ${MAX_TOKEN_BYTES} bytes`,
      );
    }
    out.push({ name, data: Buffer.from(`${token}\n`, 'utf8'), mode, secret: true });
  }
  return out;
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

/** Sets the workload's uid/gid on the files of a version (never on directories, which stay the agent's). */
class Owner {
  constructor(
    private readonly dir: string,
    private readonly uid: number | undefined,
    private readonly gid: number | undefined,
  ) {}

  /** Gives `file` to the workload, turning a failure into a message that says what was asked for. */
  apply(file: NewFile): void {
    if (this.uid === undefined && this.gid === undefined) return;
    try {
      file.chown(this.uid ?? -1, this.gid ?? -1);
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

/** Creates `name` in `dir` exclusively with `mode` from the start (never widened later), owner and data; the caller syncs and closes it. */
function writeOne(dir: Dir, entry: Entry, owner: Owner, opened: NewFile[], umask: number): void {
  const file = dir.createFile(entry.name, entry.mode);
  opened.push(file);
  try {
    // The umask may have narrowed the mode; fix it through the descriptor while the file is still empty.
    if ((entry.mode & umask) !== 0) file.chmod(entry.mode);
    owner.apply(file);
    file.writeAll(entry.data);
  } finally {
    if (entry.secret) entry.data.fill(0);
  }
}

function wipe(payload: Payload): void {
  for (const e of [...payload.files, ...payload.tokens]) if (e.secret) e.data.fill(0);
}

/** Opens `path` as a directory, creating it (and missing parents) 0755 through their parents' descriptors. */
function openOrCreate(fs: WriterFs, path: string, create: boolean): Dir {
  try {
    return Dir.open(fs, path);
  } catch (err) {
    if (errnoOf(err) === 'ENOTDIR' && lstatOrUndefined(fs, path)?.isSymbolicLink()) {
      throw unsafeDirError(path, 'it resolves through a symlink; the output directory must be given by its real path');
    }
    if (errnoOf(err) !== 'ENOENT' || !create || path === dirname(path)) throw err;
  }
  const parent = openOrCreate(fs, dirname(path), create);
  try {
    // Each level is checked where it is, so that no directory is made outside the configured path.
    const where = parent.location();
    if (where !== dirname(path))
      throw unsafeDirError(path, `${dirname(path)} is really ${where} (a symlink on the path)`);
    let created = true;
    try {
      parent.mkdir(basename(path), DIR_MODE);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      created = false;
    }
    const made = parent.openDir(basename(path));
    if (created) made.chmod(DIR_MODE);
    return made;
  } finally {
    parent.close();
  }
}

function lstatOrUndefined(fs: WriterFs, path: string): WriterStat | undefined {
  try {
    return fs.lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The output directory, opened by descriptor: proven to be at `dir` itself (no symlink anywhere on
 * the path, which the agent resolved at start) and not writable by anyone but root, the agent and
 * the workload. Everything after this acts through the descriptor.
 */
function openOutputDir(fs: WriterFs, s: Settings, create: boolean): Dir {
  const d = openOrCreate(fs, s.dir, create);
  try {
    const where = d.location();
    if (where !== s.dir) {
      throw unsafeDirError(
        s.dir,
        `it resolves to ${where} through a symlink; the output directory must be given by its real path`,
      );
    }
    const why = untrustedReason(d.stat(), s, true);
    if (why) throw unsafeDirError(s.dir, why);
    return d;
  } catch (err) {
    d.close();
    throw err;
  }
}

/** The entries of the output directory; one that holds more than MAX_ENTRIES is refused, as its scan would not be bounded. */
function listOutputDir(out: Dir, dir: string): WriterDirent[] {
  try {
    return out.entries(MAX_ENTRIES);
  } catch (err) {
    if (!(err instanceof SvidkitError)) throw err;
    throw new SvidkitError(
      'ERR_AGENT_WRITE',
      `agent: cannot write ${dir}: it holds more than ${MAX_ENTRIES} entries; remove what is not the agent's layout`,
    );
  }
}

/**
 * True when the listed entry is a directory: the type the kernel reported with the name, or an lstat
 * where the file system reports none. A type seen in the listing can be stale; it only decides which
 * removal or message applies, and every call after it acts through descriptors.
 */
function isDirectoryEntry(out: Dir, e: WriterDirent): boolean {
  if (e.isDirectory()) return true;
  if (e.isFile() || e.isSymbolicLink()) return false;
  return out.lstat(e.name)?.isDirectory() ?? false;
}

/** Refuses, before anything is written, entries in the way that rename(2) could not replace. */
function checkExistingLayout(
  out: Dir,
  dir: string,
  names: FileNames,
  present: ReadonlyMap<string, WriterDirent>,
): void {
  for (const name of [DATA, ...Object.values(names)]) {
    const e = present.get(name);
    if (e && isDirectoryEntry(out, e)) {
      throw new SvidkitError(
        'ERR_AGENT_WRITE',
        `agent: cannot write ${dir}: "${name}" is a directory, where the layout needs a symlink`,
      );
    }
  }
}

/**
 * Points `name` at `target` unless it already does, through a temporary symlink and rename(2). A name
 * the listing did not hold is linked directly (symlink(2) refuses to replace anything that appeared since).
 */
function ensureLink(out: Dir, name: string, target: string, listed: boolean): void {
  if (!listed) {
    try {
      out.symlink(target, name);
      return;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
  }
  if (out.readlink(name) === target) return;
  out.unlink(LINK_TMP);
  out.symlink(target, LINK_TMP);
  out.rename(LINK_TMP, name);
}

/** True for a stable-name symlink of this layout: a relative link into ..data. */
function isLayoutLink(target: string | undefined): boolean {
  return target !== undefined && target.startsWith(`${DATA}/`);
}

function removeStaleLinks(out: Dir, names: readonly string[], keep: ReadonlySet<string>): void {
  for (const name of names) {
    if (name.startsWith('..') || keep.has(name)) continue;
    if (isLayoutLink(out.readlink(name))) out.unlink(name);
  }
}

/** Removes version directories other than `keep`; best effort, the next write tries again. */
function removeOldVersions(out: Dir, entries: readonly WriterDirent[], keep: ReadonlySet<string>): void {
  for (const e of entries) {
    const name = e.name;
    if (!name.startsWith('..') || name === DATA || keep.has(name)) continue;
    try {
      if (isDirectoryEntry(out, e)) out.removeTree(name);
      else if (name === DATA_TMP || name === LINK_TMP) out.unlink(name);
    } catch {
      // left for the next write
    }
  }
}

/** The process's umask, read at each write (it can change); where it cannot be read, every mode is set explicitly. */
function currentUmask(): number {
  try {
    return process.umask();
  } catch {
    return 0o777;
  }
}

/** Writes the version directory `name` inside `out`: every file, the jwt directory, fsync of all of them. */
async function writeVersion(out: Dir, name: string, payload: Payload, names: FileNames, owner: Owner): Promise<void> {
  const opened: NewFile[] = [];
  const dirs: Dir[] = [];
  try {
    const vdir = out.openDir(name);
    dirs.push(vdir);
    // mkdtemp made it 0700; readers of every uid need to enter it. It stays the agent's: a workload
    // that owned it could swap its entries between the agent's calls.
    vdir.chmod(DIR_MODE);
    const umask = currentUmask();
    for (const entry of payload.files) writeOne(vdir, entry, owner, opened, umask);
    vdir.mkdir(names.jwtDir, DIR_MODE);
    const jwtDir = vdir.openDir(names.jwtDir);
    dirs.push(jwtDir);
    if ((DIR_MODE & umask) !== 0) jwtDir.chmod(DIR_MODE);
    for (const entry of payload.tokens) writeOne(jwtDir, entry, owner, opened, umask);
    // Every file's data, then the directories' entries, on disk before ..data may name them; the
    // fsyncs run side by side (the file system commits them together).
    await Promise.all(opened.map((f) => f.sync()));
    await Promise.all(dirs.map((d) => d.sync()));
  } finally {
    for (const f of opened) f.close();
    for (const d of dirs) d.close();
  }
}

async function deliverInto(out: Dir, payload: Payload, names: FileNames, s: Settings): Promise<{ versionDir: string }> {
  const { dir } = s;
  const owner = new Owner(dir, s.uid, s.gid);
  // What is there before this write: old versions, stale links and debris to clear afterwards.
  let entries: WriterDirent[];
  let present: Map<string, WriterDirent>;
  try {
    entries = listOutputDir(out, dir);
    present = new Map(entries.map((e) => [e.name, e]));
    checkExistingLayout(out, dir, names, present);
    // Leftovers of an interrupted write.
    if (present.has(DATA_TMP)) out.unlink(DATA_TMP);
    if (present.has(LINK_TMP)) out.unlink(LINK_TMP);
  } catch (err) {
    wipe(payload);
    throw writeError(dir, err);
  }

  let versionName: string | undefined;
  try {
    versionName = out.mkdtemp(`..${stamp(s.now)}.`);
    await writeVersion(out, versionName, payload, names, owner);
    out.symlink(versionName, DATA_TMP);
    out.rename(DATA_TMP, DATA);
  } catch (err) {
    wipe(payload);
    // ..data still names the previous version; only this attempt's debris goes.
    if (versionName !== undefined) ignore(() => out.removeTree(versionName!));
    ignore(() => out.unlink(DATA_TMP));
    throw writeError(dir, err);
  }

  // From here on the new version is live; a failure is reported, and the next write repairs it.
  try {
    const keep = new Set<string>();
    for (const name of Object.values(names)) {
      ensureLink(out, name, `${DATA}/${name}`, present.has(name));
      keep.add(name);
    }
    removeStaleLinks(out, [...present.keys()], keep);
    // One fsync makes the ..data swap and the links durable together.
    await out.sync();
  } catch (err) {
    throw writeError(dir, err);
  }
  let live: string | undefined;
  ignore(() => (live = out.readlink(DATA)));
  removeOldVersions(out, entries, new Set([versionName, live ?? '']));
  return { versionDir: join(dir, versionName) };
}

function ignore(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // best effort: the next write tries again
  }
}

async function deliver(payload: Payload, names: FileNames, s: Settings, fs: WriterFs): Promise<{ versionDir: string }> {
  let out: Dir;
  try {
    out = openOutputDir(fs, s, true);
  } catch (err) {
    wipe(payload);
    throw writeError(s.dir, err);
  }
  try {
    return await deliverInto(out, payload, names, s);
  } finally {
    out.close();
  }
}

/**
 * Validates an SVID, its bundles and JWT-SVIDs, then delivers them atomically into `opts.dir`.
 * Refusals (ERR_AGENT_INVALID_SVID, ERR_AGENT_INVALID_JWT, TypeError) touch nothing on disk; a write
 * failure (ERR_AGENT_WRITE) leaves `..data` and the version it names untouched. `fs` is for tests.
 */
export async function writeWorkloadFiles(
  files: WorkloadFiles,
  opts: WriteOptions,
  fs: WriterFs = systemFs,
): Promise<{ versionDir: string }> {
  const names = resolveFileNames(opts.names);
  const settings = checkOptions(opts);
  const payload = preparePayload(files, names, settings);
  return exclusive(settings.dir, () => deliver(payload, names, settings, fs));
}

/**
 * Removes a workload's layout from `dir`: stable names that are symlinks into `..data`, `..data`
 * itself, temporary links and version directories. Other files and `dir` itself stay. Like a write,
 * it acts through the directory's descriptor and refuses a directory that others can write.
 */
export async function removeWorkloadFiles(
  dir: string,
  names?: Partial<FileNames>,
  fs: WriterFs = systemFs,
  owner: { uid?: number; gid?: number } = {},
): Promise<void> {
  resolveFileNames(names);
  const s = checkOptions({ dir, uid: owner.uid, gid: owner.gid });
  await exclusive(s.dir, async () => {
    let out: Dir;
    try {
      out = openOutputDir(fs, s, false);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      throw writeError(s.dir, err);
    }
    try {
      const entries = listOutputDir(out, s.dir);
      // Stable names first, so that no reader finds a name whose target is already gone.
      removeStaleLinks(
        out,
        entries.map((e) => e.name),
        new Set(),
      );
      for (const name of [DATA, DATA_TMP, LINK_TMP]) {
        if (out.readlink(name) !== undefined) out.unlink(name);
      }
      for (const e of entries) {
        if (!e.name.startsWith('..') || e.name === DATA) continue;
        if (isDirectoryEntry(out, e)) out.removeTree(e.name);
      }
      await out.sync();
    } catch (err) {
      throw writeError(s.dir, err);
    } finally {
      out.close();
    }
  });
}
