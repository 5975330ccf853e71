/** What the benchmarks that need a real svidkit-ca share: starting it as its own process, unary calls. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServiceError } from '@grpc/grpc-js';

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
