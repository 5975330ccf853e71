/**
 * svidkit-agent's SPIFFE Workload API, read by real clients: go-spiffe v2 (test/interop/gospiffe),
 * py-spiffe (test/interop/pyspiffe) and svidkit's own WorkloadApiSource, against a real CA and agent,
 * with callers told apart by the kernel: X.509- and JWT-SVIDs, ValidateJWTSVID, spiffetls mTLS between
 * a go-spiffe workload and an svidkit one in both directions, and a rotation seen on one open stream.
 */
import { strict as assert } from 'node:assert';
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type * as tls from 'node:tls';
import { Metadata } from '@grpc/grpc-js';
import { authorizeId } from '../lib/authorize/index.js';
import { WorkloadApiSource } from '../lib/source/index.js';
import { connectMtls, createMtlsServer, peerSpiffeId } from '../lib/tls/index.js';
import { loadWorkloadApi } from '../lib/workloadapi/index.js';
import { checkError } from './helpers/assert.js';
import { type Line, LiveClient, runClient } from './helpers/peer-process.js';
import { note, peer, requirePeers } from './helpers/peers.js';
import { describePySpiffe } from './helpers/pyspiffe-suite.js';
import { startWorkloadMesh, type WorkloadMesh } from './helpers/workload-mesh.js';

const goSpiffe = peer('go-spiffe');
const uid = process.getuid?.() ?? 0;
const AUDIENCE = 'spiffe://example.org/interop/audience';
// Longest line either side of the mTLS exchange sends; the programs' own bound is 4 KiB.
const MAX_LINE = 4096;

/**
 * The go-spiffe program where every uid can run it: the peer cache may sit in a private home
 * directory, so a copy goes into the mesh's 0755 directory. Skips (outside CI) when it was not built.
 */
function goBinary(ctx: Mocha.Context, dir: string): string {
  requirePeers(ctx, 'go-spiffe');
  const built = goSpiffe.found ? goSpiffe.extra['binary']! : '';
  if (!existsSync(built)) {
    if (process.env['CI'] === 'true') throw new Error(`${built} is missing: run test/interop/build-peers.sh`);
    note(`skipped: ${built} is not built (run test/interop/build-peers.sh)`);
    ctx.skip();
  }
  mkdirSync(join(dir, 'bin'), { recursive: true });
  const binary = join(dir, 'bin', 'gospiffe');
  copyFileSync(built, binary);
  chmodSync(binary, 0o755);
  return binary;
}

/** The command line that runs `args` as `asUid` (root only), or as this process's user. */
function asUser(asUid: number | undefined, binary: string, args: string[]): [string, string[]] {
  if (asUid === undefined) return [binary, args];
  return ['setpriv', [`--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups', binary, ...args]];
}

/** Reads one line (bounded) from a TLS socket. */
function readLine(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        socket.off('data', onData);
        resolve(buf.slice(0, nl));
      } else if (buf.length > MAX_LINE) {
        socket.destroy();
        reject(new Error('line too long'));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => reject(new Error(`connection ended before a line: ${JSON.stringify(buf)}`)));
  });
}

/**
 * Resolves once the agent holds an SVID for `spiffeId`, asking it for its entries now. A caller that
 * already matches an entry does not make the agent look for new ones, so a second entry for the same
 * caller is waited for here, on the agent's own change notifications.
 */
function agentServes(mesh: WorkloadMesh, spiffeId: string, limitMs = 60_000): Promise<void> {
  const ids = mesh.agent.agent.workloadApi.identities;
  const held = () => ids.status().some((s) => s.spiffeId === spiffeId && s.serial !== undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`the agent did not mint ${spiffeId}`)), limitMs);
    const stop = ids.subscribe(() => {
      if (held()) finish();
    });
    function finish(err?: Error): void {
      clearTimeout(timer);
      stop();
      if (err) reject(err);
      else resolve();
    }
    if (held()) finish();
    else void mesh.agent.agent.requestEntrySync();
  });
}

describe('svidkit-agent serves the SPIFFE Workload API to real clients', function () {
  this.timeout(120_000);
  let mesh: WorkloadMesh;
  let dir: string;
  let socket: string;
  const workloadId = `spiffe://example.org/api/uid-${uid}`;
  const endpoint = () => `unix://${socket}`;

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
      binary = goBinary(this, dir);
    });

    it('FetchX509SVID: the SVID verifies against the bundle served with it', async () => {
      const r = await runClient(binary, ['x509', '-socket', endpoint()]);
      assert.equal(r.status, 0, r.output);
      assert.equal(r.lines[0]!['spiffe_id'], workloadId);
      assert.equal(r.lines[0]!['verified'], true);
    });

    it('FetchJWTSVID for an audience, and FetchX509Bundles / FetchJWTBundles', async () => {
      const jwt = await runClient(binary, ['jwt', '-audience', 'db', '-socket', endpoint()]);
      assert.equal(jwt.status, 0, jwt.output);
      assert.equal(jwt.lines[0]!['spiffe_id'], workloadId);
      assert.deepEqual(jwt.lines[0]!['audience'], ['db']);
      const bundles = await runClient(binary, ['bundles', '-socket', endpoint()]);
      assert.equal(bundles.status, 0, bundles.output);
      assert.deepEqual(bundles.lines[0]!['x509_bundles'], { 'spiffe://example.org': 1 });
    });

    it('ValidateJWTSVID of a token it fetched: valid for its audience, INVALID_ARGUMENT for another', async () => {
      const fetched = await runClient(binary, ['jwt', '-audience', AUDIENCE, '-socket', endpoint()]);
      assert.equal(fetched.status, 0, fetched.output);
      const token = fetched.lines[0]!['token'] as string;
      assert.equal(fetched.lines[0]!['verified'], true, fetched.output);

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
      assert.equal(valid.lines[0]!['spiffe_id'], workloadId);
      // go-spiffe returns the token's own claims once the agent said it is valid.
      assert.deepEqual(valid.lines[0]!['audience'], [AUDIENCE]);
      assert.equal((valid.lines[0]!['claims'] as Record<string, unknown>)['sub'], workloadId);

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
      assert.match(String(other.lines[0]!['error']), /ERR_JWTSVID_AUDIENCE/);
      assert.ok(!String(other.lines[0]!['error']).includes(token.split('.')[2]!), 'the refusal carries no token');
    });

    it('a caller of another uid with no entry gets PERMISSION_DENIED (as root)', async function () {
      if (uid !== 0) this.skip(); // only root can run the client as another uid
      const r = await runClient(...asUser(65534, binary, ['x509', '-socket', endpoint()]));
      assert.equal(r.status, 1, r.output);
      assert.equal(r.lines[0]!['code'], 'PERMISSION_DENIED', r.output);
    });

    it('a caller of another uid gets only its own entry, and this uid does not get it (as root)', async function () {
      if (uid !== 0) this.skip(); // only root can run the client as another uid
      const other = 65531;
      const otherId = `spiffe://example.org/api/uid-${other}`;
      await mesh.createEntry(otherId, [`unix:uid:${other}`]);
      // No wait for the agent: a caller that matches nothing yet makes it fetch its entries first.
      const theirs = await runClient(...asUser(other, binary, ['x509', '-socket', endpoint()]));
      assert.equal(theirs.status, 0, theirs.output);
      assert.deepEqual(theirs.lines[0]!['svids'], [otherId], theirs.output);
      const mine = await runClient(binary, ['x509', '-socket', endpoint()]);
      assert.equal(mine.status, 0, mine.output);
      assert.ok(!(mine.lines[0]!['svids'] as string[]).includes(otherId), mine.output);
    });

    it('a caller with no entry may still validate a token, as with SPIRE (as root)', async function () {
      if (uid !== 0) this.skip(); // only root can run the client as another uid
      const fetched = await runClient(binary, ['jwt', '-audience', AUDIENCE, '-socket', endpoint()]);
      assert.equal(fetched.status, 0, fetched.output);
      const token = fetched.lines[0]!['token'] as string;
      const r = await runClient(
        ...asUser(65534, binary, ['validate', '-socket', endpoint(), '-audience', AUDIENCE, '-token', token]),
      );
      assert.equal(r.status, 0, r.output);
      assert.equal(r.lines[0]!['spiffe_id'], workloadId);
    });

    describe('spiffetls between a go-spiffe workload and an svidkit workload, both from this agent', () => {
      // As root the Go side runs as a uid of its own; otherwise both run as this user, and each picks
      // its SVID by SPIFFE ID out of the two that this uid then matches.
      const goUid = uid === 0 ? 65532 : undefined;
      const goId = `spiffe://example.org/api/go-${goUid ?? `uid-${uid}`}`;
      const goSelectors =
        goUid === undefined ? [`unix:uid:${uid}`, `unix:gid:${process.getgid?.() ?? 0}`] : [`unix:uid:${goUid}`];
      const go = (args: string[]) => asUser(goUid, binary, [...args, '-socket', endpoint(), '-spiffe-id', goId]);
      let source: WorkloadApiSource;

      before(async () => {
        await mesh.createEntry(goId, goSelectors);
        await agentServes(mesh, goId);
        note(`go-spiffe runs as ${goUid === undefined ? `uid ${uid} too` : `uid ${goUid}`} with ${goId}`);
        source = await WorkloadApiSource.open({ address: endpoint(), pick: { spiffeId: workloadId } });
      });
      after(async () => {
        await source?.close();
      });

      it('an svidkit client calls a go-spiffe spiffetls server; each authorizes the other’s ID, a wrong ID fails', async () => {
        const server = new LiveClient(
          ...go(['serve', '-addr', '127.0.0.1:0', '-authorize', workloadId, '-requests', '1', '-timeout', '80s']),
        );
        try {
          const listening = await server.waitFor('the server to listen', (l) => l['event'] === 'listening');
          assert.equal(listening['spiffe_id'], goId);
          const port = Number(String(listening['addr']).split(':').pop());

          // The client expects another server ID: it gives up in the handshake and the server answers nothing.
          const wrong = await connectMtls(source, authorizeId('spiffe://example.org/someone-else'), {
            host: '127.0.0.1',
            port,
          }).then(
            (s) => {
              s.destroy();
              return undefined;
            },
            (err: unknown) => err,
          );
          checkError(wrong, 'ERR_TLS_PEER_DENIED', { message: new RegExp(goId.replace(/[.]/g, '\\.')) });
          await server.waitFor('the refused handshake', (l) => l['event'] === 'refused');

          const conn = await connectMtls(source, authorizeId(goId), { host: '127.0.0.1', port });
          try {
            assert.equal(peerSpiffeId(conn)?.toString(), goId);
            conn.write('ping\n');
            const reply = JSON.parse(await readLine(conn)) as Line;
            assert.deepEqual(reply, { server: goId, peer: workloadId, echo: 'ping' });
          } finally {
            conn.destroy();
          }
          const request = await server.waitFor('the request', (l) => l['event'] === 'request');
          assert.equal(request['peer'], workloadId);
          assert.equal(await server.exited(), 0, server.describe());
        } finally {
          await server.stop();
        }
      });

      it('a go-spiffe spiffetls client calls an svidkit server; each authorizes the other’s ID, a wrong ID fails', async () => {
        const seen: string[] = [];
        const server = createMtlsServer(source, authorizeId(goId), (s) => {
          const peerId = peerSpiffeId(s)?.toString() ?? '';
          seen.push(peerId);
          s.on('error', () => undefined);
          readLine(s).then(
            (line) => s.end(`${JSON.stringify({ server: workloadId, peer: peerId, echo: line })}\n`),
            () => s.destroy(),
          );
        });
        server.on('tlsClientError', () => undefined);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
        try {
          const wrong = await runClient(
            ...go(['dial', '-addr', addr, '-authorize', 'spiffe://example.org/someone-else', '-timeout', '20s']),
          );
          assert.equal(wrong.status, 1, wrong.output);
          assert.match(String(wrong.lines[0]!['error']), /unexpected ID/, wrong.output);

          const dial = await runClient(...go(['dial', '-addr', addr, '-authorize', workloadId, '-message', 'ping']));
          assert.equal(dial.status, 0, dial.output);
          assert.equal(dial.lines[0]!['server'], workloadId);
          assert.deepEqual(dial.lines[0]!['reply'], { server: workloadId, peer: goId, echo: 'ping' });
          assert.deepEqual(seen, [goId], 'only the authorized exchange reached the handler');
        } finally {
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      });

      it('the svidkit server refuses a go-spiffe client whose ID it does not authorize', async () => {
        let reached = 0;
        const server = createMtlsServer(source, authorizeId('spiffe://example.org/someone-else'), (s) => {
          reached++;
          s.destroy();
        });
        server.on('tlsClientError', () => undefined);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
        try {
          const r = await runClient(...go(['dial', '-addr', addr, '-authorize', workloadId, '-timeout', '20s']));
          assert.equal(r.status, 1, r.output);
          assert.equal(reached, 0, 'a refused client never reaches the handler');
        } finally {
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      });
    });
  });

  describePySpiffe('', {
    endpoint: () => endpoint(),
    workloadId: () => workloadId,
    audience: AUDIENCE,
    oneSvid: false,
  });
});

describe('svidkit-agent rotates an SVID under an open go-spiffe stream', function () {
  this.timeout(120_000);
  let mesh: WorkloadMesh | undefined;
  let binary: string;
  const workloadId = `spiffe://example.org/rotating/uid-${uid}`;

  before(async function () {
    requirePeers(this, 'go-spiffe');
    // The shortest X.509-SVID lifetime the CA allows (lib/ca/config.ts): renewed at half-life.
    mesh = await startWorkloadMesh({ ca: { x509_svid_ttl: '30s' } });
    binary = goBinary(this, mesh.dir);
    await mesh.createEntry(workloadId, [`unix:uid:${uid}`]);
  });
  after(async () => {
    await mesh?.close();
  });

  it('the watcher sees a second message with a new serial on the same stream, still verified', async () => {
    const r = await runClient(binary, ['watch', '-socket', mesh!.endpoint, '-updates', '2', '-timeout', '80s']);
    assert.equal(r.status, 0, r.output);
    // go-spiffe reconnects after an error on a new stream and reports it: none may come between the updates.
    assert.deepEqual(
      r.lines.filter((l) => l['event'] === 'watch_error'),
      [],
      'the updates came on one stream',
    );
    const updates = r.lines.filter((l) => l['event'] === 'update');
    assert.equal(updates.length, 2, r.output);
    assert.ok(
      updates.every((u) => u['spiffe_id'] === workloadId && u['verified'] === true),
      r.output,
    );
    assert.notEqual(updates[0]!['serial'], updates[1]!['serial'], 'the second update carries a new SVID');
    note(`rotated: serial ${String(updates[0]!['serial'])} -> ${String(updates[1]!['serial'])}`);
  });
});
