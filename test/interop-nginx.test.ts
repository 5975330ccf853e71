/**
 * Interop 2: nginx terminates mTLS with `ssl_verify_client on`, reading the files svidkit-agent keeps
 * for one workload and reloaded by the agent's own reload action (`nginx -s reload`); curl is the
 * client, with another workload's files. nginx runs unprivileged-style from a temporary prefix on a
 * free loopback port and is stopped in after(), whatever happened.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authorizeId } from '../lib/authorize/index.js';
import { FileSource } from '../lib/source/index.js';
import { connectMtls } from '../lib/tls/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { note, type Peer, peer, requirePeers } from './helpers/peers.js';
import { INTEROP_DIR, type Mesh, startMesh, until } from './interop/mesh.js';

/** A certificate serial number as lowercase hex without leading zeros, however it was printed. */
function serial(hex: string): string {
  return BigInt(`0x${hex.replace(/:/g, '')}`).toString(16);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** What curl got: its exit code, the HTTP status (0 when there was none) and the body. */
interface CurlResult {
  readonly exit: number;
  readonly status: number;
  readonly body: string;
  readonly stderr: string;
}

function curlGet(
  curl: Peer,
  port: number,
  cacert: string,
  client?: { cert: string; key: string },
): Promise<CurlResult> {
  const args = [
    '--silent',
    '--show-error',
    '--max-time',
    '20',
    // curl checks the server's DNS name; the nginx workload's entry carries dns_names: [localhost].
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    '--cacert',
    cacert,
    ...(client ? ['--cert', client.cert, '--key', client.key] : []),
    '--write-out',
    '\n%{http_code}',
    `https://localhost:${port}/`,
  ];
  return new Promise((resolve) => {
    execFile(curl.path, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const cut = stdout.lastIndexOf('\n');
      resolve({
        exit: err ? Number((err as { code?: number }).code ?? 1) : 0,
        status: Number(stdout.slice(cut + 1)) || 0,
        body: stdout.slice(0, Math.max(cut, 0)),
        stderr,
      });
    });
  });
}

/** The nginx directives that move every temp path of the compiled-in modules under the prefix. */
function tempPaths(nginx: Peer, prefix: string): string {
  const configure = nginx.extra['configure'] ?? '';
  const lines = [`    client_body_temp_path ${join(prefix, 'client_body')};`];
  for (const m of ['proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    if (!configure.includes(`--without-http_${m}_module`)) lines.push(`    ${m}_temp_path ${join(prefix, m)};`);
  }
  return lines.join('\n');
}

const nginxPeer = peer('nginx');
const curlPeer = peer('curl');

describe(`${nginxPeer.label} terminates mTLS with agent-written SVIDs; ${curlPeer.label} as the client`, function () {
  this.timeout(180_000);
  let nginx: Peer;
  let curl: Peer;
  let mesh: Mesh | undefined;
  let other: Mesh | undefined;
  let prefix = '';
  let port = 0;
  let proc: ChildProcess | undefined;
  let clientSource: FileSource | undefined;
  const killOnExit = () => proc?.kill('SIGTERM');

  const errorLog = () => (existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : '');
  const client = () => ({ cert: mesh!.files('curl-client').svid, key: mesh!.files('curl-client').key });
  const cacert = () => mesh!.files('curl-client').bundle;

  before(async function () {
    [nginx, curl] = requirePeers(this, 'nginx', 'curl');
    prefix = await mkdtemp(join(tmpdir(), 'svidkit-interop-nginx-'));
    port = await freePort();
    const conf = join(prefix, 'nginx.conf');
    const base = ['-p', `${prefix}/`, '-c', conf, '-e', join(prefix, 'error.log')];
    mesh = await startMesh({
      // Renew at exactly half-life: the nginx SVID lives 6 s, so it is replaced every 3 s.
      rotation: { fraction: 0.5, jitter: 0 },
      workloads: [
        {
          name: 'nginx',
          ttlSeconds: 6,
          dnsNames: ['localhost'],
          // Until nginx runs, this reload fails (no pid file); the agent logs it and goes on.
          reload: { exec: { command: [nginx.path, ...base, '-s', 'reload'] } },
        },
        { name: 'curl-client' },
      ],
    });
    other = await startMesh({ trustDomain: 'other.org' });
    const files = mesh.files('nginx');
    const template = readFileSync(join(INTEROP_DIR, 'nginx.conf.template'), 'utf8');
    const filled = template
      .replaceAll('@PREFIX@', prefix)
      .replaceAll('@PORT@', String(port))
      .replaceAll('@SVID@', files.svid)
      .replaceAll('@KEY@', files.key)
      .replaceAll('@BUNDLE@', files.bundle)
      .replaceAll('@TEMP_PATHS@', tempPaths(nginx, prefix));
    assert.ok(!/@[A-Z_]+@/.test(filled), 'every placeholder is filled');
    writeFileSync(conf, filled);
    const test = await new Promise<string>((resolve) =>
      execFile(nginx.path, [...base, '-t'], (err, out, errOut) => resolve(err ? `${out}${errOut}` : '')),
    );
    assert.equal(test, '', `nginx -t refused the configuration:\n${test}`);
    proc = spawn(nginx.path, base, { stdio: ['ignore', 'ignore', 'pipe'] });
    process.once('exit', killOnExit);
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await until('nginx to answer on its port', async () => {
      if (proc!.exitCode !== null) throw new Error(`nginx exited: ${stderr}${errorLog()}`);
      return (await curlGet(curl, port, cacert(), client())).status === 200;
    });
    clientSource = await FileSource.open(mesh.files('curl-client').dir);
  });

  after(async () => {
    process.removeListener('exit', killOnExit);
    await clientSource?.close();
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc!.once('exit', resolve));
      proc.kill('SIGTERM');
      await exited;
    }
    await mesh?.close();
    await other?.close();
    if (prefix) await rm(prefix, { recursive: true, force: true });
  });

  it("gives curl with another workload's SVID a 200, and nginx saw that SVID", async () => {
    const r = await curlGet(curl, port, cacert(), client());
    assert.equal(r.status, 200, `${r.stderr}${r.body}`);
    const [first, escaped] = r.body.split('\n');
    const presented = mesh!.svid('curl-client').leaf;
    const m = /^verified=SUCCESS serial=([0-9A-F]+)$/.exec(first!);
    assert.ok(m, first);
    assert.equal(serial(m[1]!), serial(presented.serialHex));
    const seen = Certificate.fromPem(decodeURIComponent(escaped!))[0]!;
    assert.deepEqual(seen.subjectAltName?.uris, [mesh!.id('curl-client')]);
    note(`nginx saw ${seen.subjectAltName!.uris![0]!}`);
  });

  it('refuses curl without a client certificate (HTTP 400, the location is never reached)', async () => {
    const r = await curlGet(curl, port, cacert());
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /No required SSL certificate was sent/);
    assert.doesNotMatch(r.body, /verified=/);
  });

  it('refuses an SVID from another trust domain', async () => {
    const foreign = other!.issue('/ns/interop/sa/curl-client');
    writeFileSync(join(prefix, 'foreign.pem'), foreign.certificatesPem());
    writeFileSync(join(prefix, 'foreign.key'), foreign.privateKeyPem(), { mode: 0o600 });
    const r = await curlGet(curl, port, cacert(), {
      cert: join(prefix, 'foreign.pem'),
      key: join(prefix, 'foreign.key'),
    });
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /The SSL certificate error/);
    assert.doesNotMatch(r.body, /verified=/);
    // OpenSSL says "unable to verify the first certificate" when the issuer is in no trusted store.
    await until('nginx to log why', () =>
      /client SSL certificate verify error: \(\d+:unable to (verify the first|get local issuer) certificate\)/.test(
        errorLog(),
      ),
    );
  });

  it('refuses an expired SVID of the right trust domain', async () => {
    const expired = mesh!.issue('/ns/interop/sa/curl-client', {
      now: new Date(Date.now() - 3 * 3600_000),
      ttlMs: 3600_000,
    });
    assert.ok(expired.expiresAt.getTime() < Date.now());
    writeFileSync(join(prefix, 'expired.pem'), expired.certificatesPem());
    writeFileSync(join(prefix, 'expired.key'), expired.privateKeyPem(), { mode: 0o600 });
    const r = await curlGet(curl, port, cacert(), {
      cert: join(prefix, 'expired.pem'),
      key: join(prefix, 'expired.key'),
    });
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /The SSL certificate error/);
    await until('nginx to log why', () =>
      /client SSL certificate verify error: \(\d+:certificate has expired\)/.test(errorLog()),
    );
  });

  it('serves each new SVID across 3 rotations after `nginx -s reload`, and no request fails', async () => {
    const nginxId = mesh!.id('nginx');
    const currentSerial = () => serial(mesh!.svid('nginx').leaf.serialHex);
    const written = [currentSerial()];
    const served = new Set<string>();
    const failures: string[] = [];
    let requests = 0;
    let handshakes = 0;
    let stop = false;
    // curl, one request after another, all through the rotations.
    const load = (async () => {
      while (!stop) {
        const r = await curlGet(curl, port, cacert(), client());
        requests++;
        if (r.status !== 200 || !r.body.startsWith('verified=SUCCESS')) {
          failures.push(`curl: exit ${r.exit}, HTTP ${r.status}: ${r.stderr.trim()} ${r.body.slice(0, 80)}`);
        }
      }
    })();
    // The library client (FileSource over the curl-client files) records which serial nginx serves and
    // accepts it only under the nginx workload's SPIFFE ID.
    const watch = (async () => {
      while (!stop) {
        try {
          const socket = await connectMtls(clientSource!, authorizeId(nginxId), { host: '127.0.0.1', port });
          const cert = socket.getPeerX509Certificate();
          socket.destroy();
          served.add(serial(cert!.serialNumber));
          handshakes++;
        } catch (err) {
          failures.push(`library client: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await until(
        'three rotations of the nginx SVID, each served by nginx',
        () => {
          const now = currentSerial();
          if (now !== written[written.length - 1]) written.push(now);
          return written.length >= 4 && written.slice(1).every((s) => served.has(s));
        },
        120_000,
      );
    } catch (err) {
      const detail = `written ${written.join(', ')}; served ${[...served].join(', ')}; ${failures.length} failures: ${failures.slice(0, 3).join(' | ')}`;
      throw new Error(`${(err as Error).message}\n${detail}\n${errorLog().slice(-3000)}\n${mesh!.logs().slice(-3000)}`);
    } finally {
      stop = true;
      await Promise.all([load, watch]);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${requests + handshakes} requests failed`);
    // Every serial nginx ever served is one the agent wrote for the nginx workload.
    const everWritten = new Set(
      mesh!
        .logs()
        .split('\n')
        .filter((l) => l.includes('"workload files written"') && l.includes(nginxId))
        .map((l) => serial((JSON.parse(l) as { serial: string }).serial)),
    );
    for (const s of served) assert.ok(everWritten.has(s), `nginx served ${s}, which the agent never wrote`);
    const metrics = await (await fetch(`http://127.0.0.1:${mesh!.agent!.observabilityPort}/metrics`)).text();
    const ok = new RegExp(`svidkit_agent_reloads_total\\{workload="${nginxId}",result="ok"\\} (\\d+)`).exec(metrics);
    assert.ok(ok && Number(ok[1]) >= 3, `the agent ran nginx -s reload at least 3 times:\n${metrics}`);
    note(
      `serials ${written.join(' -> ')}; ${requests} curl requests and ${handshakes} library handshakes, 0 failed; ${ok[1]} reloads`,
    );
  });
});
