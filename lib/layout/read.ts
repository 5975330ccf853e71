/**
 * The version rules of the agent's layout (`..data` names the live version directory, swapped by
 * rename) and the one bounded reader every reader of an SVID directory uses. A failure carries what
 * went wrong as data (LayoutReadError); each caller words it for its own users.
 */
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_TOKEN_BYTES } from '../jwtsvid/index.js';

/** The symlink that names the live version directory. */
export const DATA_LINK = '..data';
/** The temporary link a writer renames over DATA_LINK. */
export const DATA_TMP_LINK = '..data_tmp';
/** The temporary link a writer renames over a stable name. */
export const LINK_TMP = '..link_tmp';

/** Largest PEM file (certificate chain or key) read. */
export const MAX_PEM_FILE_BYTES = 64 * 1024;
/** Largest bundle file read (a federated set of trust domains). */
export const MAX_BUNDLE_FILE_BYTES = 1024 * 1024;
/** Largest token file read: a JWT-SVID and a line break. */
export const MAX_TOKEN_FILE_BYTES = MAX_TOKEN_BYTES + 2;

/** True for a name `..data` may point at: a `..`-prefixed name in the same directory (not `..` or `..data`). */
export function isVersionDirName(name: string): boolean {
  return name.startsWith('..') && name !== '..' && name !== DATA_LINK && !name.includes('/');
}

/** Why a read failed. */
export type ReadFailure =
  | 'open' // could not be opened; `errno` says why (ENOENT: missing)
  | 'not-regular' // a directory, FIFO, socket or device
  | 'too-large' // larger than the bound
  | 'changed' // grew while it was read (a writer at work)
  | 'no-data-link' // `..data` cannot be read; `errno` says why
  | 'not-a-version'; // `..data` does not name a version directory

/** A failed read of an SVID directory, as data: the reason, the path and, for open failures, the errno code. */
export class LayoutReadError extends Error {
  /** What went wrong. */
  readonly reason: ReadFailure;
  /** The path that was read. */
  readonly path: string;
  /** The errno code for 'open' and 'no-data-link'. */
  readonly errno: string | undefined;
  /** The file's size for 'too-large'. */
  readonly size: number | undefined;

  constructor(
    reason: ReadFailure,
    path: string,
    detail: { errno?: string; size?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(`layout: ${reason}${detail.errno ? ` (${detail.errno})` : ''}: ${path}`, options);
    this.name = 'LayoutReadError';
    this.reason = reason;
    this.path = path;
    this.errno = detail.errno;
    this.size = detail.size;
  }

  /** True when the file (or `..data`) is not there. */
  get missing(): boolean {
    return this.errno === 'ENOENT';
  }
}

/** The errno code of a Node file-system error. */
export function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** True for a file or directory that is not there (any more), however the failure came. */
export function isMissing(err: unknown): boolean {
  return err instanceof LayoutReadError ? err.missing : errnoOf(err) === 'ENOENT';
}

/** A file read whole, with the permission bits and owner it had when it was read. */
export interface BoundedRead {
  readonly data: Buffer;
  /** Permission bits (of the link target for a symlink). */
  readonly mode: number;
  readonly uid: number;
}

/** Reads a regular file of at most `max` bytes; see readBoundedFile. */
export async function readBounded(path: string, max: number): Promise<Buffer> {
  return (await readBoundedFile(path, max)).data;
}

/**
 * Reads a regular file of at most `max` bytes: never blocks on a FIFO (O_NONBLOCK), never reads more
 * than max + 1 bytes, refuses a file that grew during the read.
 */
export async function readBoundedFile(path: string, max: number): Promise<BoundedRead> {
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw new LayoutReadError('open', path, { errno: errnoOf(err) ?? 'error' }, { cause: err });
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) throw new LayoutReadError('not-regular', path);
    if (st.size > max) throw new LayoutReadError('too-large', path, { size: st.size });
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await h.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n === buf.length) {
      buf.fill(0);
      throw new LayoutReadError('changed', path);
    }
    return { data: buf.subarray(0, n), mode: st.mode & 0o7777, uid: st.uid };
  } finally {
    await h.close();
  }
}

/** The target of the symlink at `path`, or undefined when there is none. */
export async function readlinkOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await fsp.readlink(path);
  } catch {
    return undefined;
  }
}

/** The version directory `dir/..data` names; LayoutReadError 'no-data-link' or 'not-a-version' otherwise. */
export async function readDataLink(dir: string): Promise<string> {
  let target: string;
  try {
    target = await fsp.readlink(join(dir, DATA_LINK));
  } catch (err) {
    throw new LayoutReadError('no-data-link', join(dir, DATA_LINK), { errno: errnoOf(err) ?? 'error' }, { cause: err });
  }
  if (!isVersionDirName(target)) throw new LayoutReadError('not-a-version', join(dir, DATA_LINK));
  return target;
}
