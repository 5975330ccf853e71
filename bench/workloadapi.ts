/**
 * The SPIFFE Workload API of svidkit-agent, the real daemon (dist/cmd/svidkit-agent.js) in its own
 * process against a svidkit-ca process, so that its RSS is its own and its CPU is not this process's:
 *
 *   - connect to the first FetchX509SVID message, p50 and p99, a fresh channel each time, against a
 *     fresh channel's unary call to a plain grpc-js server answering the same bytes over a Unix socket;
 *   - STREAMS concurrent FetchX509SVID streams, one channel (so one connection) each, as that many
 *     workloads would open them: the agent's RSS with them open against its RSS with none, and the
 *     time from a bundle change (a forced X.509 CA rotation through the Admin API) to the last stream's
 *     update, against the same change with one stream open;
 *   - FetchJWTSVID (cached token) against a bare unary call, and the caller attestation every RPC pays.
 *
 * The plain server runs in a child process too (this file, started as `plain-server <socket>`), so that
 * both sides of every latency comparison cross a process boundary. Clients read raw bytes: neither side
 * pays protobuf decoding in this process. The streams' clients all live in this process, which shares
 * the machine's cores with the agent: the fan-out figure includes receiving the 1,000 messages.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ChannelOptions,
  Client,
  type ClientReadableStream,
  credentials,
  Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { CallerAttestor, peerCredentials } from '../lib/agent/caller/index.js';
import { SpiffeBundle } from '../lib/bundle/index.js';
import { caProto } from '../lib/ca-api/proto.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import {
  loadWorkloadApi,
  MAX_MESSAGE_BYTES,
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
} from '../lib/workloadapi/index.js';
import { type BenchResult, compare, median, percentile, startCaProcess, unary } from './support.js';
import type {
  CreateJoinTokenResponse__Output,
  GeneratedAdminClient as AdminClient,
  GetCaStatusResponse__Output,
} from '../lib/ca-api/index.js';

const STREAMS = Number(process.env.BENCH_WL_STREAMS ?? 1000);
/** Fresh-channel samples per side for the connect row. */
const CONNECTS = Number(process.env.BENCH_WL_CONNECTS ?? 300);
/**
 * Forced CA rotations with all streams open, and as many with one; the median of each is kept. Each
 * adds a key to the bundle and the CA holds at most 16 per kind, hence the cap.
 */
const ROTATIONS = Math.min(7, Number(process.env.BENCH_WL_ROTATIONS ?? 5));
/** Streams opened at once: the agent's listen backlog is 511, and a refused connect backs off for a second. */
const OPEN_BATCH = 100;
/** Whatever step this bench waits for gives up after this long instead of hanging `npm run bench`. */
const STEP_TIMEOUT_MS = 60_000;
const TD = 'bench.example';
const AUDIENCE = `spiffe://${TD}/bench/server`;
const HERE = dirname(fileURLToPath(import.meta.url));
const AGENT_BIN = join(HERE, '..', 'cmd', 'svidkit-agent.js');
const SELF = fileURLToPath(import.meta.url);
const MIB = 2 ** 20;

const bytes = (b: Buffer): Buffer => b;
function rawMethod(path: string, responseStream: boolean): MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  };
}
const X509_PATH = '/SpiffeWorkloadAPI/FetchX509SVID';
const JWT_PATH = '/SpiffeWorkloadAPI/FetchJWTSVID';
const PLAIN_X509 = rawMethod('/bench.Plain/X509', false);
const PLAIN_JWT = rawMethod('/bench.Plain/Jwt', false);
/** X509SVIDRequest has no fields: its encoding is empty. */
const EMPTY = Buffer.alloc(0);

/**
 * Every channel gets its own subchannel pool, so that each one is its own connection: grpc-js would
 * otherwise share one connection among channels to the same target.
 */
const CHANNEL: ChannelOptions = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
};

function workloadMetadata(): Metadata {
  const md = new Metadata();
  md.set(WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE);
  return md;
}

/** Rejects after STEP_TIMEOUT_MS with a message naming the step. */
function bounded<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`workloadapi bench: ${what} took over ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function unaryBytes(client: Client, path: string, req: Buffer, md: Metadata = new Metadata()): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, bytes, bytes, req, md, (err: ServiceError | null, res?: Buffer) =>
      err ? reject(err) : resolve(res!),
    ),
  );
}

function openX509(client: Client): ClientReadableStream<Buffer> {
  return client.makeServerStreamRequest(X509_PATH, bytes, bytes, EMPTY, workloadMetadata());
}

/** The first message of a FetchX509SVID stream on `client`; the stream is cancelled after it. */
function firstX509(client: Client): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const call = openX509(client);
    call.once('data', (b: Buffer) => {
      resolve(b);
      call.cancel();
    });
    call.on('error', (err: ServiceError) => {
      if (err.code !== status.CANCELLED) reject(err);
    });
  });
}

/** VmRSS of another process, from /proc (bytes). */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** A child process that says when it is ready and is stopped with SIGTERM. */
interface Proc {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
}

/** A trust bundle update the agent logged: its sequence, and when (on this process's performance clock). */
interface BundleUpdate {
  readonly sequence: number;
  readonly t: number;
}

/** The agent process and the bundle updates it logged. */
interface AgentProc extends Proc {
  /** When the agent logged the first bundle update past `sequence`; waits for the line if need be. */
  bundleUpdatedAfter(sequence: number): Promise<number>;
}

/** Starts svidkit-agent on `configFile`; resolves once it logs that the Workload API is serving. */
function startAgentProcess(configFile: string): Promise<AgentProc> {
  // Logs go to stdout and are read line by line; stderr is the bench's, so that a refusal to start is seen.
  // BENCH_WL_AGENT_PROFILE=<dir>: the agent's whole run is profiled (read it with bench/cpuprofile.ts).
  const dir = process.env.BENCH_WL_AGENT_PROFILE;
  const profile = dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
  const child = spawn(process.execPath, [...profile, AGENT_BIN, 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const bundleUpdates: BundleUpdate[] = [];
  const wake = new Set<() => void>();
  const bundleUpdatedAfter = async (sequence: number): Promise<number> => {
    for (;;) {
      const u = bundleUpdates.find((x) => x.sequence > sequence);
      if (u) return u.t;
      // Log lines reach this process later than the streams' messages may: the logger writes asynchronously.
      await new Promise<void>((resolve) => wake.add(resolve));
    }
  };
  return bounded(
    'starting svidkit-agent',
    new Promise<AgentProc>((resolve, reject) => {
      let rest = '';
      child.stdout!.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          if (line.includes('"trust bundle updated"')) {
            // The agent's own timestamp (ISO, ms) on the same wall clock, moved onto performance.now().
            const { time, sequence } = JSON.parse(line) as { time: string; sequence?: number };
            bundleUpdates.push({ sequence: sequence ?? 0, t: Date.parse(time) - performance.timeOrigin });
            for (const w of [...wake]) w();
            wake.clear();
          } else if (line.includes('"Workload API serving"')) {
            child.off('exit', onExit);
            resolve({ child, stop: stopper(child), bundleUpdatedAfter });
          }
        }
      });
      const onExit = (code: number | null) => reject(new Error(`svidkit-agent exited ${code}`));
      child.once('exit', onExit);
    }),
  ).catch((err: unknown) => {
    // A child that did not come up is killed here: nobody else holds it.
    child.kill('SIGKILL');
    throw err;
  });
}

/** Starts the plain grpc-js server (this file as a child) answering `x509` and `jwt` on `socket`. */
function startPlainServer(socket: string, x509: Buffer, jwt: Buffer): Promise<Proc> {
  const child = fork(SELF, ['plain-server', socket], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send({ x509: x509.toString('base64'), jwt: jwt.toString('base64') });
  return bounded(
    'starting the plain grpc-js server',
    new Promise<Proc>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`plain grpc-js server exited ${code}`));
      child.once('exit', onExit);
      child.once('message', () => {
        child.off('exit', onExit);
        resolve({ child, stop: stopper(child) });
      });
    }),
  ).catch((err: unknown) => {
    // A child that did not come up is killed here: nobody else holds it.
    child.kill('SIGKILL');
    throw err;
  });
}

/** One FetchX509SVID stream on its own channel, with the arrival time of each message. */
class Watcher {
  readonly #client: Client;
  readonly #call: ClientReadableStream<Buffer>;
  readonly #wake = new Set<() => void>();
  readonly log: { readonly t: number; readonly bytes: Buffer }[] = [];
  #error: ServiceError | undefined;

  constructor(target: string) {
    this.#client = new Client(target, credentials.createInsecure(), CHANNEL);
    this.#call = openX509(this.#client);
    this.#call.on('data', (b: Buffer) => {
      this.log.push({ t: performance.now(), bytes: b });
      this.#notify();
    });
    this.#call.on('error', (err: ServiceError) => {
      if (err.code !== status.CANCELLED) this.#error = err;
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of [...this.#wake]) w();
  }

  /** Waits until `find` gives a value from the messages so far. */
  async until<T>(find: () => T | undefined): Promise<T> {
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (this.#error) throw new Error(`FetchX509SVID stream failed: ${this.#error.code} ${this.#error.details}`);
      await new Promise<void>((resolve) => {
        const w = () => {
          this.#wake.delete(w);
          resolve();
        };
        this.#wake.add(w);
      });
    }
  }

  /** Arrival time of the first message that holds `der` (a CA certificate of the bundle). */
  firstHolding(der: Buffer): Promise<number> {
    return this.until(() => this.log.find((m) => m.bytes.includes(der))?.t);
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

/** The CA's bundle now: its sequence and its X.509 authorities. */
async function caBundle(admin: AdminClient): Promise<{ sequence: number; authorities: Buffer[] }> {
  const st = await unary<GetCaStatusResponse__Output>((cb) => admin.GetCaStatus({}, cb));
  const bundle = SpiffeBundle.parse(TrustDomain.parse(TD), st.bundle!.spiffeBundleJson);
  return { sequence: bundle.sequence ?? 0, authorities: bundle.x509.authorities().map((c) => Buffer.from(c.der)) };
}

/** One forced X.509 CA rotation: when the agent had the new bundle, and when each stream carried it. */
interface Round {
  /** RotateCa's round trip (the CA prepares and activates a key, publishing the bundle on the way). */
  readonly rotateMs: number;
  /** From RotateCa sent to the first and the last stream's message holding the new CA certificate. */
  readonly first: number;
  readonly last: number;
  /** From the agent's "trust bundle updated" log line to the first and the last stream's message. */
  readonly agentFirst: number;
  readonly agentLast: number;
}

async function rotationRound(admin: AdminClient, agent: AgentProc, watchers: readonly Watcher[]): Promise<Round> {
  const before = await caBundle(admin);
  for (const w of watchers) w.log.length = 0;
  const t0 = performance.now();
  await unary((cb) => admin.RotateCa({ kind: 'x509' }, cb));
  const rotateMs = performance.now() - t0;
  const after = await caBundle(admin);
  const added = after.authorities.find((der) => !before.authorities.some((b) => b.equals(der)));
  if (!added) throw new Error('workloadapi bench: RotateCa added no X.509 authority to the bundle');
  const times = await bounded(
    'the bundle change reaching every stream',
    Promise.all(watchers.map((w) => w.firstHolding(added))),
  );
  // The rotation publishes twice (the key prepared, then activated); the first publication adds the new
  // authority, and is the first update with a sequence past the bundle read before RotateCa.
  const seen = await bounded('the agent logging the bundle update', agent.bundleUpdatedAfter(before.sequence));
  const first = Math.min(...times);
  const last = Math.max(...times);
  return { rotateMs, first: first - t0, last: last - t0, agentFirst: first - seen, agentLast: last - seen };
}

/** Milliseconds from a fresh channel to the first answer, `open` giving that answer. */
async function freshChannelMs(target: string, open: (c: Client) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const client = new Client(target, credentials.createInsecure(), CHANNEL);
  try {
    await open(client);
    return performance.now() - t0;
  } finally {
    client.close();
  }
}

/** The Workload API benchmark rows. */
export async function workloadApiBench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-bench-wl-'));
  chmodSync(dir, 0o755);
  const procs: Proc[] = [];
  const watchers: Watcher[] = [];
  const clients: Client[] = [];
  let ca: Awaited<ReturnType<typeof startCaProcess>> | undefined;
  let admin: AdminClient | undefined;
  try {
    ca = await startCaProcess(dir);
    admin = new (caProto().svidkit.ca.v1.Admin)(
      `unix://${ca.socket}`,
      credentials.createInsecure(),
    ) as unknown as AdminClient;
    const a = admin;
    const jt = await unary<CreateJoinTokenResponse__Output>((cb) => a.CreateJoinToken({ ttlSeconds: 600 }, cb));
    const st = await unary<GetCaStatusResponse__Output>((cb) => a.GetCaStatus({}, cb));
    writeFileSync(
      join(dir, 'bundle.pem'),
      SpiffeBundle.parse(TrustDomain.parse(TD), st.bundle!.spiffeBundleJson).x509.toPem(),
    );
    // This process and every stream it opens is one caller uid, so one entry serves them all.
    const selector = `unix:uid:${process.getuid!()}`;
    await unary((cb) =>
      a.CreateEntry(
        { entry: { spiffeId: `spiffe://${TD}/bench/wl`, parentId: jt.agentId, selectors: [selector] } },
        cb,
      ),
    );

    const socket = join(dir, 'public', 'api.sock');
    const configFile = join(dir, 'agent.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        trust_domain: TD,
        data_dir: join(dir, 'agent'),
        ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation: { join_token: jt.token },
        observability: { port: 0 },
        workload_api: {
          socket_path: socket,
          max_streams_per_caller: Math.min(1024, Math.max(64, STREAMS + 16)),
          max_connections: Math.max(4096, 2 * STREAMS),
        },
      }),
    );
    const agent = await startAgentProcess(configFile);
    procs.push(agent);
    const target = `unix:${socket}`;

    // The answers the plain server repeats: the agent's own, so both sides move the same bytes.
    const sample = new Client(target, credentials.createInsecure(), CHANNEL);
    clients.push(sample);
    const x509Bytes = await bounded('the first SVID', firstX509(sample));
    const { proto } = await loadWorkloadApi();
    const jwtRequest = proto.SpiffeWorkloadAPI.service.FetchJWTSVID.requestSerialize({ audience: [AUDIENCE] });
    const jwtBytes = await bounded('the first JWT-SVID', unaryBytes(sample, JWT_PATH, jwtRequest, workloadMetadata()));
    sample.close();
    const plainSocket = join(dir, 'plain.sock');
    procs.push(await startPlainServer(plainSocket, x509Bytes, jwtBytes));
    const plainTarget = `unix:${plainSocket}`;

    // Streams: the agent's RSS with none, then with STREAMS open, then rotations fanned out to them.
    const rssNone = rssOf(agent.child.pid!);
    for (let i = 0; i < STREAMS; i += OPEN_BATCH) {
      const batch = Array.from({ length: Math.min(OPEN_BATCH, STREAMS - i) }, () => new Watcher(target));
      watchers.push(...batch);
      await bounded(
        'opening streams',
        Promise.all(batch.map((w) => w.until(() => (w.log.length > 0 ? true : undefined)))),
      );
    }
    const rssStreams = rssOf(agent.child.pid!);
    const rounds: Round[] = [];
    for (let r = 0; r < ROTATIONS; r++) rounds.push(await rotationRound(a, agent, watchers));
    for (const w of watchers.splice(0)) w.close();
    // The same bundle change with one stream open: what the fan-out is measured against.
    const single: Round[] = [];
    watchers.push(new Watcher(target));
    await bounded(
      'opening one stream',
      watchers[0]!.until(() => (watchers[0]!.log.length > 0 ? true : undefined)),
    );
    for (let r = 0; r < ROTATIONS; r++) single.push(await rotationRound(a, agent, watchers));
    for (const w of watchers.splice(0)) w.close();
    const mid = (k: keyof Round, of = rounds) => median(of.map((r) => r[k]));
    if (process.env.BENCH_WL_VERBOSE) process.stderr.write(`${JSON.stringify({ rounds, single })}\n`);

    // Connect to first message: fresh channels, subject and baseline alternating, after a warm-up.
    const agentMs: number[] = [];
    const plainMs: number[] = [];
    const plainFirst = (c: Client) => unaryBytes(c, PLAIN_X509.path, EMPTY);
    for (let i = 0; i < 20; i++) {
      await freshChannelMs(target, firstX509);
      await freshChannelMs(plainTarget, plainFirst);
    }
    for (let i = 0; i < CONNECTS; i++) {
      agentMs.push(await freshChannelMs(target, firstX509));
      plainMs.push(await freshChannelMs(plainTarget, plainFirst));
    }
    agentMs.sort((x, y) => x - y);
    plainMs.sort((x, y) => x - y);

    // FetchJWTSVID on one channel against a bare unary call of the same answer size.
    const jwtClient = new Client(target, credentials.createInsecure(), CHANNEL);
    const plainClient = new Client(plainTarget, credentials.createInsecure(), CHANNEL);
    clients.push(jwtClient, plainClient);
    const bare = () => unaryBytes(plainClient, PLAIN_JWT.path, EMPTY);
    const jwt = await compare(
      'Workload API: FetchJWTSVID, cached token, caller attested (one channel, agent process)',
      'calls/s',
      () => unaryBytes(jwtClient, JWT_PATH, jwtRequest, workloadMetadata()),
      'plain grpc-js unary call, an answer of the same size (one channel, Unix socket, own process)',
      bare,
    );
    const attest = await attestationRows(bare);

    const b = (n: number) => n.toLocaleString('en-US');
    return [
      {
        name: 'Workload API: connect to first FetchX509SVID message, p50 (fresh channel each time)',
        unit: 'ms',
        value: percentile(agentMs, 50),
        baseline: 'plain grpc-js: connect to a unary answer of the same bytes, p50 (fresh channel, Unix socket)',
        baseline_value: percentile(plainMs, 50),
        ratio: percentile(agentMs, 50) / percentile(plainMs, 50),
      },
      {
        name: 'Workload API: connect to first FetchX509SVID message, p99 (fresh channel each time)',
        unit: 'ms',
        value: percentile(agentMs, 99),
        baseline: 'plain grpc-js: connect to a unary answer of the same bytes, p99 (fresh channel, Unix socket)',
        baseline_value: percentile(plainMs, 99),
        ratio: percentile(agentMs, 99) / percentile(plainMs, 99),
      },
      {
        name: `Workload API: agent RSS with ${b(STREAMS)} FetchX509SVID streams open (one connection each)`,
        unit: 'MiB',
        value: rssStreams / MIB,
        baseline: 'RSS of the same agent with no stream open',
        baseline_value: rssNone / MIB,
        ratio: rssStreams / rssNone,
      },
      {
        name: `Workload API: bundle change at the agent to the last of ${b(STREAMS)} streams' update (median of ${ROTATIONS})`,
        unit: 'ms',
        value: mid('agentLast'),
        baseline: 'the same with one stream open, to its update',
        baseline_value: mid('agentLast', single),
        ratio: mid('agentLast') / mid('agentLast', single),
      },
      {
        name: `Workload API: CA rotation sent to the last of ${b(STREAMS)} streams' update (median of ${ROTATIONS})`,
        unit: 'ms',
        value: mid('last'),
        baseline: 'RotateCa round trip (the CA prepares, publishes and activates a key)',
        baseline_value: mid('rotateMs'),
        ratio: mid('last') / mid('rotateMs'),
      },
      jwt,
      ...attest,
    ];
  } finally {
    for (const w of watchers) w.close();
    for (const c of clients) c.close();
    admin?.close();
    for (const p of procs.reverse()) await p.stop();
    await ca?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What attesting a caller costs, in this process on a Unix connection to itself (the agent's attestor,
 * path discovery off as by default): attest + recheck, which every RPC pays, and with peerCredentials,
 * which a connection's first RPC adds. Both as microseconds against a bare unary call's round trip.
 */
async function attestationRows(bare: () => Promise<unknown>): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-bench-attest-'));
  const server = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(join(dir, 'a.sock'), () => resolve()));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect(join(dir, 'a.sock'));
  const socket = await accepted;
  const creds = peerCredentials(socket);
  const attestor = new CallerAttestor();
  const perRpc = async () => attestor.recheck(await attestor.attest(creds));
  const perConnection = async () => {
    const c = peerCredentials(socket);
    try {
      await attestor.recheck(await attestor.attest(c));
    } finally {
      c.close();
    }
  };
  const asMicros = (r: BenchResult, name: string, baseline: string): BenchResult => ({
    name,
    unit: 'µs',
    value: 1e6 / r.value,
    baseline,
    baseline_value: 1e6 / r.baseline_value,
    ratio: r.baseline_value / r.value,
  });
  try {
    const rpc = await compare('', 'calls/s', perRpc, '', bare);
    const conn = await compare('', 'calls/s', perConnection, '', bare);
    return [
      asMicros(
        rpc,
        'Workload API: caller attestation per RPC (attest + recheck from /proc, in process)',
        'plain grpc-js unary round trip (Unix socket, own process)',
      ),
      asMicros(
        conn,
        "Workload API: a connection's first attestation (peerCredentials + attest + recheck, in process)",
        'plain grpc-js unary round trip (Unix socket, own process)',
      ),
    ];
  } finally {
    creds.close();
    socket.destroy();
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The baseline server: plain grpc-js, no header check, no attestation, the answers it was sent. */
async function plainServer(socket: string): Promise<void> {
  const answers = await new Promise<{ x509: string; jwt: string }>((resolve) =>
    process.once('message', (m: { x509: string; jwt: string }) => resolve(m)),
  );
  const x509 = Buffer.from(answers.x509, 'base64');
  const jwt = Buffer.from(answers.jwt, 'base64');
  const server = new Server({ 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
  server.addService(
    { X509: PLAIN_X509, Jwt: PLAIN_JWT },
    {
      X509: (_call: unknown, cb: (err: null, res: Buffer) => void) => cb(null, x509),
      Jwt: (_call: unknown, cb: (err: null, res: Buffer) => void) => cb(null, jwt),
    },
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  process.send!({ ready: true });
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  server.forceShutdown();
  process.disconnect();
}

if (process.argv[1] === SELF && process.argv[2] === 'plain-server') await plainServer(process.argv[3]!);
