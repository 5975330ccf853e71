/**
 * A small real mesh for the interop suites: svidkit-ca (run) and svidkit-agent (runAgent) on loopback
 * in a temporary directory, with one registration entry per workload, parented by the agent. The agent
 * writes each workload's files as it would in production; the suites hand those files to the peers.
 */
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseAgentConfig } from '../../lib/agent/config.js';
import { type RunningAgent, runAgent } from '../../lib/agent/daemon.js';
import { AgentState } from '../../lib/agent/state.js';
import { tokenFileName } from '../../lib/layout/index.js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../../lib/attest/index.js';
import { parseCaConfig } from '../../lib/ca/config.js';
import { run, type RunningCa } from '../../lib/ca/daemon.js';
import { generateKeyPair, type KeyType } from '../../lib/keys/index.js';
import { createLogger } from '../../lib/observe/index.js';
import { SpiffeId } from '../../lib/spiffeid/index.js';
import { Certificate } from '../../lib/x509/certificate.js';
import { buildCsr } from '../../lib/x509/csr.js';
import { X509Svid } from '../../lib/x509svid/index.js';

/** The repository's test/interop directory (the compiled suites run from dist/test). */
export const INTEROP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'interop');
/** The repository's protos directory. */
export const PROTOS_DIR = resolve(INTEROP_DIR, '..', '..', 'protos');

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One workload of the mesh: its SPIFFE ID is `spiffe://<td>/ns/interop/sa/<name>`. */
export interface MeshWorkload {
  readonly name: string;
  readonly keyType?: KeyType;
  /** The entry's X.509-SVID lifetime; default 600 s. */
  readonly ttlSeconds?: number;
  /** The entry's JWT-SVID lifetime; default 120 s. */
  readonly jwtTtlSeconds?: number;
  readonly dnsNames?: readonly string[];
  readonly jwtAudiences?: readonly string[];
  /** The workload's `reload` section as written in the agent's YAML. */
  readonly reload?: Record<string, unknown>;
}

/** Options of startMesh. */
export interface MeshOptions {
  readonly trustDomain?: string;
  /** Extra keys of the CA configuration (merged at the top level; `ca` is merged too). */
  readonly caConfig?: Record<string, unknown>;
  readonly ca?: Record<string, unknown>;
  readonly workloads?: readonly MeshWorkload[];
  /** The agent's `rotation` section. */
  readonly rotation?: { fraction?: number; jitter?: number };
}

/** Paths of the files the agent keeps for one workload (stable names, symlinks through ..data). */
export interface WorkloadFiles {
  readonly dir: string;
  readonly svid: string;
  readonly key: string;
  readonly bundle: string;
  readonly jwtBundle: string;
  jwt(audience: string): string;
}

/** A running CA and, with workloads, an agent. */
export interface Mesh {
  readonly dir: string;
  readonly trustDomain: string;
  readonly ca: RunningCa;
  readonly agent: RunningAgent | undefined;
  /** The agent's data dir (its own SVID lives there). */
  readonly agentDataDir: string;
  /** Everything both daemons logged, for failure messages (SVIDKIT_TEST_LOGS=1 prints it live). */
  logs(): string;
  id(name: string): string;
  files(name: string): WorkloadFiles;
  /** The workload's current SVID, read through one resolution of ..data. */
  svid(name: string): X509Svid;
  /** The agent's own SVID. */
  agentSvid(): Promise<X509Svid>;
  /** The CA's X.509 roots as PEM. */
  rootsPem(): string;
  /** An SVID for `path` signed by this CA now (or at `now`), as the Node service signs them. */
  issue(path: string, options?: { now?: Date; ttlMs?: number; keyType?: KeyType; dnsNames?: string[] }): X509Svid;
  close(): Promise<void>;
}

/** Starts a CA and, when workloads are given, an agent that has written every workload's files. */
export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  const td = options.trustDomain ?? 'example.org';
  const dir = await mkdtemp(join(tmpdir(), 'svidkit-interop-'));
  let logText = '';
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => {
    logText += d.toString();
    if (process.env['SVIDKIT_TEST_LOGS']) process.stderr.write(d);
  });
  let ca: RunningCa | undefined;
  let agent: RunningAgent | undefined;
  const close = async () => {
    await agent?.close();
    await ca?.close(500);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const { ca: caSection, ...caRest } = options.caConfig ?? {};
    ca = await run(
      parseCaConfig(
        {
          trust_domain: td,
          data_dir: join(dir, 'ca'),
          listen: { port: 0 },
          observability: { port: 0 },
          ...caRest,
          ca: { ...(caSection as Record<string, unknown> | undefined), ...options.ca },
        },
        dir,
      ),
      { logger: createLogger({ name: 'svidkit-ca', destination: sink }) },
    );
    const running = ca;
    const workloads = options.workloads ?? [];
    const agentDataDir = join(dir, 'agent');
    const idOf = (name: string) => `spiffe://${td}/ns/interop/sa/${name}`;
    if (workloads.length > 0) {
      const token = generateJoinToken();
      const agentId = agentIdForJoinToken(running.context.config.trustDomain, token);
      await running.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
      for (const w of workloads) {
        await running.context.store.createEntry({
          spiffeId: idOf(w.name),
          parentId: agentId.toString(),
          x509SvidTtlSeconds: w.ttlSeconds ?? 600,
          jwtSvidTtlSeconds: w.jwtTtlSeconds ?? 120,
          dnsNames: [...(w.dnsNames ?? [])],
        });
      }
      writeFileSync(join(dir, 'bootstrap-bundle.pem'), running.context.keys.bundle().x509.toPem());
      const config = parseAgentConfig(
        {
          trust_domain: td,
          data_dir: agentDataDir,
          ca: { address: `127.0.0.1:${running.nodePort}`, bundle_file: join(dir, 'bootstrap-bundle.pem') },
          attestation: { join_token: token },
          observability: { port: 0 },
          backoff: { min: '100ms', max: '1s' },
          rotation: options.rotation ?? {},
          workloads: workloads.map((w) => ({
            spiffe_id: idOf(w.name),
            output_dir: join(dir, 'out', w.name),
            key_type: w.keyType ?? 'ec-p256',
            jwt_audiences: [...(w.jwtAudiences ?? [])],
            ...(w.reload ? { reload: w.reload } : {}),
          })),
        },
        dir,
      );
      agent = await runAgent(config, { logger: createLogger({ name: 'svidkit-agent', destination: sink }) });
      const started = agent;
      await until('the agent to write every workload', () => started.agent.ready());
    }
    const files = (name: string): WorkloadFiles => {
      const out = join(dir, 'out', name);
      return {
        dir: out,
        svid: join(out, 'svid.pem'),
        key: join(out, 'svid_key.pem'),
        bundle: join(out, 'svid_bundle.pem'),
        jwtBundle: join(out, 'jwt_bundle.json'),
        jwt: (aud) => join(out, 'jwt', tokenFileName(aud)),
      };
    };
    return {
      dir,
      trustDomain: td,
      ca: running,
      agent,
      agentDataDir,
      logs: () => logText,
      id: idOf,
      files,
      svid(name) {
        const out = files(name).dir;
        for (let attempt = 0; ; attempt++) {
          const version = join(out, readlinkSync(join(out, '..data')));
          try {
            return X509Svid.parse(readFileSync(join(version, 'svid.pem')), readFileSync(join(version, 'svid_key.pem')));
          } catch (err) {
            // The agent removed that version right after swapping ..data: resolve ..data again.
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 10) throw err;
          }
        }
      },
      async agentSvid() {
        const svid = await new AgentState(agentDataDir).loadIdentity();
        if (!svid) throw new Error('the agent has no SVID in its data dir');
        return svid;
      },
      rootsPem: () => running.context.keys.bundle().x509.toPem(),
      issue(path, o = {}) {
        const pair = generateKeyPair(o.keyType ?? 'ec-p256');
        const id = SpiffeId.parse(`spiffe://${td}${path}`);
        const { issuer, chain } = running.context.issuer();
        const issued = issuer.issue({
          id,
          csrDer: buildCsr({ key: pair.privateKey, uris: [id.toString()] }),
          now: o.now ?? new Date(),
          ttlMs: o.ttlMs ?? 600_000,
          dnsNames: o.dnsNames,
        });
        return X509Svid.fromParts(
          [issued.der, ...chain].map((d) => Certificate.fromDer(d)),
          pair.privateKey,
        );
      },
      close,
    };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    await close().catch(() => undefined);
    throw new Error(`could not start the mesh: ${why}\n${logText.slice(-4000)}`, { cause: err });
  }
}
