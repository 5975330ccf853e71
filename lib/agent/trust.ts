/**
 * Which directories the agent may write through: the root agent acts for every workload on the node,
 * so a directory on the way to an output directory that some other user can write lets that user
 * steer the agent (swap a component for a symlink, plant a FIFO or a `..data` of their own). Like
 * OpenSSH's StrictModes, the agent refuses such paths and says which directory and why.
 *
 * The rules, for a directory on the path to an output directory:
 * - its owner is root, the agent's own uid, or the workload's configured uid;
 * - it is not writable by other users, unless it is a parent with the sticky bit (as /tmp is: there
 *   nobody may rename or remove an entry they do not own);
 * - it is not writable by its group, unless the group is root's, the agent's or the workload's (or,
 *   for a parent, it has the sticky bit);
 * - the output directory itself is a directory, never a symlink; a symlink above it is followed only
 *   when the link belongs to root or the agent and sits in a directory that only they can write.
 */
import { lstat, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { SvidkitError } from '../errors/index.js';
import { errnoOf } from './dirfd.js';

/** The uid and gid the workload's files are given, if any: the only other principal a directory may belong to. */
export interface WorkloadOwner {
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
}

/** The parts of a stat result the rules read. */
export interface DirStat {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

const STICKY = 0o1000;
const GROUP_WRITE = 0o020;
const OTHER_WRITE = 0o002;

function agentUid(): number {
  return process.geteuid?.() ?? 0;
}

function agentGid(): number {
  return process.getegid?.() ?? 0;
}

/** ERR_AGENT_UNSAFE_DIR: the agent will not write through `dir`, and why. */
export function unsafeDirError(dir: string, why: string): SvidkitError {
  return new SvidkitError('ERR_AGENT_UNSAFE_DIR', `agent: refusing ${dir}: ${why}`);
}

/**
 * Why a directory may not be written through, or undefined when it may. `final` is the output
 * directory itself (no sticky-bit allowance); a parent may be world-writable only with the sticky bit.
 */
export function untrustedReason(st: DirStat, owner: WorkloadOwner, final: boolean): string | undefined {
  const uid = agentUid();
  if (st.uid !== 0 && st.uid !== uid && st.uid !== owner.uid) {
    return `it is owned by uid ${st.uid}, who is neither root, the agent (uid ${uid}) nor the workload${
      owner.uid === undefined ? '' : ` (uid ${owner.uid})`
    }`;
  }
  const sticky = !final && (st.mode & STICKY) !== 0;
  if ((st.mode & OTHER_WRITE) !== 0 && !sticky) {
    return `it is writable by every user (mode ${modeText(st.mode)})`;
  }
  const trustedGroup = st.gid === 0 || st.gid === agentGid() || st.gid === owner.gid;
  if ((st.mode & GROUP_WRITE) !== 0 && !trustedGroup && !sticky) {
    return `it is writable by group ${st.gid} (mode ${modeText(st.mode)})`;
  }
  return undefined;
}

/** True when only root or the agent can change the entries of a directory (a symlink in it was not planted by a workload). */
function onlyAgentWrites(st: DirStat): boolean {
  const uid = agentUid();
  if (st.uid !== 0 && st.uid !== uid) return false;
  if ((st.mode & STICKY) !== 0) return false;
  if ((st.mode & OTHER_WRITE) !== 0) return false;
  return (st.mode & GROUP_WRITE) === 0 || st.gid === 0 || st.gid === agentGid();
}

function modeText(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** Most symlinks followed while resolving one output directory (as the kernel's MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * Checks every directory on the way to `path` against the rules above and returns the output
 * directory's real path, which the writer then opens without following any link. Components that do
 * not exist yet are fine: the agent creates them, owned by itself. Throws ERR_AGENT_UNSAFE_DIR.
 */
export async function resolveOutputDir(path: string, owner: WorkloadOwner = {}): Promise<string> {
  const wanted = resolve(path);
  let real: string = sep;
  let links = 0;
  const check = async (dir: string, final: boolean): Promise<void> => {
    const st = await lstat(dir);
    const why = untrustedReason(st, owner, final);
    if (why) throw unsafeDirError(wanted, `${dir} is not safe for a root agent to write through: ${why}`);
  };
  await check(sep, false);
  const rest = wanted.split(sep).filter((c) => c.length > 0);
  while (rest.length > 0) {
    const name = rest.shift()!;
    const final = rest.length === 0;
    const next = join(real, name);
    let st;
    try {
      st = await lstat(next);
    } catch (err) {
      // Missing from here on: the writer creates the rest, owned by the agent, through descriptors.
      if (errnoOf(err) === 'ENOENT') return join(next, ...rest);
      throw unsafeDirError(wanted, `cannot inspect ${next} (${errnoOf(err) ?? 'error'})`);
    }
    if (st.isSymbolicLink()) {
      if (final)
        throw unsafeDirError(wanted, 'the output directory is a symlink; configure the directory it points to');
      if (++links > MAX_LINKS) throw unsafeDirError(wanted, 'too many symlinks');
      const parent = await lstat(real);
      if (!onlyAgentWrites(parent) || (st.uid !== 0 && st.uid !== agentUid())) {
        throw unsafeDirError(
          wanted,
          `${next} is a symlink that another user could have placed (its directory ${real} or the link is not root's or the agent's)`,
        );
      }
      let target: string;
      try {
        target = await realpath(next);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT')
          throw unsafeDirError(wanted, `cannot resolve ${next} (${errnoOf(err) ?? 'error'})`);
        throw unsafeDirError(wanted, `${next} is a dangling symlink`);
      }
      // Start again from the root along the link's target: each of its directories passes the same rules.
      rest.unshift(...target.split(sep).filter((c) => c.length > 0));
      real = sep;
      continue;
    }
    if (!st.isDirectory()) throw unsafeDirError(wanted, `${next} is not a directory`);
    await check(next, final);
    real = next;
  }
  return real;
}

/** True when `inner` is `outer` or lies below it (both absolute, normalized). */
export function isWithin(inner: string, outer: string): boolean {
  if (inner === outer) return true;
  const prefix = outer.endsWith(sep) ? outer : outer + sep;
  return inner.startsWith(prefix);
}

/**
 * Refuses a private directory of the agent (its data dir) that is a symlink, is not the agent's, or
 * that group or other users can write: whoever can write it can replace the agent's key and state.
 */
export async function checkPrivateDir(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    throw unsafeDirError(path, `cannot inspect it (${errnoOf(err) ?? 'error'})`);
  }
  if (st.isSymbolicLink()) throw unsafeDirError(path, 'it is a symlink; configure the directory it points to');
  if (!st.isDirectory()) throw unsafeDirError(path, 'it is not a directory');
  if (st.uid !== agentUid())
    throw unsafeDirError(path, `it is owned by uid ${st.uid}, not the agent (uid ${agentUid()})`);
  if ((st.mode & (GROUP_WRITE | OTHER_WRITE)) !== 0) {
    throw unsafeDirError(path, `it is writable by group or other users (mode ${modeText(st.mode)}); chmod it 0700`);
  }
}

/** One directory the agent writes, by its real path, with the label an error names it by. */
export interface PlacedDir {
  readonly label: string;
  readonly dir: string;
}

/**
 * Refuses real paths that coincide or nest (two workloads' layouts in one tree, or a workload next to
 * the agent's own key): the configuration's check compares the paths as written, this one compares
 * where they really are once symlinks are resolved.
 */
export function checkNoOverlap(dirs: readonly PlacedDir[]): void {
  for (let i = 0; i < dirs.length; i++) {
    for (let j = i + 1; j < dirs.length; j++) {
      const a = dirs[i]!;
      const b = dirs[j]!;
      if (isWithin(a.dir, b.dir) || isWithin(b.dir, a.dir)) {
        throw new SvidkitError(
          'ERR_AGENT_UNSAFE_DIR',
          `agent: ${a.label} (${a.dir}) and ${b.label} (${b.dir}) are the same directory or one is inside the other once symlinks are resolved`,
        );
      }
    }
  }
}
