/**
 * svidkit-agent's SPIFFE Workload API, read by real clients: go-spiffe v2 (test/interop/gospiffe) and
 * svidkit's own WorkloadApiSource, against a real CA and agent, with callers told apart by the kernel.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { WorkloadApiSource } from '../lib/source/index.js';
import { loadWorkloadApi } from '../lib/workloadapi/index.js';
import { peer, requirePeers } from './helpers/peers.js';
import { startWorkloadMesh, type WorkloadMesh } from './helpers/workload-mesh.js';

const goSpiffe = peer('go-spiffe');

/** Runs a client program; resolves with its exit status and the JSON object of its first line. */
function runClient(
  cmd: string,
  args: string[],
): Promise<{ status: number; line: Record<string, unknown>; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 90_000, maxBuffer: 1 << 22 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      let line: Record<string, unknown> = {};
      try {
        line = JSON.parse(String(stdout).split('\n')[0] ?? '{}') as Record<string, unknown>;
      } catch {
        // left empty: the assertion on it names the output
      }
      resolve({ status, line, output: `${String(stdout)}${String(stderr)}` });
    });
  });
}

describe('svidkit-agent serves the SPIFFE Workload API to real clients', function () {
  this.timeout(120_000);
  let mesh: WorkloadMesh;
  let dir: string;
  let socket: string;
  const uid = process.getuid?.() ?? 0;
  const workloadId = `spiffe://example.org/api/uid-${uid}`;

  before(async function () {
    mesh = await startWorkloadMesh();
    ({ dir, socket } = mesh);
    await mesh.createEntry(workloadId, [`unix:uid:${uid}`]);
  });
  after(async () => {
    await mesh?.close();
  });

  it('WorkloadApiSource gets the caller’s SVID, attested by its uid', async () => {
    const source = await WorkloadApiSource.open({ address: `unix://${socket}` });
    try {
      assert.equal(source.getX509Svid().id.toString(), workloadId);
    } finally {
      await source.close();
    }
  });

  it('a request without the security header is INVALID_ARGUMENT', async () => {
    const { grpc, proto } = await loadWorkloadApi();
    const Client = proto.SpiffeWorkloadAPI as unknown as new (
      a: string,
      c: unknown,
    ) => {
      FetchJWTSVID(req: object, md: Metadata, cb: (err: { code: number } | null) => void): void;
      close(): void;
    };
    const c = new Client(`unix:${socket}`, grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number | undefined>((resolve) =>
        c.FetchJWTSVID({ audience: ['db'] }, new Metadata(), (err) => resolve(err?.code)),
      );
      assert.equal(code, grpc.status.INVALID_ARGUMENT);
    } finally {
      c.close();
    }
  });

  describe(`${goSpiffe.label}`, () => {
    let binary: string;
    before(function () {
      requirePeers(this, 'go-spiffe');
      const built = goSpiffe.found ? goSpiffe.extra['binary']! : '';
      if (!existsSync(built)) this.skip(); // built by test/interop/build-peers.sh (CI runs it first)
      // A copy other uids can run (the peer cache may sit in a private home directory).
      mkdirSync(join(dir, 'bin'), { recursive: true });
      binary = join(dir, 'bin', 'gospiffe');
      copyFileSync(built, binary);
      chmodSync(binary, 0o755);
    });
    const endpoint = () => `unix://${socket}`;

    it('FetchX509SVID: the SVID verifies against the bundle served with it', async () => {
      const r = await runClient(binary, ['x509', '-socket', endpoint()]);
      assert.equal(r.status, 0, r.output);
      assert.equal(r.line['spiffe_id'], workloadId);
      assert.equal(r.line['verified'], true);
    });

    it('FetchJWTSVID for an audience, and FetchX509Bundles / FetchJWTBundles', async () => {
      const jwt = await runClient(binary, ['jwt', '-audience', 'db', '-socket', endpoint()]);
      assert.equal(jwt.status, 0, jwt.output);
      assert.equal(jwt.line['spiffe_id'], workloadId);
      assert.deepEqual(jwt.line['audience'], ['db']);
      const bundles = await runClient(binary, ['bundles', '-socket', endpoint()]);
      assert.equal(bundles.status, 0, bundles.output);
      assert.deepEqual(bundles.line['x509_bundles'], { 'spiffe://example.org': 1 });
    });

    it('a caller of another uid with no entry gets PERMISSION_DENIED (as root)', async function () {
      if (uid !== 0) this.skip(); // only root can run the client as another uid
      const r = await runClient('setpriv', [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        binary,
        'x509',
        '-socket',
        endpoint(),
      ]);
      assert.equal(r.status, 1, r.output);
      assert.equal(r.line['code'], 'PERMISSION_DENIED', r.output);
    });
  });
});
