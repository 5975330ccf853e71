/**
 * Interop 4: Python's grpcio (gRPC C-core, a TLS stack nobody here wrote) as the client of svidkit's
 * gRPC servers, with stubs generated at test time from protos/ and the SVID files the agent writes.
 * It calls the CA's health service (and its Node service with the agent's own SVID), and a library
 * service served with mtlsServerCredentials and authorizeService, where an unauthorized SPIFFE ID gets
 * PERMISSION_DENIED.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server } from '@grpc/grpc-js';
import { authorizeId } from '../lib/authorize/index.js';
import { HealthService } from '../lib/grpc/health.js';
import { authorizeService, callerId, mtlsServerCredentials } from '../lib/grpc/mtls.js';
import { healthProto } from '../lib/grpc/protos.js';
import { FileSource } from '../lib/source/index.js';
import { note, type Peer, peer, requirePeers } from './helpers/peers.js';
import { INTEROP_DIR, type Mesh, PROTOS_DIR, startMesh } from './interop/mesh.js';

function runFile(cmd: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
      (err, stdout, stderr) =>
        resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** Generates the Python stubs for both protos into `out`, with grpc_tools or protoc and grpc_python_plugin. */
async function generateStubs(python: Peer, out: string): Promise<string> {
  const protos = ['grpc/health/v1/health.proto', 'svidkit/ca/v1/ca.proto'];
  const common = [`-I${PROTOS_DIR}`, `--python_out=${out}`, `--grpc_python_out=${out}`, ...protos];
  const r =
    python.extra['generator'] === 'grpc_tools'
      ? await runFile(python.path, ['-m', 'grpc_tools.protoc', ...common])
      : await runFile(python.extra['protoc']!, [
          `--plugin=protoc-gen-grpc_python=${python.extra['plugin']!}`,
          ...common,
        ]);
  assert.equal(r.status, 0, `stub generation failed:\n${r.stdout}${r.stderr}`);
  return python.extra['generator'] === 'grpc_tools' ? 'grpc_tools.protoc' : String(python.extra['protocVersion']);
}

interface CallResult {
  call: string;
  code: string;
  status?: string;
  spiffe_ids?: string[];
  details?: string;
}

const grpcPeer = peer('python-grpc');

describe(`${grpcPeer.label} calls svidkit gRPC services over mTLS with SVIDs`, function () {
  this.timeout(120_000);
  let python: Peer;
  let mesh: Mesh | undefined;
  let stubs = '';
  let serverSource: FileSource | undefined;
  let serverCreds: ReturnType<typeof mtlsServerCredentials> | undefined;
  const server = new Server();
  let port = 0;
  const callers: string[] = [];

  /** Runs the Python client; the first line it prints names the versions it ran with. */
  const pyCall = async (
    target: string,
    identity: { cert: string; key: string } | undefined,
    roots: string,
    calls: string[],
  ): Promise<CallResult[]> => {
    const args = [
      join(INTEROP_DIR, 'grpc_client.py'),
      '--stubs',
      stubs,
      '--target',
      target,
      '--server-name',
      'localhost',
      '--roots',
      roots,
      ...(identity ? ['--cert', identity.cert, '--key', identity.key] : []),
      ...calls,
    ];
    const r = await runFile(python.path, args);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const [versions, ...results] = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.match(String(versions!['grpcio']), /^\d+\.\d+/);
    return results as unknown as CallResult[];
  };
  const identity = (name: string) => ({ cert: mesh!.files(name).svid, key: mesh!.files(name).key });

  before(async function () {
    [python] = requirePeers(this, 'python-grpc');
    mesh = await startMesh({
      workloads: [
        // C-core checks the server's DNS name (the target name override), so the served SVID carries one.
        { name: 'grpc-server', dnsNames: ['localhost'] },
        { name: 'py-client' },
        { name: 'py-intruder' },
      ],
    });
    stubs = await mkdtemp(join(tmpdir(), 'svidkit-interop-pystubs-'));
    const generator = await generateStubs(python, stubs);
    note(`stubs generated from protos/ with ${generator}`);

    serverSource = await FileSource.open(mesh.files('grpc-server').dir);
    const health = new HealthService(['svidkit.interop.Demo']);
    health.setStatus('', 'SERVING');
    health.setStatus('svidkit.interop.Demo', 'SERVING');
    const handlers = health.handlers();
    server.addService(
      healthProto().grpc.health.v1.Health.service,
      authorizeService(
        {
          ...handlers,
          Check: (call: Parameters<typeof handlers.Check>[0], cb: Parameters<typeof handlers.Check>[1]) => {
            callers.push(String(callerId(call)));
            handlers.Check(call, cb);
          },
        },
        serverSource,
        authorizeId(mesh.id('py-client')),
      ),
    );
    serverCreds = mtlsServerCredentials(serverSource);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCreds!.credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
  });
  after(async () => {
    server.forceShutdown();
    serverCreds?.close();
    await serverSource?.close();
    await mesh?.close();
    if (stubs) await rm(stubs, { recursive: true, force: true });
  });

  it("calls the CA's grpc.health.v1 service with a workload SVID", async () => {
    const res = await pyCall(`127.0.0.1:${mesh!.ca.nodePort}`, identity('py-client'), mesh!.files('py-client').bundle, [
      'health:',
      'health:svidkit.ca.v1.Node',
    ]);
    assert.deepEqual(res, [
      { call: 'health:', code: 'OK', status: 'SERVING' },
      { call: 'health:svidkit.ca.v1.Node', code: 'OK', status: 'SERVING' },
    ]);
  });

  it("calls the CA's Node service: entries with the agent's SVID, refused with a workload's", async () => {
    const agent = await mesh!.agentSvid();
    writeFileSync(join(stubs, 'agent.pem'), agent.certificatesPem());
    writeFileSync(join(stubs, 'agent.key'), agent.privateKeyPem(), { mode: 0o600 });
    const target = `127.0.0.1:${mesh!.ca.nodePort}`;
    const roots = mesh!.files('py-client').bundle;
    const [asAgent] = await pyCall(target, { cert: join(stubs, 'agent.pem'), key: join(stubs, 'agent.key') }, roots, [
      'entries',
    ]);
    assert.equal(asAgent!.code, 'OK', asAgent!.details);
    assert.deepEqual(asAgent!.spiffe_ids, ['grpc-server', 'py-client', 'py-intruder'].map((n) => mesh!.id(n)).sort());
    const [asWorkload] = await pyCall(target, identity('py-client'), roots, ['entries']);
    assert.equal(asWorkload!.code, 'PERMISSION_DENIED', asWorkload!.details);
  });

  it('calls a library service (mtlsServerCredentials + authorizeService); the server sees the caller ID', async () => {
    const before = callers.length;
    const res = await pyCall(`127.0.0.1:${port}`, identity('py-client'), mesh!.files('py-client').bundle, [
      'health:',
      'health:svidkit.interop.Demo',
    ]);
    assert.deepEqual(res, [
      { call: 'health:', code: 'OK', status: 'SERVING' },
      { call: 'health:svidkit.interop.Demo', code: 'OK', status: 'SERVING' },
    ]);
    assert.deepEqual(callers.slice(before), [mesh!.id('py-client'), mesh!.id('py-client')]);
  });

  it('gets PERMISSION_DENIED with an SVID whose ID the service does not authorize', async () => {
    const before = callers.length;
    const [res] = await pyCall(`127.0.0.1:${port}`, identity('py-intruder'), mesh!.files('py-intruder').bundle, [
      'health:',
    ]);
    assert.equal(res!.code, 'PERMISSION_DENIED', res!.details);
    assert.equal(callers.length, before, 'the handler never ran');
  });

  it('cannot reach the library service without a client certificate (UNAVAILABLE)', async () => {
    const [res] = await pyCall(`127.0.0.1:${port}`, undefined, mesh!.files('py-client').bundle, ['health:']);
    assert.equal(res!.code, 'UNAVAILABLE', res!.details);
  });
});
