/**
 * The CA's private directories (data_dir and the directory of the admin socket) and the admin
 * socket itself. Whoever can write data_dir can replace the datastore, the key files or the admin
 * socket, and whoever can reach the socket is an administrator: so the CA refuses to start on a
 * directory another uid could change, rather than repairing it, and binds the socket where nobody
 * else can reach it before it is moved into place.
 */
import { lstat, mkdir, mkdtemp, rename, rm, chmod } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SvidkitError } from '../errors/index.js';

function refuse(key: string, dir: string, why: string, cause?: unknown): SvidkitError {
  return new SvidkitError('ERR_CONFIG', `config: ${key}: ${dir} ${why}`, cause === undefined ? undefined : { cause });
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/**
 * Makes sure `dir` is a directory only the CA's own uid can change: created 0700 (with missing
 * parents) when absent; ERR_CONFIG, naming `key`, when it is a symlink, not a directory, owned by
 * another uid, or writable by group or others.
 */
export async function ensurePrivateDir(dir: string, key: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    // EEXIST from a symlink or a file in the way is reported by the checks below.
    if (errnoOf(cause) !== 'EEXIST') throw refuse(key, dir, `cannot be created (${errnoOf(cause)})`, cause);
  }
  let st;
  try {
    st = await lstat(dir);
  } catch (cause) {
    throw refuse(key, dir, `cannot be read (${errnoOf(cause)})`, cause);
  }
  if (st.isSymbolicLink()) {
    throw refuse(key, dir, 'is a symlink; name the real directory (whoever can change the link chooses the CA state)');
  }
  if (!st.isDirectory()) throw refuse(key, dir, 'is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw refuse(key, dir, `is owned by uid ${st.uid}, not by the CA's uid ${uid}; chown it to the CA's user`);
  }
  const mode = st.mode & 0o7777;
  if ((mode & 0o022) !== 0) {
    const who = [mode & 0o020 ? 'group' : '', mode & 0o002 ? 'others' : ''].filter((w) => w !== '').join(' and ');
    throw refuse(
      key,
      dir,
      `is writable by ${who} (mode ${mode.toString(8).padStart(4, '0')}): anyone who can write it can replace ` +
        "the CA's files or its admin socket; chmod go-w it (0700 is best)",
    );
  }
}

/**
 * Binds a Unix socket at `path` with mode 0600 and no moment where another uid could connect to
 * it or swap it: `bind` runs on a name inside a fresh 0700 directory next to `path` (mkdtemp), the
 * socket is made 0600 there, where no one else can enter, and then renamed over `path` in one step.
 * The directory of `path` must already have passed ensurePrivateDir.
 */
export async function bindPrivateSocket(path: string, bind: (tempPath: string) => Promise<void>): Promise<void> {
  // A short temporary name: sun_path holds 107 bytes, and `path` may be close to that already.
  const staging = await mkdtemp(join(dirname(path), `.${basename(path).slice(0, 8)}-`));
  try {
    const temp = join(staging, 's');
    await bind(temp);
    await chmod(temp, 0o600);
    await rename(temp, path);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
