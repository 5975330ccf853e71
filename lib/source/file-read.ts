/**
 * The reading half of FileSource: one consistent read of an SVID directory in any of its layouts
 * (through lib/layout's bounded reader and `..data` rules), as raw bytes with every failure worded as
 * a FileSourceError that names its file and version. Nothing here is parsed or checked.
 */
import * as fsp from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import {
  DATA_LINK as DATA,
  errnoOf,
  type FileLayout,
  type FileNames,
  isMissing as isMissingFile,
  isVersionDirName,
  LayoutReadError,
  MAX_BUNDLE_FILE_BYTES,
  MAX_JWT_AUDIENCES,
  MAX_PEM_FILE_BYTES,
  MAX_TOKEN_FILE_BYTES,
  readBounded as readLayoutFile,
  readlinkOrUndefined,
  TOKEN_SUFFIX,
} from '../layout/index.js';

/** How often a read starts again when a rewrite removed the version directory it had resolved. */
const READ_ATTEMPTS = 10;

/** What a read needs to know: the directory, its layout and the file names. */
export interface ReadSettings {
  readonly dir: string;
  readonly layout: FileLayout;
  readonly names: FileNames;
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
export interface ReadAt {
  dir: string;
  version: string | undefined;
}

export function fileError(code: ErrorCode, message: string, file: string | undefined, at: ReadAt, cause?: unknown) {
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

export /** The bytes of one read, before any check. */
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

/** One read of the directory, in its layout; throws FileSourceError when it is unreadable. */
export async function readSet(s: ReadSettings): Promise<RawSet> {
  return s.layout === 'svidkit' ? readSvidkit(s) : readPlain(s);
}

/** The svidkit layout: `..data` resolved once, every file read from that version directory. */
async function readSvidkit(s: ReadSettings): Promise<RawSet> {
  const { dir } = s;
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
      const raw = await readFiles(s, versionDir, true);
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
async function readPlain(s: ReadSettings): Promise<RawSet> {
  const { dir } = s;
  for (let attempt = 1; ; attempt++) {
    const target = await readlinkOrUndefined(join(dir, DATA));
    const fromVersion = target !== undefined && isVersionDirName(target);
    try {
      return await readFiles(s, dir, false, fromVersion ? target : undefined);
    } catch (err) {
      const vanished = isMissing(err);
      if (!vanished || !fromVersion || attempt >= READ_ATTEMPTS) throw err;
      if ((await readlinkOrUndefined(join(dir, DATA))) === target) throw err;
    }
  }
}

/** Where a plain name is read from: its `..data/<name>` target in `versionTarget`, else the name itself. */
async function plainPath(dir: string, name: string, versionTarget: string | undefined): Promise<string> {
  if (versionTarget === undefined) return join(dir, name);
  const link = await readlinkOrUndefined(join(dir, name));
  const prefix = `${DATA}/`;
  if (link === undefined || !link.startsWith(prefix)) return join(dir, name);
  const rest = link.slice(prefix.length);
  if (rest.length === 0 || rest.includes('/') || rest.startsWith('..')) return join(dir, name);
  return join(dir, versionTarget, rest);
}

async function readFiles(s: ReadSettings, base: string, svidkit: boolean, versionTarget?: string): Promise<RawSet> {
  const { dir, names, layout } = s;
  const at: ReadAt = { dir, version: svidkit ? basename(base) : versionTarget };
  const path = (name: string): Promise<string> =>
    svidkit ? Promise.resolve(join(base, name)) : plainPath(base, name, versionTarget);
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
      ? await readTokens(s, join(base, names.jwtDir), at)
      : { tokens: new Map<string, Buffer>(), problems: [] };
    return { at, svid, key, bundlePem, spiffeBundle, jwtBundle, tokens, tokenProblems: problems };
  } catch (err) {
    key.fill(0);
    throw err;
  }
}

async function readTokens(
  s: ReadSettings,
  jwtDir: string,
  at: ReadAt,
): Promise<{ tokens: Map<string, Buffer>; problems: SvidkitError[] }> {
  const { dir, names } = s;
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
