/**
 * Attacks on the network ports of the real svidkit-ca (the built daemon as a child process) by a
 * peer that holds no certificate: a stream flood of partial messages on one connection, idle
 * TLS+HTTP/2 sessions, TCP connections that never start the TLS handshake, a flood of them from one
 * address, and slowloris on the observability port. Memory is read from the child's /proc/<pid>/status; every wait is for an event
 * (a close, an answer, a write callback), never for a guessed time.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { SpiffeBundle } from '../lib/bundle/index.js';
import { AdminClient } from '../lib/ca-api/admin-client.js';
import { healthProto } from '../lib/grpc/protos.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { checkHealth, type HealthClient } from './helpers/grpc.js';

const TD = TrustDomain.parse('example.org');
const CA_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit-ca.js');
const MIB = 1024 * 1024;
/** What the CA may grow by under the stream flood; before the limits it grew by about 325 MiB. */
const FLOOD_GROWTH_LIMIT_MIB = 64;

/** The resident set of a process in MiB, from /proc. */
function rssMib(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** svidkit-ca as a child process; resolves with its ports once it logged "svidkit-ca ready". */
async function startCa(configFile: string): Promise<{ child: ChildProcess; nodePort: number; obsPort: number }> {
  const child = spawn(process.execPath, [CA_BIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.setEncoding('utf8');
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const onData = (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"svidkit-ca ready"'));
      if (line === undefined) return;
      child.stdout!.off('data', onData);
      // Audit lines keep coming; they are drained so the child never blocks on a full pipe.
      child.stdout!.resume();
      resolve(JSON.parse(line) as Record<string, unknown>);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`svidkit-ca exited ${code} before it was ready: ${err}`)));
  });
  return { child, nodePort: Number(ready['node_port']), obsPort: Number(ready['metrics_port']) };
}

/** A TLS connection's options that verify the CA's serving certificate against its bundle. */
function tlsTo(roots: string) {
  return { ca: roots, servername: 'localhost' };
}

describe('attacks on the network ports of svidkit-ca', function () {
  this.timeout(90_000);
  let dir: string;
  let ca: Awaited<ReturnType<typeof startCa>>;
  let roots: string;
  let health: HealthClient;

  before(async function () {
    if (process.platform !== 'linux') this.skip(); // RSS is read from /proc
    dir = await mkdtemp(join(tmpdir(), 'svidkit-netattack-'));
    const configFile = join(dir, 'ca.yaml');
    // Small timeouts, so that the closes these tests wait for come in a second or two.
    await writeFile(
      configFile,
      [
        'trust_domain: example.org',
        `data_dir: ${join(dir, 'ca')}`,
        'listen: { address: 127.0.0.1, port: 0 }',
        'observability: { port: 0 }',
        'limits:',
        '  handshake_timeout: 3s',
        '  unauthenticated: { idle_timeout: 1s }',
        '',
      ].join('\n'),
    );
    ca = await startCa(configFile);
    const admin = new AdminClient(join(dir, 'ca', 'admin.sock'));
    try {
      roots = SpiffeBundle.parse(TD, (await admin.caStatus()).bundle!.spiffeBundleJson).x509.toPem();
    } finally {
      admin.close();
    }
    health = new (healthProto().grpc.health.v1.Health)(
      `127.0.0.1:${ca.nodePort}`,
      credentials.createSsl(Buffer.from(roots)),
      { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' },
    );
  });

  after(async () => {
    health?.close();
    if (ca && ca.child.exitCode === null && ca.child.signalCode === null) {
      ca.child.kill('SIGTERM');
      await once(ca.child, 'exit');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('one connection with 300 streams of almost-1-MiB partial messages and no client certificate: RSS stays bounded, health answers', async () => {
    assert.equal((await checkHealth(health)).status, 'SERVING');
    const pid = ca.child.pid!;
    const before = rssMib(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMib(pid))), 20);
    try {
      // The message announces 1 MiB less 1 KiB (inside the old 1 MiB limit) and stops one byte short.
      const announced = MIB - 1024;
      const frame = Buffer.alloc(5 + announced - 1);
      frame.writeUInt32BE(announced, 1);
      const session = http2.connect(`https://127.0.0.1:${ca.nodePort}`, tlsTo(roots));
      session.on('error', () => {});
      await once(session, 'connect');
      const settled: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/svidkit.ca.v1.Node/AttestAgent',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        stream.on('error', () => {});
        stream.resume();
        // Done when the CA took every byte (it holds them) or closed the stream (it refused them).
        settled.push(
          new Promise<void>((resolve) => {
            stream.once('close', resolve);
            stream.write(frame, () => resolve());
          }),
        );
      }
      assert.equal((await checkHealth(health)).status, 'SERVING', 'health answers during the flood');
      await Promise.all(settled);
      // A round trip on the attacking connection itself: every frame before it has been read.
      if (!session.closed && !session.destroyed) {
        await new Promise<void>((resolve) => {
          if (!session.ping(() => resolve())) resolve();
          session.once('close', resolve);
        });
      }
      peak = Math.max(peak, rssMib(pid));
      assert.equal((await checkHealth(health)).status, 'SERVING', 'health answers after the flood');
      session.destroy();
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - before;
    console.log(`      RSS ${before.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at the peak of the flood`);
    assert.ok(
      growth < FLOOD_GROWTH_LIMIT_MIB,
      `the CA grew by ${growth.toFixed(0)} MiB (limit ${FLOOD_GROWTH_LIMIT_MIB})`,
    );
  });

  it('closes an idle TLS+HTTP/2 session that presented no client certificate', async () => {
    const session = http2.connect(`https://127.0.0.1:${ca.nodePort}`, tlsTo(roots));
    session.on('error', () => {});
    await once(session, 'connect');
    // Nothing is sent after the preface and SETTINGS; the CA must hang up by itself.
    await once(session, 'close');
  });

  it('closes a TCP connection that never starts the TLS handshake', async () => {
    const socket = tcpConnect({ host: '127.0.0.1', port: ca.nodePort });
    socket.on('error', () => {});
    await once(socket, 'connect');
    await once(socket, 'close');
  });

  it('a flood of silent connections from one address does not close a connection from another', async () => {
    // 127.0.0.2 is loopback on Linux; the attacker needs an address of its own for the test to mean anything.
    const attackers: Socket[] = [];
    const victim = tcpConnect({ host: '127.0.0.1', port: ca.nodePort });
    victim.on('error', () => {});
    await once(victim, 'connect');
    let firstClosed: Socket | undefined;
    const closedOne = new Promise<void>((resolve) => {
      const onClose = (s: Socket) => () => {
        firstClosed ??= s;
        resolve();
      };
      victim.once('close', onClose(victim));
      // More than the pool of 64 (the default), all accepted after the victim.
      for (let i = 0; i < 80; i++) {
        const s = tcpConnect({ host: '127.0.0.1', port: ca.nodePort, localAddress: '127.0.0.2' });
        s.on('error', () => {});
        s.once('close', onClose(s));
        attackers.push(s);
      }
    });
    try {
      // The pool overflowed once the CA closed one of them: it must have been an attacker's.
      await closedOne;
      assert.notEqual(firstClosed, victim, 'the connection from the other address was closed');
      // The victim now completes its handshake on the connection it kept, and is served.
      const session = http2.connect(`https://127.0.0.1:${ca.nodePort}`, {
        ...tlsTo(roots),
        createConnection: () => tlsConnect({ socket: victim, ...tlsTo(roots), ALPNProtocols: ['h2'] }),
      });
      session.on('error', () => {});
      await once(session, 'connect');
      session.destroy();
    } finally {
      victim.destroy();
      for (const s of attackers) s.destroy();
    }
  });

  it('keeps /healthz answering a fresh connection while 100 slowloris connections are held open', async () => {
    const request = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ';
    const slow: { socket: Socket; sent: number }[] = [];
    const trickle = setInterval(() => {
      for (const s of slow) {
        if (s.socket.destroyed) continue;
        // One header byte at a time, and the header never ends.
        s.socket.write(s.sent < request.length ? request[s.sent]! : 'a');
        s.sent++;
      }
    }, 100);
    try {
      for (let i = 0; i < 100; i++) {
        const socket = tcpConnect({ host: '127.0.0.1', port: ca.obsPort });
        socket.on('error', () => {});
        await once(socket, 'connect');
        socket.write(request[0]!);
        slow.push({ socket, sent: 1 });
      }
      // The probe connects after all of them, so the CA accepts it after them too.
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: ca.obsPort, path: '/healthz', agent: false }, (r) => {
          let body = '';
          r.setEncoding('utf8').on('data', (d: string) => (body += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
      assert.deepEqual(res, { status: 200, body: 'ok\n' });
    } finally {
      clearInterval(trickle);
      for (const s of slow) s.socket.destroy();
    }
  });
});
