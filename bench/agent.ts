/**
 * One agent with 1,000 workloads against a svidkit-ca, each in its own process: CPU seconds and wall
 * time of the first full rotation cycle (keys, CSRs, batched issuance, atomic delivery of every file
 * set), of a second one (everything due again, so old versions are removed too), and the agent's RSS
 * once it holds them all. Baselines from the same run, in a child of the same kind (bench/agent-child.ts,
 * same modules loaded): the raw cost of the keys and CSRs alone, and the RSS of a process that only
 * loaded the modules.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { SpiffeBundle } from '../lib/bundle/index.js';
import { caProto } from '../lib/ca-api/proto.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import type { ChildFigures, ChildMessage } from './agent-child.js';
import { type BenchResult, startCaProcess, unary } from './support.js';
import type {
  CreateJoinTokenResponse__Output,
  GeneratedAdminClient as AdminClient,
  GetCaStatusResponse__Output,
} from '../lib/ca-api/index.js';

const WORKLOADS = Number(process.env.BENCH_AGENT_WORKLOADS ?? 1000);
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'agent-child.js');
/** How far the agent's clock jumps for the second cycle: past every renewal time (about 30 min of a 1 h SVID), before expiry. */
const JUMP_MS = 40 * 60_000;
const MIB = 2 ** 20;

/** A forked bench child: its messages in order, and a way to send it one. */
class Child {
  readonly #queue: ChildMessage[] = [];
  readonly #waiters: ((m: ChildMessage) => void)[] = [];
  readonly #exited: Promise<number | null>;
  readonly #proc;

  constructor(args: string[]) {
    // --expose-gc so that the child's RSS figures are taken after a full collection.
    this.#proc = fork(CHILD, args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#proc.on('message', (m: ChildMessage) => {
      const w = this.#waiters.shift();
      if (w) w(m);
      else this.#queue.push(m);
    });
    this.#exited = new Promise((resolve) => this.#proc.once('exit', (code) => resolve(code)));
  }

  /** The next message of the given kind; an error report or an early exit rejects. */
  async next<K extends ChildMessage['kind']>(kind: K): Promise<Extract<ChildMessage, { kind: K }>> {
    const m = await Promise.race([
      this.#queue.length > 0
        ? Promise.resolve(this.#queue.shift()!)
        : new Promise<ChildMessage>((resolve) => this.#waiters.push(resolve)),
      this.#exited.then((code): never => {
        throw new Error(`bench child exited ${code} while waiting for "${kind}"`);
      }),
    ]);
    if (m.kind === 'error') throw new Error(`bench child failed: ${m.message}`);
    if (m.kind !== kind) throw new Error(`bench child sent "${m.kind}", expected "${kind}"`);
    return m as Extract<ChildMessage, { kind: K }>;
  }

  send(msg: unknown): void {
    this.#proc.send(msg as object);
  }

  async done(): Promise<void> {
    const code = await this.#exited;
    if (code !== 0) throw new Error(`bench child exited ${code}`);
  }

  kill(): void {
    if (this.#proc.exitCode === null) this.#proc.kill('SIGKILL');
  }
}

/** The raw keys and CSRs for `n` workloads, measured in a child like the agent's. */
async function rawChild(
  n: number,
): Promise<{ loadedRss: number; figures: ChildFigures; files1: ChildFigures; files2: ChildFigures }> {
  const child = new Child(['raw', String(n)]);
  try {
    const loaded = await child.next('loaded');
    const { figures, files1, files2 } = await child.next('raw');
    await child.done();
    return { loadedRss: loaded.rss, figures, files1, files2 };
  } finally {
    child.kill();
  }
}

/** The agent benchmark rows. */
export async function agentBench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-bench-agent-'));
  const ca = await startCaProcess(dir);
  try {
    const admin = new (caProto().svidkit.ca.v1.Admin)(
      `unix://${ca.socket}`,
      credentials.createInsecure(),
    ) as unknown as AdminClient;
    const jt = await unary<CreateJoinTokenResponse__Output>((cb) => admin.CreateJoinToken({ ttlSeconds: 600 }, cb));
    const st = await unary<GetCaStatusResponse__Output>((cb) => admin.GetCaStatus({}, cb));
    writeFileSync(
      join(dir, 'bundle.pem'),
      SpiffeBundle.parse(TrustDomain.parse('bench.example'), st.bundle!.spiffeBundleJson).x509.toPem(),
    );
    const ids = Array.from({ length: WORKLOADS }, (_, i) => `spiffe://bench.example/ns/bench/sa/w${i}`);
    for (const id of ids) await unary((cb) => admin.CreateEntry({ entry: { spiffeId: id, parentId: jt.agentId } }, cb));
    admin.close();

    // Baseline first, alone on the machine's cores, then the agent.
    const raw = await rawChild(WORKLOADS);

    const configFile = join(dir, 'agent.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        trust_domain: 'bench.example',
        data_dir: join(dir, 'agent'),
        ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation: { join_token: jt.token },
        observability: { port: 0 },
        // The shortest sync, so that the second cycle starts at most a second after the clock jumps.
        entry_sync_interval: '1s',
        workloads: ids.map((id, i) => ({ spiffe_id: id, output_dir: join(dir, 'out', String(i)) })),
      }),
    );
    const child = new Child(['agent', configFile]);
    let first: ChildFigures;
    let second: ChildFigures;
    let loadedRss: number;
    try {
      loadedRss = (await child.next('loaded')).rss;
      first = (await child.next('cycle')).figures;
      child.send({ jumpMs: JUMP_MS });
      second = (await child.next('cycle')).figures;
      await child.done();
    } finally {
      child.kill();
    }
    if (process.env.BENCH_AGENT_VERBOSE) {
      process.stderr.write(
        `${JSON.stringify({ raw: raw.figures, bare1: raw.files1, bare2: raw.files2, first, second }, null, 1)}\n`,
      );
    }
    const rawCpu = raw.figures.cpu;
    const floor1 = rawCpu + raw.files1.cpu;
    const floor2 = rawCpu + raw.files2.cpu;
    return [
      {
        name: `agent: first rotation cycle of ${WORKLOADS} workloads (CPU seconds, agent process)`,
        unit: 's',
        value: first.cpu,
        baseline: `raw key generation + CSR for ${WORKLOADS} (CPU seconds, own process)`,
        baseline_value: rawCpu,
        ratio: first.cpu / rawCpu,
      },
      {
        name: `agent: second rotation cycle of ${WORKLOADS} workloads, old versions removed (CPU seconds, agent process)`,
        unit: 's',
        value: second.cpu,
        baseline: `raw key generation + CSR for ${WORKLOADS} (CPU seconds, own process)`,
        baseline_value: rawCpu,
        ratio: second.cpu / rawCpu,
      },
      {
        name: `agent: first rotation cycle of ${WORKLOADS} workloads against the floor (CPU seconds)`,
        unit: 's',
        value: first.cpu,
        baseline: `raw keys + CSRs, plus the same files delivered with plain node:fs calls and no checks (CPU seconds, own process)`,
        baseline_value: floor1,
        ratio: first.cpu / floor1,
      },
      {
        name: `agent: second rotation cycle of ${WORKLOADS} workloads against the floor (CPU seconds)`,
        unit: 's',
        value: second.cpu,
        baseline: `raw keys + CSRs, plus the same files delivered again with plain node:fs calls, the old version removed`,
        baseline_value: floor2,
        ratio: second.cpu / floor2,
      },
      {
        name: `agent: first rotation cycle of ${WORKLOADS} workloads, main thread only (CPU seconds; the rest is the file system in libuv's pool and V8's helpers)`,
        unit: 's',
        value: first.mainThread,
        baseline: `raw key generation + CSR for ${WORKLOADS}, main thread only`,
        baseline_value: raw.figures.mainThread,
        ratio: first.mainThread / raw.figures.mainThread,
      },
      {
        name: `agent: second rotation cycle of ${WORKLOADS} workloads, main thread only (CPU seconds)`,
        unit: 's',
        value: second.mainThread,
        baseline: `raw key generation + CSR for ${WORKLOADS}, main thread only`,
        baseline_value: raw.figures.mainThread,
        ratio: second.mainThread / raw.figures.mainThread,
      },
      {
        name: `agent: first rotation cycle of ${WORKLOADS} workloads (wall seconds)`,
        unit: 's',
        value: first.wall,
        baseline: 'CPU seconds of the same cycle',
        baseline_value: first.cpu,
        ratio: first.wall / first.cpu,
      },
      {
        name: `agent: second rotation cycle of ${WORKLOADS} workloads (wall seconds, up to 1 s of it waiting for the tick)`,
        unit: 's',
        value: second.wall,
        baseline: 'CPU seconds of the same cycle',
        baseline_value: second.cpu,
        ratio: second.wall / second.cpu,
      },
      {
        name: `agent: RSS holding ${WORKLOADS} workloads (agent process)`,
        unit: 'MiB',
        value: second.rss / MIB,
        baseline: 'RSS of a process that only loaded the same modules',
        baseline_value: raw.loadedRss / MIB,
        ratio: second.rss / raw.loadedRss,
      },
      {
        name: `agent: RSS before the agent started (agent process, modules loaded)`,
        unit: 'MiB',
        value: loadedRss / MIB,
        baseline: 'RSS of a process that only loaded the same modules',
        baseline_value: raw.loadedRss / MIB,
        ratio: loadedRss / raw.loadedRss,
      },
    ];
  } finally {
    await ca.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
