/**
 * `npm run soak`: holds many concurrent mTLS connections through the library while both sides' SVIDs
 * rotate on a fixed period, and reports failed requests, handshakes per SVID generation, and the
 * process's memory and open file descriptors over time.
 *
 *   node dist/bench/soak.js [--connections 1000] [--duration 300] [--rotate 10]
 *
 * Every connection is a connectMtls client of one createMtlsServer; each sends a line about once a
 * second and checks the echo, and reconnects after a random lifetime (5 to 20 s) so that handshakes
 * keep happening across rotations. A request fails when its reply is wrong or does not come within
 * 10 s, or when a (re)connection fails. Memory and descriptors are sampled every 5 s.
 */
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { authorizeId } from '../lib/authorize/index.js';
import { BundleSet } from '../lib/bundle/index.js';
import { StaticSource } from '../lib/source/index.js';
import { connectMtls, createMtlsServer, peerSpiffeId } from '../lib/tls/index.js';
import { TestCa } from '../test/helpers/ca.js';

/** Options of soak(). */
export interface SoakOptions {
  connections: number;
  durationMs: number;
  rotateEveryMs: number;
  /** Progress lines; silent when absent. */
  log?: (line: string) => void;
}

/** One sample of the process's resources. */
export interface SoakSample {
  atMs: number;
  open: number;
  rssMiB: number;
  heapMiB: number;
  fds: number;
}

/** What a soak run measured. */
export interface SoakReport {
  connections: number;
  durationMs: number;
  rotations: number;
  requests: number;
  failedRequests: number;
  handshakes: number;
  failedHandshakes: number;
  /** Handshakes made after each rotation whose server certificate was that rotation's (per generation). */
  handshakesPerGeneration: number[];
  samples: SoakSample[];
  /** Descriptors before the first connection and after the last one closed. */
  fdsBefore: number;
  fdsAfter: number;
  firstFailures: string[];
}

const REQUEST_TIMEOUT_MS = 10_000;

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1; // not Linux: reported as unknown
  }
}

const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;

/** Runs one soak and returns what it measured (never throws for request failures: they are counted). */
export async function soak(options: SoakOptions): Promise<SoakReport> {
  const { connections, durationMs, rotateEveryMs, log = () => {} } = options;
  const now = Date.now();
  const ca = TestCa.root({ notBefore: new Date(now - 3600_000), notAfter: new Date(now + 24 * 3600_000) });
  const bundles = new BundleSet([ca.bundle()]);
  const validity = () => ({ notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000) });
  const serverSource = new StaticSource({ svid: ca.svid('/soak/server', validity()), bundles });
  const clientSource = new StaticSource({ svid: ca.svid('/soak/client', validity()), bundles });
  const serverId = 'spiffe://example.org/soak/server';
  const clientId = 'spiffe://example.org/soak/client';

  const serials: string[] = [serverSource.getX509Svid().leaf.serialHex];
  const perGeneration: number[] = [0];
  const report: SoakReport = {
    connections,
    durationMs,
    rotations: 0,
    requests: 0,
    failedRequests: 0,
    handshakes: 0,
    failedHandshakes: 0,
    handshakesPerGeneration: perGeneration,
    samples: [],
    fdsBefore: 0,
    fdsAfter: 0,
    firstFailures: [],
  };
  const failure = (what: string) => {
    if (report.firstFailures.length < 10) report.firstFailures.push(what);
  };

  const server = createMtlsServer(serverSource, authorizeId(clientId), (socket) => {
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    const who = String(peerSpiffeId(socket));
    let buffered = '';
    socket.on('data', (d: string) => {
      buffered += d;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        socket.write(`${line} ${who}\n`);
      }
    });
  });
  server.on('tlsClientError', (err) => failure(`server refused a client: ${err.message}`));
  server.maxConnections = connections * 2;
  server.listen(0, '127.0.0.1', 4096);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  report.fdsBefore = openFds();

  const started = Date.now();
  const deadline = started + durationMs;
  let open = 0;
  let stopping = false;

  /** One connection's life: connect, exchange lines about once a second, close after its lifetime. */
  const lifetime = async (n: number): Promise<void> => {
    let socket: TLSSocket;
    try {
      socket = await connectMtls(clientSource, authorizeId(serverId), { host: '127.0.0.1', port });
    } catch (err) {
      report.failedHandshakes++;
      failure(`connection ${n}: ${(err as Error).message}`);
      return;
    }
    report.handshakes++;
    const presented = (socket.getPeerCertificate() as { serialNumber?: string }).serialNumber?.toLowerCase() ?? '';
    const generation = serials.lastIndexOf(presented.replace(/^0+/, ''));
    if (generation >= 0) perGeneration[generation] = (perGeneration[generation] ?? 0) + 1;
    open++;
    socket.setEncoding('utf8');
    const until = Math.min(deadline, Date.now() + 5000 + Math.random() * 15_000);
    let buffered = '';
    let waiting: ((line: string | undefined) => void) | undefined;
    socket.on('data', (d: string) => {
      buffered += d;
      const nl = buffered.indexOf('\n');
      if (nl >= 0 && waiting) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        waiting(line);
      }
    });
    socket.on('error', () => waiting?.(undefined));
    socket.on('close', () => waiting?.(undefined));
    try {
      for (let i = 0; Date.now() < until && !stopping; i++) {
        const ask = `${n}.${i}`;
        report.requests++;
        const reply = await new Promise<string | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), REQUEST_TIMEOUT_MS);
          waiting = (line) => {
            clearTimeout(timer);
            waiting = undefined;
            resolve(line);
          };
          socket.write(`${ask}\n`);
        });
        if (reply !== `${ask} ${clientId}`) {
          report.failedRequests++;
          failure(`connection ${n} request ${i}: ${reply === undefined ? 'no reply' : 'wrong reply'}`);
          break;
        }
        await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
      }
    } finally {
      open--;
      socket.end();
      socket.destroy();
    }
  };

  // Ramp up over about two seconds so the listen backlog is never the bottleneck.
  const loops: Promise<void>[] = [];
  for (let n = 0; n < connections; n++) {
    loops.push(
      (async () => {
        await new Promise((r) => setTimeout(r, (n / connections) * 2000));
        while (Date.now() < deadline && !stopping) await lifetime(n);
      })(),
    );
  }

  const rotation = setInterval(() => {
    serverSource.set({ svid: ca.svid('/soak/server', validity()) });
    clientSource.set({ svid: ca.svid('/soak/client', validity()) });
    serials.push(serverSource.getX509Svid().leaf.serialHex);
    perGeneration.push(0);
    report.rotations++;
    log(`rotation ${report.rotations}: server cert ${serials.at(-1)!.slice(0, 12)}…`);
  }, rotateEveryMs);
  const sample = () => {
    const m = process.memoryUsage();
    const s = { atMs: Date.now() - started, open, rssMiB: mib(m.rss), heapMiB: mib(m.heapUsed), fds: openFds() };
    report.samples.push(s);
    log(
      `${(s.atMs / 1000).toFixed(0)}s: ${open} open, ${report.requests} requests (${report.failedRequests} failed), ` +
        `${report.handshakes} handshakes (${report.failedHandshakes} failed), rss ${s.rssMiB} MiB, heap ${s.heapMiB} MiB, fds ${s.fds}`,
    );
  };
  const sampler = setInterval(sample, 5000);
  await Promise.all(loops);
  stopping = true;
  clearInterval(rotation);
  clearInterval(sampler);
  sample();
  server.close();
  await new Promise((r) => setTimeout(r, 200));
  report.fdsAfter = openFds();
  return report;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '300' },
      rotate: { type: 'string', default: '10' },
    },
  });
  const num = (v: string | undefined, name: string) => {
    const n = Number(v);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  const connections = num(values.connections, 'connections');
  const r = await soak({
    connections,
    durationMs: num(values.duration, 'duration') * 1000,
    rotateEveryMs: num(values.rotate, 'rotate') * 1000,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const full = r.samples.filter((s) => s.open >= connections * 0.9);
  const first = full[0];
  const last = full.at(-1);
  process.stdout.write(
    `\nsoak: ${r.connections} connections for ${r.durationMs / 1000}s, ${r.rotations} rotations\n` +
      `requests: ${r.requests} (${r.failedRequests} failed); handshakes: ${r.handshakes} (${r.failedHandshakes} failed)\n` +
      `handshakes per SVID generation: ${r.handshakesPerGeneration.join(' ')}\n` +
      (first && last
        ? `with all connections open: rss ${first.rssMiB} -> ${last.rssMiB} MiB, heap ${first.heapMiB} -> ${last.heapMiB} MiB, fds ${first.fds} -> ${last.fds}\n`
        : '') +
      `fds before ${r.fdsBefore}, after closing ${r.fdsAfter}\n` +
      (r.firstFailures.length ? `first failures:\n  ${r.firstFailures.join('\n  ')}\n` : ''),
  );
  process.exitCode = r.failedRequests + r.failedHandshakes === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`error ERR_INTERNAL: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
