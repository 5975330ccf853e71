/**
 * Issuance over gRPC with mTLS: svidkit-ca runs as its own process (as in production) and this process
 * is the load generator, so both share this machine's two cores. An agent attests with a join token,
 * then sends batches of CSRs with several calls in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { SvidIssuer } from '../lib/ca/issuer.js';
import { caProto } from '../lib/ca-api/proto.js';
import { healthProto } from '../lib/grpc/protos.js';
import { generateKeyPair, privateKeyToPem } from '../lib/keys/index.js';
import { SpiffeBundle } from '../lib/bundle/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { T0, TestCa } from '../test/helpers/ca.js';
import { type BenchResult, startCaProcess, unary } from './support.js';
import type {
  AttestAgentResponse__Output,
  CreateEntryResponse__Output,
  GeneratedAdminClient as AdminClient,
  GetCaStatusResponse__Output,
  NodeClient,
} from '../lib/ca-api/index.js';

const BATCH = 50;
const IN_FLIGHT = 8;
const RUN_MS = Number(process.env.BENCH_GRPC_MS ?? 4000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Throughput and latency of BatchNewX509Svid over mTLS against a separate svidkit-ca process. */
export async function caGrpc(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-bench-'));
  const ca = await startCaProcess(dir);
  try {
    const admin = new (caProto().svidkit.ca.v1.Admin)(
      `unix://${ca.socket}`,
      credentials.createInsecure(),
    ) as unknown as AdminClient;
    const jt = await unary<{ token: string; agentId: string }>((cb) => admin.CreateJoinToken({ ttlSeconds: 600 }, cb));
    const status = await unary<GetCaStatusResponse__Output>((cb) => admin.GetCaStatus({}, cb));
    const roots = SpiffeBundle.parse(TrustDomain.parse('bench.example'), status.bundle!.spiffeBundleJson).x509.toPem();
    const entry = await unary<CreateEntryResponse__Output>((cb) =>
      admin.CreateEntry({ entry: { spiffeId: 'spiffe://bench.example/ns/bench/sa/load', parentId: jt.agentId } }, cb),
    );
    const agentKey = generateKeyPair();
    const tls = new (caProto().svidkit.ca.v1.Node)(
      `localhost:${ca.nodePort}`,
      credentials.createSsl(Buffer.from(roots)),
    ) as unknown as NodeClient;
    const att = await unary<AttestAgentResponse__Output>((cb) =>
      tls.AttestAgent({ joinToken: { token: jt.token }, csr: buildCsr({ key: agentKey.privateKey }) }, cb),
    );
    tls.close();
    const chainPem = att.svid!.certChain.map((d) => Certificate.fromDer(d).toPem()).join('');
    const creds = credentials.createSsl(
      Buffer.from(roots),
      Buffer.from(privateKeyToPem(agentKey.privateKey)),
      Buffer.from(chainPem),
    );
    const node = new (caProto().svidkit.ca.v1.Node)(`localhost:${ca.nodePort}`, creds) as unknown as NodeClient;
    const health = new (healthProto().grpc.health.v1.Health)(`localhost:${ca.nodePort}`, creds);

    const workloadKey = generateKeyPair();
    const csr = buildCsr({ key: workloadKey.privateKey, uris: ['spiffe://bench.example/ns/bench/sa/load'] });
    const params = Array.from({ length: BATCH }, () => ({ entryId: entry.entry!.id, csr }));
    const batch = () => unary<{ results: { statusCode: number }[] }>((cb) => node.BatchNewX509Svid({ params }, cb));
    const check = () => unary<unknown>((cb) => health.Check({ service: '' }, cb));

    // Baseline latency: a plain grpc-js unary call on the same mTLS channel.
    for (let i = 0; i < 50; i++) await check();
    const base: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await check();
      base.push(performance.now() - t);
    }
    await batch(); // warm-up
    const latencies: number[] = [];
    let issued = 0;
    const end = performance.now() + RUN_MS;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          const res = await batch();
          latencies.push(performance.now() - t);
          issued += res.results.filter((r) => r.statusCode === 0).length;
        }
      }),
    );
    const rate = (issued * 1000) / (performance.now() - started);
    node.close();
    health.close();
    admin.close();

    // Same-run reference: the issuer alone, in this process.
    const rootCa = TestCa.root();
    const issuer = new SvidIssuer(rootCa);
    const id = SpiffeId.parse('spiffe://example.org/bench');
    const csr2 = buildCsr({ key: workloadKey.privateKey });
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < 1000) {
      issuer.issue({ id, csrDer: csr2, now: T0, ttlMs: 3600_000 });
      n++;
    }
    const inProcess = (n * 1000) / (performance.now() - t0);

    latencies.sort((a, b) => a - b);
    base.sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    const b50 = percentile(base, 50);
    const b99 = percentile(base, 99);
    return [
      {
        name: `ca issuance over gRPC mTLS (batches of ${BATCH}, ${IN_FLIGHT} in flight)`,
        unit: 'svids/s',
        value: rate,
        baseline: 'in-process issuer, one core',
        baseline_value: inProcess,
        ratio: rate / inProcess,
      },
      {
        name: 'ca batch call latency p50',
        unit: 'ms',
        value: p50,
        baseline: 'grpc health Check p50 (same channel)',
        baseline_value: b50,
        ratio: p50 / b50,
      },
      {
        name: 'ca batch call latency p99',
        unit: 'ms',
        value: p99,
        baseline: 'grpc health Check p99 (same channel)',
        baseline_value: b99,
        ratio: p99 / b99,
      },
    ];
  } finally {
    await ca.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
