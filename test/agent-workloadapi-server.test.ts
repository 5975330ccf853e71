/**
 * The agent's Workload API server (lib/agent/workloadapi/server.ts) observed from outside, through a
 * real CA and agent (test/helpers/workload-mesh.ts) and real clients on its Unix socket: streams that
 * send the full state again on every change and end when the caller's last entry goes, the bounds on
 * streams and connections, a client that never reads, the pid-reuse race forged with a real child of
 * another uid, the metrics on a real scrape, and `svidkit-agent status` over the agent's data dir.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ClientReadableStream, StatusObject } from '@grpc/grpc-js';
import type { JWTBundlesResponse__Output } from '../lib/generated/workload/JWTBundlesResponse.js';
import type { X509BundlesResponse__Output } from '../lib/generated/workload/X509BundlesResponse.js';
import type { X509SVIDResponse__Output } from '../lib/generated/workload/X509SVIDResponse.js';
import { WorkloadApiClient } from '../lib/source/index.js';
import { workloadMetadata } from '../lib/source/workloadapi-watch.js';
import { WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE } from '../lib/workloadapi/index.js';
import { runCli } from './helpers/cli.js';
import { startWorkloadMesh, type WorkloadMesh } from './helpers/workload-mesh.js';

const here = dirname(fileURLToPath(import.meta.url));
const callerScript = join(here, 'helpers', 'workload-caller.js');
const agentBin = join(here, '..', 'cmd', 'svidkit-agent.js');
const uid = process.getuid?.() ?? 0;
const isRoot = uid === 0;
/** The uid the root-only cases run other callers as. */
const OTHER_UID = 65534;
const TD = 'spiffe://example.org';

/** Rejects after `ms` naming what never happened: a guard against a hang, not a performance check. */
function within<T>(what: string, p: Promise<T>, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

/** Polls `cond` until it holds (the event has no other signal); bounded like within(). */
async function until(what: string, cond: () => Promise<boolean> | boolean): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > 60_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One open server stream and everything it delivered, read in order with next(). */
class Watch<T> {
  readonly messages: T[] = [];
  status: StatusObject | undefined;
  readonly #call: ClientReadableStream<T>;
  readonly #wake = new Set<() => void>();
  #cursor = 0;

  constructor(call: ClientReadableStream<T>) {
    this.#call = call;
    call.on('data', (m: T) => {
      this.messages.push(m);
      this.#notify();
    });
    call.on('error', () => undefined);
    call.on('status', (st: StatusObject) => {
      this.status = st;
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of [...this.#wake]) w();
    this.#wake.clear();
  }

  #changed(): Promise<void> {
    return new Promise((r) => this.#wake.add(r));
  }

  /** The next message not read yet that satisfies `pred`; rejects when the stream ends first. */
  next(what: string, pred: (m: T) => boolean = () => true): Promise<T> {
    return within(
      what,
      (async () => {
        for (;;) {
          while (this.#cursor < this.messages.length) {
            const m = this.messages[this.#cursor++]!;
            if (pred(m)) return m;
          }
          if (this.status)
            throw new Error(`the stream ended (${this.status.code} ${this.status.details}) before ${what}`);
          await this.#changed();
        }
      })(),
    );
  }

  /** The status the stream ends with. */
  ended(what: string): Promise<StatusObject> {
    return within(
      what,
      (async () => {
        while (!this.status) await this.#changed();
        return this.status;
      })(),
    );
  }

  cancel(): void {
    this.#call.cancel();
  }
}

type StreamMethod = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles';

function watch(c: WorkloadApiClient, method: 'FetchX509SVID'): Watch<X509SVIDResponse__Output>;
function watch(c: WorkloadApiClient, method: 'FetchX509Bundles'): Watch<X509BundlesResponse__Output>;
function watch(c: WorkloadApiClient, method: 'FetchJWTBundles'): Watch<JWTBundlesResponse__Output>;
function watch(c: WorkloadApiClient, method: StreamMethod): Watch<unknown> {
  const md = workloadMetadata(c.grpc);
  const call = c.raw[method]({}, md) as ClientReadableStream<unknown>;
  return new Watch(call);
}

const ids = (m: X509SVIDResponse__Output) => m.svids.map((s) => s.spiffeId);
/** The leaf certificates of a message, which change on every rotation. */
const leaves = (m: X509SVIDResponse__Output) => m.svids.map((s) => s.x509Svid.toString('base64')).join(',');
const jwks = (m: JWTBundlesResponse__Output) => m.bundles[TD]?.toString('utf8') ?? '';
const jwtKeyCount = (m: JWTBundlesResponse__Output) => (JSON.parse(jwks(m)) as { keys: unknown[] }).keys.length;

/** Checks that every SVID of a message is complete: certificates, key, the own bundle. */
function assertFullState(m: X509SVIDResponse__Output, expectIds: readonly string[]): void {
  assert.deepEqual(ids(m), expectIds);
  for (const s of m.svids) {
    assert.ok(s.x509Svid.length > 0, `${s.spiffeId}: certificates`);
    assert.ok(s.x509SvidKey.length > 0, `${s.spiffeId}: key`);
    assert.ok(s.bundle.length > 0, `${s.spiffeId}: bundle`);
  }
}

/** A gRPC status by name. */
async function statusCode(name: string): Promise<number> {
  const { status } = await import('@grpc/grpc-js');
  return (status as unknown as Record<string, number>)[name]!;
}

/** Waits until the wall clock is in a later second than `seconds`, so the next entry is strictly younger. */
async function afterSecond(seconds: number): Promise<void> {
  await until('the next second', () => Math.floor(Date.now() / 1000) > seconds);
}

/** Creates an entry parented to the agent; resolves with its ID and creation second. */
async function createEntry(
  mesh: WorkloadMesh,
  spiffeId: string,
  selectors: readonly string[],
): Promise<{ id: string; createdAt: number }> {
  const args = ['entry', 'create', '--spiffe-id', spiffeId, '--parent-id', mesh.agentId, '--json'];
  for (const s of selectors) args.push('--selector', s);
  const r = await mesh.admin(...args);
  assert.equal(r.code, 0, r.err);
  const e = JSON.parse(r.out) as { id: string; createdAt: number };
  return { id: e.id, createdAt: Number(e.createdAt) };
}

/** The CA's signing keys, from `svidkit ca status --json`. */
async function caKeys(mesh: WorkloadMesh): Promise<{ id: string; kind: string; state: string; tainted: boolean }[]> {
  const r = await mesh.admin('ca', 'status', '--json');
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { keys: { id: string; kind: string; state: string; tainted: boolean }[] }).keys;
}

async function admin(mesh: WorkloadMesh, ...args: string[]): Promise<void> {
  const r = await mesh.admin(...args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
}

/** A caller process run as `as` (root only), printing one JSON line per event. */
class ChildCaller {
  readonly lines: Record<string, unknown>[] = [];
  readonly #child: ChildProcess;
  readonly #wake = new Set<() => void>();
  #exited = false;
  /** Its stdout closed: it and every process it passed stdout on to have exited. */
  #closed = false;
  stderr = '';

  constructor(args: string[], as?: number) {
    this.#child = spawn(process.execPath, [callerScript, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(as === undefined ? {} : { uid: as, gid: as }),
    });
    createInterface({ input: this.#child.stdout! })
      .on('line', (l) => {
        try {
          this.lines.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          this.lines.push({ raw: l });
        }
        this.#notify();
      })
      .on('close', () => {
        this.#closed = true;
        this.#notify();
      });
    this.#child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.#child.on('exit', () => {
      this.#exited = true;
      this.#notify();
    });
  }

  #notify(): void {
    for (const w of [...this.#wake]) w();
    this.#wake.clear();
  }

  /** The first line that satisfies `pred`; rejects when its stdout closes without one. */
  line(what: string, pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    return within(
      what,
      (async () => {
        for (;;) {
          const found = this.lines.find(pred);
          if (found) return found;
          if (this.#closed)
            throw new Error(`the caller exited before ${what}: ${JSON.stringify(this.lines)} ${this.stderr}`);
          await new Promise<void>((r) => this.#wake.add(r));
        }
      })(),
    );
  }

  /** Resolves when the process has exited and been reaped. */
  exited(): Promise<void> {
    return within(
      'the caller to exit',
      (async () => {
        while (!this.#exited) await new Promise<void>((r) => this.#wake.add(r));
      })(),
    );
  }

  /** Ends it (closing its stdin) and waits for it. */
  async stop(): Promise<void> {
    if (!this.#exited) this.#child.stdin!.end();
    await this.exited();
  }
}

/** A connection to the socket that speaks no HTTP/2: 'accepted' when the agent's SETTINGS arrive, 'closed' when it is shut. */
function rawConnection(socket: string): { sock: Socket; outcome: Promise<'accepted' | 'closed'> } {
  const sock = netConnect({ path: socket });
  const outcome = new Promise<'accepted' | 'closed'>((resolve) => {
    sock.once('data', () => resolve('accepted'));
    sock.once('close', () => resolve('closed'));
    sock.once('error', () => undefined);
  });
  return { sock, outcome: within('the agent to accept or close a connection', outcome) };
}

// -------------------------------------------------------------------------------------------------
// A parser of the scrape (the strict one lives in metrics-scrape.test.ts; here the values matter).
// -------------------------------------------------------------------------------------------------

interface Sample {
  labels: Record<string, string>;
  value: number;
}

async function scrape(mesh: WorkloadMesh): Promise<Map<string, { help: string; type: string; samples: Sample[] }>> {
  const res = await fetch(`http://127.0.0.1:${mesh.agent.observabilityPort}/metrics`);
  assert.equal(res.status, 200);
  const out = new Map<string, { help: string; type: string; samples: Sample[] }>();
  for (const line of (await res.text()).split('\n')) {
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      out.set(m[1]!, { help: m[2]!, type: '', samples: [] });
      continue;
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      out.get(m[1]!)!.type = m[2]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const p of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]!] = p[2]!;
    out.get(m[1]!)?.samples.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of one series, 0 when absent. */
function valueOf(
  families: Map<string, { samples: Sample[] }>,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  return families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** Open streams of every RPC, from the agent's gauge. */
async function openStreams(mesh: WorkloadMesh): Promise<number> {
  const f = (await scrape(mesh)).get('svidkit_agent_workload_api_streams');
  return (f?.samples ?? []).reduce((n, s) => n + s.value, 0);
}

// =================================================================================================

describe('the agent’s Workload API server, through a real agent', function () {
  this.timeout(180_000);

  describe('streams send the full state again on every change', () => {
    let mesh: WorkloadMesh;
    let client: WorkloadApiClient;
    const first = `${TD}/api/first`;
    const second = `${TD}/api/second`;
    let firstEntry: { id: string; createdAt: number };
    let secondEntry: { id: string; createdAt: number } | undefined;
    let x509: Watch<X509SVIDResponse__Output>;

    before(async () => {
      // 30 s is the shortest X.509-SVID lifetime the CA allows; the agent counts the lifetime from when it
      // received the SVID, so the smallest fraction, 0.1, renews each SVID 3 s after it arrived.
      mesh = await startWorkloadMesh({
        ca: { x509_svid_ttl: '30s' },
        agent: { rotation: { fraction: 0.1, jitter: 0 }, entry_sync_interval: '1s' },
      });
      firstEntry = await createEntry(mesh, first, [`unix:uid:${uid}`]);
      client = await WorkloadApiClient.connect({ address: mesh.endpoint, timeoutMs: 60_000 });
      x509 = watch(client, 'FetchX509SVID');
    });
    after(async () => {
      x509?.cancel();
      client?.close();
      await mesh?.close();
    });

    it('FetchX509SVID sends the full state again when the SVID rotates', async () => {
      const m1 = await x509.next('the first message');
      assertFullState(m1, [first]);
      const m2 = await x509.next('a rotation', (m) => leaves(m) !== leaves(m1));
      assertFullState(m2, [first]);
    });

    it('FetchX509SVID sends both SVIDs when a second entry matches the caller, the oldest entry first', async () => {
      // Entries are ordered by their creation second: the second entry must be strictly younger.
      await afterSecond(firstEntry.createdAt);
      secondEntry = await createEntry(mesh, second, [`unix:uid:${uid}`]);
      assert.ok(secondEntry.createdAt > firstEntry.createdAt);
      const both = await x509.next('a message with the second entry', (m) => ids(m).includes(second));
      assertFullState(both, [first, second]);
      // Every later message is the full state too: a rotation of one still carries both.
      const next = await x509.next('the next rotation', (m) => leaves(m) !== leaves(both));
      assertFullState(next, [first, second]);
    });

    it('FetchX509Bundles and FetchJWTBundles send again when the CA rotates its keys', async () => {
      const x509Bundles = watch(client, 'FetchX509Bundles');
      const jwtBundles = watch(client, 'FetchJWTBundles');
      try {
        const xb1 = await x509Bundles.next('the first X.509 bundles');
        const jb1 = await jwtBundles.next('the first JWT bundles');
        const der1 = xb1.bundles[TD]!;
        assert.ok(der1.length > 0);
        assert.ok(jwtKeyCount(jb1) >= 1);

        await admin(mesh, 'ca', 'rotate', '--kind', 'jwt');
        const jb2 = await jwtBundles.next('the JWT bundles after a JWT key rotation', (m) => jwks(m) !== jwks(jb1));
        assert.equal(jwtKeyCount(jb2), jwtKeyCount(jb1) + 1, 'the new key is added, the old one kept');

        await admin(mesh, 'ca', 'rotate', '--kind', 'x509');
        const xb2 = await x509Bundles.next(
          'the X.509 bundles after a CA rotation',
          (m) => !m.bundles[TD]!.equals(der1),
        );
        assert.ok(xb2.bundles[TD]!.length > der1.length, 'the new root is added, the old one kept');
        // The SVID stream carries the bundle too.
        const svids = await x509.next('FetchX509SVID with the new bundle', (m) =>
          m.svids[0]!.bundle.equals(xb2.bundles[TD]!),
        );
        assertFullState(svids, [first, second]);
      } finally {
        x509Bundles.cancel();
        jwtBundles.cancel();
      }
    });

    it('a client that never reads does not hold up the others, and gets only the latest state when it does', async () => {
      // The stalled client opens FetchJWTBundles over raw HTTP/2 with a flow-control window of 0: the agent
      // cannot send it a byte, so whatever it writes stays in the agent until the client opens the window.
      const stalled = await StalledStream.open(mesh.socket, '/SpiffeWorkloadAPI/FetchJWTBundles');
      const reader = watch(client, 'FetchJWTBundles');
      try {
        let latest = await reader.next('the reading client’s first JWT bundles');
        await stalled.opened;
        const CYCLES = 25;
        let changes = 0;
        for (let i = 0; i < CYCLES; i++) {
          // A rotation adds a JWT key, a taint of an old one removes it: two changes, the key count stays
          // under the CA's limit whatever the number of cycles.
          await admin(mesh, 'ca', 'rotate', '--kind', 'jwt');
          const before = jwks(latest);
          latest = await reader.next(`JWT bundles after rotation ${i}`, (m) => jwks(m) !== before);
          changes++;
          const old = (await caKeys(mesh)).find((k) => k.kind === 'jwt' && k.state === 'old' && !k.tainted)!;
          // A key ID may begin with '-': after '--' it is not read as an option.
          const t = await runCli(['ca', 'taint', '--socket', mesh.ca.adminSocket, '--', old.id]);
          assert.equal(t.code, 0, t.err);
          const beforeTaint = jwks(latest);
          latest = await reader.next(`JWT bundles after taint ${i}`, (m) => jwks(m) !== beforeTaint);
          changes++;
        }
        // The reading client saw every one of the changes while the other stream was stuck.
        assert.ok(reader.messages.length > changes, `${reader.messages.length} messages for ${changes} changes`);
        // The agent keeps serving: an SVID rotation still reaches the reading SVID stream.
        const now = x509.messages.at(-1)!;
        await x509.next('an SVID rotation after the stall', (m) => leaves(m) !== leaves(now));

        // Now the stalled client reads: what the agent kept for it is bounded, and it ends at the latest state.
        const want = jwks(latest);
        // The JWKS document travels verbatim inside the message (a bytes field of the bundles map).
        const got = await stalled.readUntil((msg) => msg.includes(Buffer.from(want)));
        assert.ok(
          got < changes,
          `the stalled client got ${got} messages for ${changes} changes: the agent queued every state for it`,
        );
      } finally {
        reader.cancel();
        stalled.close();
      }
    });

    it('the pid-reuse race: a connection handed to a child of another uid after the parent exits is refused (as root)', async function () {
      if (!isRoot) this.skip(); // only root can run the child as another uid
      // The parent (uid 0, which has the entries above) connects, waits until the agent holds its kernel
      // credentials, gives the connection to a child running as OTHER_UID and exits. Once the parent is
      // reaped (by this process) the child asks for an X.509-SVID on the inherited connection.
      const parent = new ChildCaller(['race-parent', mesh.socket, String(OTHER_UID)]);
      await parent.line('the parent handing over its connection', (l) => 'parent' in l);
      const answer = await parent.line('the child’s answer', (l) => 'grpcStatus' in l || 'sessionError' in l);
      assert.equal(answer['sessionError'], undefined, JSON.stringify(answer));
      // The pidfd (or, without one, /proc) says the process that connected is gone: UNAUTHENTICATED, as
      // lib/agent/caller answers a caller that changed, and never the parent's SVID.
      assert.equal(answer['grpcStatus'], await statusCode('UNAUTHENTICATED'), JSON.stringify(answer));
      assert.deepEqual(answer['ids'], []);
      const families = await scrape(mesh);
      assert.ok(
        (valueOf(families, 'svidkit_agent_workload_api_attestation_failures_total', { reason: 'attest_failed' }) ?? 0) +
          (valueOf(families, 'svidkit_agent_workload_api_attestation_failures_total', { reason: 'caller_changed' }) ??
            0) >=
          1,
      );
    });

    it('the open stream ends with PERMISSION_DENIED when the caller’s last entry is deleted', async () => {
      assert.ok(secondEntry, 'the second entry exists (created by an earlier case)');
      await admin(mesh, 'entry', 'delete', secondEntry.id);
      const one = await x509.next('a message without the deleted entry', (m) => !ids(m).includes(second));
      assertFullState(one, [first]);
      await admin(mesh, 'entry', 'delete', firstEntry.id);
      const end = await x509.ended('the stream to end');
      assert.equal(end.code, await statusCode('PERMISSION_DENIED'), end.details);
    });
  });

  describe('at most workload_api.max_streams_per_caller streams per uid', () => {
    let mesh: WorkloadMesh;
    let client: WorkloadApiClient;

    before(async () => {
      mesh = await startWorkloadMesh({ workloadApi: { max_streams_per_caller: 2 } });
      await createEntry(mesh, `${TD}/api/bounded`, [`unix:uid:${uid}`]);
      if (isRoot) await createEntry(mesh, `${TD}/api/other`, [`unix:uid:${OTHER_UID}`]);
      client = await WorkloadApiClient.connect({ address: mesh.endpoint, timeoutMs: 60_000 });
    });
    after(async () => {
      client?.close();
      await mesh?.close();
    });

    it('the stream beyond the bound is RESOURCE_EXHAUSTED, and a freed slot is usable again', async () => {
      const a = watch(client, 'FetchX509SVID');
      const b = watch(client, 'FetchJWTBundles');
      const open: Watch<unknown>[] = [a, b];
      try {
        await a.next('the first stream');
        await b.next('the second stream');
        const c = watch(client, 'FetchX509Bundles');
        const st = await c.ended('the third stream to be refused');
        assert.equal(st.code, await statusCode('RESOURCE_EXHAUSTED'), st.details);
        assert.match(st.details, /at most 2 open streams per caller/);

        // Free one slot; the agent releases it when it sees the cancel, so ask until a stream is admitted.
        a.cancel();
        const exhausted = await statusCode('RESOURCE_EXHAUSTED');
        let admitted: Watch<X509SVIDResponse__Output> | undefined;
        await until('a stream admitted into the freed slot', async () => {
          const w = watch(client, 'FetchX509SVID');
          // The first message, or the end of the stream (next() rejects then): whichever comes.
          const served = await w.next('a message').then(
            () => true,
            () => false,
          );
          if (served) {
            admitted = w;
            return true;
          }
          assert.equal(w.status?.code, exhausted, w.status?.details);
          return false;
        });
        open.push(admitted!);
        assertFullState(admitted!.messages[0]!, [`${TD}/api/bounded`]);
        // And the bound still holds with the slot taken again.
        const d = watch(client, 'FetchX509Bundles');
        assert.equal((await d.ended('a stream over the bound')).code, exhausted);
        const families = await scrape(mesh);
        assert.ok(
          (valueOf(families, 'svidkit_agent_workload_api_attestation_failures_total', {
            reason: 'resource_exhausted',
          }) ?? 0) >= 2,
        );
      } finally {
        for (const w of open) w.cancel();
      }
    });

    it('another uid gets its own streams while this uid is at its bound (as root)', async function () {
      if (!isRoot) this.skip(); // only root can run a caller as another uid
      // The streams of the case before are released when the agent sees them cancelled.
      await until('no stream open', async () => (await openStreams(mesh)) === 0);
      const a = watch(client, 'FetchX509SVID');
      const b = watch(client, 'FetchJWTBundles');
      const other = new ChildCaller(['stream', mesh.endpoint, 'FetchX509SVID'], OTHER_UID);
      try {
        await a.next('the first stream');
        await b.next('the second stream');
        const c = watch(client, 'FetchX509Bundles');
        assert.equal((await c.ended('a third stream of this uid')).code, await statusCode('RESOURCE_EXHAUSTED'));
        const got = await other.line('the other uid’s SVID', (l) => 'ids' in l || 'status' in l);
        assert.deepEqual(got, { ids: [`${TD}/api/other`] }, other.stderr);
      } finally {
        a.cancel();
        b.cancel();
        await other.stop();
      }
    });
  });

  describe('at most workload_api.max_connections connections', () => {
    let mesh: WorkloadMesh;

    before(async () => {
      mesh = await startWorkloadMesh({ workloadApi: { max_connections: 2 } });
      await createEntry(mesh, `${TD}/api/connected`, [`unix:uid:${uid}`]);
    });
    after(async () => {
      await mesh?.close();
    });

    it('the connection beyond the bound is closed, the others are served, a freed one is usable again', async () => {
      const client = await WorkloadApiClient.connect({ address: mesh.endpoint, timeoutMs: 60_000 });
      const raw: Socket[] = [];
      try {
        assert.equal((await client.fetchX509Context()).svids[0]!.svid.id.toString(), `${TD}/api/connected`);
        const second = rawConnection(mesh.socket);
        raw.push(second.sock);
        assert.equal(await second.outcome, 'accepted');
        const third = rawConnection(mesh.socket);
        raw.push(third.sock);
        assert.equal(await third.outcome, 'closed', 'the third connection is closed without a byte');
        // The connections inside the bound are still served.
        assert.equal((await client.fetchX509Context()).svids[0]!.svid.id.toString(), `${TD}/api/connected`);
        // Free one; the agent sees the close on its own time, so connect until one is accepted.
        second.sock.destroy();
        await until('a connection accepted into the freed slot', async () => {
          const next = rawConnection(mesh.socket);
          raw.push(next.sock);
          return (await next.outcome) === 'accepted';
        });
        const families = await scrape(mesh);
        assert.ok(
          (valueOf(families, 'svidkit_agent_workload_api_attestation_failures_total', {
            reason: 'too_many_connections',
          }) ?? 0) >= 1,
        );
        assert.equal(valueOf(families, 'svidkit_agent_workload_api_connections', {}), 2);
      } finally {
        for (const s of raw) s.destroy();
        client.close();
      }
    });
  });

  describe('metrics and status', () => {
    let mesh: WorkloadMesh;
    let client: WorkloadApiClient;
    const workloadId = `${TD}/api/observed`;

    before(async () => {
      mesh = await startWorkloadMesh();
      client = await WorkloadApiClient.connect({ address: mesh.endpoint, timeoutMs: 60_000 });
    });
    after(async () => {
      client?.close();
      await mesh?.close();
    });

    it('/metrics shows open streams by RPC, refusals by reason and SVIDs served by kind, with no caller data', async () => {
      const families0 = await scrape(mesh);
      for (const rpc of ['FetchX509SVID', 'FetchX509Bundles', 'FetchJWTBundles']) {
        assert.equal(valueOf(families0, 'svidkit_agent_workload_api_streams', { rpc }), 0, rpc);
      }
      // A caller with no entry yet: PERMISSION_DENIED, counted as no_identity.
      await assert.rejects(client.fetchX509Context(), { code: 'ERR_WORKLOADAPI_PERMISSION_DENIED' });
      await createEntry(mesh, workloadId, [`unix:uid:${uid}`]);
      const x509 = watch(client, 'FetchX509SVID');
      const jwt = watch(client, 'FetchJWTBundles');
      try {
        assertFullState(await x509.next('the SVID'), [workloadId]);
        await jwt.next('the JWT bundles');
        assert.equal((await client.fetchJwtSvids({ audience: 'db' })).length, 1);
        // A JWT-SVID of an identity the caller does not have: no_identity again.
        await assert.rejects(client.fetchJwtSvids({ audience: 'db', spiffeId: `${TD}/not-mine` }), {
          code: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
        });
        // No security header: no_header.
        const noHeader = await new Promise<number | undefined>((resolve) =>
          client.raw.FetchJWTSVID({ audience: ['db'] }, new client.grpc.Metadata(), (err) => resolve(err?.code)),
        );
        assert.equal(noHeader, await statusCode('INVALID_ARGUMENT'));

        const families = await scrape(mesh);
        assert.deepEqual(
          ['streams', 'connections', 'attestation_failures_total', 'svids_served_total'].map((n) => {
            const f = families.get(`svidkit_agent_workload_api_${n}`);
            return [n, f?.type, f?.help];
          }),
          [
            ['streams', 'gauge', 'open Workload API streams, by RPC'],
            ['connections', 'gauge', 'open Workload API connections'],
            ['attestation_failures_total', 'counter', 'Workload API connections and calls refused, by reason'],
            ['svids_served_total', 'counter', 'SVIDs sent to Workload API callers, by kind'],
          ],
        );
        const streams = families.get('svidkit_agent_workload_api_streams')!.samples;
        assert.deepEqual(Object.fromEntries(streams.map((s) => [s.labels['rpc'], s.value])), {
          FetchX509SVID: 1,
          FetchX509Bundles: 0,
          FetchJWTBundles: 1,
        });
        const failures = families.get('svidkit_agent_workload_api_attestation_failures_total')!.samples;
        assert.deepEqual(Object.fromEntries(failures.map((s) => [s.labels['reason'], s.value])), {
          too_many_connections: 0,
          no_credentials: 0,
          no_header: 1,
          unknown_connection: 0,
          attest_failed: 0,
          caller_changed: 0,
          no_identity: 2,
          resource_exhausted: 0,
        });
        assert.equal(valueOf(families, 'svidkit_agent_workload_api_svids_served_total', { kind: 'jwt' }), 1);
        assert.ok((valueOf(families, 'svidkit_agent_workload_api_svids_served_total', { kind: 'x509' }) ?? 0) >= 1);
        assert.equal(valueOf(families, 'svidkit_agent_workload_api_connections', {}), 1);
        // Labels come from closed sets: no SPIFFE ID, uid, pid or path of any caller anywhere.
        for (const [name, f] of families) {
          if (!name.startsWith('svidkit_agent_workload_api_')) continue;
          for (const s of f.samples) {
            for (const [k, v] of Object.entries(s.labels)) {
              assert.ok(['rpc', 'reason', 'kind'].includes(k), `${name}: label ${k}`);
              assert.match(v, /^[A-Za-z0-9_]+$/, `${name}: ${k}="${v}"`);
              assert.doesNotMatch(v, /^\d+$/, `${name}: ${k}="${v}"`);
            }
          }
        }

        // Streams leave the gauge when they end.
        x509.cancel();
        jwt.cancel();
        await until('the streams gauge back to 0', async () => {
          const f = await scrape(mesh);
          return ['FetchX509SVID', 'FetchJWTBundles'].every(
            (rpc) => valueOf(f, 'svidkit_agent_workload_api_streams', { rpc }) === 0,
          );
        });
      } finally {
        x509.cancel();
        jwt.cancel();
      }
    });

    it('`svidkit-agent status` lists the Workload API entries from the agent’s data dir', async () => {
      const statusFile = join(mesh.dir, 'agent', 'status.json');
      await until('the entry in status.json', async () => {
        try {
          const doc = JSON.parse(await readFile(statusFile, 'utf8')) as {
            workload_api_entries?: { spiffeId: string; rotations: number }[];
          };
          return doc.workload_api_entries?.some((e) => e.spiffeId === workloadId && e.rotations > 0) ?? false;
        } catch {
          return false;
        }
      });
      const cfgFile = join(mesh.dir, 'status-agent.yaml');
      await writeFile(
        cfgFile,
        [
          'trust_domain: example.org',
          `data_dir: ${join(mesh.dir, 'agent')}`,
          `ca: { address: "127.0.0.1:1", bundle_file: ${join(mesh.dir, 'bundle.pem')} }`,
          `attestation: { join_token_file: ${join(mesh.dir, 'unused.token')} }`,
          '',
        ].join('\n'),
      );
      const run = (...args: string[]) =>
        new Promise<string>((resolve, reject) =>
          execFile(
            process.execPath,
            [agentBin, ...args, '--config', cfgFile],
            { timeout: 60_000 },
            (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${String(errOut)}`)) : resolve(String(out))),
          ),
        );
      const text = await run('status');
      const lines = text.split('\n');
      const at = lines.indexOf('Workload API entries:');
      assert.ok(at > 0, text);
      assert.match(lines[at + 1]!, /^SPIFFE ID\s+SELECTORS\s+EXPIRES\s+NEXT ROTATION\s+ROTATIONS\s+LAST ERROR$/);
      const row = lines[at + 2]!;
      assert.match(
        row,
        new RegExp(
          `^${workloadId.replaceAll('.', '\\.')}\\s+unix:uid:${uid}\\s+\\d{4}-\\d{2}-\\d{2}T\\S+Z\\s+\\d{4}-\\d{2}-\\d{2}T\\S+Z\\s+[1-9]\\d*$`,
        ),
        text,
      );
      // The file workloads' table comes first, as before (this agent has none).
      assert.match(lines[0]!, /^agent: spiffe:\/\/example\.org\/svidkit\/agent\/join_token\/\S+\s+\(as of /);
      assert.match(lines[1]!, /^SPIFFE ID\s+EXPIRES\s+NEXT ROTATION\s+ROTATIONS\s+LAST ERROR$/);
      const json = JSON.parse(await run('status', '--json')) as {
        workload_api_entries: { spiffeId: string; selectors: string[] }[];
      };
      assert.deepEqual(
        json.workload_api_entries.map((e) => [e.spiffeId, e.selectors]),
        [[workloadId, [`unix:uid:${uid}`]]],
      );
    });
  });
});

/**
 * A FetchX509SVID-style server stream opened over raw HTTP/2 with a stream flow-control window of 0, so
 * that the agent can send no data until readUntil() opens the window.
 */
class StalledStream {
  readonly opened: Promise<void>;
  readonly #session: ClientHttp2Session;
  readonly #req: ReturnType<ClientHttp2Session['request']>;

  private constructor(socket: string, path: string) {
    this.#session = http2Connect('http://localhost', {
      createConnection: () => netConnect({ path: socket }),
      settings: { initialWindowSize: 0 },
    });
    this.#session.on('error', () => undefined);
    this.#req = this.#session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      [WORKLOAD_API_HEADER]: WORKLOAD_API_HEADER_VALUE,
    });
    this.#req.on('error', () => undefined);
    this.#req.end(Buffer.alloc(5));
    // The response headers are not flow-controlled: they say the agent has admitted the stream.
    this.opened = within(
      'the stalled stream to be admitted',
      new Promise((resolve, reject) => {
        this.#req.once('response', (h) =>
          h['grpc-status'] === undefined ? resolve() : reject(new Error(`refused: ${String(h['grpc-message'])}`)),
        );
      }),
    );
  }

  static async open(socket: string, path: string): Promise<StalledStream> {
    return new StalledStream(socket, path);
  }

  /** Opens the window and reads gRPC messages until one satisfies `done`; resolves with how many were read. */
  readUntil(done: (message: Buffer) => boolean): Promise<number> {
    return within(
      'the stalled client to reach the latest state',
      new Promise<number>((resolve, reject) => {
        let buf = Buffer.alloc(0);
        let count = 0;
        this.#req.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
            const len = buf.readUInt32BE(1);
            const msg = buf.subarray(5, 5 + len);
            buf = buf.subarray(5 + len);
            count++;
            if (done(msg)) resolve(count);
          }
        });
        this.#req.on('close', () => reject(new Error(`the stalled stream closed after ${count} messages`)));
        this.#session.settings({ initialWindowSize: 1 << 20 });
      }),
    );
  }

  close(): void {
    this.#req.close();
    this.#session.destroy();
  }
}
