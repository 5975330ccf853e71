/**
 * The local mesh behind `npm start`: the whole system on one machine on embedded defaults. It starts
 * the real svidkit-ca (SQLite datastore and a self-signed root under <dir>/ca), creates a join token
 * and three registration entries through the admin socket, starts the real svidkit-agent attested
 * with that token and serving the SPIFFE Workload API, and runs two demo services (lib/mesh/services.ts)
 * that call each other over SPIFFE mTLS with JWT-SVID audience checks while the agent rotates their
 * short-lived SVIDs: "web" reads the agent's files, "orders" asks the Workload API (its entry selects
 * the uid running the mesh, as does `demo/cli`'s, which is there for `svidkit api fetch x509`).
 * Everything it does is told through `say` in readable lines.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdminClient } from '../ca-api/admin-client.js';
import { SpiffeBundle } from '../bundle/index.js';
import { FileSource, WorkloadApiSource } from '../source/index.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { clock, narrate, short } from './narrate.js';
import { Daemon, ready, waitFor } from './processes.js';
import { type CallReport, DemoServices } from './services.js';

/** Options of startLocalMesh; only `dir` and `say` are required. */
export interface MeshOptions {
  /** The base directory: ca/, agent/, workloads/ and mesh/ (generated configs) go under it. */
  readonly dir: string;
  /** Where every readable line goes: who is speaking, and what happened. */
  readonly say: (who: string, line: string) => void;
  readonly trustDomain?: string;
  /** Lifetime of the demo workloads' X.509- and JWT-SVIDs; the agent renews them at about half. */
  readonly svidTtlSeconds?: number;
  /** Time between two rounds of demo calls. */
  readonly callIntervalMs?: number;
  /** Where svidkit-ca.js and svidkit-agent.js are; by default the package's own dist/cmd. */
  readonly cmdDir?: string;
}

/** Counters of the demo traffic. */
export interface MeshStats {
  calls: number;
  failures: number;
  /** SVID updates the demo services picked up after their first (rotations, seen by the services). */
  rotations: number;
}

/** A running local mesh. */
export interface LocalMesh {
  readonly stats: Readonly<MeshStats>;
  /** The CA's admin socket (for `svidkit ... --socket`). */
  readonly adminSocket: string;
  /** The agent's Workload API socket (absolute), for SPIFFE_ENDPOINT_SOCKET=unix://<path>. */
  readonly workloadApiSocket: string;
  /** Rejects when a daemon stops by itself; never resolves otherwise. */
  readonly failed: Promise<never>;
  /** Stops the services, then the agent, then the CA. */
  stop(): Promise<void>;
}

const DEFAULT_TTL_SECONDS = 120;
const DEFAULT_CALL_INTERVAL_MS = 5000;
const STARTUP_TIMEOUT_MS = 60_000;

/** A config file as JSON, which is valid YAML: nothing to escape by hand. */
async function writeConfig(path: string, doc: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
}

/** Starts the whole mesh; resolves once the demo services are serving. */
export async function startLocalMesh(options: MeshOptions): Promise<LocalMesh> {
  const { say } = options;
  const dir = resolve(options.dir);
  const td = TrustDomain.parse(options.trustDomain ?? 'example.org');
  const ttl = options.svidTtlSeconds ?? DEFAULT_TTL_SECONDS;
  const interval = options.callIntervalMs ?? DEFAULT_CALL_INTERVAL_MS;
  const cmdDir = options.cmdDir ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'cmd');
  const webId = SpiffeId.fromPath(td, '/demo/web').toString();
  const ordersId = SpiffeId.fromPath(td, '/demo/orders').toString();
  const cliId = SpiffeId.fromPath(td, '/demo/cli').toString();
  // Workload API entries select the kernel's view of the caller: here, the uid running the mesh.
  const uidSelector = `unix:uid:${process.getuid?.() ?? 0}`;
  const caDir = join(dir, 'ca');
  const agentDir = join(dir, 'agent');
  const outDir = join(dir, 'workloads');
  const meshDir = join(dir, 'mesh');
  const apiSocket = join(agentDir, 'public', 'api.sock');

  // The CA's data persists between runs (its root and entries); the agent and workload files are the
  // demo's own and start fresh, so the agent attests with this run's token.
  await Promise.all([agentDir, outDir, meshDir].map((d) => rm(d, { recursive: true, force: true })));
  for (const d of [dir, caDir, meshDir, outDir]) await mkdir(d, { recursive: true, mode: 0o700 });

  const daemons: Daemon[] = [];
  const stopAll = async () => {
    for (const d of [...daemons].reverse()) await d.stop();
  };
  let stopping = false;
  let failWith: (err: Error) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    failWith = reject;
  });
  failed.catch(() => {}); // observed by the caller when it wants to
  const watch = (d: Daemon) => {
    void d.exited().then((code) => {
      if (!stopping) failWith(new Error(`${d.name} exited by itself (code ${String(code)})`));
    });
  };
  const start = (name: string, script: string, config: string) => {
    const d = new Daemon(name, join(cmdDir, script), ['--config', config], (line) => {
      const text = narrate(line);
      if (text !== undefined) say(name, text);
    });
    daemons.push(d);
    watch(d);
    return d;
  };
  const progress = (what: string) => (ms: number) => {
    if (ms >= 3000 && Math.round(ms / 1000) % 3 === 0)
      say('mesh', `still waiting for ${what} (${Math.round(ms / 1000)}s)`);
  };

  let admin: AdminClient | undefined;
  const sources: (FileSource | WorkloadApiSource)[] = [];
  let services: DemoServices | undefined;
  try {
    // 1. The CA.
    const caConfig = join(meshDir, 'ca.yaml');
    await writeConfig(caConfig, {
      trust_domain: td.name,
      data_dir: caDir,
      // Port 0 everywhere: each daemon announces the ports it bound in its start line.
      listen: { address: '127.0.0.1', port: 0 },
      observability: { address: '127.0.0.1', port: 0 },
    });
    say('mesh', `starting svidkit-ca for ${td.name} (data in ${caDir})`);
    const ca = start('ca', 'svidkit-ca.js', caConfig);
    // The CA logs this line once it serves, with the ports it bound.
    const caReady = await ca.record('svidkit-ca ready', STARTUP_TIMEOUT_MS, progress('the CA'));
    const caPort = Number(caReady['node_port']);
    const adminSocket = String(caReady['admin_socket']);
    admin = new AdminClient(adminSocket);
    const status = await admin.caStatus();
    const bundle = SpiffeBundle.parse(td, status.bundle?.spiffeBundleJson ?? '{}');
    for (const root of bundle.x509.authorities()) {
      say(
        'ca',
        `ready on 127.0.0.1:${caPort}; root CA sha256 ${short(root.fingerprint256())} valid until ${root.notAfter.toISOString()}`,
      );
    }

    // 2. A join token and the three entries, through the admin socket, as an operator would.
    for (const id of [webId, ordersId, cliId]) {
      for (const old of await admin.listEntries({ spiffeId: id })) await admin.deleteEntry(old.id);
    }
    const token = await admin.createJoinToken(600);
    const tokenFile = join(meshDir, 'join-token');
    await writeFile(tokenFile, `${token.token}\n`, { mode: 0o600 }); // a new file: meshDir starts empty
    const bundleFile = join(meshDir, 'bootstrap-bundle.pem');
    await writeFile(bundleFile, bundle.x509.toPem(), { mode: 0o644 });
    say('mesh', `created a join token for agent ${token.agentId} (in ${tokenFile}, mode 0600)`);
    // demo/cli and demo/orders select the same uid, so this process is served both; the orders
    // service picks its own by SPIFFE ID, and `svidkit api fetch x509` beside the mesh lists both.
    for (const [id, selectors] of [
      [webId, []],
      [cliId, [uidSelector]],
      [ordersId, [uidSelector]],
    ] as const) {
      const e = await admin.createEntry({
        spiffeId: id,
        parentId: token.agentId,
        x509SvidTtlSeconds: ttl,
        jwtSvidTtlSeconds: ttl,
        selectors: [...selectors],
      });
      const how = selectors.length === 0 ? 'files' : `Workload API, selector ${selectors.join(' ')}`;
      say('mesh', `registered ${id} under the agent (entry ${e.id}, ${how}, SVIDs live ${ttl}s)`);
    }

    // 3. The agent.
    const agentConfig = join(meshDir, 'agent.yaml');
    await writeConfig(agentConfig, {
      trust_domain: td.name,
      data_dir: agentDir,
      ca: { address: `127.0.0.1:${caPort}`, bundle_file: bundleFile },
      attestation: { join_token_file: tokenFile },
      observability: { address: '127.0.0.1', port: 0 },
      backoff: { min: '500ms', max: '5s' },
      entry_sync_interval: '2s',
      workloads: [{ spiffe_id: webId, output_dir: join(outDir, 'web'), jwt_audiences: [ordersId] }],
      workload_api: { socket_path: apiSocket },
    });
    say('mesh', 'starting svidkit-agent (join token attestation)');
    const agent = start('agent', 'svidkit-agent.js', agentConfig);
    const agentStarted = await agent.record('svidkit-agent started', STARTUP_TIMEOUT_MS, progress('the agent'));
    const agentObsPort = Number(agentStarted['observability_port']);
    // Ready means every file workload has its files.
    await waitFor('the agent', () => ready(`http://127.0.0.1:${agentObsPort}/readyz`), {
      timeoutMs: STARTUP_TIMEOUT_MS,
      tick: progress('the agent to deliver the web workload'),
      abort: () => (agent.exitCode === undefined ? undefined : 'svidkit-agent exited'),
    });
    // The line a person copies into another terminal, alone, so that it can be pasted as it is.
    say('agent', 'serving the SPIFFE Workload API; to ask it as yourself, export this in another terminal:');
    say('agent', `SPIFFE_ENDPOINT_SOCKET=unix://${apiSocket}`);

    // 4. The demo services: web reads the agent's files, orders asks the Workload API.
    const webSource = await FileSource.open(join(outDir, 'web'));
    sources.push(webSource);
    const ordersSource = await WorkloadApiSource.open({
      address: `unix://${apiSocket}`,
      pick: { spiffeId: ordersId },
      jwtAudiences: [webId],
      timeoutMs: STARTUP_TIMEOUT_MS,
    });
    sources.push(ordersSource);
    const stats: MeshStats = { calls: 0, failures: 0, rotations: 0 };
    for (const [name, src, via] of [
      ['web', webSource, 'files'],
      ['orders', ordersSource, 'the Workload API'],
    ] as const) {
      let serial = src.getX509Svid().leaf.serialHex;
      say(
        name,
        `serving as ${src.getX509Svid().id.toString()} from ${via} (cert ${short(serial)}, expires ${clock(src.getX509Svid().expiresAt.toISOString())})`,
      );
      src.onUpdate(() => {
        const svid = src.getX509Svid();
        if (svid.leaf.serialHex === serial) return;
        serial = svid.leaf.serialHex;
        stats.rotations++;
        say(
          name,
          `picked up a rotated SVID from ${via} without a restart: cert ${short(serial)}, expires ${clock(svid.expiresAt.toISOString())}`,
        );
      });
    }
    services = await DemoServices.start({ webSource, ordersSource, webId, ordersId });
    say(
      'mesh',
      `the mesh is up; calls every ${interval / 1000}s, first rotation in about ${Math.round(ttl / 2)}s; Ctrl-C stops`,
    );

    const report = (r: CallReport) => {
      stats.calls++;
      if (!r.ok) stats.failures++;
      say(`${r.from} → ${r.to}`, r.line);
    };
    let round: Promise<unknown> = Promise.resolve();
    const tick = () => {
      round = Promise.all([services!.callOrders().then(report), services!.callWeb().then(report)]);
    };
    tick();
    const timer = setInterval(tick, interval);

    const running = services;
    const openAdmin = admin;
    return {
      stats,
      adminSocket,
      workloadApiSocket: apiSocket,
      failed,
      async stop() {
        if (stopping) return;
        stopping = true;
        clearInterval(timer);
        await round;
        say('mesh', 'stopping: demo services, then the agent, then the CA');
        await running.close();
        for (const s of sources) await s.close();
        openAdmin.close();
        await stopAll();
        say('mesh', `stopped (${stats.calls} calls, ${stats.failures} failed, ${stats.rotations} rotations picked up)`);
      },
    };
  } catch (err) {
    stopping = true;
    await services?.close().catch(() => {});
    for (const s of sources) await s.close().catch(() => {});
    admin?.close();
    await stopAll();
    throw err;
  }
}
