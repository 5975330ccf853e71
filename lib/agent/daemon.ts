/**
 * svidkit-agent assembled from its configuration: the Agent, its metrics, /healthz and /readyz, and
 * a status file that `svidkit-agent status` reads.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SvidkitError } from '../errors/index.js';
import { Counter, Gauge, type Logger, Registry, startObservabilityServer } from '../observe/index.js';
import { WorkloadApiServer } from './workloadapi/server.js';
import { Agent, type AgentSettings } from './agent.js';
import { WORKLOAD_API_REFUSALS, WORKLOAD_API_STREAM_RPCS, type WorkloadApiEvents } from './agent-types.js';
import type { AgentConfig } from './config.js';
import { writeFileAtomic } from './state.js';
import type { AgentStatusDocument } from './status-text.js';
import type { WriterFs } from './writer.js';

/** File in the data dir that holds the last status. */
export const STATUS_FILE = 'status.json';
const MAX_FILE = 64 * 1024;

async function readSmall(path: string, what: string): Promise<string> {
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_FILE) throw new SvidkitError('ERR_CONFIG', `config: ${what}: ${path} is too large`);
    return buf.toString('utf8');
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SvidkitError('ERR_CONFIG', `config: ${what}: cannot read ${path} (${code})`, { cause: err });
  }
}

/** Turns the validated configuration into the agent's settings (reading the bundle file). */
export async function agentSettings(config: AgentConfig): Promise<AgentSettings> {
  const a = config.attestation;
  const attestation: AgentSettings['attestation'] =
    a.method === 'k8s_psat'
      ? { k8sPsat: { tokenFile: a.tokenFile, cluster: a.cluster } }
      : a.method === 'join_token'
        ? { joinToken: async () => a.token }
        : { joinToken: async () => (await readSmall(a.tokenFile, 'attestation.join_token_file')).trim() };
  return {
    trustDomain: config.trustDomain,
    dataDir: config.dataDir,
    caAddress: config.ca.address,
    caServerName: config.ca.serverName,
    bootstrapBundle: await readSmall(config.ca.bundleFile, 'ca.bundle_file'),
    attestation,
    workloads: config.workloads,
    rotationFraction: config.rotation.fraction,
    rotationJitter: config.rotation.jitter,
    backoffMinMs: config.backoff.minMs,
    backoffMaxMs: config.backoff.maxMs,
    entrySyncMs: config.entrySyncMs,
  };
}

/** A running agent daemon. */
export interface RunningAgent {
  readonly agent: Agent;
  readonly observabilityPort: number;
  close(): Promise<void>;
}

/** Starts the agent with metrics and health endpoints. */
export async function runAgent(
  config: AgentConfig,
  options: { logger: Logger; clock?: () => Date; statusIntervalMs?: number; writerFs?: WriterFs },
): Promise<RunningAgent> {
  for (const w of config.warnings) options.logger.warn({}, w);
  const registry = new Registry();
  const rotations = registry.register(
    new Counter({
      name: 'svidkit_agent_rotations_total',
      help: 'workload file sets written',
      labelNames: ['workload'],
    }),
  );
  const failures = registry.register(
    new Counter({
      name: 'svidkit_agent_rotation_failures_total',
      help: 'failed workload rotations',
      labelNames: ['workload'],
    }),
  );
  const reloads = registry.register(
    new Counter({
      name: 'svidkit_agent_reloads_total',
      help: 'reload actions fired, by result',
      labelNames: ['workload', 'result'],
    }),
  );
  let caUp = 0;
  registry.register(
    new Gauge({ name: 'svidkit_agent_ca_reachable', help: '1 when the last CA call succeeded', collect: () => caUp }),
  );
  const expiry = registry.register(
    new Gauge({
      name: 'svidkit_agent_svid_expiry_seconds',
      help: 'seconds until each workload SVID expires',
      labelNames: ['workload'],
    }),
  );
  const running = await Agent.start(await agentSettings(config), {
    logger: options.logger,
    clock: options.clock,
    writerFs: options.writerFs,
    events: {
      rotated: (id) => rotations.inc({ workload: id }),
      failed: (id) => failures.inc({ workload: id }),
      reloaded: (id, ok) => reloads.inc({ workload: id, result: ok ? 'ok' : 'failed' }),
      caReachable: (up) => {
        caUp = up ? 1 : 0;
      },
    },
  });
  // The Workload API needs no SVID yet to listen: callers get UNAVAILABLE-free waits or PERMISSION_DENIED.
  let workloadApi: WorkloadApiServer | undefined;
  if (config.workloadApi) {
    const metrics = workloadApiMetrics(registry, () => workloadApi?.connections ?? 0);
    workloadApi = await WorkloadApiServer.start({
      agent: running.workloadApi,
      config: config.workloadApi,
      logger: options.logger,
      events: metrics,
    });
  }
  const refreshExpiry = () => {
    for (const [id, s] of running.secondsToExpiry()) expiry.set(s, { workload: id });
  };
  const obs = await startObservabilityServer({
    host: config.observability.address,
    port: config.observability.port,
    registry,
    ready: () => {
      refreshExpiry();
      return running.ready();
    },
  });
  const writeStatus = async () => {
    refreshExpiry();
    const doc = {
      agent: running.agentId?.toString() ?? null,
      written_at: new Date().toISOString(),
      workloads: running.status(),
      workload_api_entries: running.workloadApi.identities.status(),
    };
    await writeFileAtomic(join(config.dataDir, STATUS_FILE), JSON.stringify(doc, null, 2) + '\n', 0o644).catch(
      (err: unknown) => options.logger.warn({ err }, 'cannot write the status file'),
    );
  };
  const timer = setInterval(() => void writeStatus(), options.statusIntervalMs ?? 5_000);
  timer.unref();
  options.logger.info(
    { trust_domain: config.trustDomain.name, observability_port: obs.port, workloads: config.workloads.length },
    'svidkit-agent started',
  );
  let closing: Promise<void> | undefined;
  return {
    agent: running,
    observabilityPort: obs.port,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        await workloadApi?.close();
        await running.close();
        await writeStatus();
        await obs.close();
      })();
      return closing;
    },
  };
}

/**
 * The Workload API's metrics, registered only when it is served. Every label value comes from a closed
 * set: /metrics is readable by whoever reaches the port, so no SPIFFE ID, uid, pid or path goes in.
 */
function workloadApiMetrics(registry: Registry, connections: () => number): WorkloadApiEvents {
  const streams = registry.register(
    new Gauge({
      name: 'svidkit_agent_workload_api_streams',
      help: 'open Workload API streams, by RPC',
      labelNames: ['rpc'],
    }),
  );
  for (const rpc of WORKLOAD_API_STREAM_RPCS) streams.set(0, { rpc });
  registry.register(
    new Gauge({
      name: 'svidkit_agent_workload_api_connections',
      help: 'open Workload API connections',
      collect: connections,
    }),
  );
  const refused = registry.register(
    new Counter({
      name: 'svidkit_agent_workload_api_attestation_failures_total',
      help: 'Workload API connections and calls refused, by reason',
      labelNames: ['reason'],
    }),
  );
  for (const reason of WORKLOAD_API_REFUSALS) refused.inc({ reason }, 0);
  const served = registry.register(
    new Counter({
      name: 'svidkit_agent_workload_api_svids_served_total',
      help: 'SVIDs sent to Workload API callers, by kind',
      labelNames: ['kind'],
    }),
  );
  for (const kind of ['x509', 'jwt']) served.inc({ kind }, 0);
  return {
    streamOpened: (rpc) => streams.inc({ rpc }),
    streamClosed: (rpc) => streams.dec({ rpc }),
    refused: (reason) => refused.inc({ reason }),
    served: (kind, count) => served.inc({ kind }, count),
  };
}

/** Reads the status file of a data dir, for `svidkit-agent status`. */
export async function readStatus(dataDir: string): Promise<AgentStatusDocument> {
  const text = await readSmall(join(dataDir, STATUS_FILE), 'status');
  try {
    return JSON.parse(text) as AgentStatusDocument;
  } catch (cause) {
    throw new SvidkitError('ERR_AGENT_STATE', `agent: ${join(dataDir, STATUS_FILE)} is not valid JSON`, { cause });
  }
}
