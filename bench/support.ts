/** What the benchmarks that need a real svidkit-ca share: starting it as its own process, unary calls. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceError } from '@grpc/grpc-js';

/** One line of bench/results.json. */
export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline: string;
  baseline_value: number;
  ratio: number;
}

/** How a comparison is run: rounds alternate between subject and baseline; the median of each is kept. */
export interface CompareOptions {
  rounds?: number;
  roundMs?: number;
  /** Concurrent loops (for I/O that overlaps); 1 runs the operation back to back. */
  concurrency?: number;
}

/** Operations per second of `fn` over `ms`, with `concurrency` loops in parallel. */
export async function opsPerSecond(fn: () => unknown, ms: number, concurrency = 1): Promise<number> {
  const start = performance.now();
  const end = start + ms;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        // Batches of 16 keep the clock reads out of the measured cost of fast operations.
        for (let i = 0; i < 16; i++) {
          const r = fn();
          if (r instanceof Promise) await r;
        }
        n += 16;
      }
    }),
  );
  return (n * 1000) / (performance.now() - start);
}

/** The median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The nearest-rank percentile `p` (0 to 100) of an ascending list. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Measures `subject` against `base` in alternating rounds of the same run and returns one result row. */
export async function compare(
  name: string,
  unit: string,
  subject: () => unknown,
  baseline: string,
  base: () => unknown,
  options: CompareOptions = {},
): Promise<BenchResult> {
  const rounds = options.rounds ?? Number(process.env.BENCH_ROUNDS ?? 5);
  const roundMs = options.roundMs ?? Number(process.env.BENCH_ROUND_MS ?? 400);
  const c = options.concurrency ?? 1;
  await opsPerSecond(subject, 100, c); // warm-up: JIT, lazy key imports, connections
  await opsPerSecond(base, 100, c);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await opsPerSecond(subject, roundMs, c));
    b.push(await opsPerSecond(base, roundMs, c));
  }
  const value = median(a);
  const baseline_value = median(b);
  return { name, unit, value, baseline, baseline_value, ratio: value / baseline_value };
}

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit-ca.js');

/** A svidkit-ca child process and where to reach it. */
export interface CaProcess {
  readonly child: ChildProcess;
  readonly nodePort: number;
  readonly socket: string;
  stop(): Promise<void>;
}

/** Promisifies one unary call; the response type is named at the call site. */
export function unary<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

/** Starts svidkit-ca for trust domain bench.example with its data under `dir`; resolves once it is ready. */
export function startCaProcess(dir: string): Promise<CaProcess> {
  const config = join(dir, 'ca.yaml');
  writeFileSync(
    config,
    `trust_domain: bench.example\ndata_dir: ${join(dir, 'data')}\nlisten: { port: 0 }\nobservability: { port: 0 }\n`,
  );
  // Audit lines go to stdout and are drained; the ready line tells the ports.
  const child = spawn(process.execPath, [BIN, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('svidkit-ca ready'));
      if (!line) return;
      const r = JSON.parse(line) as { node_port: number; admin_socket: string };
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve({
        child,
        nodePort: r.node_port,
        socket: r.admin_socket,
        stop: () =>
          new Promise<void>((done) => {
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`svidkit-ca exited ${code}`)));
  });
}
