/**
 * The processes bench/agent.ts measures, each started with fork() so that the agent is measured as its
 * own process and not as a difference inside the bench. Two modes, one file, so that both load the same
 * modules and pay the same start costs:
 *
 *   agent <config.json>  runs the agent daemon (runAgent) on that configuration and reports the CPU
 *                        time, wall time and RSS of its first rotation cycle, then of a second one once
 *                        the parent sends `{ jumpMs }` (the agent's clock moves forward so that every
 *                        SVID is due again; the CA keeps its real clock).
 *   raw <n>              generates n keys and CSRs, the part of a cycle no design can avoid, then
 *                        delivers n file sets twice with plain node:fs calls (bareDelivery).
 *
 * CPU figures are process.cpuUsage() deltas taken after the imports, so module loading is in neither.
 * With BENCH_AGENT_PROFILE=<dir>, each cycle is also profiled through the inspector and written to
 * <dir>/cycle1.cpuprofile and <dir>/cycle2.cpuprofile (read them with bench/cpuprofile.ts).
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseAgentConfig } from '../lib/agent/config.js';
import { runAgent } from '../lib/agent/daemon.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { createCsr } from '../lib/x509svid/index.js';

/** One figure set a child reports: CPU seconds, wall seconds, RSS in bytes. */
export interface ChildFigures {
  /** user + system of the whole process. */
  readonly cpu: number;
  readonly user: number;
  readonly system: number;
  /** user + system of the main thread alone (JavaScript, synchronous crypto); the rest is the libuv pool (file system) and V8's helpers. */
  readonly mainThread: number;
  readonly wall: number;
  readonly rss: number;
}

/** The messages a child sends to the bench over the IPC channel. */
export type ChildMessage =
  | { readonly kind: 'loaded'; readonly rss: number }
  | {
      readonly kind: 'raw';
      readonly figures: ChildFigures;
      readonly files1: ChildFigures;
      readonly files2: ChildFigures;
    }
  | { readonly kind: 'cycle'; readonly cycle: number; readonly figures: ChildFigures; readonly workloads: number }
  | { readonly kind: 'error'; readonly message: string };

const WRITTEN = '"workload files written"';

function send(msg: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => process.send!(msg, (err: Error | null) => (err ? reject(err) : resolve())));
}

/** VmRSS of this process from /proc (bytes), after a full collection when --expose-gc is on. */
function rss(): number {
  global.gc?.();
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

/** utime + stime of the main thread in seconds, from /proc (clock ticks of 1/100 s on Linux). */
function mainThreadSeconds(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

interface Mark {
  readonly cpu: NodeJS.CpuUsage;
  readonly main: number;
  readonly t: number;
}

function mark(): Mark {
  return { cpu: process.cpuUsage(), main: mainThreadSeconds(), t: performance.now() };
}

function since(m: Mark): ChildFigures {
  const d = process.cpuUsage(m.cpu);
  return {
    cpu: (d.user + d.system) / 1e6,
    user: d.user / 1e6,
    system: d.system / 1e6,
    mainThread: mainThreadSeconds() - m.main,
    wall: (performance.now() - m.t) / 1000,
    rss: 0,
  };
}

class Profiler {
  readonly #dir = process.env.BENCH_AGENT_PROFILE;
  #session: Session | undefined;

  async start(): Promise<void> {
    if (!this.#dir) return;
    this.#session ??= new Session();
    this.#session.connect();
    await this.#session.post('Profiler.enable');
    await this.#session.post('Profiler.start');
  }

  async stop(name: string): Promise<void> {
    if (!this.#dir || !this.#session) return;
    const { profile } = await this.#session.post('Profiler.stop');
    writeFileSync(join(this.#dir, `${name}.cpuprofile`), JSON.stringify(profile));
    this.#session.disconnect();
  }
}

/** Sizes of the files of one delivery as the agent writes them for the bench's workloads (bytes). */
const FILE_SIZES = [1350, 241, 680, 960, 45, 200];
const STABLE_NAMES = 7;

/** Writes `bytes` to a new file in `dir` and syncs it. */
function writeSynced(path: string, bytes: Buffer): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The same layout as the agent's writer with plain node:fs calls and no checks: a version directory
 * with six synced files and an empty jwt/, ..data swapped by rename, the stable links (first round)
 * and the previous version removed recursively (second round). What any atomic delivery costs.
 */
function bareDelivery(root: string, n: number, round: number): void {
  const payloads = FILE_SIZES.map((size) => Buffer.alloc(size, 0x41));
  for (let i = 0; i < n; i++) {
    const out = join(root, String(i));
    if (round === 1) mkdirSync(out);
    const version = `..v${round}`;
    mkdirSync(join(out, version));
    payloads.forEach((bytes, f) => writeSynced(join(out, version, `f${f}`), bytes));
    mkdirSync(join(out, version, 'jwt'));
    syncDir(join(out, version, 'jwt'));
    syncDir(join(out, version));
    symlinkSync(version, join(out, '..data_tmp'));
    renameSync(join(out, '..data_tmp'), join(out, '..data'));
    if (round === 1) for (let l = 0; l < STABLE_NAMES; l++) symlinkSync(`..data/f${l}`, join(out, `f${l}`));
    syncDir(out);
    if (round > 1) rmSync(join(out, `..v${round - 1}`), { recursive: true });
  }
}

async function raw(n: number): Promise<void> {
  await send({ kind: 'loaded', rss: rss() });
  const td = TrustDomain.parse('bench.example');
  const m0 = mark();
  for (let i = 0; i < n; i++) createCsr(SpiffeId.fromSegments(td, 'w', String(i)), generateKeyPair().privateKey);
  const figures = { ...since(m0), rss: rss() };
  const root = mkdtempSync(join(tmpdir(), 'svidkit-bench-bare-'));
  try {
    const m1 = mark();
    bareDelivery(root, n, 1);
    const files1 = { ...since(m1), rss: 0 };
    const m2 = mark();
    bareDelivery(root, n, 2);
    const files2 = { ...since(m2), rss: 0 };
    await send({ kind: 'raw', figures, files1, files2 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function agent(configFile: string): Promise<void> {
  const doc = JSON.parse(readFileSync(configFile, 'utf8')) as { workloads: unknown[] };
  const total = doc.workloads.length;
  let offset = 0;
  // The log is the agent's own report of each delivery; counting its lines needs no polling.
  let written = 0;
  let waiter: { target: number; done: () => void } | undefined;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (chunk.includes(WRITTEN)) written++;
      if (waiter && written >= waiter.target) {
        waiter.done();
        waiter = undefined;
      }
      cb();
    },
  });
  const writtenAtLeast = (target: number) =>
    new Promise<void>((resolve) => {
      if (written >= target) resolve();
      else waiter = { target, done: resolve };
    });
  const config = parseAgentConfig(doc, process.cwd());
  const profiler = new Profiler();
  await send({ kind: 'loaded', rss: rss() });

  await profiler.start();
  let m0 = mark();
  const running = await runAgent(config, {
    logger: createLogger({ name: 'bench-agent', destination: sink }),
    clock: () => new Date(Date.now() + offset),
  });
  await writtenAtLeast(total);
  let figures = since(m0);
  await profiler.stop('cycle1');
  await send({ kind: 'cycle', cycle: 1, figures: { ...figures, rss: rss() }, workloads: total });

  const jump = await new Promise<number>((resolve) =>
    process.once('message', (m: { jumpMs: number }) => resolve(m.jumpMs)),
  );
  await profiler.start();
  m0 = mark();
  offset = jump; // the next tick (entry_sync_interval away at most) finds every SVID due
  await writtenAtLeast(2 * total);
  figures = since(m0);
  await profiler.stop('cycle2');
  await send({ kind: 'cycle', cycle: 2, figures: { ...figures, rss: rss() }, workloads: total });
  await running.close();
}

const [mode, arg] = process.argv.slice(2);
try {
  if (mode === 'raw') await raw(Number(arg));
  else if (mode === 'agent') await agent(arg!);
  else throw new Error(`usage: agent-child.js raw <n> | agent <config.json>`);
} catch (err) {
  await send({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
}
process.disconnect?.();
