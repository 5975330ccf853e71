/**
 * Finding and reading the files of an SVID directory in the layouts FileSource reads: the svidkit
 * agent's (`..data` naming a version directory that holds every file), spiffe-helper's plain files and
 * cert-manager's Secret (tls.crt, tls.key, ca.crt). Reads are bounded by the library's own limits and
 * never block on a FIFO; failures are described by errno, never by content.
 */
import * as fsp from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  CERT_MANAGER_FILE_NAMES,
  DATA_LINK as DATA,
  DEFAULT_FILE_NAMES,
  errnoOf,
  FILE_LAYOUTS,
  type FileLayout,
  type FileNames,
  isVersionDirName,
  layoutBaseNames,
  LayoutReadError,
  readBoundedFile,
  readlinkOrUndefined,
  resolveFileNames,
} from '../layout/index.js';
import type { CheckList } from './types.js';

/** Overrides of the three file names doctor reads. */
export interface NameOverrides {
  readonly svid?: string;
  readonly key?: string;
  readonly bundle?: string;
}

/** Where an SVID directory's files are, once its layout is known. */
export interface SvidDir {
  /** The directory, absolute. */
  readonly dir: string;
  readonly layout: FileLayout;
  /** The names of the layout, with overrides applied. */
  readonly names: FileNames;
  /** Where the files are read: the version directory `..data` names (svidkit layout), else `dir`. */
  readonly readDir: string;
  /** The target of `..data`, when the directory has one. */
  readonly dataTarget?: string;
}

/** One file read whole. */
export interface FileRead {
  readonly name: string;
  readonly data: Buffer;
  /** Permission bits of the file (of the link target for a symlink). */
  readonly mode: number;
  readonly uid: number;
}

/**
 * The names of a layout with overrides applied; TypeError for a name that is not a plain file name,
 * its message starting with `module`.
 */
export function namesFor(layout: FileLayout, overrides: NameOverrides = {}, module = 'doctor'): FileNames {
  const given: Partial<FileNames> = {};
  if (overrides.svid !== undefined) given.svid = overrides.svid;
  if (overrides.key !== undefined) given.key = overrides.key;
  if (overrides.bundle !== undefined) given.bundle = overrides.bundle;
  return resolveFileNames({ ...layoutBaseNames(layout), ...given }, module);
}

/** The file names to hand FileSource: the svid, key and bundle names doctor read. */
export function sourceNames(d: SvidDir): Partial<FileNames> {
  return { svid: d.names.svid, key: d.names.key, bundle: d.names.bundle };
}

/** Plain words for a file-system errno. */
export function describeErrno(code: string | undefined): string {
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EACCES':
    case 'EPERM':
      return `cannot be read by this process${uidNote()}: permission denied (${code})`;
    case 'ELOOP':
      return 'is a symlink loop (ELOOP)';
    case 'ENOTDIR':
      return 'has a path component that is not a directory (ENOTDIR)';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return `cannot be read (${code ?? 'error'})`;
  }
}

function uidNote(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  return uid === undefined ? '' : ` (uid ${uid})`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Which layout a directory is in, by the files it holds: the agent's `..data` with a certificate in the
 * version directory, then cert-manager's own names, then spiffe-helper's (or the names given).
 */
async function detectLayout(dir: string, overrides: NameOverrides): Promise<FileLayout | undefined> {
  const agentSvid = overrides.svid ?? DEFAULT_FILE_NAMES.svid;
  const target = await readlinkOrUndefined(join(dir, DATA));
  if (target !== undefined && isVersionDirName(target) && (await exists(join(dir, target, agentSvid))))
    return 'svidkit';
  if (
    (await exists(join(dir, CERT_MANAGER_FILE_NAMES.svid))) ||
    (await exists(join(dir, CERT_MANAGER_FILE_NAMES.key)))
  ) {
    return 'cert-manager';
  }
  // Names given on the command line are the user's word: their absence is reported per file.
  if (overrides.svid !== undefined || overrides.key !== undefined) return 'spiffe-helper';
  const helper = namesFor('spiffe-helper', overrides);
  if ((await exists(join(dir, helper.svid))) || (await exists(join(dir, helper.key)))) return 'spiffe-helper';
  return undefined;
}

function describeLayout(d: SvidDir): string {
  switch (d.layout) {
    case 'svidkit':
      return `svidkit agent layout (${DATA} -> ${d.dataTarget ?? '?'})`;
    case 'cert-manager':
      return `cert-manager layout (${d.names.svid}, ${d.names.key}, ${d.names.bundle})${d.dataTarget ? ', a Kubernetes volume' : ''}`;
    default:
      return `plain files (spiffe-helper layout: ${d.names.svid}, ${d.names.key}, ${d.names.bundle})${d.dataTarget ? ', a Kubernetes volume' : ''}`;
  }
}

/**
 * Checks that `dir` is a readable directory and finds its layout (`layout` when given). Records the
 * `directory` check; undefined when the directory cannot be used.
 */
export async function openSvidDir(
  dir: string,
  layout: FileLayout | undefined,
  overrides: NameOverrides,
  checks: CheckList,
): Promise<SvidDir | undefined> {
  const abs = resolve(dir);
  let entries: string[];
  try {
    const st = await fsp.stat(abs);
    if (!st.isDirectory()) {
      checks.fail('directory', `${abs} is not a directory`, 'pass the directory that holds the SVID files');
      return undefined;
    }
    entries = await fsp.readdir(abs);
  } catch (err) {
    const code = errnoOf(err);
    checks.fail(
      'directory',
      `the directory ${abs} ${describeErrno(code)}`,
      code === 'ENOENT'
        ? 'check the path; in Kubernetes, check the volume mount, and that the agent (or cert-manager) has written the files'
        : 'run doctor as the user the workload runs as, or fix the permissions of the directory',
    );
    return undefined;
  }
  const found = layout ?? (await detectLayout(abs, overrides));
  if (found === undefined) {
    const shown = entries.filter((e) => !e.startsWith('..')).sort();
    const listing =
      shown.length === 0 ? 'it is empty' : `it holds ${shown.slice(0, 8).join(', ')}${shown.length > 8 ? ', ...' : ''}`;
    checks.fail(
      'directory',
      `no SVID files in ${abs}: expected ${DEFAULT_FILE_NAMES.svid} and ${DEFAULT_FILE_NAMES.key} (svidkit agent, spiffe-helper) or tls.crt and tls.key (cert-manager); ${listing}`,
      'point doctor at the directory the agent writes to, or name the files with --cert, --key and --bundle',
    );
    return undefined;
  }
  if (!FILE_LAYOUTS.includes(found)) throw new TypeError(`doctor: unknown layout ${String(found)}`);
  const names = namesFor(found, overrides);
  const target = await readlinkOrUndefined(join(abs, DATA));
  if (found === 'svidkit' && (target === undefined || !isVersionDirName(target))) {
    checks.fail(
      'directory',
      target === undefined
        ? `${abs} has no ${DATA} link, so it is not an svidkit agent output directory`
        : `${DATA} in ${abs} does not name a version directory`,
      'wait for the agent to write the files, or pass the layout the directory really has (--layout)',
    );
    return undefined;
  }
  const d: SvidDir = {
    dir: abs,
    layout: found,
    names,
    readDir: found === 'svidkit' ? join(abs, target!) : abs,
    dataTarget: target !== undefined && isVersionDirName(target) ? target : undefined,
  };
  checks.pass('directory', `${abs}: ${describeLayout(d)}`);
  return d;
}

/** Why a bounded read failed. */
export interface ReadFailure {
  readonly errno?: string;
  readonly text: string;
}

/**
 * The layout's bounded read (never blocks on a FIFO, never reads more than max + 1 bytes), resolving
 * with the bytes or with why they cannot be had, in doctor's words.
 */
export async function readBounded(path: string, max: number): Promise<{ ok: FileRead } | { failure: ReadFailure }> {
  try {
    const r = await readBoundedFile(path, max);
    if (r.data.length === 0) return { failure: { text: 'is empty' } };
    return { ok: { name: path, data: r.data, mode: r.mode, uid: r.uid } };
  } catch (err) {
    if (!(err instanceof LayoutReadError)) {
      const errno = errnoOf(err);
      return { failure: { errno, text: describeErrno(errno) } };
    }
    switch (err.reason) {
      case 'not-regular':
        return { failure: { text: 'is not a regular file' } };
      case 'too-large':
        return { failure: { text: `is ${err.size} bytes, more than the ${max} bytes the library reads` } };
      case 'changed':
        return { failure: { text: 'grew while it was read (a writer is at work); run doctor again' } };
      default:
        return { failure: { errno: err.errno, text: describeErrno(err.errno) } };
    }
  }
}

/** Reads the file `name` of an SVID directory; see readBounded. */
export async function readSvidFile(
  d: SvidDir,
  name: string,
  max: number,
): Promise<{ ok: FileRead } | { failure: ReadFailure }> {
  const r = await readBounded(join(d.readDir, name), max);
  return 'ok' in r ? { ok: { ...r.ok, name } } : r;
}

/** True when a file named `name` is in the directory files are read from. */
export function fileExists(d: SvidDir, name: string): Promise<boolean> {
  return exists(join(d.readDir, name));
}
