/**
 * A real CA and a real svidkit-agent serving the Workload API, in this process, for the tests of the
 * Workload API server and its clients: one join token, the bundle exported through the Admin API, the
 * agent's socket in a 0755 directory other uids can reach (access is decided by attestation).
 */
import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseAgentConfig } from '../../lib/agent/config.js';
import { runAgent, type RunningAgent } from '../../lib/agent/daemon.js';
import { parseCaConfig } from '../../lib/ca/config.js';
import { run as runCa, type RunningCa } from '../../lib/ca/daemon.js';
import { createLogger } from '../../lib/observe/index.js';
import { type CliResult, runCli } from './cli.js';

/** What the tests may change in the two configurations (raw config objects, merged on top). */
export interface WorkloadMeshOptions {
  /** Extra keys of the CA config (e.g. `{ x509_svid_ttl: '2m' }`). */
  readonly ca?: Record<string, unknown>;
  /** Extra keys of the agent config. */
  readonly agent?: Record<string, unknown>;
  /** Extra keys of the agent's `workload_api` section (socket_path is set by the mesh). */
  readonly workloadApi?: Record<string, unknown>;
  /** The agent's clock; default the real one. */
  readonly agentClock?: () => Date;
}

/** A running CA and agent with the Workload API on `socket`. */
export interface WorkloadMesh {
  readonly dir: string;
  readonly ca: RunningCa;
  readonly agent: RunningAgent;
  /** Absolute path of the agent's Workload API socket. */
  readonly socket: string;
  /** `unix://` address of the socket, as SPIFFE_ENDPOINT_SOCKET spells it. */
  readonly endpoint: string;
  /** The agent's SPIFFE ID (the parent of the entries the tests create). */
  readonly agentId: string;
  /** Runs the svidkit CLI against the CA's admin socket. */
  admin(...args: string[]): Promise<CliResult>;
  /** Creates an entry parented to the agent; resolves with its entry ID. */
  createEntry(spiffeId: string, selectors: readonly string[], ...extra: string[]): Promise<string>;
  /** Stops the agent and the CA and removes the directory. */
  close(): Promise<void>;
}

const quiet = (name: string) => createLogger({ name, destination: new PassThrough().resume() });

/** Starts a CA and an agent serving the Workload API in a fresh temporary directory. */
export async function startWorkloadMesh(o: WorkloadMeshOptions = {}): Promise<WorkloadMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-wlmesh-'));
  chmodSync(dir, 0o755);
  let ca: RunningCa | undefined;
  let agent: RunningAgent | undefined;
  try {
    ca = await runCa(
      parseCaConfig(
        {
          trust_domain: 'example.org',
          data_dir: join(dir, 'ca'),
          listen: { port: 0 },
          observability: { port: 0 },
          ...o.ca,
        },
        dir,
      ),
      { logger: quiet('svidkit-ca') },
    );
    const adminSocket = ca.adminSocket;
    const admin = (...args: string[]) => runCli([...args, '--socket', adminSocket]);
    const token = JSON.parse((await admin('token', 'create', '--json')).out) as { token: string; agent_id: string };
    const exported = await admin('bundle', 'export', '--format', 'pem', '--out', join(dir, 'bundle.pem'));
    assert.equal(exported.code, 0, exported.err);
    const socket = join(dir, 'public', 'api.sock');
    agent = await runAgent(
      parseAgentConfig(
        {
          trust_domain: 'example.org',
          data_dir: join(dir, 'agent'),
          ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
          attestation: { join_token: token.token },
          observability: { port: 0 },
          backoff: { min: '100ms', max: '1s' },
          ...o.agent,
          workload_api: { socket_path: socket, ...o.workloadApi },
        },
        dir,
      ),
      { logger: quiet('svidkit-agent'), ...(o.agentClock ? { clock: o.agentClock } : {}) },
    );
    const running = { ca, agent };
    return {
      dir,
      ...running,
      socket,
      endpoint: `unix://${socket}`,
      agentId: token.agent_id,
      admin,
      async createEntry(spiffeId, selectors, ...extra) {
        const args = ['entry', 'create', '--spiffe-id', spiffeId, '--parent-id', token.agent_id, '--json'];
        for (const s of selectors) args.push('--selector', s);
        const r = await admin(...args, ...extra);
        assert.equal(r.code, 0, r.err);
        return (JSON.parse(r.out) as { id: string }).id;
      },
      async close() {
        await running.agent.close();
        await running.ca.close(1000);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await agent?.close();
    await ca?.close(1000);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
