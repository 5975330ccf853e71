/**
 * The cost of asking the kernel who a Workload API caller is, through koffi: SO_DOMAIN, SO_PEERCRED
 * and SO_PEERPIDFD on a connected Unix socket (and closing the pidfd), against one plain syscall
 * Node makes natively on the same descriptor (fstat). The ratio is the price of the FFI crossings.
 */
import { fstatSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peerCredentials } from '../lib/agent/caller/index.js';
import { type BenchResult, compare } from './support.js';

/** Runs the peer-credentials comparison on one loopback Unix connection. */
export async function callerBench(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-bench-caller-'));
  const path = join(dir, 'api.sock');
  const server = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect(path);
  const socket = await accepted;
  try {
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    return await compare(
      'peerCredentials (SO_DOMAIN + SO_PEERCRED + SO_PEERPIDFD, koffi)',
      'calls/s',
      () => peerCredentials(socket).close(),
      'fs.fstatSync on the same socket',
      () => fstatSync(fd),
    );
  } finally {
    socket.destroy();
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}
