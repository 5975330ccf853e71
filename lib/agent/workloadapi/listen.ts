/**
 * Binding the Workload API's Unix socket. Every local user may connect (access is decided by attesting
 * the caller, not by file modes), so the socket is 0666 in a 0755 directory; but only the agent may
 * change that directory, or a user could swap the socket for their own and receive other workloads'
 * requests. The directories on the way pass the same checks as output directories (trust.ts).
 *
 * An existing path is replaced only when it is a socket of the agent's own uid that nobody serves (a
 * previous run's); a symlink, another kind of file, another uid's socket or a live socket is refused.
 */
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type ServerOpts } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { SvidkitError } from '../../errors/index.js';
import { errnoOf } from '../dirfd.js';
import { resolveOutputDir } from '../trust.js';

/** Mode of the socket: connectable by every local user. */
export const SOCKET_MODE = 0o666;
/** Mode of a socket directory the agent creates: searchable by every local user, writable by the agent. */
export const SOCKET_DIR_MODE = 0o755;
/** How long probing an existing socket for a live server may take. */
const PROBE_TIMEOUT_MS = 2000;

function refuse(path: string, why: string, cause?: unknown): SvidkitError {
  return new SvidkitError(
    'ERR_AGENT_WORKLOAD_API_SOCKET',
    `agent: workload_api.socket_path ${path}: ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

function agentUid(): number {
  return process.geteuid?.() ?? 0;
}

/** Resolves true when something accepts connections on the socket at `path`. */
function isServed(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (served: boolean) => {
      s.destroy();
      resolve(served);
    };
    s.setTimeout(PROBE_TIMEOUT_MS, () => done(true)); // a server that accepts but stalls is still a server
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Creates the socket's directory (0755) when missing and checks every directory on the way; returns its real path. */
async function prepareDir(path: string): Promise<string> {
  const dir = await resolveOutputDir(dirname(path));
  try {
    await mkdir(dir, { recursive: true, mode: SOCKET_DIR_MODE });
  } catch (err) {
    throw refuse(path, `cannot create ${dir} (${errnoOf(err) ?? 'error'})`, err);
  }
  // Created just now or already there: check it again as it is, then set its mode through a descriptor.
  const real = await resolveOutputDir(dir);
  const fd = await open(real, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const st = await fd.stat();
    if (st.uid === agentUid() && (st.mode & 0o7777) !== SOCKET_DIR_MODE) await fd.chmod(SOCKET_DIR_MODE);
  } finally {
    await fd.close();
  }
  return real;
}

/** Removes a stale socket of the agent's own at `path`, or refuses what is there. */
async function clearPath(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw refuse(path, `cannot inspect it (${errnoOf(err) ?? 'error'})`, err);
  }
  if (st.isSymbolicLink()) throw refuse(path, 'is a symlink; configure the path of the socket itself');
  if (!st.isSocket()) throw refuse(path, 'exists and is not a socket; the agent does not remove other files');
  if (st.uid !== agentUid()) {
    throw refuse(path, `is a socket of uid ${st.uid}, not the agent's (uid ${agentUid()}); remove it if it is stale`);
  }
  if (await isServed(path)) throw refuse(path, 'another process is serving it (is a second agent running?)');
  try {
    await unlink(path);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw refuse(path, `cannot remove the stale socket (${errnoOf(err) ?? 'error'})`);
  }
}

/**
 * Binds a net.Server on the Workload API socket at `path` (absolute), after the checks above, and
 * makes the socket 0666. Connections arrive paused (`pauseOnConnect`) so that the caller can be
 * attested before grpc-js reads a byte. Throws ERR_AGENT_WORKLOAD_API_SOCKET or ERR_AGENT_UNSAFE_DIR.
 */
export async function listenWorkloadApi(
  path: string,
  options: Omit<ServerOpts, 'pauseOnConnect'> = {},
): Promise<Server> {
  const dir = await prepareDir(path);
  const socketPath = join(dir, basename(path));
  await clearPath(socketPath);
  const server = createServer({ ...options, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(refuse(socketPath, `cannot listen (${errnoOf(err) ?? err.message})`, err)));
    server.listen({ path: socketPath, exclusive: true }, () => resolve());
  });
  try {
    // The directory is the agent's alone (checked above), so nobody can swap the name between bind and chmod.
    await chmod(socketPath, SOCKET_MODE);
  } catch (err) {
    server.close();
    throw refuse(socketPath, `cannot make it connectable (${errnoOf(err) ?? 'error'})`, err);
  }
  return server;
}
