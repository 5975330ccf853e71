import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile, readlink, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { parseAgentConfig } from '../lib/agent/config.js';
import { type RunningAgent, runAgent } from '../lib/agent/daemon.js';
import { AgentState } from '../lib/agent/state.js';
import type { WriterFs } from '../lib/agent/writer.js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { BundleSet } from '../lib/bundle/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import { parseAndValidate } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { verifyPem, X509Svid } from '../lib/x509svid/index.js';
import { faultyFs, tempDir } from './helpers/agent-fs.js';
import { captureLog } from './helpers/ca-context.js';
import { psatClaims, signPsat } from './helpers/k8s.js';

const TD = TrustDomain.parse('example.org');
const ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 60_000): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const quiet = (name: string) =>
  createLogger({ name, destination: process.env.SVIDKIT_TEST_LOGS ? process.stderr : new PassThrough().resume() });

/** The shared agent's log lines, kept so that tests can wait for what it did (pino writes synchronously). */
const agentLog = captureLog();
const agentLogger = () =>
  createLogger({
    name: 'svidkit-agent',
    destination: {
      write(line: string) {
        agentLog.write(line);
        if (process.env.SVIDKIT_TEST_LOGS) process.stderr.write(line);
      },
    },
  });
/** The agent's log lines from index `from` on, parsed. */
const agentLines = (from = 0) => agentLog.lines().slice(from);
const isCaFailure = (l: Record<string, unknown>) => String(l['msg']).includes('CA step failed');
const isWrite = (workload: string) => (l: Record<string, unknown>) =>
  l['msg'] === 'workload files written' && l['workload'] === workload;

async function readPair(dir: string): Promise<X509Svid> {
  for (let attempt = 1; ; attempt++) {
    // Resolve ..data once, so certificate and key come from one version, as a careful reader does.
    const version = await readlink(join(dir, '..data'));
    try {
      const [cert, key] = await Promise.all([
        readFile(join(dir, version, 'svid.pem')),
        readFile(join(dir, version, 'svid_key.pem')),
      ]);
      return X509Svid.parse(cert, key);
    } catch (err) {
      // The writer removed that version after swapping in a newer one: read the newer one.
      const gone = (err as { code?: string }).code === 'ENOENT';
      if (!gone || attempt >= 10 || (await readlink(join(dir, '..data'))) === version) throw err;
    }
  }
}

describe('svidkit-agent against a real CA on loopback', function () {
  this.timeout(180_000);
  let dir: string;
  let ca: RunningCa;
  let caPort: number;
  const clusterKey = generateKeyPair('rsa-2048');
  const token = generateJoinToken();
  const agentId = agentIdForJoinToken(TD, token);
  let agent: RunningAgent | undefined;
  const fault = { on: false };
  const broken = faultyFs('write', 'ENOSPC', 1);
  const healthy = faultyFs('write', 'ENOSPC', Number.POSITIVE_INFINITY);
  const switchable = new Proxy({} as WriterFs, {
    get: (_t, k: keyof WriterFs) => (fault.on ? broken : healthy)[k],
  });

  const caConfig = () =>
    parseCaConfig(
      {
        trust_domain: 'example.org',
        data_dir: join(dir, 'ca'),
        listen: { port: caPort },
        observability: { port: 0 },
        x509_svid_ttl: '30s',
        attestation: {
          k8s_psat: {
            clusters: [
              {
                name: 'c1',
                issuer: ISSUER,
                audience: 'svidkit-ca',
                jwks_file: join(dir, 'jwks.json'),
                allow: [{ namespace: 'svidkit', service_account: 'svidkit-agent' }],
              },
            ],
          },
        },
      },
      dir,
    );
  let caUp = false;
  const startCa = async () => {
    ca = await run(caConfig(), { logger: quiet('svidkit-ca') });
    caUp = true;
  };
  const stopCa = async () => {
    caUp = false;
    await ca.close(200);
  };

  before(async () => {
    dir = await tempDir('svidkit-agent-it-');
    caPort = await freePort();
    writeFileSync(
      join(dir, 'jwks.json'),
      JSON.stringify({ keys: [{ ...clusterKey.publicKey.export({ format: 'jwk' }), kid: 'k1' }] }),
    );
    await startCa();
    writeFileSync(join(dir, 'bundle.pem'), ca.context.keys.bundle().x509.toPem());
    await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
    for (const [path, ttl] of [
      ['/ns/prod/sa/web', 12],
      ['/ns/prod/sa/api', 600],
    ] as const) {
      await ca.context.store.createEntry({
        spiffeId: `spiffe://example.org${path}`,
        parentId: agentId.toString(),
        x509SvidTtlSeconds: ttl,
        jwtSvidTtlSeconds: 60,
        dnsNames: [],
      });
    }
  });
  // The tests share one CA and one agent: a test that fails half-way must not leave the CA stopped or
  // the output directory failing for the tests after it.
  afterEach(async () => {
    fault.on = false;
    if (!caUp) await startCa();
  });
  after(async () => {
    await agent?.close();
    if (caUp) await ca.close(500);
    await rm(dir, { recursive: true, force: true });
  });

  const agentConfig = (dataDir: string, attestation: Record<string, unknown>, workloads: Record<string, unknown>[]) =>
    parseAgentConfig(
      {
        trust_domain: 'example.org',
        data_dir: dataDir,
        ca: { address: `127.0.0.1:${caPort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation,
        observability: { port: 0 },
        backoff: { min: '100ms', max: '1s' },
        workloads,
      },
      dir,
    );

  it('attests with a join token and writes every workload set, ready only then', async () => {
    const reloadLog = join(dir, 'reloads.log');
    const config = agentConfig(join(dir, 'agent'), { join_token: token }, [
      {
        spiffe_id: 'spiffe://example.org/ns/prod/sa/web',
        output_dir: join(dir, 'out', 'web'),
        jwt_audiences: ['spiffe://example.org/ns/prod/sa/db'],
        reload: {
          exec: {
            command: [process.execPath, '-e', `require('fs').appendFileSync(${JSON.stringify(reloadLog)}, 'r\\n')`],
          },
        },
      },
      { spiffe_id: 'spiffe://example.org/ns/prod/sa/api', output_dir: join(dir, 'out', 'api'), key_type: 'rsa-2048' },
      { spiffe_id: 'spiffe://example.org/ns/prod/sa/nobody', output_dir: join(dir, 'out', 'nobody') },
    ]);
    agent = await runAgent(config, { logger: agentLogger(), writerFs: switchable, statusIntervalMs: 200 });
    await until('web and api files', () => agent!.agent.status().filter((w) => w.rotations > 0).length === 2);
    assert.equal(agent.agent.ready(), false, 'a workload without an entry keeps the agent not ready');
    const readyz = await fetch(`http://127.0.0.1:${agent.observabilityPort}/readyz`);
    assert.equal(readyz.status, 503);
    assert.equal(agent.agent.status().find((w) => w.spiffeId.endsWith('/nobody'))?.lastError, 'no registration entry');

    const web = await readPair(join(dir, 'out', 'web'));
    assert.equal(web.id.toString(), 'spiffe://example.org/ns/prod/sa/web');
    verifyPem(readFileSync(join(dir, 'out', 'web', 'svid.pem')), new BundleSet([ca.context.keys.bundle()]));
    const api = await readPair(join(dir, 'out', 'api'));
    assert.equal(api.leaf.publicKey.asymmetricKeyType, 'rsa');
    const jwt = readFileSync(join(dir, 'out', 'web', 'jwt', 'spiffe___example.org_ns_prod_sa_db.token'), 'utf8').trim();
    const parsed = await parseAndValidate(
      jwt,
      new BundleSet([ca.context.keys.bundle()]),
      'spiffe://example.org/ns/prod/sa/db',
    );
    assert.equal(parsed.id.toString(), 'spiffe://example.org/ns/prod/sa/web');
    const meta = JSON.parse(readFileSync(join(dir, 'out', 'web', 'meta.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(meta['spiffe_id'], 'spiffe://example.org/ns/prod/sa/web');
    // The agent keeps its own SVID and key in its data dir, key file 0600.
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(dir, 'agent')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'agent', 'agent_identity.json')).mode & 0o777, 0o600);
  });

  it('rotates at half-life; a reader never sees a certificate with another version key; reload fires once per write', async function () {
    // 10,000 reads take long on a loaded machine; the limit below only guards against a hang.
    this.timeout(600_000);
    const out = join(dir, 'out', 'web');
    const first = (await readPair(out)).leaf.serialHex;
    // Only a read that parsed a pair counts; readPair already retries a version removed under it, so
    // any failure at all (a key mismatch, a torn or missing file) is a defect of the writer.
    let reads = 0;
    let mismatches = 0;
    const failures: string[] = [];
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        try {
          await readPair(out);
          reads++;
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (code === 'ERR_X509SVID_KEY_MISMATCH') mismatches++;
          if (failures.length < 5) failures.push(`${code}: ${(err as Error).message}`);
          else failures.length++;
        }
      }
    })();
    try {
      await until(
        'two rotations of web',
        async () => {
          const s = agent!.agent.status().find((w) => w.spiffeId.endsWith('/web'))!;
          return s.rotations >= 3 && (await readPair(out)).leaf.serialHex !== first && reads >= 10_000;
        },
        590_000,
      );
    } finally {
      // Also on failure: a reader left running would keep the process busy and alive after the tests.
      stop = true;
      await reader;
    }
    assert.equal(mismatches, 0);
    assert.deepEqual(failures, [], `${failures.length} failed reads`);
    process.stdout.write(`      (${reads} reads during rotations, ${mismatches} mismatches, no failed read)\n`);
    // The reload runs just after each write; once it has caught up, there is one line per written version.
    const written = () => agent!.agent.status().find((w) => w.spiffeId.endsWith('/web'))!.rotations;
    const reloads = () => readFileSync(join(dir, 'reloads.log'), 'utf8').trim().split('\n').length;
    await until('reloads to catch up with writes', () => reloads() >= written());
    assert.equal(reloads(), written(), 'the reload action fires exactly once per written version');
  });

  it('rewrites the bundle files and fires the reload when the CA publishes a new bundle', async () => {
    const out = join(dir, 'out', 'api');
    const before = readFileSync(join(out, 'svid_bundle.pem'), 'utf8');
    const reloadsBefore = readFileSync(join(dir, 'reloads.log'), 'utf8').split('\n').length;
    await ca.context.keys.rotate('x509');
    const want = ca.context.keys.bundle().x509.toPem();
    // The trust bundle later agents use to reach the CA follows too; written first, so that the tests
    // after this one start from the CA's current roots even when this one fails.
    writeFileSync(join(dir, 'bundle.pem'), want);
    const t = await until('the new bundle on disk', () => readFileSync(join(out, 'svid_bundle.pem'), 'utf8') === want);
    assert.notEqual(want, before);
    process.stdout.write(`      (bundle rewritten ${t} ms after the CA published it)\n`);
    await until(
      'the reload after the bundle change',
      () => readFileSync(join(dir, 'reloads.log'), 'utf8').split('\n').length > reloadsBefore,
    );
  });

  it('exports per-workload expiry and CA reachability, and writes the status that `svidkit-agent status` prints', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${agent!.observabilityPort}/metrics`)).text();
    assert.match(
      metrics,
      /svidkit_agent_svid_expiry_seconds\{workload="spiffe:\/\/example.org\/ns\/prod\/sa\/api"\} \d+/,
    );
    assert.match(metrics, /svidkit_agent_ca_reachable 1/);
    assert.match(metrics, /svidkit_agent_rotations_total\{workload="spiffe:\/\/example.org\/ns\/prod\/sa\/web"\} \d+/);
    const cfgFile = join(dir, 'agent.yaml');
    writeFileSync(
      cfgFile,
      `trust_domain: example.org\ndata_dir: ${join(dir, 'agent')}\nca: { address: "127.0.0.1:${caPort}", bundle_file: ${join(dir, 'bundle.pem')} }\nattestation: { join_token_file: ${join(dir, 'unused.token')} }\n`,
    );
    await until('a status file', async () => {
      try {
        return (await readFile(join(dir, 'agent', 'status.json'), 'utf8')).includes('/ns/prod/sa/web');
      } catch {
        return false;
      }
    });
    // Asynchronously: the agent runs in this process, and a blocked event loop would stall it.
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit-agent.js');
    const status = async (...extra: string[]) =>
      (
        await promisify(execFile)(process.execPath, [bin, 'status', '--config', cfgFile, ...extra], {
          encoding: 'utf8',
        })
      ).stdout;
    const table = await status();
    assert.match(table, /^agent: spiffe:\/\/example.org\/svidkit\/agent\/join_token\//);
    assert.match(table, /spiffe:\/\/example.org\/ns\/prod\/sa\/web\s+\d{4}-\d{2}-\d{2}T/);
    const json = JSON.parse(await status('--json')) as {
      workloads: { spiffeId: string; nextRotation?: string }[];
    };
    assert.ok(json.workloads.find((w) => w.spiffeId.endsWith('/api'))?.nextRotation);
  });

  it('keeps the previous files when the output dir fails (ENOSPC) and counts the failure', async () => {
    const out = join(dir, 'out', 'web');
    const before = readFileSync(join(out, 'svid.pem'));
    const failuresBefore = agent!.agent.status().find((w) => w.spiffeId.endsWith('/web'))!.failures;
    fault.on = true;
    await until(
      'a failed rotation',
      () => agent!.agent.status().find((w) => w.spiffeId.endsWith('/web'))!.failures > failuresBefore,
    );
    assert.deepEqual(readFileSync(join(out, 'svid.pem')), before, 'the files in place are untouched');
    await readPair(out);
    const metrics = await (await fetch(`http://127.0.0.1:${agent!.observabilityPort}/metrics`)).text();
    assert.match(
      metrics,
      /svidkit_agent_rotation_failures_total\{workload="spiffe:\/\/example.org\/ns\/prod\/sa\/web"\} [1-9]/,
    );
    fault.on = false;
    const serial = (await readPair(out)).leaf.serialHex;
    await until('recovery after the fault', async () => (await readPair(out)).leaf.serialHex !== serial);
  });

  it('survives a CA outage with files in place and recovers when the CA is back', async () => {
    const out = join(dir, 'out', 'web');
    const web = 'spiffe://example.org/ns/prod/sa/web';
    await stopCa();
    // An SVID the CA issued before it stopped may still be written after close() (a rotation was due
    // just then): the outage starts for the agent with its first failed CA step. Its loop runs one step
    // at a time, so every write of an earlier step is on disk by then.
    const closed = agentLog.lines().length;
    await until('the agent to see the CA fail', () => agentLines(closed).some(isCaFailure));
    const seen = agentLog.lines().length;
    const version = await readlink(join(out, '..data'));
    const before = await readPair(out);
    // Two more failed attempts (backoff from 100 ms to 1 s): files stay as they are through each.
    await until('two more failed CA steps', () => agentLines(seen).filter(isCaFailure).length >= 2);
    assert.deepEqual(agentLines(seen).filter(isWrite(web)), [], 'nothing is rewritten while the CA is away');
    assert.equal(await readlink(join(out, '..data')), version, 'the same version stays in place');
    const during = await readPair(out);
    assert.equal(during.leaf.serialHex, before.leaf.serialHex);
    await startCa();
    const t = await until(
      'a rotation after the CA came back',
      async () => (await readPair(out)).leaf.serialHex !== before.leaf.serialHex,
    );
    process.stdout.write(
      `      (first new SVID ${t} ms after the CA came back; backoff max 1 s, web renews every ~6 s)\n`,
    );
  });

  it('renews over mTLS after a restart without attesting again (the join token is single use)', async () => {
    await agent!.close();
    agent = undefined;
    const config = agentConfig(join(dir, 'agent'), { join_token: token }, [
      { spiffe_id: 'spiffe://example.org/ns/prod/sa/api', output_dir: join(dir, 'out', 'api2') },
    ]);
    agent = await runAgent(config, { logger: quiet('svidkit-agent') });
    await until('api2 files', () => agent!.agent.ready());
    assert.equal(agent.agent.agentId?.toString(), agentId.toString());
    await agent.close();
    agent = undefined;
  });

  it('attests again by itself when its own SVID has expired (Kubernetes token re-read from its file)', async () => {
    const data = join(dir, 'agent-k8s');
    const psatId = 'spiffe://example.org/svidkit/agent/k8s_psat/c1/node-1';
    await ca.context.store.createEntry({
      spiffeId: 'spiffe://example.org/ns/k8s/sa/w',
      parentId: psatId,
      x509SvidTtlSeconds: 600,
      jwtSvidTtlSeconds: 60,
      dnsNames: [],
    });
    // An agent SVID signed by the CA that expired an hour ago, as after a long outage.
    const key = generateKeyPair();
    const { issuer } = ca.context.issuer();
    const old = issuer.issue({
      id: SpiffeId.parse(psatId),
      csrDer: buildCsr({ key: key.privateKey }),
      now: new Date(Date.now() - 3 * 3600_000),
      ttlMs: 3600_000,
    });
    const state = new AgentState(data);
    await state.init();
    await state.saveIdentity(X509Svid.fromParts([Certificate.fromDer(old.der)], key.privateKey));
    const tokenFile = join(dir, 'psat.token');
    const claims = psatClaims({
      iss: ISSUER,
      aud: 'svidkit-ca',
      now: Math.floor(Date.now() / 1000),
      nodeName: 'node-1',
    });
    writeFileSync(tokenFile, await signPsat(claims, clusterKey.privateKey, { alg: 'RS256', kid: 'k1' }));
    const config = agentConfig(data, { k8s_psat: { token_file: tokenFile, cluster: 'c1' } }, [
      { spiffe_id: 'spiffe://example.org/ns/k8s/sa/w', output_dir: join(dir, 'out', 'k8s') },
    ]);
    agent = await runAgent(config, { logger: quiet('svidkit-agent') });
    await until('files after re-attestation', () => agent!.agent.ready());
    const renewed = await state.loadIdentity();
    assert.ok(renewed && renewed.expiresAt.getTime() > Date.now(), 'a fresh agent SVID replaced the expired one');
    assert.notEqual(renewed.leaf.serialHex, old.serialHex);
  });
});
