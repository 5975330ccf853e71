/**
 * Interop: the SPIFFE clients real workloads use (go-spiffe v2 and py-spiffe) against a real SPIRE
 * agent, the reference Workload API server. This proves the clients and the harness (the same
 * programs are pointed at svidkit-agent's Workload API when it serves one): X.509-SVIDs with their
 * bundle, JWT-SVIDs fetched and validated, a rotation seen on one open stream, and go-spiffe's
 * spiffetls mTLS between two workloads that each authorize the other's SPIFFE ID.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LiveClient, runClient } from './helpers/peer-process.js';
import { goOfflineEnv, note, peer, requirePeers, which } from './helpers/peers.js';
import { describePySpiffe } from './helpers/pyspiffe-suite.js';
import { type RunningSpire, startSpire } from './helpers/spire.js';
import { until } from './interop/mesh.js';

const spire = peer('spire');
const goSpiffe = peer('go-spiffe');

// SVIDs this short rotate within the test (SPIRE's agent renews at half-life, checking every ~5 s).
const ROTATING_TTL_SECONDS = 20;
const AUDIENCE = 'spiffe://example.org/interop/audience';

describe(`the SPIFFE Workload API of ${spire.label}, read by SPIFFE clients written elsewhere`, function () {
  this.timeout(180_000);
  let deployment: RunningSpire | undefined;
  let workloadId: string;

  before(async function () {
    requirePeers(this, 'spire');
    const bins = spire.found ? spire.extra : {};
    deployment = await startSpire({ server: bins['server']!, agent: bins['agent']! });
    const uid = process.getuid?.() ?? 0;
    workloadId = `spiffe://${deployment.trustDomain}/interop/uid-${uid}`;
    await deployment.createEntry({
      spiffeId: workloadId,
      selectors: [`unix:uid:${uid}`],
      x509SvidTtlSeconds: ROTATING_TTL_SECONDS,
    });
    await deployment.waitForX509Svid(workloadId);
    note(`SPIRE agent at ${deployment.endpoint} serves ${workloadId} to uid ${uid}`);
  });
  after(async () => {
    await deployment?.close();
  });

  const endpoint = () => deployment!.endpoint;

  describe(`${goSpiffe.label} (workloadapi, spiffetls)`, () => {
    let binary: string;

    before(async function () {
      // A first build compiles grpc-go; build-peers.sh has usually done it, so this only links.
      this.timeout(600_000);
      requirePeers(this, 'go-spiffe');
      const extra = goSpiffe.found ? goSpiffe.extra : {};
      binary = extra['binary']!;
      mkdirSync(dirname(binary), { recursive: true });
      const r = await runGo(
        goSpiffe.found ? goSpiffe.path : 'go',
        ['build', '-trimpath', '-o', binary, '.'],
        extra['source']!,
      );
      assert.equal(r.status, 0, `go build of the go-spiffe client failed:\n${r.output}`);
      const v = await runClient(binary, ['version']);
      note(`client built with ${JSON.stringify(v.lines[0])}`);
    });

    it('FetchX509SVID and FetchX509Bundles: the SVID verifies against the bundle served with it', async () => {
      const r = await runClient(binary, ['x509', '-socket', endpoint()]);
      assert.equal(r.status, 0, r.output);
      const [x] = r.lines;
      assert.equal(x!['spiffe_id'], workloadId);
      assert.deepEqual(x!['svids'], [workloadId]);
      assert.equal(x!['chain_length'], 1);
      assert.ok((x!['bundle_size'] as number) >= 1, r.output);
      assert.deepEqual(x!['trust_domains'], [`spiffe://${deployment!.trustDomain}`]);
      assert.equal(x!['verified'], true, r.output);
    });

    it('finds the agent through SPIFFE_ENDPOINT_SOCKET, and reports an absent socket as UNAVAILABLE', async () => {
      const ok = await runClient(binary, ['x509'], { ...process.env, SPIFFE_ENDPOINT_SOCKET: endpoint() });
      assert.equal(ok.status, 0, ok.output);
      assert.equal(ok.lines[0]!['spiffe_id'], workloadId);
      const absent = `unix://${deployment!.dir}/no-such.sock`;
      const bad = await runClient(binary, ['x509', '-timeout', '10s'], {
        ...process.env,
        SPIFFE_ENDPOINT_SOCKET: absent,
      });
      assert.equal(bad.status, 1, bad.output);
      assert.equal(bad.lines[0]!['code'], 'UNAVAILABLE', bad.output);
    });

    it('FetchJWTSVID, then ValidateJWTSVID of that token for its audience and not for another', async () => {
      const fetched = await runClient(binary, ['jwt', '-socket', endpoint(), '-audience', AUDIENCE]);
      assert.equal(fetched.status, 0, fetched.output);
      const jwt = fetched.lines[0]!;
      assert.equal(jwt['spiffe_id'], workloadId);
      assert.deepEqual(jwt['audience'], [AUDIENCE]);
      assert.equal(jwt['verified'], true, fetched.output);
      const token = jwt['token'] as string;
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

      const valid = await runClient(binary, [
        'validate',
        '-socket',
        endpoint(),
        '-audience',
        AUDIENCE,
        '-token',
        token,
      ]);
      assert.equal(valid.status, 0, valid.output);
      const claims = valid.lines[0]!['claims'] as Record<string, unknown>;
      assert.equal(valid.lines[0]!['spiffe_id'], workloadId);
      assert.equal(claims['sub'], workloadId);
      assert.deepEqual(claims['aud'], [AUDIENCE]);

      const other = await runClient(binary, [
        'validate',
        '-socket',
        endpoint(),
        '-audience',
        'spiffe://example.org/someone-else',
        '-token',
        token,
      ]);
      assert.equal(other.status, 1, other.output);
      assert.equal(other.lines[0]!['code'], 'INVALID_ARGUMENT', other.output);
    });

    it('FetchJWTSVID for a SPIFFE ID the caller has no entry for is refused', async () => {
      const r = await runClient(binary, [
        'jwt',
        '-socket',
        endpoint(),
        '-audience',
        AUDIENCE,
        '-spiffe-id',
        `spiffe://${deployment!.trustDomain}/not-registered`,
      ]);
      assert.equal(r.status, 1, r.output);
      assert.equal(r.lines[0]!['code'], 'PERMISSION_DENIED', r.output);
    });

    it('sees a rotation on the one open FetchX509SVID stream (a new serial, still verified)', async () => {
      const r = await runClient(binary, ['watch', '-socket', endpoint(), '-updates', '2', '-timeout', '80s']);
      assert.equal(r.status, 0, r.output);
      const updates = r.lines.filter((l) => l['event'] === 'update');
      assert.equal(updates.length, 2, r.output);
      assert.ok(
        updates.every((u) => u['spiffe_id'] === workloadId && u['verified'] === true),
        r.output,
      );
      assert.notEqual(updates[0]!['serial'], updates[1]!['serial'], 'the second update carries a new SVID');
      note(`rotated: serial ${String(updates[0]!['serial'])} -> ${String(updates[1]!['serial'])}`);
    });

    it('callers are told apart by uid: another uid gets only its own entry, an unregistered uid PERMISSION_DENIED', async function () {
      if (process.getuid?.() !== 0) {
        note('skipped: running the client under other uids needs root (CI runs as root)');
        this.skip();
      }
      const setpriv = which('setpriv');
      if (!setpriv) {
        note('skipped: setpriv (util-linux) is not on PATH');
        this.skip();
      }
      // The cached binary sits under root's home; the other uids run a copy beside the agent's socket.
      const shared = join(deployment!.dir, 'gospiffe');
      copyFileSync(binary, shared);
      chmodSync(shared, 0o755);
      const as = (uid: number, args: string[]) =>
        runClient(setpriv, [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', shared, ...args], {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        });
      const other = 65534;
      const unregistered = 65533;
      const otherId = `spiffe://${deployment!.trustDomain}/interop/uid-${other}`;
      await deployment!.createEntry({ spiffeId: otherId, selectors: [`unix:uid:${other}`] });
      let seen: Awaited<ReturnType<typeof as>> | undefined;
      await until(`the agent to serve ${otherId} to uid ${other}`, async () => {
        seen = await as(other, ['x509', '-socket', endpoint(), '-timeout', '10s']);
        return seen.status === 0;
      });
      assert.equal(seen!.lines[0]!['spiffe_id'], otherId, seen!.output);
      assert.deepEqual(seen!.lines[0]!['svids'], [otherId], 'uid 65534 sees its own entry only');
      const mine = await runClient(binary, ['x509', '-socket', endpoint()]);
      assert.deepEqual(mine.lines[0]!['svids'], [workloadId], `this uid does not see ${otherId}`);

      const denied = await as(unregistered, ['x509', '-socket', endpoint(), '-timeout', '10s']);
      assert.equal(denied.status, 1, denied.output);
      assert.equal(denied.lines[0]!['code'], 'PERMISSION_DENIED', denied.output);
    });

    it('spiffetls: a server and a client, each from the Workload API, authorize each other by SPIFFE ID', async () => {
      const server = new LiveClient(
        binary,
        [
          'serve',
          '-socket',
          endpoint(),
          '-addr',
          '127.0.0.1:0',
          '-authorize',
          workloadId,
          '-requests',
          '1',
          '-timeout',
          '80s',
        ],
        process.env,
      );
      try {
        const listening = await server.waitFor('the server to listen', (l) => l['event'] === 'listening');
        const addr = listening['addr'] as string;
        assert.equal(listening['spiffe_id'], workloadId);

        // A client that expects another server ID gives up in the handshake; the server is not answered.
        const wrong = await runClient(binary, [
          'dial',
          '-socket',
          endpoint(),
          '-addr',
          addr,
          '-authorize',
          `spiffe://${deployment!.trustDomain}/someone-else`,
        ]);
        assert.equal(wrong.status, 1, wrong.output);
        assert.match(String(wrong.lines[0]!['error']), /unexpected ID/, wrong.output);
        await server.waitFor('the refused handshake', (l) => l['event'] === 'refused');

        const dial = await runClient(binary, [
          'dial',
          '-socket',
          endpoint(),
          '-addr',
          addr,
          '-authorize',
          workloadId,
          '-message',
          'ping',
        ]);
        assert.equal(dial.status, 0, dial.output);
        const response = dial.lines[0]!;
        assert.equal(response['server'], workloadId);
        assert.deepEqual(response['reply'], { server: workloadId, peer: workloadId, echo: 'ping' });
        const request = await server.waitFor('the request', (l) => l['event'] === 'request');
        assert.equal(request['peer'], workloadId);
        assert.equal(await server.exited(), 0, server.describe());
      } finally {
        await server.stop();
      }
    });
  });

  describePySpiffe(' (WorkloadApiClient)', {
    endpoint: () => endpoint(),
    workloadId: () => workloadId,
    audience: AUDIENCE,
    oneSvid: true,
  });
});

/** Builds with the module cache only (build-peers.sh filled it); nothing is fetched here. */
function runGo(go: string, args: readonly string[], cwd: string): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      go,
      args,
      { cwd, env: goOfflineEnv(), timeout: 600_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ status: err ? 1 : 0, output: `${String(stdout)}${String(stderr)}` });
      },
    );
  });
}
