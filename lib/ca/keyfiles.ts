/**
 * The CA's key directory: private keys as PKCS#8 PEM files (directory 0700, files 0600) and a small
 * state file. Every file is written to a temporary name, fsynced, renamed into place and the
 * directory fsynced, so a crash leaves either the whole old file or the whole new one, never half a
 * key. Error messages name files, never their contents.
 */
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { loadPrivateKeyPem, privateKeyToPem, samePublicKey } from '../keys/index.js';

/** Suffix of every private key file the CA writes. */
export const KEY_FILE_SUFFIX = '.key.pem';
/** Largest key or state file read back (an RSA-4096 PKCS#8 PEM is about 3.3 KiB). */
const MAX_FILE_BYTES = 64 * 1024;
const TEMP_FILE = /^\..+\.[0-9a-f]{16}\.tmp$/;
// The names keys.ts gives key files: `<kind>-<id>.key.pem`, with the id forms it generates (16
// random bytes, as hex for X.509 keys and as base64url for JWT kids). Nothing else is ever removed.
const OWN_KEY_FILE = /^(?:x509-[0-9a-f]{32}|jwt-[A-Za-z0-9_-]{22})\.key\.pem$/;

function caError(code: ErrorCode, message: string, cause?: unknown): SvidkitError {
  return new SvidkitError(code, `ca: ${message}`, cause === undefined ? undefined : { cause });
}

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

// Only the errno code goes into messages: Node's fs messages are safe, but the code is all a reader needs.
function ioError(action: string, err: unknown): SvidkitError {
  return caError('ERR_CA_KEY_IO', `${action} failed (${errno(err) ?? 'error'})`, err);
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates the key directory (and parents) if needed and makes it owner-only (0700). Returns its
 * absolute path. The directory belongs to one CA: nothing else should keep files in it.
 */
export function ensureKeyDir(dir: string): string {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw caError('ERR_CA_CONFIG', 'keyDir must be a non-empty path');
  }
  const abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
    const st = statSync(abs);
    if (!st.isDirectory()) throw caError('ERR_CA_KEY_IO', `keyDir ${abs} is not a directory`);
    // The umask may have widened nothing but narrowed the mode; an existing directory may be looser.
    if ((st.mode & 0o777) !== 0o700) chmodSync(abs, 0o700);
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    throw ioError(`preparing keyDir ${abs}`, err);
  }
  return abs;
}

/**
 * Writes `data` to `dir/name` atomically with mode 0600. Unless `overwrite` is set, an existing
 * file of that name is an error and is left untouched.
 */
export function writeFileAtomic(dir: string, name: string, data: string, overwrite: boolean): string {
  const target = join(dir, name);
  if (!overwrite) {
    let exists = true;
    try {
      lstatSync(target);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw ioError(`checking ${target}`, err);
      exists = false;
    }
    if (exists) throw caError('ERR_CA_KEY_IO', `refusing to overwrite ${target}`);
  }
  const temp = join(dir, `.${name}.${randomBytes(8).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o600);
    fchmodSync(fd, 0o600);
    const buf = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    buf.fill(0);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, target);
    syncDirectory(dir);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    try {
      unlinkSync(temp);
    } catch {
      // absent after a successful rename, or never created
    }
    throw ioError(`writing ${target}`, err);
  }
  return target;
}

/** Writes a private key as PKCS#8 PEM to `dir/name` (never overwriting) and returns the path. */
export function writePrivateKey(dir: string, name: string, key: KeyObject): string {
  return writeFileAtomic(dir, name, privateKeyToPem(key), false);
}

/**
 * Reads the private key at `path` and checks that it belongs to `publicKey`. A missing file is
 * ERR_CA_KEY_MISSING; a file that is not a PKCS#8 key, or the key of something else, is
 * ERR_CA_KEY_MISMATCH; other read failures are ERR_CA_KEY_IO. A file readable by others is tightened
 * to 0600 and reported through `onLoose`.
 */
export function readPrivateKey(
  path: string,
  publicKey: KeyObject,
  what: string,
  onLoose?: (mode: number) => void,
): KeyObject {
  let pem: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw caError('ERR_CA_KEY_MISMATCH', `the private key of ${what} (${path}) is not a file`);
    if (st.size > MAX_FILE_BYTES) {
      throw caError('ERR_CA_KEY_MISMATCH', `the private key file of ${what} (${path}) is too large to be a key`);
    }
    if ((st.mode & 0o077) !== 0) {
      chmodSync(path, 0o600);
      onLoose?.(st.mode & 0o777);
    }
    pem = readFileSync(path);
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    if (errno(err) === 'ENOENT') {
      throw caError(
        'ERR_CA_KEY_MISSING',
        `the private key file of ${what} is missing: ${path}; refusing to start rather than replace a CA ` +
          'key that is still trusted (restore the file from a backup, or taint and rotate the key)',
        err,
      );
    }
    throw ioError(`reading the private key of ${what} (${path})`, err);
  }
  let key: KeyObject;
  try {
    key = loadPrivateKeyPem(pem);
  } catch (err) {
    // loadPrivateKeyPem's messages never quote key material; keep them as the cause only.
    throw caError('ERR_CA_KEY_MISMATCH', `${path} does not hold a usable PKCS#8 private key for ${what}`, err);
  } finally {
    pem.fill(0);
  }
  if (!samePublicKey(key, publicKey)) {
    throw caError(
      'ERR_CA_KEY_MISMATCH',
      `${path} holds a different private key than the one journaled for ${what}; refusing to sign with it`,
    );
  }
  return key;
}

/** Removes a file; a file that is already gone is fine. Returns false when removal failed. */
export function removeFile(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    return errno(err) === 'ENOENT';
  }
}

/** Removes temporary files a crash left behind in `dir` (only names writeFileAtomic creates). */
export function removeStaleTempFiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw ioError(`listing keyDir ${dir}`, err);
  }
  for (const name of names) if (TEMP_FILE.test(name)) removeFile(join(dir, name));
}

/**
 * Removes key files the CA wrote but never journaled (a crash between writing a new key and its
 * journal record): only files named as the CA names its own keys, and only when no journal record
 * (`referenced`, by file name) points at them. Returns the names removed.
 */
export function removeOrphanKeyFiles(dir: string, referenced: ReadonlySet<string>): string[] {
  const removed: string[] = [];
  for (const name of listKeyFiles(dir)) {
    if (!OWN_KEY_FILE.test(name) || referenced.has(name)) continue;
    const path = join(dir, name);
    try {
      // A directory or a symlink of that name is not a file the CA wrote: leave it to the operator.
      if (!lstatSync(path).isFile()) continue;
    } catch (err) {
      if (errno(err) === 'ENOENT') continue;
      throw ioError(`checking ${path}`, err);
    }
    if (removeFile(path)) removed.push(name);
  }
  return removed;
}

/** The private key files in `dir` (by name). */
export function listKeyFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith(KEY_FILE_SUFFIX) && !n.startsWith('.'));
  } catch (err) {
    throw ioError(`listing keyDir ${dir}`, err);
  }
}

/** Reads a small text file, or undefined when it does not exist. */
export function readOptionalFile(path: string): string | undefined {
  try {
    const st = statSync(path);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw ioError(`reading ${path}`, err);
  }
}

/** Where a journaled key file lives now: always inside keyDir, whatever directory the journal names. */
export function keyFileIn(dir: string, journaledPath: string): string {
  return join(dir, basename(journaledPath));
}
