/**
 * Directories acted on through their file descriptors. Node has no openat(2), unlinkat(2) or
 * renameat(2), but Linux resolves `/proc/self/fd/<fd>/<name>` exactly like those calls resolve
 * `<name>` relative to `<fd>`: the magic link jumps straight to the directory the descriptor holds,
 * wherever it now is, and only `<name>` is looked up. So once a directory is open (O_NOFOLLOW,
 * O_DIRECTORY), nothing a workload renames or swaps above it can redirect what the agent does inside,
 * and each final name is never followed: files are created O_EXCL|O_NOFOLLOW, directories opened
 * O_NOFOLLOW|O_DIRECTORY, and unlink, rmdir, rename, readlink and lstat never follow a final link.
 * Permission and owner changes and fsync go through open handles only, never through a path.
 */
import { constants } from 'node:fs';
import { SvidkitError } from '../errors/index.js';

/** An open file or directory as the writer uses it (a subset of fs/promises FileHandle). */
export interface WriterFileHandle {
  readonly fd: number;
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  chmod(mode: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  stat(): Promise<{ uid: number; gid: number; mode: number; isDirectory(): boolean }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The file-system calls the writer makes (a subset of node:fs/promises); tests inject failures here. */
export interface WriterFs {
  open(path: string, flags: number, mode?: number): Promise<WriterFileHandle>;
  mkdir(path: string, options: { mode: number }): Promise<unknown>;
  mkdtemp(prefix: string): Promise<string>;
  symlink(target: string, path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  readlink(path: string): Promise<string>;
  lstat(path: string): Promise<{ isDirectory(): boolean; isSymbolicLink(): boolean }>;
  opendir(path: string, options: { bufferSize: number }): Promise<AsyncIterable<{ name: string }>>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
}

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const NEW_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Most entries removeTree reads in one directory of a version (it holds a few files and up to 256 tokens). */
const MAX_TREE_ENTRIES = 1024;
/** Deepest tree removeTree walks: a version directory holds one level (jwt/); more is not ours. */
const MAX_DEPTH = 4;

/** The errno code of a node:fs error. */
export function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function checkName(name: string): string {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new TypeError(`agent: "${name}" is not a plain name inside a directory`);
  }
  return name;
}

/** A directory held open by descriptor; every name is resolved relative to it. */
export class Dir {
  readonly #fs: WriterFs;
  readonly #handle: WriterFileHandle;

  private constructor(fs: WriterFs, handle: WriterFileHandle) {
    this.#fs = fs;
    this.#handle = handle;
  }

  /** Opens `path` as a directory without following a final symlink (ENOTDIR for a link or a FIFO, never a block). */
  static async open(fs: WriterFs, path: string): Promise<Dir> {
    return new Dir(fs, await fs.open(path, DIR_FLAGS));
  }

  /** The path of this directory through its descriptor. */
  get self(): string {
    return `/proc/self/fd/${this.#handle.fd}`;
  }

  /** The path of `name` inside this directory, resolved as openat(fd, name) would. */
  at(name: string): string {
    return `${this.self}/${checkName(name)}`;
  }

  /** Where the kernel says this directory now is; compared with the expected path, it proves nothing redirected the open. */
  async location(): Promise<string> {
    try {
      return await this.#fs.readlink(this.self);
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
  stat(): Promise<{ uid: number; gid: number; mode: number }> {
    return this.#handle.stat();
  }

  /** Sets the directory's own mode through its descriptor. */
  chmod(mode: number): Promise<void> {
    return this.#handle.chmod(mode);
  }

  /** fsync(2) of the directory, so renames and new entries in it are durable. */
  sync(): Promise<void> {
    return this.#handle.sync();
  }

  /** Closes the descriptor. */
  close(): Promise<void> {
    return this.#handle.close();
  }

  /** Opens the subdirectory `name` without following it. */
  openDir(name: string): Promise<Dir> {
    return Dir.open(this.#fs, this.at(name));
  }

  /** Creates the file `name` exclusively with `mode`; never opens an existing file or follows a link. */
  createFile(name: string, mode: number): Promise<WriterFileHandle> {
    return this.#fs.open(this.at(name), NEW_FILE_FLAGS, mode);
  }

  /** Creates the subdirectory `name`. */
  async mkdir(name: string, mode: number): Promise<void> {
    await this.#fs.mkdir(this.at(name), { mode });
  }

  /** Creates a subdirectory with a unique name starting with `prefix` and returns that name. */
  async mkdtemp(prefix: string): Promise<string> {
    const made = await this.#fs.mkdtemp(this.at(prefix));
    return made.slice(this.self.length + 1);
  }

  /**
   * The names in this directory, at most `max` of them: a workload can fill its own directory, and
   * an unbounded scan there would stall the agent's loop for every other workload.
   */
  async list(max: number): Promise<string[]> {
    const names: string[] = [];
    // Leaving the loop early closes the directory stream.
    for await (const entry of await this.#fs.opendir(this.self, { bufferSize: 128 })) {
      if (names.length >= max) {
        throw new SvidkitError('ERR_AGENT_WRITE', `agent: a directory holds more than ${max} entries`);
      }
      names.push(entry.name);
    }
    return names;
  }

  /** lstat of `name`, or undefined when it does not exist. */
  async lstat(name: string): Promise<{ isDirectory(): boolean; isSymbolicLink(): boolean } | undefined> {
    try {
      return await this.#fs.lstat(this.at(name));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The target of the symlink `name`, or undefined when it is missing or not a symlink. */
  async readlink(name: string): Promise<string | undefined> {
    try {
      return await this.#fs.readlink(this.at(name));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'EINVAL') return undefined;
      throw err;
    }
  }

  /** Creates the symlink `name` -> `target`. */
  symlink(target: string, name: string): Promise<void> {
    return this.#fs.symlink(target, this.at(name));
  }

  /** rename(2) of `from` over `to`, both in this directory. */
  rename(from: string, to: string): Promise<void> {
    return this.#fs.rename(this.at(from), this.at(to));
  }

  /** Removes the non-directory `name` (a link itself, never its target); absent is fine. */
  async unlink(name: string): Promise<void> {
    try {
      await this.#fs.unlink(this.at(name));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
  }

  /**
   * Removes `name` and, when it is a directory, everything in it, each level opened by descriptor
   * without following links: a directory swapped for a symlink mid-removal loses only the link.
   */
  async removeTree(name: string, depth = 0): Promise<void> {
    let sub: Dir;
    try {
      sub = await this.openDir(name);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return;
      // Not a directory (a file, a link, a FIFO): the name itself goes, its target is never touched.
      if (code === 'ENOTDIR' || code === 'ELOOP') return this.unlink(name);
      throw err;
    }
    try {
      if (depth >= MAX_DEPTH) throw new SvidkitError('ERR_AGENT_WRITE', `agent: ${name} is nested too deeply`);
      for (const entry of await sub.list(MAX_TREE_ENTRIES)) {
        const st = await sub.lstat(entry);
        if (st?.isDirectory()) await sub.removeTree(entry, depth + 1);
        else if (st) await sub.unlink(entry);
      }
    } finally {
      await sub.close();
    }
    try {
      await this.#fs.rmdir(this.at(name));
    } catch (err) {
      // ENOTDIR: the name was swapped for something else meanwhile; that is not ours to follow.
      if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') throw err;
    }
  }
}
