import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalMesh } from '../lib/mesh/index.js';
import { runCli } from './helpers/cli.js';

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'local-mesh.js');

function runEntry(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ENTRY, ...args], { encoding: 'utf8', timeout: 90_000 }, (err, out, errOut) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out, err: errOut }),
    );
  });
}

async function until(what: string, cond: () => boolean, limitMs: number): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the local mesh of npm start (real CA and agent processes, real services)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-mesh-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('issues, rotates and keeps both demo services calling each other with no failed call', async () => {
    const lines: string[] = [];
    const mesh = await startLocalMesh({
      dir,
      say: (who, line) => lines.push(`[${who}] ${line}`),
      svidTtlSeconds: 30,
      callIntervalMs: 1000,
    });
    try {
      assert.equal(statSync(mesh.adminSocket).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'mesh', 'join-token')).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'workloads', 'web', 'svid_key.pem')).mode & 0o777, 0o600);
      // orders reads the Workload API: no files of its own, and this process is served both entries of its uid.
      assert.equal(existsSync(join(dir, 'workloads', 'orders')), false);
      assert.equal(mesh.workloadApiSocket, join(dir, 'agent', 'public', 'api.sock'));
      // What a person beside the mesh sees with `svidkit api fetch x509`: both identities of this uid.
      const fetched = await runCli(['api', 'fetch', 'x509', '--json', '--socket', `unix://${mesh.workloadApiSocket}`]);
      assert.equal(fetched.code, 0, fetched.err);
      assert.deepEqual(
        (JSON.parse(fetched.out) as { svids: { spiffe_id: string }[] }).svids.map((s) => s.spiffe_id).sort(),
        ['spiffe://example.org/demo/cli', 'spiffe://example.org/demo/orders'],
      );
      // Both services pick up a rotated SVID (30 s SVIDs are renewed at about half their life).
      await Promise.race([until('two rotations', () => mesh.stats.rotations >= 2, 60_000), mesh.failed]);
      const callsAtRotation = mesh.stats.calls;
      await until('calls after the rotation', () => mesh.stats.calls >= callsAtRotation + 4, 20_000);
    } finally {
      await mesh.stop();
    }
    assert.equal(mesh.stats.failures, 0, lines.filter((l) => l.includes('failed')).join('\n'));
    const text = lines.join('\n');
    for (const expected of [
      /\[ca\] issued X\.509-SVID spiffe:\/\/example\.org\/demo\/web/,
      /\[ca\] issued JWT-SVID spiffe:\/\/example\.org\/demo\/orders for spiffe:\/\/example\.org\/demo\/web/,
      /\[agent\] attested as spiffe:\/\/example\.org\/svidkit\/agent\/join_token\//,
      /\[web → orders\] gRPC GetOrder \S+ OK .* orders saw caller spiffe:\/\/example\.org\/demo\/web/,
      /\[orders → web\] HTTPS GET \/stock 200 .* web saw caller spiffe:\/\/example\.org\/demo\/orders/,
      /\[web\] picked up a rotated SVID from files without a restart/,
      /\[orders\] picked up a rotated SVID from the Workload API without a restart/,
      /\[agent\] minted spiffe:\/\/example\.org\/demo\/orders for the Workload API, in memory only/,
      /\[agent\] SPIFFE_ENDPOINT_SOCKET=unix:\/\/\/\S+\/agent\/public\/api\.sock$/m,
      /\[mesh\] registered spiffe:\/\/example\.org\/demo\/cli under the agent \(entry \S+, Workload API, selector unix:uid:\d+,/,
      /\[mesh\] stopped \(\d+ calls, 0 failed, \d+ rotations picked up\)/,
    ]) {
      assert.match(text, expected);
    }
    assert.doesNotMatch(text, /PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}\./, 'no key or token in the lines');
    assert.equal(existsSync(mesh.adminSocket), false, 'the CA stopped and removed its socket');
  });

  it("npm start's entry point runs again on the same data dir and stops cleanly", async () => {
    const res = await runEntry(['--dir', dir, '--ttl', '60', '--interval', '1', '--duration', '4']);
    assert.equal(res.code, 0, res.err);
    assert.match(res.out, /\[web → orders\] +gRPC GetOrder \S+ OK/);
    assert.match(res.out, /\[orders → web\] +HTTPS GET \/stock 200/);
    assert.match(res.out, /--duration 4s reached/);
    assert.match(res.out, /\[mesh\] +stopped \(\d+ calls, 0 failed/);
    assert.doesNotMatch(res.err, /\n\s+at /, 'no stack trace');
  });

  it('refuses a bad option with one line and exit 2', async () => {
    const res = await runEntry(['--ttl', 'soon']);
    assert.equal(res.code, 2);
    assert.match(res.err, /^error ERR_USAGE: .+\n$/);
  });
});
