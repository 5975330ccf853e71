/**
 * A Workload API caller run as its own process, so that the agent sees another pid and, when the test
 * starts it with `uid`/`gid`, another user. Each mode prints one JSON object per line on stdout.
 *
 *   stream <endpoint> <method>   opens a server stream; a line per message ({ ids }) and one for the end
 *                                ({ status }); runs until the stream ends or stdin closes.
 *   race-parent <socket> <uid>   connects to the socket, waits for the agent's HTTP/2 preface (so the
 *                                agent has read the kernel's credentials of this process), hands the
 *                                connection to a child running as <uid>, prints { parent } and exits.
 *   race-child <preface> <pid:start>  the child: once its parent has exited and been reaped, sends
 *                                FetchX509SVID on the inherited connection (fd 3) as a hand-built gRPC
 *                                request and prints what came back ({ grpcStatus, ids }).
 */
import { spawn } from 'node:child_process';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import { connect as netConnect, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StatusObject } from '@grpc/grpc-js';
import { WorkloadApiClient } from '../../lib/source/index.js';
import { workloadMetadata } from '../../lib/source/workloadapi-watch.js';
import { WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE } from '../../lib/workloadapi/index.js';

/** The stream methods a `stream` caller may open. */
export type StreamMethod = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles';

function print(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** The SPIFFE IDs in a FetchX509SVID message taken apart by hand (field 1: svids; in each, field 1: spiffe_id). */
function idsInX509Response(msg: Buffer): string[] {
  const ids: string[] = [];
  const fields = (buf: Buffer, each: (field: number, value: Buffer) => void) => {
    let i = 0;
    const varint = () => {
      let v = 0;
      let shift = 0;
      for (;;) {
        const b = buf[i++]!;
        v += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return v;
        shift += 7;
      }
    };
    while (i < buf.length) {
      const tag = varint();
      if ((tag & 7) !== 2) throw new Error(`unexpected wire type ${tag & 7}`);
      const len = varint();
      each(Math.floor(tag / 8), buf.subarray(i, i + len));
      i += len;
    }
  };
  fields(msg, (f, svid) => {
    if (f === 1) fields(svid, (g, v) => (g === 1 ? ids.push(v.toString('utf8')) : undefined));
  });
  return ids;
}

async function stream(endpoint: string, method: StreamMethod): Promise<void> {
  const client = await WorkloadApiClient.connect({ address: endpoint, timeoutMs: 120_000 });
  const call = client.raw[method]({}, workloadMetadata(client.grpc));
  call.on('data', (m: { svids?: { spiffeId: string }[] }) => print({ ids: (m.svids ?? []).map((s) => s.spiffeId) }));
  call.on('error', () => undefined);
  call.on('status', (st: StatusObject) => {
    print({ status: client.grpc.status[st.code] });
    client.close();
    process.exit(0);
  });
  // The test ends this caller by closing its stdin.
  process.stdin.on('end', () => process.exit(0)).resume();
}

async function raceParent(socketPath: string, uid: number): Promise<void> {
  const sock = netConnect({ path: socketPath });
  // The agent sends its HTTP/2 SETTINGS only after it has read SO_PEERCRED and handed the socket to
  // grpc-js: once they arrive, the kernel's record of this process is what the agent holds.
  const preface = await new Promise<Buffer>((resolve, reject) => {
    sock.once('data', resolve);
    sock.once('error', reject);
  });
  sock.pause();
  const self = `${process.pid}:${startTime(process.pid) ?? ''}`;
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), 'race-child', preface.toString('base64'), self],
    {
      uid,
      gid: uid,
      stdio: ['inherit', 'inherit', 'inherit', sock],
    },
  );
  print({ parent: process.pid, child: child.pid });
  // Exit at once, leaving the connection to the child, which speaks only once this process is reaped: the
  // pid the agent recorded then names nobody (or somebody else).
  process.exit(0);
}

/** Field 22 of /proc/<pid>/stat (the start time), or undefined when there is no such process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Resolves once the process `pid` that started at `started` is gone: reaped, or its pid given to another. */
async function gone(pid: number, started: string | undefined): Promise<void> {
  const limit = Date.now() + 60_000;
  while (started !== undefined && startTime(pid) === started) {
    // A guard against a hang only: the test reaps the parent as soon as it exits.
    if (Date.now() > limit) throw new Error(`parent ${pid} did not go away`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function raceChild(prefaceB64: string, parent: string): Promise<void> {
  // The parent names itself: it may be gone before this process even starts, so process.ppid cannot.
  const [pid, started] = parent.split(':');
  await gone(Number(pid), started || undefined);
  const sock = new Socket({ fd: 3, readable: true, writable: true });
  // What the parent already read from the connection belongs to this HTTP/2 session.
  sock.unshift(Buffer.from(prefaceB64, 'base64'));
  const session = http2Connect('http://localhost', { createConnection: () => sock });
  session.on('error', (err) => {
    print({ sessionError: err.message });
    process.exit(0);
  });
  const req = session.request({
    [h2.HTTP2_HEADER_METHOD]: 'POST',
    [h2.HTTP2_HEADER_PATH]: '/SpiffeWorkloadAPI/FetchX509SVID',
    'content-type': 'application/grpc',
    te: 'trailers',
    [WORKLOAD_API_HEADER]: WORKLOAD_API_HEADER_VALUE,
  });
  let grpcStatus: string | undefined;
  const chunks: Buffer[] = [];
  req.on('response', (headers) => {
    const s = headers['grpc-status'];
    if (s !== undefined) grpcStatus = String(s);
  });
  req.on('trailers', (trailers) => {
    const s = trailers['grpc-status'];
    if (s !== undefined) grpcStatus = String(s);
  });
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('close', () => {
    const body = Buffer.concat(chunks);
    const ids: string[] = [];
    // gRPC framing: 1 byte compressed flag, 4 bytes length, the message.
    for (let i = 0; i + 5 <= body.length;) {
      const len = body.readUInt32BE(i + 1);
      ids.push(...idsInX509Response(body.subarray(i + 5, i + 5 + len)));
      i += 5 + len;
    }
    print({ grpcStatus: grpcStatus === undefined ? null : Number(grpcStatus), ids, bytes: body.length });
    session.destroy();
    process.exit(0);
  });
  // An empty X509SVIDRequest: not compressed, length 0.
  req.end(Buffer.alloc(5));
}

const [mode, ...args] = process.argv.slice(2);
const main =
  mode === 'stream'
    ? stream(args[0]!, args[1] as StreamMethod)
    : mode === 'race-parent'
      ? raceParent(args[0]!, Number(args[1]))
      : mode === 'race-child'
        ? raceChild(args[0]!, args[1]!)
        : Promise.reject(new Error(`unknown mode ${String(mode)}`));
main.catch((err: unknown) => {
  print({ error: err instanceof Error ? err.message : String(err) });
  process.exit(2);
});
