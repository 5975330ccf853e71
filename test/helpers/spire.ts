/**
 * A real SPIRE deployment for the Workload API interop tests: spire-server (sqlite datastore, join
 * token node attestor, in-memory keys, its API on a Unix socket) and spire-agent (attested with a join
 * token, trusting the server's bundle, the unix workload attestor, the Workload API on a Unix socket),
 * both in one temporary directory. SPIRE is the reference Workload API server: the SPIFFE clients
 * (go-spiffe, py-spiffe) are proven against it here before they are pointed at svidkit-agent.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where spire-server and spire-agent are (test/helpers/peers.ts finds them in the peer cache). */
export interface SpireBinaries {
  readonly server: string;
  readonly agent: string;
}

/** Options of startSpire. */
export interface SpireOptions {
  readonly trustDomain?: string;
  /** The server's default X.509-SVID lifetime (an entry may set its own); default 3600 s. */
  readonly x509SvidTtlSeconds?: number;
  /** The server's default JWT-SVID lifetime; default 300 s. */
  readonly jwtSvidTtlSeconds?: number;
  /** How long to wait for each daemon to come up; it only guards against a hang. Default 60 s. */
  readonly startLimitMs?: number;
}

/** A registration entry to create with `spire-server entry create`. */
export interface SpireEntry {
  readonly spiffeId: string;
  /** SPIRE selectors, e.g. `unix:uid:1000`; at least one. */
  readonly selectors: readonly string[];
  readonly x509SvidTtlSeconds?: number;
  readonly jwtSvidTtlSeconds?: number;
  readonly hint?: string;
}

/** A running SPIRE server and agent. */
export interface RunningSpire {
  readonly dir: string;
  readonly trustDomain: string;
  /** The SPIFFE ID the agent was attested as (the parent of every entry created here). */
  readonly agentId: string;
  /** The agent's Workload API socket path. */
  readonly agentSocket: string;
  /** The same as a SPIFFE_ENDPOINT_SOCKET value: `unix:///...`. */
  readonly endpoint: string;
  /** The server's API socket (what the spire-server CLI talks to). */
  readonly serverSocket: string;
  /** Creates a registration entry; resolves with its entry ID. */
  createEntry(entry: SpireEntry): Promise<string>;
  /** Deletes a registration entry by its entry ID. */
  deleteEntry(entryId: string): Promise<void>;
  /**
   * Waits until the agent serves `spiffeId` to a caller of this process's uid, by fetching from its
   * Workload API with SPIRE's own client; the limit only guards against a hang.
   */
  waitForX509Svid(spiffeId: string, limitMs?: number): Promise<void>;
  /** The last lines both daemons logged, for a failure message. */
  logs(): string;
  /** Stops the agent, then the server (only the processes started here), and removes the directory. */
  close(): Promise<void>;
}

// A daemon's log is kept in memory for failure messages and log-line waits, bounded.
const MAX_LOG = 1024 * 1024;
// The CLI calls are small; anything bigger is an error.
const MAX_CLI_OUTPUT = 4 * 1024 * 1024;
const CLI_TIMEOUT_MS = 30_000;

/** Runs a command to completion; rejects with its output when it exits non-zero. */
function runCli(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: CLI_TIMEOUT_MS, maxBuffer: MAX_CLI_OUTPUT }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(String(stdout));
    });
  });
}

/** A free TCP port on 127.0.0.1 (spire-server refuses bind_port 0, so one is chosen and handed over). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One spawned daemon: its log, and a way to wait for a log line or for its exit. */
class Daemon {
  private log = '';
  private readonly waiters = new Set<() => void>();
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess;
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  constructor(
    readonly name: string,
    cmd: string,
    args: readonly string[],
  ) {
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (d: Buffer) => {
      this.log += d.toString('utf8');
      if (this.log.length > MAX_LOG) this.log = this.log.slice(-MAX_LOG / 2);
      for (const w of [...this.waiters]) w();
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.child.once('exit', (code, signal) => {
      this.exited = { code, signal };
      process.removeListener('exit', this.killOnExit);
      for (const w of [...this.waiters]) w();
    });
    this.child.once('error', (err) => {
      this.log += `\nspawn failed: ${err.message}\n`;
      this.exited ??= { code: null, signal: null };
      for (const w of [...this.waiters]) w();
    });
    process.once('exit', this.killOnExit);
  }

  /** The JSON log records that parse (SPIRE runs with log_format json). */
  records(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of this.log.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by the log bound, or not JSON
      }
    }
    return out;
  }

  tail(lines = 40): string {
    return `--- ${this.name} ---\n${this.log.split('\n').slice(-lines).join('\n')}`;
  }

  /** Resolves with the first record `match` accepts; rejects when the daemon exits first. */
  waitFor(what: string, match: (r: Record<string, unknown>) => boolean, limitMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (this.records().some(match)) done();
        else if (this.exited) {
          done(new Error(`${this.name} exited (${JSON.stringify(this.exited)}) before ${what}\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}\n${this.tail()}`)), limitMs);
      this.waiters.add(check);
      check();
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within the bound. */
  async stop(limitMs = 15_000): Promise<void> {
    if (this.exited || this.child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => {
      if (this.exited) resolve();
      else this.child.once('exit', () => resolve());
    });
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), limitMs);
    await gone;
    clearTimeout(timer);
  }
}

/** A directory readable by other users, so a caller of another uid can reach the agent's socket. */
function openDir(path: string): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o755);
}

function privateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
}

/** HCL string literal: the paths here are ours, but quote them properly all the same. */
function hcl(value: string): string {
  return JSON.stringify(value);
}

function serverConfig(dir: string, trustDomain: string, port: number, options: SpireOptions): string {
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = ${hcl(join(dir, 'server', 'api.sock'))}
  trust_domain = ${hcl(trustDomain)}
  data_dir = ${hcl(join(dir, 'server', 'data'))}
  log_level = "DEBUG"
  log_format = "json"
  ca_ttl = "24h"
  default_x509_svid_ttl = "${options.x509SvidTtlSeconds ?? 3600}s"
  default_jwt_svid_ttl = "${options.jwtSvidTtlSeconds ?? 300}s"
}

plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = ${hcl(join(dir, 'server', 'data', 'datastore.sqlite3'))}
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`;
}

function agentConfig(dir: string, trustDomain: string, port: number, token: string): string {
  return `agent {
  data_dir = ${hcl(join(dir, 'agent', 'data'))}
  log_level = "DEBUG"
  log_format = "json"
  server_address = "127.0.0.1"
  server_port = "${port}"
  socket_path = ${hcl(join(dir, 'agent', 'public', 'api.sock'))}
  trust_bundle_path = ${hcl(join(dir, 'bundle.pem'))}
  trust_domain = ${hcl(trustDomain)}
  join_token = ${hcl(token)}
}

plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`;
}

const isServerApi = (network: string) => (r: Record<string, unknown>) =>
  r['msg'] === 'Starting Server APIs' && r['network'] === network;

/** Starts spire-server and spire-agent in a new temporary directory and waits until both serve. */
export async function startSpire(bins: SpireBinaries, options: SpireOptions = {}): Promise<RunningSpire> {
  const trustDomain = options.trustDomain ?? 'example.org';
  const limit = options.startLimitMs ?? 60_000;
  const dir = await mkdtemp(join(tmpdir(), 'svidkit-spire-'));
  const daemons: Daemon[] = [];
  const stopAll = async () => {
    for (const d of daemons.reverse()) await d.stop();
  };
  try {
    openDir(dir);
    privateDir(join(dir, 'server', 'data'));
    openDir(join(dir, 'agent'));
    openDir(join(dir, 'agent', 'public'));
    privateDir(join(dir, 'agent', 'data'));
    const serverSocket = join(dir, 'server', 'api.sock');
    const agentSocket = join(dir, 'agent', 'public', 'api.sock');

    // The port is free when chosen but another process could take it before the server binds it:
    // then the server exits with "address already in use" and a new port is tried, a few times.
    let server: Daemon | undefined;
    let port = 0;
    for (let attempt = 1; !server; attempt++) {
      port = await freePort();
      writeFileSync(join(dir, 'server.conf'), serverConfig(dir, trustDomain, port, options), { mode: 0o600 });
      const d = new Daemon('spire-server', bins.server, ['run', '-config', join(dir, 'server.conf')]);
      try {
        await d.waitFor('the server API on TCP', isServerApi('tcp'), limit);
        await d.waitFor('the server API on its Unix socket', isServerApi('unix'), limit);
        server = d;
        daemons.push(d);
      } catch (err) {
        await d.stop();
        if (attempt >= 3 || !/address already in use/.test(d.tail())) throw err;
      }
    }

    const tokenOut = await runCli(bins.server, ['token', 'generate', '-socketPath', serverSocket, '-ttl', '600']);
    const token = /^Token: (\S+)$/m.exec(tokenOut)?.[1];
    if (!token) throw new Error(`spire-server token generate printed no token: ${tokenOut}`);
    const bundle = await runCli(bins.server, ['bundle', 'show', '-socketPath', serverSocket]);
    if (!bundle.includes('BEGIN CERTIFICATE')) throw new Error(`spire-server bundle show printed no PEM: ${bundle}`);
    writeFileSync(join(dir, 'bundle.pem'), bundle);
    // The directory is open to other uids (for their callers); the join token in here is not.
    writeFileSync(join(dir, 'agent.conf'), agentConfig(dir, trustDomain, port, token), { mode: 0o600 });

    const agent = new Daemon('spire-agent', bins.agent, ['run', '-config', join(dir, 'agent.conf')]);
    daemons.push(agent);
    await agent.waitFor('the Workload API', (r) => r['msg'] === 'Starting Workload and SDS APIs', limit);
    const agentId = `spiffe://${trustDomain}/spire/agent/join_token/${token}`;

    const running: RunningSpire = {
      dir,
      trustDomain,
      agentId,
      agentSocket,
      endpoint: `unix://${agentSocket}`,
      serverSocket,
      async createEntry(entry) {
        if (entry.selectors.length === 0) throw new Error('a SPIRE entry needs at least one selector');
        const args = ['entry', 'create', '-socketPath', serverSocket, '-output', 'json'];
        args.push('-parentID', agentId, '-spiffeID', entry.spiffeId);
        for (const s of entry.selectors) args.push('-selector', s);
        if (entry.x509SvidTtlSeconds !== undefined) args.push('-x509SVIDTTL', String(entry.x509SvidTtlSeconds));
        if (entry.jwtSvidTtlSeconds !== undefined) args.push('-jwtSVIDTTL', String(entry.jwtSvidTtlSeconds));
        if (entry.hint !== undefined) args.push('-hint', entry.hint);
        const out = await runCli(bins.server, args);
        const id = entryIdOf(out);
        if (!id) throw new Error(`spire-server entry create printed no entry ID: ${out}`);
        return id;
      },
      async deleteEntry(entryId) {
        await runCli(bins.server, ['entry', 'delete', '-socketPath', serverSocket, '-entryID', entryId]);
      },
      async waitForX509Svid(spiffeId, limitMs = 60_000) {
        const start = Date.now();
        let last = '';
        for (;;) {
          try {
            const out = await runCli(bins.agent, [
              'api',
              'fetch',
              'x509',
              '-socketPath',
              agentSocket,
              '-output',
              'json',
              '-timeout',
              '5s',
            ]);
            if (servesId(out, spiffeId)) return;
            last = out;
          } catch (err) {
            last = (err as Error).message;
          }
          if (Date.now() - start > limitMs) {
            throw new Error(`the SPIRE agent did not serve ${spiffeId}: ${last}\n${running.logs()}`);
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      logs() {
        return daemons.map((d) => d.tail()).join('\n');
      },
      async close() {
        await stopAll();
        await rm(dir, { recursive: true, force: true });
      },
    };
    return running;
  } catch (err) {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The entry ID in `spire-server entry create -output json`'s answer. */
function entryIdOf(out: string): string | undefined {
  try {
    const parsed = JSON.parse(out) as { results?: Array<{ entry?: { id?: unknown } }> };
    const id = parsed.results?.[0]?.entry?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return /Entry ID\s*:\s*(\S+)/.exec(out)?.[1];
  }
}

/** Whether `spire-agent api fetch x509 -output json`'s answer carries an SVID for spiffeId. */
function servesId(out: string, spiffeId: string): boolean {
  try {
    const parsed = JSON.parse(out) as { svids?: Array<{ spiffe_id?: unknown }> };
    return (parsed.svids ?? []).some((s) => s.spiffe_id === spiffeId);
  } catch {
    return false;
  }
}
