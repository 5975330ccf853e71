/**
 * Tests of `svidkit doctor` with real files in temporary directories and real sockets on 127.0.0.1:
 * a good directory in each layout, one case per local fault naming exactly the check that fails, and
 * peers that accept us, refuse us, are not trusted, refuse the connection or do not speak TLS. TLS
 * checks validity with the system clock, so the PKI is valid around Date.now().
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { writeWorkloadFiles } from '../lib/agent/writer.js';
import { authorizeAny } from '../lib/authorize/index.js';
import { BundleSet } from '../lib/bundle/index.js';
import {
  alertOf,
  CHECK_NAMES,
  type CheckName,
  diagnose,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorReport,
  explainFailure,
  formatDoctorReport,
  OK_VERDICT,
  parsePeerAddress,
} from '../lib/doctor/index.js';
import { SvidkitError } from '../lib/errors/index.js';
import { privateKeyToPem } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/index.js';
import { createMtlsServer } from '../lib/tls/index.js';
import type { Certificate } from '../lib/x509/certificate.js';
import type { X509Svid } from '../lib/x509svid/index.js';
import { type LeafOptions, TestCa } from './helpers/ca.js';
import { opensslVersion } from './helpers/openssl.js';
import { type CliResult, runCli } from './helpers/cli.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit.js');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const now = Date.now();
const caValidity = { notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR) };
const leafValidity = { notBefore: new Date(now - 5 * MINUTE), notAfter: new Date(now + HOUR) };

const root = TestCa.root({ trustDomain: 'example.org', ...caValidity });
const inter = root.intermediate(caValidity);
/** Same trust domain, another key: a bundle holding it lacks our issuer. */
const rogueRoot = TestCa.root({ trustDomain: 'example.org', ...caValidity });
const other = TestCa.root({ trustDomain: 'other.org', ...caValidity });

const WEB_ID = 'spiffe://example.org/web';
/**
 * The wait for a refusal in tests that expect one: the refusal ends it at once, so a long bound costs
 * nothing and a slow machine cannot turn a refusal into an acceptance.
 */
const LONG_SETTLE = 10_000;
const SERVER_ID = 'spiffe://example.org/server';

/** Every private key written to disk, and everything doctor printed or returned: the hygiene test compares them. */
const keyPems: string[] = [];
const outputs: string[] = [];

function keyPem(key: KeyObject): string {
  const pem = privateKeyToPem(key);
  keyPems.push(pem);
  return pem;
}

async function cli(args: string[]): Promise<CliResult> {
  const res = await runCli(args);
  outputs.push(res.out, res.err);
  return res;
}

async function doctor(options: DoctorOptions): Promise<DoctorReport> {
  const report = await diagnose(options);
  outputs.push(JSON.stringify(report), formatDoctorReport(report));
  return report;
}

function check(report: DoctorReport, name: CheckName): DoctorCheck {
  const c = report.checks.find((x) => x.name === name);
  assert.ok(c, `no ${name} check in ${JSON.stringify(report.checks.map((x) => x.name))}`);
  return c;
}

function failing(report: DoctorReport): CheckName[] {
  return report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
}

let base: string;

function newDir(): string {
  return mkdtempSync(join(base, 'svid-'));
}

interface PlainFiles {
  chain: readonly Certificate[];
  key?: KeyObject;
  bundle: string;
  keyMode?: number;
  names?: { svid: string; key: string; bundle: string };
}

/** Writes the spiffe-helper layout (or other names) into a fresh directory. */
function writePlain(files: PlainFiles): string {
  const dir = newDir();
  const names = files.names ?? { svid: 'svid.pem', key: 'svid_key.pem', bundle: 'svid_bundle.pem' };
  writeFileSync(join(dir, names.svid), files.chain.map((c) => c.toPem()).join(''));
  if (files.key) {
    writeFileSync(join(dir, names.key), keyPem(files.key), { mode: 0o600 });
    chmodSync(join(dir, names.key), files.keyMode ?? 0o600);
  }
  writeFileSync(join(dir, names.bundle), files.bundle);
  return dir;
}

/** A directory with a leaf issued by the intermediate (with `opts`) and the bundle of example.org. */
function leafDir(opts: LeafOptions = {}, bundle = root.cert.toPem()): string {
  const { chain, key } = inter.leaf('/web', { ...leafValidity, ...opts });
  return writePlain({ chain, key, bundle });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

interface Running {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and destroys every connection on close. */
async function listen(server: net.Server): Promise<Running> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function mtlsServer(svid: X509Svid, bundles: BundleSet): Promise<Running> {
  const server = createMtlsServer(new StaticSource({ svid, bundles }), authorizeAny(), (s: tls.TLSSocket) => {
    s.on('error', () => undefined);
  });
  server.on('tlsClientError', () => undefined);
  return listen(server);
}

describe('svidkit doctor', function () {
  this.timeout(20_000);
  let agentDir: string;
  let goodDir: string;
  const running: Running[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'svidkit-doctor-'));
    agentDir = join(base, 'agent');
    const svid = inter.svid('/web', leafValidity);
    keyPems.push(svid.privateKeyPem());
    await writeWorkloadFiles(
      { svid, bundles: new BundleSet([root.bundle()]), jwtTokens: new Map(), version: 1 },
      { dir: agentDir },
    );
    goodDir = leafDir();
  });

  after(async () => {
    for (const r of running) await r.close();
    rmSync(base, { recursive: true, force: true });
  });

  describe('local checks', () => {
    it('passes a good svidkit agent directory with exit 0 and the OK verdict', async () => {
      const r = await cli(['doctor', agentDir]);
      assert.equal(r.err, '');
      assert.equal(r.code, 0);
      const lines = r.out.trimEnd().split('\n');
      assert.equal(lines[lines.length - 1], OK_VERDICT);
      assert.match(r.out, /^PASS {2}directory +\S+: svidkit agent layout \(\.\.data -> \.\.[^)]+\)$/m);
      assert.match(r.out, /^PASS {2}spiffe-id +spiffe:\/\/example\.org\/web$/m);
      assert.match(r.out, /^PASS {2}validity +valid for another \d+m( \d+s)?, until .*this machine's clock reads /m);
      assert.match(r.out, /^PASS {2}library-source /m);
      assert.doesNotMatch(r.out, /^(WARN|FAIL) /m);
    });

    it('detects the spiffe-helper and cert-manager layouts', async () => {
      const helper = await doctor({ dir: goodDir });
      assert.equal(helper.layout, 'spiffe-helper');
      assert.deepEqual(failing(helper), []);
      assert.equal(helper.spiffeId, WEB_ID);

      const { chain, key } = inter.leaf('/web', leafValidity);
      const cm = writePlain({
        chain,
        key,
        bundle: root.cert.toPem(),
        names: { svid: 'tls.crt', key: 'tls.key', bundle: 'ca.crt' },
      });
      const report = await doctor({ dir: cm });
      assert.equal(report.layout, 'cert-manager');
      assert.equal(report.ok, true, JSON.stringify(report.checks));
    });

    it('reads other file names given with --cert, --key and --bundle', async () => {
      const { chain, key } = inter.leaf('/web', leafValidity);
      const dir = writePlain({
        chain,
        key,
        bundle: root.cert.toPem(),
        names: { svid: 'chain.pem', key: 'private.pem', bundle: 'roots.pem' },
      });
      const r = await cli(['doctor', dir, '--cert', 'chain.pem', '--key', 'private.pem', '--bundle', 'roots.pem']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^PASS {2}cert-file +chain\.pem: \d+ bytes$/m);
    });

    it('warns about a key file other users can read, and still exits 0', async () => {
      const { chain, key } = inter.leaf('/web', leafValidity);
      const dir = writePlain({ chain, key, bundle: root.cert.toPem(), keyMode: 0o644 });
      const r = await cli(['doctor', dir]);
      assert.equal(r.code, 0);
      assert.match(r.out, /^WARN {2}key-mode +svid_key\.pem has mode 0644: users other than its owner/m);
      assert.match(r.out, /^ +fix: chmod 600 svid_key\.pem/m);
      assert.ok(r.out.trimEnd().endsWith(OK_VERDICT));
    });

    const otherSet = () => JSON.stringify(new BundleSet([other.bundle()]).toJson());
    const mismatched = () => {
      const { chain } = inter.leaf('/web', leafValidity);
      const { key } = inter.leaf('/web', leafValidity);
      return writePlain({ chain, key, bundle: root.cert.toPem() });
    };
    const faults: Array<[string, () => string, CheckName, RegExp]> = [
      [
        'an expired leaf',
        () => leafDir({ notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) }),
        'validity',
        /^the leaf expired 1h( \d+m)? ago, at .*this machine's clock reads /,
      ],
      [
        'a leaf that is not valid yet',
        () => leafDir({ notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) }),
        'validity',
        /^the leaf is not valid yet: it becomes valid in \d+m( \d+s)?, at .*this machine's clock reads /,
      ],
      ['a key that belongs to another certificate', mismatched, 'key-match', /does not match the leaf/],
      [
        'a bundle without the issuer of our chain',
        () => leafDir({}, rogueRoot.cert.toPem()),
        'chain-verifies',
        /^the bundle lacks the issuer of our chain: no path from the leaf \(issued by CN=intermediate\)/,
      ],
      [
        "another trust domain's roots (PEM)",
        () => leafDir({}, other.cert.toPem()),
        'bundle-trust-domain',
        /^wrong trust domain: the roots in svid_bundle\.pem belong to "other\.org", but our SVID is in "example\.org"/,
      ],
      [
        "another trust domain's bundle set (JSON)",
        () => leafDir({}, otherSet()),
        'bundle-trust-domain',
        /^wrong trust domain: svid_bundle\.pem has no X\.509 roots for "example\.org".*it holds 1 trust domain \(other\.org\)/,
      ],
      [
        'a leaf without a URI SAN',
        () => leafDir({ noSan: true, subject: [['CN', 'web']] }),
        'spiffe-id',
        /^the leaf has no URI SAN/,
      ],
      [
        'a leaf with two URI SANs',
        () => leafDir({ uris: [WEB_ID, 'spiffe://example.org/api'] }),
        'spiffe-id',
        /^the leaf has 2 URI SANs \("spiffe:\/\/example\.org\/web", "spiffe:\/\/example\.org\/api"\)/,
      ],
      ['a leaf that is a CA', () => leafDir({ ca: true }), 'leaf-not-ca', /^the leaf certificate is a CA/],
      ['a leaf without a keyUsage extension', () => leafDir({ keyUsage: 0 }), 'key-usage', /no keyUsage extension/],
    ];
    for (const [what, make, name, message] of faults) {
      it(`fails ${what} on exactly the ${name} check, exit 1`, async () => {
        const r = await cli(['doctor', make(), '--json']);
        assert.equal(r.code, 1);
        assert.equal(r.err, `error ERR_DOCTOR_FAILED: doctor: check ${name} failed\n`);
        const report = JSON.parse(r.out) as DoctorReport;
        assert.deepEqual(failing(report), [name], r.out);
        const c = check(report, name);
        assert.match(c.message, message);
        assert.ok(c.fix && c.fix.length > 0);
        assert.equal(report.verdict, `FAIL: ${c.message}`);
      });
    }

    it('fails a missing directory', async () => {
      const r = await cli(['doctor', join(base, 'nowhere')]);
      assert.equal(r.code, 1);
      assert.match(r.out, /^FAIL {2}directory +the directory .*nowhere does not exist$/m);
      assert.match(r.out, /^FAIL: the directory .*nowhere does not exist\n$/m);
    });

    it('fails a directory without SVID files and lists what it holds', async () => {
      const dir = newDir();
      writeFileSync(join(dir, 'notes.txt'), 'x');
      const report = await doctor({ dir });
      assert.deepEqual(failing(report), ['directory']);
      assert.match(check(report, 'directory').message, /no SVID files in .*; it holds notes\.txt$/);
    });

    it('fails a key path that is not a regular file', async () => {
      const dir = leafDir();
      rmSync(join(dir, 'svid_key.pem'));
      mkdirSync(join(dir, 'svid_key.pem'));
      const report = await doctor({ dir });
      assert.deepEqual(failing(report), ['key-file']);
      assert.equal(check(report, 'key-file').message, 'svid_key.pem is not a regular file');
    });

    it('fails a certificate file larger than the library reads', async () => {
      const dir = leafDir();
      writeFileSync(join(dir, 'svid.pem'), 'x'.repeat(70_000));
      const report = await doctor({ dir });
      assert.deepEqual(failing(report), ['cert-file']);
      assert.match(check(report, 'cert-file').message, /^svid\.pem is 70000 bytes, more than the 65536 bytes/);
    });

    it('fails a key file this process may not read (EACCES)', async function () {
      const dir = leafDir();
      const uid = process.getuid?.();
      if (uid === undefined) this.skip();
      if (uid !== 0) {
        chmodSync(join(dir, 'svid_key.pem'), 0o000);
        const report = await doctor({ dir });
        assert.deepEqual(failing(report), ['key-file']);
        assert.match(
          check(report, 'key-file').message,
          /^svid_key\.pem cannot be read .*permission denied \(EACCES\)$/,
        );
        return;
      }
      // Root reads every file: run the built command as an unprivileged user instead.
      for (const d of [base, dir]) chmodSync(d, 0o755);
      chmodSync(join(dir, 'svid.pem'), 0o644);
      chmodSync(join(dir, 'svid_bundle.pem'), 0o644);
      const r = spawnSync(process.execPath, [CLI, 'doctor', dir, '--json'], {
        encoding: 'utf8',
        uid: 65534,
        gid: 65534,
      });
      if (r.error || r.stdout === '') this.skip(); // no permission to switch users here
      outputs.push(r.stdout, r.stderr);
      const report = JSON.parse(r.stdout) as DoctorReport;
      if (failing(report).includes('directory')) this.skip(); // the temporary directory is not reachable for that user
      assert.equal(r.status, 1);
      assert.deepEqual(failing(report), ['key-file']);
      assert.match(
        check(report, 'key-file').message,
        /^svid_key\.pem cannot be read by this process \(uid 65534\): permission denied \(EACCES\)$/,
      );
    });
  });

  describe('peer checks', () => {
    let good: Running;
    let untrusting: Running;
    let foreign: Running;

    before(async () => {
      good = await mtlsServer(inter.svid('/server', leafValidity), new BundleSet([root.bundle()]));
      // Its own SVID is one we trust, but it trusts only other.org: our certificate is refused.
      untrusting = await mtlsServer(inter.svid('/server', leafValidity), new BundleSet([other.bundle()]));
      // A server of other.org, a trust domain our bundle does not hold.
      foreign = await mtlsServer(other.svid('/server', leafValidity), new BundleSet([root.bundle(), other.bundle()]));
      running.push(good, untrusting, foreign);
    });

    it('passes a real handshake with a peer that accepts us, and checks its ID (exit 0)', async () => {
      const r = await cli(['doctor', agentDir, '--peer', `127.0.0.1:${good.port}`, '--expect', SERVER_ID]);
      assert.equal(r.err, '');
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^PASS {2}peer-connect +TCP connection to 127\.0\.0\.1:\d+ established$/m);
      assert.match(r.out, /^PASS {2}peer-tls +TLSv1\.3 handshake with 127\.0\.0\.1:\d+ completed$/m);
      assert.match(
        r.out,
        /^PASS {2}peer-trusted +the peer is spiffe:\/\/example\.org\/server, and its chain verifies against our bundle of "example\.org"$/m,
      );
      assert.match(r.out, /^PASS {2}peer-accepts +the peer accepted our certificate/m);
      assert.match(r.out, /^PASS {2}peer-id +the peer is spiffe:\/\/example\.org\/server, as expected$/m);
      assert.ok(r.out.trimEnd().endsWith(OK_VERDICT));
    });

    it('fails a peer whose ID is not the expected one, on peer-id', async () => {
      const report = await doctor({
        dir: goodDir,
        peer: `127.0.0.1:${good.port}`,
        expect: 'spiffe://example.org/billing',
        settleMs: 50,
      });
      assert.deepEqual(failing(report), ['peer-id']);
      assert.equal(
        check(report, 'peer-id').message,
        'the peer is spiffe://example.org/server, not the expected spiffe://example.org/billing',
      );
      assert.deepEqual(report.peer, {
        address: `127.0.0.1:${good.port}`,
        spiffeId: SERVER_ID,
        verified: true,
        tlsVersion: 'TLSv1.3',
        acceptedUs: true,
      });
    });

    it('fails a peer that does not trust our bundle, on peer-accepts', async () => {
      const report = await doctor({ dir: goodDir, peer: `127.0.0.1:${untrusting.port}`, settleMs: LONG_SETTLE });
      assert.deepEqual(failing(report), ['peer-accepts']);
      assert.match(
        check(report, 'peer-accepts').message,
        /^the peer closed the connection right after the handshake without a TLS alert: it refused our certificate/,
      );
      assert.equal(check(report, 'peer-trusted').status, 'pass');
      assert.equal(report.peer?.acceptedUs, false);
    });

    it('fails a peer of a trust domain our bundle does not hold, on peer-trusted, and names it', async () => {
      const report = await doctor({ dir: goodDir, peer: `127.0.0.1:${foreign.port}`, expect: SERVER_ID });
      assert.deepEqual(failing(report), ['peer-trusted', 'peer-id']);
      assert.equal(
        check(report, 'peer-trusted').message,
        'the peer presents "spiffe://other.org/server" issued by O=svidkit test, CN=root other.org, and we do not trust it: it belongs to trust domain "other.org", and our bundle has no roots for it',
      );
      assert.match(
        check(report, 'peer-id').message,
        /^the peer claims "spiffe:\/\/other\.org\/server", not the expected/,
      );
      assert.equal(report.peer?.verified, false);
    });

    it('fails a peer that requires a client certificate we do not have', async () => {
      const dir = leafDir();
      rmSync(join(dir, 'svid_key.pem'));
      const report = await doctor({ dir, peer: `127.0.0.1:${good.port}`, settleMs: LONG_SETTLE });
      assert.deepEqual(failing(report), ['key-file', 'peer-accepts']);
      assert.match(
        check(report, 'peer-accepts').message,
        /^the peer requires a client certificate \(alert 116, certificate required\), and these files give none that can be sent$/,
      );
      assert.equal(check(report, 'peer-trusted').message.startsWith(`the peer is ${SERVER_ID}`), true);
      assert.equal(report.verdict, 'FAIL: svid_key.pem does not exist');
    });

    it('fails a refused connection, on peer-connect', async () => {
      const port = await freePort();
      const report = await doctor({ dir: goodDir, peer: `127.0.0.1:${port}` });
      assert.deepEqual(failing(report), ['peer-connect']);
      assert.equal(
        check(report, 'peer-connect').message,
        `connection refused: nothing listens on 127.0.0.1:${port} (or a firewall rejects the connection) [ECONNREFUSED]`,
      );
    });

    it('fails a plain TCP peer that never answers, bounded by the timeout', async () => {
      const silent = await listen(net.createServer());
      running.push(silent);
      const r = await cli(['doctor', goodDir, '--peer', `127.0.0.1:${silent.port}`, '--timeout', '500', '--json']);
      assert.equal(r.code, 1);
      const report = JSON.parse(r.out) as DoctorReport;
      assert.deepEqual(failing(report), ['peer-tls']);
      assert.match(
        check(report, 'peer-tls').message,
        /^the peer accepted the TCP connection but did not answer our TLS ClientHello within 500ms/,
      );
    });

    it('fails a peer that speaks another protocol, on peer-tls', async () => {
      const chatty = await listen(net.createServer((c) => c.end('SSH-2.0-OpenSSH_9.6\r\n')));
      running.push(chatty);
      const report = await doctor({ dir: goodDir, peer: `127.0.0.1:${chatty.port}` });
      assert.deepEqual(failing(report), ['peer-tls']);
      assert.match(check(report, 'peer-tls').message, /does not speak TLS.*\[ERR_SSL_WRONG_VERSION_NUMBER\]$/);
    });

    it('explains the unknown-CA alert of an OpenSSL peer that does not trust our bundle', async function () {
      if (!opensslVersion()) {
        if (process.env.CI === 'true') throw new Error('openssl is required in CI but is not installed');
        this.skip();
      }
      const dir = newDir();
      // Issued by the root itself: s_server sends the first certificate of its -cert file only.
      const server = root.svid('/server', leafValidity);
      writeFileSync(join(dir, 'server.pem'), server.certificatesPem());
      writeFileSync(join(dir, 'server-key.pem'), keyPem(server.privateKey), { mode: 0o600 });
      writeFileSync(join(dir, 'other-root.pem'), other.cert.toPem());
      const port = await freePort();
      const proc: ChildProcess = spawn(
        'openssl',
        [
          's_server',
          '-accept',
          `127.0.0.1:${port}`,
          '-cert',
          join(dir, 'server.pem'),
          '-key',
          join(dir, 'server-key.pem'),
          '-CAfile',
          join(dir, 'other-root.pem'),
          '-Verify',
          '3',
          '-verify_return_error',
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      try {
        let text = '';
        proc.stdout!.on('data', (d: Buffer) => (text += d.toString()));
        proc.stderr!.on('data', (d: Buffer) => (text += d.toString()));
        for (let i = 0; i < 200 && !/ACCEPT/.test(text) && proc.exitCode === null; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.match(text, /ACCEPT/, `openssl s_server did not start: ${text}`);
        const report = await doctor({ dir: goodDir, peer: `127.0.0.1:${port}`, settleMs: LONG_SETTLE });
        assert.deepEqual(failing(report), ['peer-accepts']);
        assert.match(
          check(report, 'peer-accepts').message,
          /^the peer does not trust our bundle: it refused our certificate with alert 48 \(unknown CA\), so the root of trust domain "example\.org" is not among its trusted roots$/,
        );
      } finally {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill();
        await exited;
      }
    });
  });

  describe('--json', () => {
    it('prints the checks and the verdict as a JSON document', async () => {
      const r = await cli(['doctor', agentDir, '--json']);
      assert.equal(r.code, 0);
      const doc = JSON.parse(r.out) as Record<string, unknown>;
      assert.deepEqual(Object.keys(doc).sort(), ['checks', 'clock', 'dir', 'layout', 'ok', 'spiffeId', 'verdict']);
      assert.equal(doc['ok'], true);
      assert.equal(doc['verdict'], OK_VERDICT);
      assert.equal(doc['layout'], 'svidkit');
      assert.equal(doc['spiffeId'], WEB_ID);
      const checks = doc['checks'] as Array<Record<string, unknown>>;
      assert.ok(checks.length >= 15);
      const names = new Set<string>(CHECK_NAMES);
      for (const c of checks) {
        assert.ok(names.has(c['name'] as string), String(c['name']));
        assert.ok(['pass', 'warn', 'fail'].includes(c['status'] as string));
        assert.equal(typeof c['message'], 'string');
        assert.equal(c['fix'], undefined);
      }
    });

    it('gives failures a fix and the verdict of the first one', async () => {
      const r = await cli(['doctor', leafDir({ noSan: true, subject: [['CN', 'web']] }), '--json']);
      assert.equal(r.code, 1);
      const doc = JSON.parse(r.out) as DoctorReport;
      assert.equal(doc.ok, false);
      const fail = doc.checks.find((c) => c.status === 'fail')!;
      assert.equal(fail.name, 'spiffe-id');
      assert.equal(typeof fail.fix, 'string');
      assert.equal(doc.verdict, `FAIL: ${fail.message}`);
    });
  });

  describe('usage', () => {
    const bad: Array<[string, string[]]> = [
      ['no directory', []],
      ['a peer without a port', ['--peer', 'localhost']],
      ['a port out of range', ['--peer', 'localhost:70000']],
      ['port 0', ['--peer', 'localhost:0']],
      ['an IPv6 address without brackets', ['--peer', '::1:8443']],
      ['a host with a space', ['--peer', 'a b:443']],
      ['a malformed expected ID', ['--peer', 'localhost:1', '--expect', 'spiffe://Example.org/x']],
      ['an expected ID that is not SPIFFE', ['--peer', 'localhost:1', '--expect', 'https://example.org/x']],
      ['an expected trust domain instead of an ID', ['--peer', 'localhost:1', '--expect', 'spiffe://example.org']],
      ['--expect without --peer', ['--expect', SERVER_ID]],
      ['a timeout that is not a number', ['--timeout', 'soon']],
      ['a zero timeout', ['--peer', 'localhost:1', '--timeout', '0']],
      ['an unknown layout', ['--layout', 'istio']],
      ['a file name with a path', ['--cert', '../svid.pem']],
    ];
    for (const [what, args] of bad) {
      it(`exits 2 for ${what}`, async () => {
        const dirArg = what === 'no directory' ? [] : [goodDir];
        const r = await cli(['doctor', ...dirArg, ...args]);
        assert.equal(r.code, 2, r.err);
        assert.equal(r.out, '');
        assert.match(r.err, /^error ERR_USAGE: [^\n]+\n$/);
      });
    }

    it('parses host:port and bracketed IPv6 addresses', () => {
      assert.deepEqual(parsePeerAddress('billing.prod.svc:8443'), { host: 'billing.prod.svc', port: 8443 });
      assert.deepEqual(parsePeerAddress('[::1]:443'), { host: '::1', port: 443 });
      assert.throws(
        () => parsePeerAddress('billing'),
        (e: unknown) => e instanceof SvidkitError && e.code === 'ERR_DOCTOR_OPTIONS',
      );
    });

    it('fails from the built command with exit 1 and one error line, never a stack trace', () => {
      const r = spawnSync(process.execPath, [CLI, 'doctor', join(base, 'nowhere')], { encoding: 'utf8' });
      outputs.push(r.stdout, r.stderr);
      assert.equal(r.status, 1);
      assert.match(r.stdout, /^FAIL: the directory .*nowhere does not exist\n$/m);
      assert.equal(r.stderr, 'error ERR_DOCTOR_FAILED: doctor: check directory failed\n');
    });
  });

  describe('explanations', () => {
    const ctx = { address: 'db:5432', sentCertificate: true, ourTrustDomain: 'example.org' };
    const alert = (code: string, n: number) =>
      Object.assign(new Error(`error:0A000418:SSL routines::alert:SSL alert number ${n}`), { code });

    it('reads alert numbers from messages and from Node error codes', () => {
      assert.equal(alertOf('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', undefined), 48);
      assert.equal(alertOf('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', undefined), 42);
      assert.equal(alertOf('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', undefined), 116);
      assert.equal(alertOf('ERR_SSL_TLSV1_UNRECOGNIZED_NAME', undefined), 112);
      assert.equal(alertOf(undefined, 'ssl3_read_bytes:tlsv1 alert access denied:SSL alert number 49'), 49);
      assert.equal(alertOf('ECONNRESET', 'socket hang up'), undefined);
    });

    const cases: Array<[string, unknown, string, RegExp, boolean?]> = [
      ['unknown CA', alert('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 48), 'peer-refused-us', /does not trust our bundle/],
      [
        'bad certificate',
        alert('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 42),
        'peer-refused-us',
        /refused our certificate/,
      ],
      [
        'certificate required',
        alert('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 116),
        'peer-refused-us',
        /requires a client certificate/,
      ],
      ['access denied', alert('ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', 49), 'peer-refused-us', /authorization policy/],
      [
        'handshake failure without a client certificate',
        alert('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 40),
        'peer-refused-us',
        /requires a client certificate/,
        false,
      ],
      ['protocol version', alert('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 70), 'tls', /no TLS version in common/],
      [
        'ECONNREFUSED',
        Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
        'connect',
        /connection refused: nothing listens on db:5432/,
      ],
      ['ENOTFOUND', Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND' }), 'connect', /does not resolve/],
      [
        'wrong version number',
        Object.assign(new Error('x'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }),
        'tls',
        /does not speak TLS/,
      ],
      [
        'an unknown issuer',
        Object.assign(new Error('x'), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }),
        'we-refused-peer',
        /not issued by a root in our bundle/,
      ],
      [
        'an expired peer',
        Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }),
        'we-refused-peer',
        /has expired/,
      ],
      [
        'a wrapped cause',
        new SvidkitError('ERR_TLS_HANDSHAKE', 'tls: failed', { cause: alert('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 48) }),
        'peer-refused-us',
        /alert 48/,
      ],
    ];
    for (const [what, err, stage, text, sentCertificate = true] of cases) {
      it(`explains ${what}`, () => {
        const ex = explainFailure(err, { ...ctx, sentCertificate });
        assert.equal(ex.stage, stage);
        assert.match(ex.text, text);
        assert.ok(ex.fix.length > 0);
        assert.doesNotMatch(ex.text, /SSL routines/);
      });
    }
  });

  describe('output', () => {
    it('never contains private key material', () => {
      assert.ok(keyPems.length > 5 && outputs.length > 20);
      const all = outputs.join('\n');
      assert.doesNotMatch(all, /PRIVATE KEY/);
      for (const pem of keyPems) {
        const body = pem.split('\n').slice(1, -2).join('');
        for (let i = 0; i + 32 <= body.length; i += 32) {
          assert.ok(!all.includes(body.slice(i, i + 32)), 'a private key fragment was printed');
        }
      }
    });
  });
});
