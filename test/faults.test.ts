/**
 * Fault injection with real daemons: svidkit-ca as a child process killed with SIGKILL in the middle
 * of a batch and started again, a corrupt and a locked datastore, an output directory that cannot be
 * written, the CA's clock five minutes off the agent's, and a forced CA root rotation under
 * continuous mTLS load between two library services that read a real agent's files. Everything runs
 * on loopback in temporary directories; waits are on events or conditions, and their limits only
 * guard against a hang.
 *
 * Covered elsewhere and not repeated: a store file killed mid-write, corrupt or locked at the library
 * level (test/store.test.ts), a full output dir (ENOSPC) with previous files intact and recovery
 * (test/agent-daemon.test.ts "keeps the previous files when the output dir fails (ENOSPC)"), a graceful
 * CA outage (test/agent-daemon.test.ts "survives a CA outage"), and SVID rotations under https load
 * without a CA (test/tls-load.test.ts).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import { type AddressInfo, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { parseAgentConfig } from '../lib/agent/config.js';
import { type RunningAgent, runAgent } from '../lib/agent/daemon.js';
import { IDENTITY_FILE } from '../lib/agent/state.js';
import type { WriterFs } from '../lib/agent/writer.js';
import { readWorkloadFiles } from '../lib/agent/writer-read.js';
import { authorizeId } from '../lib/authorize/index.js';
import { BundleSet, SpiffeBundle, X509Bundle } from '../lib/bundle/index.js';
import { AdminClient } from '../lib/ca-api/admin-client.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run } from '../lib/ca/daemon.js';
import type { BatchNewX509SvidResponse__Output } from '../lib/generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
import { caProto } from '../lib/ca-api/proto.js';
import { JwtValidator } from '../lib/jwtauth/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { FileSource, StaticSource } from '../lib/source/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { SqliteStore } from '../lib/store/index.js';
import { createMtlsHttpsServer, mtlsHttpsAgent, peerSpiffeId } from '../lib/tls/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { verify, X509Svid } from '../lib/x509svid/index.js';
import { faultyFs, snapshot, tempDir } from './helpers/agent-fs.js';
import { captureLog, type LogCapture } from './helpers/ca-context.js';
import type { NodeClient } from '../lib/ca-api/index.js';

const TD = TrustDomain.parse('example.org');
const CA_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit-ca.js');
const MIN = 60_000;

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 45_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A logger that keeps its lines in memory (SVIDKIT_TEST_LOGS=1 sends them to stderr as well). */
function memoryLogger(name: string, capture: LogCapture = captureLog()) {
  const destination = process.env['SVIDKIT_TEST_LOGS']
    ? {
        write(s: string) {
          capture.write(s);
          process.stderr.write(s);
        },
      }
    : capture;
  return { capture, logger: createLogger({ name, level: 'debug', destination }) };
}

/** A value of a Prometheus series in a /metrics text, or undefined. */
function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** svidkit-ca as a child process; its JSON log lines are kept. */
class CaProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(configFile: string) {
    this.child = spawn(process.execPath, [CA_BIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves with the "svidkit-ca ready" line; rejects if the process exits first. */
  async ready(): Promise<Record<string, unknown>> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    await until('svidkit-ca ready', () => {
      if (exited) throw new Error(`svidkit-ca exited before it was ready: ${this.stderr}`);
      return this.lines.some((l) => l.includes('"svidkit-ca ready"'));
    });
    return JSON.parse(this.lines.find((l) => l.includes('"svidkit-ca ready"'))!) as Record<string, unknown>;
  }

  /** How many x509svid_issued audit lines name `spiffeId`. */
  issuedFor(spiffeId: string): number {
    const needle = `"spiffe_id":"${spiffeId}"`;
    return this.lines.filter((l) => l.includes('"event":"x509svid_issued"') && l.includes(needle)).length;
  }

  /** Ends the process with SIGTERM (if it still runs) and waits for it. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** Writes an agent configuration for `workloads` and starts the agent with its logs in memory. */
async function startAgent(options: {
  dir: string;
  caPort: number;
  token: string;
  workloads: Record<string, unknown>[];
  writerFs?: WriterFs;
  logs?: LogCapture;
  fraction?: number;
}): Promise<RunningAgent> {
  const config = parseAgentConfig(
    {
      trust_domain: TD.name,
      data_dir: join(options.dir, 'agent'),
      ca: { address: `127.0.0.1:${options.caPort}`, bundle_file: join(options.dir, 'bundle.pem') },
      attestation: { join_token: options.token },
      observability: { port: 0 },
      backoff: { min: '100ms', max: '1s' },
      entry_sync_interval: '1s',
      rotation: { fraction: options.fraction ?? 0.5, jitter: 0.1 },
      workloads: options.workloads,
    },
    options.dir,
  );
  return runAgent(config, {
    logger: memoryLogger('svidkit-agent', options.logs).logger,
    writerFs: options.writerFs,
    statusIntervalMs: 200,
  });
}

/** An in-process CA on loopback with its logs in memory. */
async function startCa(dir: string, options: { clock?: () => Date; config?: Record<string, unknown> } = {}) {
  const logs = captureLog();
  const ca = await run(
    parseCaConfig(
      {
        trust_domain: TD.name,
        data_dir: join(dir, 'ca'),
        listen: { port: 0 },
        observability: { port: 0 },
        ...options.config,
      },
      dir,
    ),
    { logger: memoryLogger('svidkit-ca', logs).logger, clock: options.clock },
  );
  await writeFile(join(dir, 'bundle.pem'), ca.context.keys.bundle().x509.toPem());
  return { ca, logs, admin: new AdminClient(ca.adminSocket) };
}

describe('faults', function () {
  this.timeout(90_000);
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  describe('svidkit-ca killed with SIGKILL during a batch, then started again', () => {
    it('loses and duplicates no state, keeps issued SVIDs valid, and the agent recovers by itself', async () => {
      const dir = await tempDir('svidkit-kill-');
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const port = await freePort();
      const configFile = join(dir, 'ca.yaml');
      // An RSA-3072 root makes each signature take milliseconds, so a batch of 100 is a wide target.
      await writeFile(
        configFile,
        [
          'trust_domain: example.org',
          `data_dir: ${join(dir, 'ca')}`,
          `listen: { address: 127.0.0.1, port: ${port} }`,
          'observability: { port: 0 }',
          'ca: { key_type: rsa-3072 }',
          'limits: { max_batch: 100 }',
          '',
        ].join('\n'),
      );
      let ca = new CaProcess(configFile);
      cleanups.push(() => ca.stop());
      await ca.ready();
      const admin = new AdminClient(join(dir, 'ca', 'admin.sock'));
      cleanups.push(() => admin.close());
      const bundleOf = async () => SpiffeBundle.parse(TD, (await admin.caStatus()).bundle!.spiffeBundleJson);
      await writeFile(join(dir, 'bundle.pem'), (await bundleOf()).x509.toPem());

      const token = await admin.createJoinToken(600);
      const workloads = ['w0', 'w1', 'w2'].map((w) => `spiffe://example.org/ns/kill/sa/${w}`);
      for (const id of workloads) {
        await admin.createEntry({ spiffeId: id, parentId: token.agentId, x509SvidTtlSeconds: 30 });
      }
      const LOAD = 'spiffe://example.org/ns/kill/sa/batch';
      const loadEntry = await admin.createEntry({ spiffeId: LOAD, parentId: token.agentId, x509SvidTtlSeconds: 600 });
      // Renewing at a tenth of a 30 s lifetime keeps the agent asking every few seconds.
      const agentLogs = captureLog();
      const agent = await startAgent({
        dir,
        caPort: port,
        token: token.token,
        fraction: 0.1,
        logs: agentLogs,
        workloads: workloads.map((id, i) => ({ spiffe_id: id, output_dir: join(dir, 'out', `w${i}`) })),
      });
      cleanups.push(() => agent.close());
      await until('the agent to be ready', () => agent.agent.ready());

      const keyFiles = async () => {
        const out: Record<string, string> = {};
        for (const f of (await readdir(join(dir, 'ca', 'keys'))).sort()) {
          out[f] = sha256(await readFile(join(dir, 'ca', 'keys', f)));
        }
        return out;
      };
      const state = async () => ({
        entries: (await admin.listEntries()).sort((a, b) => a.id.localeCompare(b.id)),
        agents: await admin.listAgents(),
        keys: (await admin.caStatus()).keys,
        bundle: (await bundleOf()).marshal(),
        keyFiles: await keyFiles(),
      });
      const before = await state();

      // Batches of 100 CSRs, sent with the agent's own SVID as the agent does.
      const identity = JSON.parse(await readFile(join(dir, 'agent', IDENTITY_FILE), 'utf8')) as {
        certificates: string;
        key: string;
      };
      const client = new (caProto().svidkit.ca.v1.Node)(
        `localhost:${port}`,
        credentials.createSsl(
          Buffer.from((await bundleOf()).x509.toPem()),
          Buffer.from(identity.key),
          Buffer.from(identity.certificates),
        ),
      ) as unknown as NodeClient;
      cleanups.push(() => client.close());
      const batch = () => {
        const params = Array.from({ length: 100 }, () => ({
          entryId: loadEntry.id,
          csr: buildCsr({ key: generateKeyPair().privateKey }),
        }));
        return new Promise<BatchNewX509SvidResponse__Output>((resolve, reject) =>
          client.BatchNewX509Svid({ params }, (err, res) => (err ? reject(err) : resolve(res!))),
        );
      };
      const issuedBefore: Certificate[][] = [];
      for (let i = 0; i < 2; i++) {
        const res = await batch();
        assert.ok(res.results.every((r) => r.statusCode === 0));
        for (const r of res.results) issuedBefore.push(r.svid!.certChain.map((d) => Certificate.fromDer(d as Buffer)));
      }

      // The third batch: kill the CA as soon as it has signed the first of its 100 certificates.
      const inflight = batch().then(
        () => 'answered',
        (err: ServiceError) => err,
      );
      await until('the CA to be signing the third batch', () => ca.issuedFor(LOAD) > 200);
      ca.child.kill('SIGKILL');
      const killed = await ca.exited;
      assert.equal(killed.signal, 'SIGKILL');
      const outcome = await inflight;
      assert.notEqual(outcome, 'answered', 'the batch was cut off by the kill');
      const signedInBatch = ca.issuedFor(LOAD) - 200;
      assert.ok(signedInBatch >= 1 && signedInBatch < 100, `${signedInBatch} of 100 signed before the kill`);

      // While the CA is gone the agent keeps failing to reach it, and its files stay in place.
      const filesAtKill = await snapshot(join(dir, 'out'));
      const failedSteps = () => agentLogs.all.split('\n').filter((l) => l.includes('CA step failed')).length;
      const failedAtKill = failedSteps();
      await until('the agent to fail a CA step', () => failedSteps() > failedAtKill);
      assert.deepEqual(await snapshot(join(dir, 'out')), filesAtKill);

      ca = new CaProcess(configFile);
      await ca.ready();
      const after = await state();
      assert.deepEqual(after.entries, before.entries, 'the same entries, none lost or doubled');
      assert.deepEqual(after.agents, before.agents, 'the same agents');
      assert.deepEqual(after.keys, before.keys, 'the key journal is unchanged');
      assert.equal(after.bundle, before.bundle, 'the same bundle, same sequence');
      assert.deepEqual(after.keyFiles, before.keyFiles, 'the key files are unchanged');
      const bundles = new BundleSet([SpiffeBundle.parse(TD, after.bundle)]);
      for (const chain of issuedBefore) assert.equal(verify(chain, bundles).id.toString(), LOAD);

      // The agent was never restarted: it comes back to the CA on its own and rotates every workload again.
      const rotationsAtRestart = agent.agent.status().map((w) => w.rotations);
      await until('every workload rotated after the restart', () =>
        agent.agent.status().every((w, i) => w.rotations > rotationsAtRestart[i]!),
      );
      assert.equal(agent.agent.ready(), true);
      const metrics = await (await fetch(`http://127.0.0.1:${agent.observabilityPort}/metrics`)).text();
      assert.equal(metric(metrics, 'svidkit_agent_ca_reachable'), 1);
      for (let i = 0; i < workloads.length; i++) {
        // One consistent read through ..data: the agent keeps rotating these every few seconds.
        const files = await readWorkloadFiles(join(dir, 'out', `w${i}`));
        const svid = X509Svid.parse(files.svidPem, files.keyPem);
        assert.equal(verify(svid.certificates, bundles).id.toString(), workloads[i]);
      }
      process.stdout.write(
        `      (killed after ${signedInBatch} of 100 signatures; the cut-off call failed with ${typeof outcome === 'string' ? outcome : `status ${outcome.code}`})\n`,
      );
    });
  });

  describe('a corrupt or locked datastore', () => {
    let dir: string;
    let configFile: string;
    const store = () => join(dir, 'ca', 'ca.sqlite');
    beforeEach(async () => {
      dir = await tempDir('svidkit-store-fault-');
      configFile = join(dir, 'ca.yaml');
      await mkdir(join(dir, 'ca'), { mode: 0o700 });
      await writeFile(
        configFile,
        `trust_domain: example.org\ndata_dir: ${join(dir, 'ca')}\nlisten: { port: 0 }\nobservability: { port: 0 }\n`,
      );
    });
    afterEach(() => rm(dir, { recursive: true, force: true }));

    const refuses = async (code: string) => {
      const before = sha256(await readFile(store()));
      const ca = new CaProcess(configFile);
      const { code: exitCode } = await ca.exited;
      assert.equal(exitCode, 1, ca.stderr);
      assert.match(ca.stderr, new RegExp(`^error ${code}: store: [^\\n]+\\n$`), 'one clear line on stderr');
      assert.equal(sha256(await readFile(store())), before, 'the datastore is byte for byte unchanged');
      // (A -wal and -shm file may exist: they belong to the process holding the lock.)
      const left = (await readdir(join(dir, 'ca'))).filter((f) => !/^ca\.sqlite(-wal|-shm)?$/.test(f));
      assert.deepEqual(left, [], 'no key directory, no admin socket');
      return ca.stderr.trim();
    };

    it('refuses a corrupt store with ERR_STORE_CORRUPT, exit 1, and leaves the file unchanged', async () => {
      // A valid SQLite header followed by garbage: it looks like a database until its pages are read.
      await writeFile(store(), Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), randomBytes(16_368)]));
      process.stdout.write(`      (${await refuses('ERR_STORE_CORRUPT')})\n`);
      await writeFile(store(), randomBytes(8192));
      await refuses('ERR_STORE_CORRUPT');
    });

    it('refuses a store another process holds locked with ERR_STORE_LOCKED, exit 1, then starts once it is free', async () => {
      const created = await SqliteStore.open(store());
      await created.close();
      const holder = new Database(store(), { fileMustExist: true });
      holder.exec('BEGIN IMMEDIATE');
      try {
        process.stdout.write(`      (${await refuses('ERR_STORE_LOCKED')})\n`);
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      const ca = new CaProcess(configFile);
      await ca.ready();
      await ca.stop();
      assert.equal((await ca.exited).code, 0);
    });
  });

  describe('an output directory that cannot be written', () => {
    it('keeps the previous files byte for byte, reports the error on the workload, and recovers', async function () {
      const dir = await tempDir('svidkit-rofs-');
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const { ca, admin } = await startCa(dir);
      cleanups.push(async () => {
        admin.close();
        await ca.close(200);
      });
      const token = await admin.createJoinToken(600);
      const id = 'spiffe://example.org/ns/ro/sa/web';
      await admin.createEntry({ spiffeId: id, parentId: token.agentId, x509SvidTtlSeconds: 30 });
      const out = join(dir, 'out', 'web');
      // Running as root, chmod cannot make a directory read-only for us: use the writer's injectable
      // file system and fail as a read-only mount does (EROFS). Otherwise chmod 0500 is the real thing.
      const asRoot = process.getuid?.() === 0;
      const fault = { on: false };
      const readOnly = faultyFs('mkdtemp', 'EROFS', 1);
      const healthy = faultyFs('mkdtemp', 'EROFS', Number.POSITIVE_INFINITY);
      const writerFs = new Proxy({} as WriterFs, {
        get: (_t, k: keyof WriterFs) => (fault.on && asRoot ? readOnly : healthy)[k],
      });
      const agent = await startAgent({
        dir,
        caPort: ca.nodePort,
        token: token.token,
        fraction: 0.1,
        writerFs,
        workloads: [{ spiffe_id: id, output_dir: out }],
      });
      cleanups.push(() => agent.close());
      const status = () => agent.agent.status()[0]!;
      await until('the first files', () => status().rotations > 0);

      const before = await snapshot(out);
      const serialBefore = (await readWorkloadFiles(out)).meta.serial;
      const failuresBefore = status().failures;
      fault.on = true;
      if (!asRoot) await chmod(out, 0o500);
      try {
        await until('a failed write', () => status().failures > failuresBefore);
        assert.match(
          status().lastError ?? '',
          asRoot
            ? /^ERR_AGENT_WRITE: agent: cannot write .*: EROFS$/
            : /^ERR_AGENT_WRITE: agent: cannot write .*: EACCES$/,
        );
        assert.deepEqual(await snapshot(out), before, 'every previous file is intact, same bytes and modes');
        assert.equal(agent.agent.ready(), true, 'the previous SVID is still valid and served');
      } finally {
        fault.on = false;
        if (!asRoot) await chmod(out, 0o755);
      }
      // Recovered: a new version on disk (read through ..data, as a careful reader does) and no error.
      await until('a write after the directory is writable again', async () => {
        const files = await readWorkloadFiles(out);
        return files.meta.serial !== serialBefore && status().lastError === undefined;
      });
      const files = await readWorkloadFiles(out);
      assert.equal(X509Svid.parse(files.svidPem, files.keyPem).leaf.serialHex, files.meta.serial);
      process.stdout.write(`      (${asRoot ? 'root: injected EROFS through writerFs' : 'non-root: chmod 0500'})\n`);
    });
  });

  describe('clock skew of ±5 minutes between the CA and the agent', () => {
    const AUD = 'spiffe://example.org/ns/skew/sa/server';

    /** A CA whose clock runs `skewMs` off the real one (which the agent, OpenSSL and validators use). */
    async function skewed(
      skewMs: number,
      workloads: { name: string; x509Ttl: number; jwtTtl: number; jwt?: boolean }[],
    ) {
      const dir = await tempDir('svidkit-skew-');
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const { ca, logs, admin } = await startCa(dir, { clock: () => new Date(Date.now() + skewMs) });
      cleanups.push(async () => {
        admin.close();
        await ca.close(200);
      });
      const token = await admin.createJoinToken(600);
      for (const w of workloads) {
        await admin.createEntry({
          spiffeId: `spiffe://example.org/ns/skew/sa/${w.name}`,
          parentId: token.agentId,
          x509SvidTtlSeconds: w.x509Ttl,
          jwtSvidTtlSeconds: w.jwtTtl,
        });
      }
      const agentLogs = captureLog();
      const agent = await startAgent({
        dir,
        caPort: ca.nodePort,
        token: token.token,
        logs: agentLogs,
        workloads: workloads.map((w) => ({
          spiffe_id: `spiffe://example.org/ns/skew/sa/${w.name}`,
          output_dir: join(dir, 'out', w.name),
          jwt_audiences: w.jwt ? [AUD] : [],
        })),
      });
      cleanups.push(() => agent.close());
      const byName = (name: string) => agent.agent.status().find((s) => s.spiffeId.endsWith(`/${name}`))!;
      const caMetrics = async () => (await fetch(`http://127.0.0.1:${ca.observabilityPort}/metrics`)).text();
      return { dir, ca, logs, agent, agentLogs, byName, caMetrics };
    }

    for (const skew of [20_000, -20_000]) {
      it(`CA ${skew > 0 ? 'ahead' : 'behind'} by 20 s (inside the 30 s backdating): attestation, SVIDs and JWT-SVIDs all work`, async () => {
        const s = await skewed(skew, [{ name: 'web', x509Ttl: 600, jwtTtl: 300, jwt: true }]);
        await until('the agent to be ready', () => s.agent.agent.ready());
        const out = join(s.dir, 'out', 'web');
        const svid = X509Svid.parse(await readFile(join(out, 'svid.pem')), await readFile(join(out, 'svid_key.pem')));
        verify(svid.certificates, s.ca.context.keys.bundle());
        const validator = new JwtValidator({
          source: new StaticSource({ bundles: new BundleSet([s.ca.context.keys.bundle()]) }),
          audience: AUD,
        });
        const jwt = (await readFile(join(out, 'jwt', 'spiffe___example.org_ns_skew_sa_server.token'), 'utf8')).trim();
        assert.equal((await validator.validate(jwt)).id.toString(), 'spiffe://example.org/ns/skew/sa/web');
        validator.close();
      });
    }

    it('CA 5 min behind: SVIDs arrive with 5 min less life, one shorter than 5 min is refused, JWT-SVIDs are fetched once', async () => {
      const s = await skewed(-5 * MIN, [
        { name: 'long', x509Ttl: 600, jwtTtl: 480, jwt: true },
        { name: 'short', x509Ttl: 120, jwtTtl: 60 },
      ]);
      await until(
        'long written and short refused',
        () => s.byName('long').rotations > 0 && s.byName('short').failures > 0,
      );
      // The long-lived SVID is delivered: valid now, but it ends 5 minutes early.
      const out = join(s.dir, 'out', 'long');
      const svid = X509Svid.parse(await readFile(join(out, 'svid.pem')), await readFile(join(out, 'svid_key.pem')));
      verify(svid.certificates, s.ca.context.keys.bundle());
      // By the CA's clock it lives 10 min (plus the 30 s backdating); by ours, 5 of them are gone already.
      assert.equal(svid.expiresAt.getTime() - svid.leaf.notBefore.getTime(), 10 * MIN + 30_000);
      assert.ok(svid.expiresAt.getTime() <= Date.now() + 5 * MIN);
      // The 2-minute SVID expired 3 minutes before it was issued: the agent refuses to deliver it.
      assert.match(
        s.byName('short').lastError ?? '',
        /^ERR_AGENT_INVALID_SVID: agent: refusing to deliver an SVID that does not verify: .*leaf certificate expired at /,
      );
      assert.deepEqual(await snapshot(join(s.dir, 'out', 'short')), {}, 'nothing written for short');
      assert.equal(s.agent.agent.ready(), false);
      // The JWT-SVID (iat 5 min ago, exp in 3 min) validates, iat is not compared with the clock.
      const jwt = (await readFile(join(out, 'jwt', 'spiffe___example.org_ns_skew_sa_server.token'), 'utf8')).trim();
      const validator = new JwtValidator({
        source: new StaticSource({ bundles: new BundleSet([s.ca.context.keys.bundle()]) }),
        audience: AUD,
      });
      const res = await validator.validate(jwt);
      validator.close();
      assert.ok(res.svid.issuedAt!.getTime() <= Date.now() - 5 * MIN);
      // The agent schedules the JWT-SVID's renewal from when it received it, not from the CA's iat:
      // while it syncs entries again and again, it does not ask for another token.
      const syncs = async () =>
        metric(await s.caMetrics(), 'svidkit_ca_issue_seconds_count{method="ListAuthorizedEntries"}') ?? 0;
      const jwtIssued = () => s.logs.all.split('\n').filter((l) => l.includes('"event":"jwtsvid_issued"')).length;
      const issuedNow = jwtIssued();
      const syncsNow = await syncs();
      await until('two more entry syncs', async () => (await syncs()) >= syncsNow + 2);
      assert.equal(jwtIssued(), issuedNow, 'no JWT-SVID re-fetch loop');
      assert.equal(issuedNow, 1);
    });

    it('CA 5 min ahead: the agent cannot reach it (its serving SVID is not valid yet); its SVIDs fail verification, its JWT-SVIDs pass', async () => {
      const s = await skewed(5 * MIN, [{ name: 'web', x509Ttl: 600, jwtTtl: 300, jwt: true }]);
      await until('a refused attestation', () => s.agentLogs.all.includes('CA step failed'));
      const failure = s.agentLogs
        .lines()
        .find((l) => l['msg'] === 'agent: CA step failed; files on disk stay in place')!;
      assert.match(String(failure['reason']), /AttestAgent failed: UNAVAILABLE: .*certificate is not yet valid/);
      assert.equal(s.agent.agent.ready(), false);
      assert.equal(s.agent.agent.agentId, undefined, 'never attested');
      // What the CA signs at its clock: an X.509-SVID whose notBefore is 4.5 min in the future...
      const { issuer } = s.ca.context.issuer();
      const key = generateKeyPair();
      const id = SpiffeId.parse('spiffe://example.org/ns/skew/sa/web');
      const cert = issuer.issue({
        id,
        csrDer: buildCsr({ key: key.privateKey }),
        now: s.ca.context.clock(),
        ttlMs: 600_000,
      });
      const chain = [Certificate.fromDer(cert.der)];
      const bundle = s.ca.context.keys.bundle();
      assert.throws(() => verify(chain, bundle), { code: 'ERR_X509SVID_NOT_YET_VALID' });
      verify(chain, bundle, { at: new Date(Date.now() + 4.5 * MIN + 1000) });
      // ...and a JWT-SVID with iat in the future, which validates now (only exp and nbf are checked).
      const signer = s.ca.context.keys.jwtSigner();
      const token = await mintJwtSvid({
        id,
        audience: AUD,
        key: signer.key,
        kid: signer.kid,
        alg: signer.alg,
        ttlSeconds: 300,
        clock: s.ca.context.clock,
      });
      const validator = new JwtValidator({
        source: new StaticSource({ bundles: new BundleSet([bundle]) }),
        audience: AUD,
      });
      assert.equal((await validator.validate(token)).id.toString(), id.toString());
      validator.close();
    });
  });

  describe('a forced CA root rotation under continuous mTLS load', () => {
    it("fails no handshake and no request between two services that read a real agent's files", async () => {
      const dir = await tempDir('svidkit-rotate-');
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const { ca, admin } = await startCa(dir);
      cleanups.push(async () => {
        admin.close();
        await ca.close(200);
      });
      const token = await admin.createJoinToken(600);
      const SERVER = 'spiffe://example.org/ns/rot/sa/server';
      const CLIENT = 'spiffe://example.org/ns/rot/sa/client';
      for (const id of [SERVER, CLIENT]) {
        await admin.createEntry({ spiffeId: id, parentId: token.agentId, x509SvidTtlSeconds: 30 });
      }
      const agent = await startAgent({
        dir,
        caPort: ca.nodePort,
        token: token.token,
        fraction: 0.1,
        workloads: [
          { spiffe_id: SERVER, output_dir: join(dir, 'out', 'server') },
          { spiffe_id: CLIENT, output_dir: join(dir, 'out', 'client') },
        ],
      });
      cleanups.push(() => agent.close());
      await until('the agent to be ready', () => agent.agent.ready());

      const sourceErrors: string[] = [];
      const open = (name: string) =>
        FileSource.open(join(dir, 'out', name), {
          onError: (e) => sourceErrors.push(`${name}: ${e.code}: ${e.message}`),
        });
      const serverSource = await open('server');
      const clientSource = await open('client');
      cleanups.push(async () => {
        await serverSource.close();
        await clientSource.close();
      });
      const server = createMtlsHttpsServer(serverSource, authorizeId(CLIENT), (req, res) =>
        res.end(String(peerSpiffeId(req))),
      );
      const refusals: string[] = [];
      server.on('tlsClientError', (err: Error) => refusals.push(err.message));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      // No keep-alive: every request is a new handshake, so every certificate change is exercised.
      const client = mtlsHttpsAgent(clientSource, authorizeId(SERVER), { keepAlive: false });
      cleanups.push(() => {
        client.destroy();
        server.close();
      });

      let ok = 0;
      const failures: string[] = [];
      const serverSerials = new Set<string>();
      let stop = false;
      const request = () =>
        new Promise<void>((resolve) => {
          const req = https.get({ host: '127.0.0.1', port, path: '/', agent: client }, (res) => {
            const serial = (res.socket as TLSSocket | null)?.getPeerCertificate?.()?.serialNumber;
            if (serial) serverSerials.add(serial);
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => {
              if (res.statusCode === 200 && body === CLIENT) ok++;
              else failures.push(`status ${res.statusCode}: ${body}`);
              resolve();
            });
          });
          req.on('error', (err) => {
            failures.push(err.message);
            resolve();
          });
        });
      const load = Array.from({ length: 8 }, async () => {
        while (!stop) await request();
      });

      // The order the rotation relies on, checked at every change a service sees: an SVID of the new
      // root is served only once both services trust that root.
      const rotation: { newRoot?: Certificate } = {};
      const signedByNew = (src: FileSource) => {
        const root = rotation.newRoot;
        if (!root) return false;
        try {
          verify(src.getX509Svid().certificates, new BundleSet([new X509Bundle(TD, [root])]));
          return true;
        } catch {
          return false;
        }
      };
      const trustsNew = (src: FileSource) =>
        (src.getBundleSet().getX509BundleForTrustDomain(TD)?.authorities() ?? []).some(
          (c) => c.serialHex === rotation.newRoot?.serialHex,
        );
      const orderViolations: string[] = [];
      const switchedToNew = new Set<string>();
      for (const [name, src] of [
        ['server', serverSource],
        ['client', clientSource],
      ] as const) {
        src.onUpdate(() => {
          if (!signedByNew(src)) return;
          switchedToNew.add(name);
          if (!(trustsNew(serverSource) && trustsNew(clientSource))) {
            orderViolations.push(`${name} served a new-root SVID before both services trusted the new root`);
          }
        });
      }

      await until('some requests before the rotation', () => ok > 50);
      // Rotate while no renewal is about to go out, so that the bundle reaches the agent before any
      // SVID of the new key (see the note on renewals in flight in the reliability notes).
      await until('both renewals at least a second away', () =>
        agent.agent.status().every((w) => Date.parse(w.nextRotation!) > Date.now() + 1000),
      );
      const oldRoot = ca.context.keys.x509Signer().cert;
      const keys = await admin.rotateCa('x509');
      const newRoot = ca.context.keys.x509Signer().cert;
      rotation.newRoot = newRoot;
      assert.notEqual(newRoot.serialHex, oldRoot.serialHex);
      assert.equal(keys.filter((k) => k.kind === 'x509' && k.state === 'active').length, 1);
      const okAtRotation = ok;
      // Both services move to SVIDs of the new root, while the requests go on.
      await until('both SVIDs signed by the new root', () => signedByNew(serverSource) && signedByNew(clientSource));
      await until('requests after the switch', () => ok > okAtRotation + 200);
      stop = true;
      await Promise.all(load);
      assert.deepEqual(failures, [], 'no failed request or handshake');
      assert.deepEqual(refusals, [], 'the server refused no client');
      assert.deepEqual(sourceErrors, [], 'no source read was refused');
      assert.deepEqual([...switchedToNew].sort(), ['client', 'server'], 'both updates were checked');
      assert.deepEqual(orderViolations, [], 'the new bundle was delivered before the new key signed');
      // The old root is still in the bundle (SVIDs it signed stay valid until they expire).
      assert.equal(ca.context.keys.bundle().x509.size, 2);
      process.stdout.write(
        `      (${ok} requests, each a new handshake, ${serverSerials.size} server SVIDs seen, 0 failed)\n`,
      );
    });
  });
});
