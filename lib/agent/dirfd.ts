/**
 * Directories acted on through their file descriptors. Node has no openat(2), unlinkat(2) or
 * renameat(2), but Linux resolves `/proc/self/fd/<fd>/<name>` exactly like those calls resolve
 * `<name>` relative to `<fd>`: the magic link jumps straight to the directory the descriptor holds,
 * wherever it now is, and only `<name>` is looked up. So once a directory is open (O_NOFOLLOW,
 * O_DIRECTORY), nothing a workload renames or swaps above it can redirect what the agent does inside,
 * and each final name is never followed: files are created O_EXCL|O_NOFOLLOW, directories opened
 * O_NOFOLLOW|O_DIRECTORY, and unlink, rmdir, rename, readlink and lstat never follow a final link.
 * Permission and owner changes and fsync go through descriptors only, never through a path.
 *
 * The metadata calls are synchronous: each is a few microseconds on a local file system, while a
 * round trip through libuv's thread pool costs ten times that in CPU, and a rotation makes about a
 * hundred of them per workload (docs/decisions.md). fsync, the one call that waits for the disk, runs
 * in the pool.
 */
import * as nodeFs from 'node:fs';
import { constants } from 'node:fs';
import { SvidkitError } from '../errors/index.js';
import { errnoOf } from '../layout/index.js';

/** The parts of a stat result the writer reads. */
export interface WriterStat {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** An entry of a directory stream, with the type the kernel reported (all false when it did not). */
export interface WriterDirent {
  readonly name: string;
  isDirectory(): boolean;
  isFile(): boolean;
  isSymbolicLink(): boolean;
}

/** A directory stream as opendirSync returns it. */
export interface WriterDirStream {
  readSync(): WriterDirent | null;
  closeSync(): void;
}

/** The file-system calls the writer makes (a subset of node:fs); tests inject failures here. */
export interface WriterFs {
  openSync(path: string, flags: number, mode?: number): number;
  closeSync(fd: number): void;
  fstatSync(fd: number): WriterStat;
  fchmodSync(fd: number, mode: number): void;
  fchownSync(fd: number, uid: number, gid: number): void;
  writeSync(fd: number, buffer: Buffer, offset: number, length: number): number;
  /** The one asynchronous call: it waits for the disk. */
  fsync(fd: number, callback: (err: NodeJS.ErrnoException | null) => void): void;
  mkdirSync(path: string, options: { mode: number }): unknown;
  mkdtempSync(prefix: string): string;
  symlinkSync(target: string, path: string): void;
  renameSync(from: string, to: string): void;
  readlinkSync(path: string): string;
  lstatSync(path: string): WriterStat;
  unlinkSync(path: string): void;
  rmdirSync(path: string): void;
  opendirSync(path: string, options: { bufferSize: number }): WriterDirStream;
}

/** node:fs itself. */
export const systemFs: WriterFs = nodeFs;

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const NEW_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Most entries removeTree reads in one directory of a version (it holds a few files and up to 256 tokens). */
const MAX_TREE_ENTRIES = 1024;
/** Deepest tree removeTree walks: a version directory holds one level (jwt/); more is not ours. */
const MAX_DEPTH = 4;

/** The errno code of a node:fs error (the layout's reader words its own failures with the same). */
export { errnoOf };

function checkName(name: string): string {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new TypeError(`agent: "${name}" is not a plain name inside a directory`);
  }
  return name;
}

/** fsync(2) of a descriptor, in the thread pool. */
export function fsyncFd(fs: WriterFs, fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** A file created in a Dir, written through its descriptor. */
export class NewFile {
  readonly #fs: WriterFs;
  /** The descriptor; closed by close(). */
  readonly fd: number;
  #open = true;

  constructor(fs: WriterFs, fd: number) {
    this.#fs = fs;
    this.fd = fd;
  }

  /** Sets the mode through the descriptor. */
  chmod(mode: number): void {
    this.#fs.fchmodSync(this.fd, mode);
  }

  /** Sets owner and group through the descriptor (-1 leaves one unchanged). */
  chown(uid: number, gid: number): void {
    this.#fs.fchownSync(this.fd, uid, gid);
  }

  /** Writes all of `data`. */
  writeAll(data: Buffer): void {
    let off = 0;
    while (off < data.length) off += this.#fs.writeSync(this.fd, data, off, data.length - off);
  }

  /** fsync(2), in the thread pool. */
  sync(): Promise<void> {
    return fsyncFd(this.#fs, this.fd);
  }

  /** Closes the descriptor once. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#fs.closeSync(this.fd);
  }
}

/** A directory held open by descriptor; every name is resolved relative to it. */
export class Dir {
  readonly #fs: WriterFs;
  readonly #fd: number;
  #open = true;

  private constructor(fs: WriterFs, fd: number) {
    this.#fs = fs;
    this.#fd = fd;
  }

  /** Opens `path` as a directory without following a final symlink (ENOTDIR for a link or a FIFO, never a block). */
  static open(fs: WriterFs, path: string): Dir {
    return new Dir(fs, fs.openSync(path, DIR_FLAGS));
  }

  /** The path of this directory through its descriptor. */
  get self(): string {
    return `/proc/self/fd/${this.#fd}`;
  }

  /** The path of `name` inside this directory, resolved as openat(fd, name) would. */
  at(name: string): string {
    return `${this.self}/${checkName(name)}`;
  }

  /** Where the kernel says this directory now is; compared with the expected path, it proves nothing redirected the open. */
  location(): string {
    try {
      return this.#fs.readlinkSync(this.self);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        throw new SvidkitError('ERR_AGENT_WRITE', 'agent: /proc/self/fd is not available; the agent needs procfs', {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** Owner and mode of the directory itself. */
  stat(): WriterStat {
    return this.#fs.fstatSync(this.#fd);
  }

  /** Sets the directory's own mode through its descriptor. */
  chmod(mode: number): void {
    this.#fs.fchmodSync(this.#fd, mode);
  }

  /** fsync(2) of the directory, so renames and new entries in it are durable. */
  sync(): Promise<void> {
    return fsyncFd(this.#fs, this.#fd);
  }

  /** Closes the descriptor once. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#fs.closeSync(this.#fd);
  }

  /** Opens the subdirectory `name` without following it. */
  openDir(name: string): Dir {
    return Dir.open(this.#fs, this.at(name));
  }

  /** Creates the file `name` exclusively with `mode`; never opens an existing file or follows a link. */
  createFile(name: string, mode: number): NewFile {
    return new NewFile(this.#fs, this.#fs.openSync(this.at(name), NEW_FILE_FLAGS, mode));
  }

  /** Creates the subdirectory `name`. */
  mkdir(name: string, mode: number): void {
    this.#fs.mkdirSync(this.at(name), { mode });
  }

  /** Creates a subdirectory with a unique name starting with `prefix` and returns that name. */
  mkdtemp(prefix: string): string {
    return this.#fs.mkdtempSync(this.at(prefix)).slice(this.self.length + 1);
  }

  /**
   * The names in this directory, at most `max` of them: a workload can fill its own directory, and
   * an unbounded scan there would stall the agent's loop for every other workload.
   */
  list(max: number): string[] {
    return this.entries(max).map((e) => e.name);
  }

  /** Like list(), with each entry's type as the kernel reported it. */
  entries(max: number): WriterDirent[] {
    const out: WriterDirent[] = [];
    const stream = this.#fs.opendirSync(this.self, { bufferSize: 128 });
    try {
      for (let entry = stream.readSync(); entry !== null; entry = stream.readSync()) {
        if (out.length >= max) {
          throw new SvidkitError('ERR_AGENT_WRITE', `agent: a directory holds more than ${max} entries`);
        }
        out.push(entry);
      }
    } finally {
      stream.closeSync();
    }
    return out;
  }

  /** lstat of `name`, or undefined when it does not exist. */
  lstat(name: string): WriterStat | undefined {
    try {
      return this.#fs.lstatSync(this.at(name));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The target of the symlink `name`, or undefined when it is missing or not a symlink. */
  readlink(name: string): string | undefined {
    try {
      return this.#fs.readlinkSync(this.at(name));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'EINVAL') return undefined;
      throw err;
    }
  }

  /** Creates the symlink `name` -> `target`. */
  symlink(target: string, name: string): void {
    this.#fs.symlinkSync(target, this.at(name));
  }

  /** rename(2) of `from` over `to`, both in this directory. */
  rename(from: string, to: string): void {
    this.#fs.renameSync(this.at(from), this.at(to));
  }

  /** Removes the non-directory `name` (a link itself, never its target); absent is fine. */
  unlink(name: string): void {
    try {
      this.#fs.unlinkSync(this.at(name));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
  }

  /**
   * Removes `name` and, when it is a directory, everything in it, each level opened by descriptor
   * without following links: a directory swapped for a symlink mid-removal loses only the link.
   */
  removeTree(name: string, depth = 0): void {
    let sub: Dir;
    try {
      sub = this.openDir(name);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return;
      // Not a directory (a file, a link, a FIFO): the name itself goes, its target is never touched.
      if (code === 'ENOTDIR' || code === 'ELOOP') return this.unlink(name);
      throw err;
    }
    try {
      if (depth >= MAX_DEPTH) throw new SvidkitError('ERR_AGENT_WRITE', `agent: ${name} is nested too deeply`);
      for (const entry of sub.entries(MAX_TREE_ENTRIES)) {
        // The type from the directory read spares an lstat; a file system that reports none gets one.
        const known = entry.isDirectory() || entry.isFile() || entry.isSymbolicLink();
        const isDir = known ? entry.isDirectory() : sub.lstat(entry.name)?.isDirectory();
        // A directory swapped in after the read is opened O_NOFOLLOW below; one swapped out fails ENOTDIR/EISDIR.
        if (isDir) sub.removeTree(entry.name, depth + 1);
        else sub.unlink(entry.name);
      }
    } finally {
      sub.close();
    }
    try {
      this.#fs.rmdirSync(this.at(name));
    } catch (err) {
      // ENOTDIR: the name was swapped for something else meanwhile; that is not ours to follow.
      if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') throw err;
    }
  }
}
