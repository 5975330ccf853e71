/**
 * One agent with 1,000 workloads against a svidkit-ca in its own process: CPU seconds and wall time
 * of a full rotation cycle (keys, CSRs, batched issuance, atomic delivery of every file set), and the
 * agent's memory once it holds them all. Baselines from the same run: the raw cost of the keys and
 * CSRs alone, and the process's RSS before the agent started.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { credentials } from '@grpc/grpc-js';
import { parseAgentConfig } from '../lib/agent/config.js';
import { runAgent } from '../lib/agent/daemon.js';
import { SpiffeBundle } from '../lib/bundle/index.js';
import type { AdminClient } from '../lib/generated/svidkit/ca/v1/Admin.js';
import type { CreateJoinTokenResponse__Output } from '../lib/generated/svidkit/ca/v1/CreateJoinTokenResponse.js';
import type { GetCaStatusResponse__Output } from '../lib/generated/svidkit/ca/v1/GetCaStatusResponse.js';
import { caProto } from '../lib/grpc/protos.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { createCsr } from '../lib/x509svid/index.js';
import { type BenchResult, startCaProcess, unary } from './support.js';

const WORKLOADS = Number(process.env.BENCH_AGENT_WORKLOADS ?? 1000);

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

    // Baseline: the keys and CSRs alone, the part of a cycle no design can avoid.
    const td = TrustDomain.parse('bench.example');
    const c0 = process.cpuUsage();
    for (let i = 0; i < WORKLOADS; i++)
      createCsr(SpiffeId.fromSegments(td, 'w', String(i)), generateKeyPair().privateKey);
    const c1 = process.cpuUsage(c0);
    const rawCpu = (c1.user + c1.system) / 1e6;

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const config = parseAgentConfig(
      {
        trust_domain: 'bench.example',
        data_dir: join(dir, 'agent'),
        ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation: { join_token: jt.token },
        observability: { port: 0 },
        workloads: ids.map((id, i) => ({ spiffe_id: id, output_dir: join(dir, 'out', String(i)) })),
      },
      dir,
    );
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const agent = await runAgent(config, {
      logger: createLogger({ name: 'bench', destination: new PassThrough().resume() }),
    });
    while (!agent.agent.ready()) await new Promise((r) => setTimeout(r, 100));
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cycleCpu = (cpu.user + cpu.system) / 1e6;
    global.gc?.();
    const rss = process.memoryUsage().rss;
    await agent.close();
    return [
      {
        name: `agent: full rotation cycle of ${WORKLOADS} workloads (CPU seconds, agent process)`,
        unit: 's',
        value: cycleCpu,
        baseline: `raw key generation + CSR for ${WORKLOADS}`,
        baseline_value: rawCpu,
        ratio: cycleCpu / rawCpu,
      },
      {
        name: `agent: full rotation cycle of ${WORKLOADS} workloads (wall seconds)`,
        unit: 's',
        value: wall,
        baseline: 'CPU seconds of the same cycle',
        baseline_value: cycleCpu,
        ratio: wall / cycleCpu,
      },
      {
        name: `agent: RSS holding ${WORKLOADS} workloads`,
        unit: 'MiB',
        value: rss / 2 ** 20,
        baseline: 'RSS of this process before the agent started',
        baseline_value: rssBefore / 2 ** 20,
        ratio: rss / rssBefore,
      },
    ];
  } finally {
    await ca.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
