/**
 * Interop 3: OpenSSL's own TLS tools against the service library, both ways. `openssl s_client` with
 * a workload's agent-written SVID connects to a createMtlsServer server, which must see the right
 * SPIFFE ID (and refuse other IDs); `openssl s_server` serving an SVID is accepted by connectMtls only
 * when its SPIFFE ID is the expected one and its trust domain is trusted.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type * as tls from 'node:tls';
import { authorizeId } from '../lib/authorize/index.js';
import { isSvidkitError } from '../lib/errors/index.js';
import { FileSource } from '../lib/source/index.js';
import { connectMtls, createMtlsServer, peerSpiffeId } from '../lib/tls/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { note, type Peer, peer, requirePeers } from './helpers/peers.js';
import { type Mesh, startMesh, until } from './interop/mesh.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/**
 * Runs `openssl s_client`, sends one line, and reads what the server sends until it closes (-ign_eof
 * keeps s_client reading after its stdin ends); resolves with its exit status and output.
 */
function sClient(
  openssl: Peer,
  port: number,
  args: string[],
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      openssl.path,
      ['s_client', '-connect', `127.0.0.1:${port}`, '-brief', '-ign_eof', '-verify_return_error', ...args],
      { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined); // s_client may be gone already when the server refused it
    child.stdin.end('hello\n');
  });
}

/** Starts `openssl s_server -www` with an SVID; resolves once it accepts connections. */
async function sServer(
  openssl: Peer,
  files: { cert: string; key: string; roots: string },
): Promise<{ proc: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  const proc = spawn(
    openssl.path,
    [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      files.cert,
      '-key',
      files.key,
      '-CAfile',
      files.roots,
      // A client certificate is required and must chain to the roots.
      '-Verify',
      '3',
      '-verify_return_error',
      '-www',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await until('openssl s_server to accept connections', () => {
    if (proc.exitCode !== null) throw new Error(`openssl s_server exited: ${output}`);
    return output.includes('ACCEPT');
  });
  return { proc, port, output: () => output };
}

/** Sends one HTTP/1.0 request over a connected socket and resolves with everything until the server closes. */
function httpOver(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.once('end', () => resolve(text));
    socket.once('error', reject);
    socket.write('GET / HTTP/1.0\r\n\r\n');
  });
}

const opensslPeer = peer('openssl');

describe(`${opensslPeer.label} s_client and s_server against the svidkit TLS library`, function () {
  this.timeout(120_000);
  let openssl: Peer;
  let mesh: Mesh | undefined;
  let other: Mesh | undefined;
  const sources: FileSource[] = [];
  const children: ChildProcess[] = [];

  before(async function () {
    [openssl] = requirePeers(this, 'openssl');
    mesh = await startMesh({
      workloads: [{ name: 'tls-server' }, { name: 'sclient' }, { name: 'intruder' }, { name: 'sserver' }],
    });
    other = await startMesh({ trustDomain: 'other.org' });
  });
  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = new Promise((resolve) => c.once('exit', resolve));
        c.kill('SIGTERM');
        await exited;
      }
    }
    for (const s of sources) await s.close();
    await mesh?.close();
    await other?.close();
  });

  const source = async (name: string) => {
    const s = await FileSource.open(mesh!.files(name).dir);
    sources.push(s);
    return s;
  };

  describe('openssl s_client → createMtlsServer', () => {
    let server: tls.Server;
    let port = 0;
    const seen: string[] = [];
    const refusals: string[] = [];

    before(async () => {
      server = createMtlsServer(await source('tls-server'), authorizeId(mesh!.id('sclient')), (socket) => {
        const id = peerSpiffeId(socket)!.toString();
        seen.push(id);
        // Answer the client's first line. (Ending at once, before the client has sent anything, makes
        // Node close a TLS 1.3 connection without close_notify, which OpenSSL 3 reports as an error.)
        socket.once('data', () => socket.end(`peer=${id}\n`));
      });
      server.on('tlsClientError', (err: Error & { code?: string }) => refusals.push(err.code ?? err.message));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const withSvid = (name: string) => {
      const f = mesh!.files(name);
      return ['-cert', f.svid, '-key', f.key, '-CAfile', f.bundle];
    };

    for (const version of ['-tls1_3', '-tls1_2']) {
      it(`connects with a workload SVID over ${version.slice(1)} and the server sees its SPIFFE ID`, async () => {
        const before = seen.length;
        const r = await sClient(openssl, port, [...withSvid('sclient'), version]);
        assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /Verification: OK/);
        assert.match(r.stderr, new RegExp(`Protocol version: ${version === '-tls1_3' ? 'TLSv1.3' : 'TLSv1.2'}`));
        assert.equal(r.stdout.trim(), `peer=${mesh!.id('sclient')}`);
        assert.deepEqual(seen.slice(before), [mesh!.id('sclient')]);
      });
    }

    it('gets nothing from the server with an SVID the authorizer refuses', async () => {
      const before = refusals.length;
      const r = await sClient(openssl, port, [...withSvid('intruder'), '-tls1_3']);
      assert.doesNotMatch(r.stdout, /peer=/);
      await until('the refusal', () => refusals.length > before);
      assert.equal(refusals[refusals.length - 1], 'ERR_TLS_PEER_DENIED');
      assert.ok(!seen.includes(mesh!.id('intruder')));
    });

    it('fails the handshake without a client certificate', async () => {
      const r = await sClient(openssl, port, ['-CAfile', mesh!.files('sclient').bundle, '-tls1_3']);
      assert.notEqual(r.status, 0);
      assert.doesNotMatch(r.stdout, /peer=/);
      assert.match(r.stderr, /alert certificate required|handshake failure/);
    });

    it('is refused by s_client itself when the server is not in the trust bundle it was given', async () => {
      const foreign = other!.rootsPem();
      const file = `${mesh!.dir}/other-roots.pem`;
      writeFileSync(file, foreign);
      const f = mesh!.files('sclient');
      const r = await sClient(openssl, port, ['-cert', f.svid, '-key', f.key, '-CAfile', file]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /verify error|certificate verify failed/);
    });
  });

  describe('connectMtls → openssl s_server', () => {
    let served: Awaited<ReturnType<typeof sServer>>;
    let foreign: Awaited<ReturnType<typeof sServer>>;

    before(async () => {
      const f = mesh!.files('sserver');
      served = await sServer(openssl, { cert: f.svid, key: f.key, roots: f.bundle });
      children.push(served.proc);
      const svid = other!.issue('/ns/interop/sa/sserver');
      const dir = mesh!.dir;
      writeFileSync(`${dir}/foreign.pem`, svid.certificatesPem());
      writeFileSync(`${dir}/foreign.key`, svid.privateKeyPem(), { mode: 0o600 });
      foreign = await sServer(openssl, { cert: `${dir}/foreign.pem`, key: `${dir}/foreign.key`, roots: f.bundle });
      children.push(foreign.proc);
    });

    it('accepts s_server when its SPIFFE ID is the expected one, and s_server sees our SVID', async () => {
      const client = await source('sclient');
      const socket = await connectMtls(client, authorizeId(mesh!.id('sserver')), {
        host: '127.0.0.1',
        port: served.port,
      });
      assert.equal(peerSpiffeId(socket)?.toString(), mesh!.id('sserver'));
      const page = await httpOver(socket);
      assert.match(page, /^HTTP\/1\.0 200 ok/);
      // s_server -www prints the client certificate it verified.
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(page);
      assert.ok(pem, 's_server reports a client certificate');
      const shown = Certificate.fromPem(pem[0])[0]!;
      assert.equal(shown.serialHex, client.getX509Svid().leaf.serialHex);
      note(`s_server served ${mesh!.id('sserver')} and verified ${shown.subjectAltName!.uris![0]!}`);
    });

    it('refuses s_server when its SPIFFE ID is not the expected one', async () => {
      const client = await source('sclient');
      await assert.rejects(
        connectMtls(client, authorizeId(mesh!.id('tls-server')), { host: '127.0.0.1', port: served.port }),
        (err: unknown) => isSvidkitError(err, 'ERR_TLS_PEER_DENIED'),
      );
    });

    it('refuses s_server serving an SVID of a trust domain it does not trust', async () => {
      const client = await source('sclient');
      await assert.rejects(
        connectMtls(client, authorizeId(other!.id('sserver')), {
          host: '127.0.0.1',
          port: foreign.port,
        }),
        (err: unknown) => isSvidkitError(err, 'ERR_TLS_PEER_UNTRUSTED'),
      );
    });
  });
});
