/**
 * File-system helpers for the agent's writer tests: temporary directories, a byte-exact snapshot of a
 * directory tree (symlinks not followed) and a WriterFs that fails one kind of call with an errno.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WriterFs } from '../../lib/agent/writer.js';

/** A fresh temporary directory; remove it with `rm(dir, { recursive: true, force: true })`. */
export function tempDir(prefix = 'svidkit-agent-'): Promise<string> {
  return fsp.mkdtemp(join(tmpdir(), prefix));
}

/** One entry of a snapshot: type, permission bits, and the link target or a hash of the content. */
export interface TreeEntry {
  type: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  target?: string;
  sha256?: string;
}

/** Every entry under `dir` by relative path, read without following symlinks; {} when `dir` is missing. */
export async function snapshot(dir: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  async function walk(rel: string): Promise<void> {
    let names: string[];
    try {
      names = (await fsp.readdir(join(dir, rel))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && rel === '') return;
      throw err;
    }
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = await fsp.lstat(join(dir, path));
      const mode = st.mode & 0o7777;
      if (st.isSymbolicLink()) {
        out[path] = { type: 'link', mode: 0, target: await fsp.readlink(join(dir, path)) };
      } else if (st.isDirectory()) {
        out[path] = { type: 'dir', mode };
        await walk(path);
      } else if (st.isFile()) {
        const sha256 = createHash('sha256')
          .update(await fsp.readFile(join(dir, path)))
          .digest('hex');
        out[path] = { type: 'file', mode, sha256 };
      } else {
        out[path] = { type: 'other', mode };
      }
    }
  }
  await walk('');
  return out;
}

/** An Error carrying an errno code, as node:fs raises them. */
export function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected failure, ${syscall}`), { code, syscall });
}

/** The calls a fault can target, by the name of the system call (`sync` is fsync, `chown` fchown, `chmod` fchmod). */
export type FsOp =
  | 'open'
  | 'close'
  | 'fstat'
  | 'chmod'
  | 'chown'
  | 'write'
  | 'sync'
  | 'mkdir'
  | 'mkdtemp'
  | 'symlink'
  | 'rename'
  | 'readlink'
  | 'lstat'
  | 'unlink'
  | 'rmdir'
  | 'opendir';

/** A WriterFs over node:fs that counts calls and fails `op` from its `nth` call on. */
export interface FaultyFs extends WriterFs {
  /** Calls made so far, by operation. */
  readonly calls: Map<FsOp, number>;
}

/** A WriterFs that throws `errnoError(code)` on the nth and every later call of `op`; nth Infinity only counts. */
export function faultyFs(op: FsOp, code: string, nth = 1): FaultyFs {
  const calls = new Map<FsOp, number>();
  const hit = (name: FsOp): void => {
    const n = (calls.get(name) ?? 0) + 1;
    calls.set(name, n);
    if (name === op && n >= nth) throw errnoError(code, name);
  };
  const guard =
    <A extends unknown[], R>(name: FsOp, fn: (...args: A) => R) =>
    (...args: A): R => {
      hit(name);
      return fn(...args);
    };
  return {
    calls,
    openSync: guard('open', (path: string, flags: number, mode?: number) => fs.openSync(path, flags, mode)),
    closeSync: guard('close', (fd: number) => fs.closeSync(fd)),
    fstatSync: guard('fstat', (fd: number) => fs.fstatSync(fd)),
    fchmodSync: guard('chmod', (fd: number, mode: number) => fs.fchmodSync(fd, mode)),
    fchownSync: guard('chown', (fd: number, uid: number, gid: number) => fs.fchownSync(fd, uid, gid)),
    writeSync: guard('write', (fd: number, b: Buffer, off: number, len: number) => fs.writeSync(fd, b, off, len)),
    fsync: (fd, callback) => {
      try {
        hit('sync');
      } catch (err) {
        process.nextTick(callback, err as NodeJS.ErrnoException);
        return;
      }
      fs.fsync(fd, callback);
    },
    mkdirSync: guard('mkdir', (path: string, options: { mode: number }) => fs.mkdirSync(path, options)),
    mkdtempSync: guard('mkdtemp', (prefix: string) => fs.mkdtempSync(prefix)),
    symlinkSync: guard('symlink', (target: string, path: string) => fs.symlinkSync(target, path)),
    renameSync: guard('rename', (from: string, to: string) => fs.renameSync(from, to)),
    readlinkSync: guard('readlink', (path: string) => fs.readlinkSync(path)),
    lstatSync: guard('lstat', (path: string) => fs.lstatSync(path)),
    unlinkSync: guard('unlink', (path: string) => fs.unlinkSync(path)),
    rmdirSync: guard('rmdir', (path: string) => fs.rmdirSync(path)),
    opendirSync: guard('opendir', (path: string, options: { bufferSize: number }) => fs.opendirSync(path, options)),
  };
}
