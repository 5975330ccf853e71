/**
 * File-system helpers for the agent's writer tests: temporary directories, a byte-exact snapshot of a
 * directory tree (symlinks not followed) and a WriterFs that fails one kind of call with an errno.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WriterFileHandle, WriterFs } from '../../lib/agent/writer.js';

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

/** The WriterFs calls a fault can target, and the FileHandle methods `write`, `chown` and `sync`. */
export type FsOp = keyof WriterFs | 'write' | 'chown' | 'sync';

/** A WriterFs over node:fs/promises that counts calls and fails `op` from its `nth` call on. */
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
  const guard = async <T>(name: FsOp, fn: () => Promise<T>): Promise<T> => {
    hit(name);
    return fn();
  };
  const wrapHandle = (h: fsp.FileHandle): WriterFileHandle => ({
    fd: h.fd,
    stat: () => h.stat(),
    write: (buffer, offset, length) => guard('write', () => h.write(buffer, offset, length)),
    chmod: (mode) => h.chmod(mode),
    chown: (uid, gid) => guard('chown', () => h.chown(uid, gid)),
    sync: () => guard('sync', () => h.sync()),
    close: () => h.close(),
  });
  return {
    calls,
    mkdir: (path, options) => guard('mkdir', () => fsp.mkdir(path, options)),
    mkdtemp: (prefix) => guard('mkdtemp', () => fsp.mkdtemp(prefix)),
    open: (path, flags, mode) => guard('open', async () => wrapHandle(await fsp.open(path, flags, mode))),
    symlink: (target, path) => guard('symlink', () => fsp.symlink(target, path)),
    rename: (from, to) => guard('rename', () => fsp.rename(from, to)),
    readlink: (path) => guard('readlink', () => fsp.readlink(path)),
    lstat: (path) => guard('lstat', () => fsp.lstat(path)),
    opendir: (path, options) => guard('opendir', () => fsp.opendir(path, options)),
    rmdir: (path) => guard('rmdir', () => fsp.rmdir(path)),
    unlink: (path) => guard('unlink', () => fsp.unlink(path)),
  };
}
