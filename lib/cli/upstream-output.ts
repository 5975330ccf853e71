/**
 * The staged output of `svidkit upstream ...`: output files are checked before any work, written
 * completely and synced, and never replace an existing file without --force; with --force each is
 * written to a temporary name beside its target and renamed over it, so a symlink at the target is
 * replaced rather than followed, and nothing is half written. Also the text forms the commands print.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { SvidkitError } from '../errors/index.js';
import { fail } from './upstream-flags.js';

function ioFail(message: string): never {
  throw new SvidkitError('ERR_IO', `io: ${message}`);
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

/** One file to write: its path, content and mode. */
export interface Output {
  readonly path: string;
  readonly data: string;
  readonly mode: number;
}

/** Refuses paths that name the same file twice, or an input about to be replaced. */
export function checkDistinct(
  outputs: readonly { option: string; path: string }[],
  inputs: readonly { option: string; path: string }[],
): void {
  const seen = new Map<string, string>();
  for (const { option, path } of outputs) {
    const abs = resolve(path);
    const clash = seen.get(abs) ?? inputs.find((i) => i.path !== '-' && resolve(i.path) === abs)?.option;
    if (clash !== undefined) fail('ERR_USAGE', `${option} and ${clash} name the same file (${path})`);
    seen.set(abs, option);
  }
}

/** Fails with ERR_IO before any work when an output exists and --force is not given. */
export async function checkOutputs(paths: readonly string[], force: boolean): Promise<void> {
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = (await lstat(path)).isDirectory();
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') continue;
      throw new SvidkitError('ERR_IO', `io: cannot check ${path} (${errnoOf(err)})`, { cause: err });
    }
    if (isDir) ioFail(`${path} is a directory`);
    if (!force) ioFail(`${path} exists; refusing to overwrite it without --force`);
  }
}

/** Creates `path` exclusively (flag 'wx') with `mode`, writes and syncs `data`. */
async function writeNew(path: string, data: string, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  const buf = Buffer.from(data, 'utf8');
  try {
    await handle.chmod(mode); // the umask can only have narrowed it; make it exact
    await handle.writeFile(buf);
    await handle.sync();
  } finally {
    buf.fill(0);
    await handle.close();
  }
}

/**
 * Writes the outputs in order. Without `force` each file is created with flag 'wx', and a failure removes
 * the files this call created. With `force` every file is first written completely to a temporary name in
 * its directory, then each is renamed over its target.
 */
export async function writeOutputs(outputs: readonly Output[], force: boolean): Promise<void> {
  const created: string[] = [];
  const temps: string[] = [];
  const cleanUp = async () => {
    for (const p of [...created, ...temps]) await unlink(p).catch(() => undefined);
  };
  let current = '';
  try {
    if (!force) {
      for (const o of outputs) {
        current = o.path;
        await writeNew(o.path, o.data, o.mode);
        created.push(o.path);
      }
      return;
    }
    const staged: [string, string][] = [];
    for (const o of outputs) {
      current = o.path;
      const temp = join(dirname(o.path), `.${basename(o.path)}.${randomBytes(8).toString('hex')}.tmp`);
      await writeNew(temp, o.data, o.mode);
      temps.push(temp);
      staged.push([temp, o.path]);
    }
    for (const [temp, path] of staged) {
      current = path;
      await rename(temp, path);
      temps.splice(temps.indexOf(temp), 1);
    }
  } catch (err) {
    await cleanUp();
    if (errnoOf(err) === 'EEXIST') {
      ioFail(`${current} exists; refusing to overwrite it without --force`);
    }
    throw new SvidkitError('ERR_IO', `io: cannot write ${current} (${errnoOf(err)})`, { cause: err });
  }
}

/** A distinguished name on one line. */
export function oneLine(dn: string): string {
  return dn.replace(/\n/g, ', ');
}

/**
 * A path as a YAML scalar: plain when YAML reads it back as that same string (it has a slash, or starts
 * with a letter and is not true, false or null), JSON (a YAML double-quoted string) otherwise.
 */
export function yamlPath(path: string): string {
  const plain =
    /^[A-Za-z0-9_./][A-Za-z0-9_./-]*$/.test(path) &&
    (path.includes('/') || (/^[A-Za-z_]/.test(path) && !/^(true|false|null)$/i.test(path)));
  return plain ? path : JSON.stringify(path);
}
