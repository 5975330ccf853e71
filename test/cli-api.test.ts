/**
 * `svidkit api ...` against a real CA and a real svidkit-agent serving the Workload API: every command
 * in-process (its output collected), `api watch` as a real process stopped by a real signal, the
 * --write directory checked with the library's own FileSource, and the refusals an operator meets
 * (no identity, a bad address, nothing at the socket). Then the same commands against a SPIRE agent,
 * the reference endpoint (skipped where SPIRE is not built, required in CI).
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInsecure } from '../lib/jwtsvid/index.js';
import { FileSource } from '../lib/source/index.js';
import { parseChainPem, X509Svid } from '../lib/x509svid/index.js';
import { type CliResult, runCli } from './helpers/cli.js';
import { peer, requirePeers } from './helpers/peers.js';
import { type RunningSpire, startSpire } from './helpers/spire.js';
import { startWorkloadMesh, type WorkloadMesh } from './helpers/workload-mesh.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit.js');
const uid = process.getuid?.() ?? 0;

/** One error line with this code, no stack trace. */
function assertOneLineError(r: CliResult, exit: number, code: string, message?: RegExp): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.err}`);
  assert.match(r.err, new RegExp(`^error ${code}: [^\\n]+\\n$`), r.err);
  if (message) assert.match(r.err, message);
  assert.equal(r.out, '', 'nothing on stdout');
}

/** The base64 body of a PEM file, as one string: what must never appear in output. */
function pemBody(pem: string): string {
  return pem
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('-----'))
    .join('');
}

/** Runs `svidkit` with SPIFFE_ENDPOINT_SOCKET set (or removed, for undefined) for this run only. */
async function withEndpointEnv(value: string | undefined, args: string[]): Promise<CliResult> {
  const before = process.env['SPIFFE_ENDPOINT_SOCKET'];
  if (value === undefined) delete process.env['SPIFFE_ENDPOINT_SOCKET'];
  else process.env['SPIFFE_ENDPOINT_SOCKET'] = value;
  try {
    return await runCli(args);
  } finally {
    if (before === undefined) delete process.env['SPIFFE_ENDPOINT_SOCKET'];
    else process.env['SPIFFE_ENDPOINT_SOCKET'] = before;
  }
}

/** `svidkit api validate jwt` of the token given on standard input. */
function validateStdin(endpoint: string, audience: string, token: string, ...extra: string[]): Promise<CliResult> {
  return runCli(
    ['api', 'validate', 'jwt', '--audience', audience, '--token', '-', ...extra, '--socket', endpoint],
    token,
  );
}

/** A `svidkit api watch` process: its stdout lines as they come, and its exit. */
class Watch {
  readonly lines: string[] = [];
  stderr = '';
  readonly #child: ChildProcess;
  readonly #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #partial = '';
  #waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.#child = spawn(process.execPath, [CLI, 'api', 'watch', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: '' },
    });
    this.#child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      // A line can arrive in two chunks: only whole lines count.
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.#exit = new Promise((resolve) => this.#child.on('exit', (code, signal) => resolve({ code, signal })));
    void this.#exit.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves once a line satisfies `cond`, with that line; fails if the process ends first. */
  async line(what: string, cond: (line: string) => boolean, from = 0): Promise<string> {
    let exited = false;
    void this.#exit.then(() => (exited = true));
    for (;;) {
      const found = this.lines.slice(from).find(cond);
      if (found !== undefined) return found;
      if (exited) throw new Error(`watch ended before ${what}; stdout ${this.lines.join('\n')}; stderr ${this.stderr}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** Sends `signal` to the process and resolves with how it ended. */
  stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.#child.kill(signal);
    return this.#exit;
  }

  /** Kills the process if it still runs (a failed test must not leave it behind). */
  async kill(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    await this.#exit;
  }
}

describe('svidkit api: the CLI as a Workload API client of a real svidkit-agent', function () {
  this.timeout(120_000);
  let mesh: WorkloadMesh;
  const workloadId = `spiffe://example.org/cli/uid-${uid}`;
  const api = (...args: string[]) => runCli(['api', ...args, '--socket', mesh.endpoint]);

  before(async () => {
    // Short-lived SVIDs rotated early, so that `api watch` sees rotations within seconds.
    mesh = await startWorkloadMesh({ ca: { x509_svid_ttl: '30s' }, agent: { rotation: { fraction: 0.2 } } });
    await mesh.createEntry(workloadId, [`unix:uid:${uid}`]);
  });
  after(async () => {
    await mesh?.close();
  });

  describe('fetch x509', () => {
    it('prints the SVID (SPIFFE ID, hint, serial, expiry) and the bundles’ trust domains', async () => {
      const r = await api('fetch', 'x509');
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err, '');
      const [header, row, tds, ...rest] = r.out.split('\n');
      assert.match(header!, /^SPIFFE ID +HINT +SERIAL +NOT AFTER$/);
      assert.match(row!, new RegExp(`^${workloadId} +- +[0-9a-fA-F]+ +\\d{4}-\\d\\d-\\d\\dT[^ ]+Z$`));
      assert.equal(tds, 'trust domains: example.org');
      assert.deepEqual(rest, ['']);
      assert.doesNotMatch(r.out, /PRIVATE KEY/);
    });

    it('--json gives the same, and SPIFFE_ENDPOINT_SOCKET names the endpoint when --socket is absent', async () => {
      const r = await withEndpointEnv(mesh.endpoint, ['api', 'fetch', 'x509', '--json']);
      assert.equal(r.code, 0, r.err);
      const got = JSON.parse(r.out) as {
        svids: { spiffe_id: string; hint: string; serial: string; not_after: string }[];
        trust_domains: string[];
      };
      assert.equal(got.svids.length, 1);
      assert.deepEqual(Object.keys(got.svids[0]!).sort(), ['hint', 'not_after', 'serial', 'spiffe_id']);
      assert.equal(got.svids[0]!.spiffe_id, workloadId);
      assert.equal(got.svids[0]!.hint, '');
      assert.ok(Date.parse(got.svids[0]!.not_after) > Date.now());
      assert.deepEqual(got.trust_domains, ['example.org']);
    });

    it('--write DIR: the agent’s layout (svid.pem, svid_key.pem 0600, svid_bundle.pem), read back by FileSource; the key is never printed', async () => {
      const dir = join(mesh.dir, 'write-fresh', 'svid');
      const r = await api('fetch', 'x509', '--write', dir, '--json');
      assert.equal(r.code, 0, r.err);
      const got = JSON.parse(r.out) as {
        svids: { spiffe_id: string; serial: string }[];
        written: { dir: string; spiffe_id: string; svid: string; key: string; bundle: string };
      };
      assert.deepEqual(got.written, {
        dir,
        spiffe_id: workloadId,
        svid: 'svid.pem',
        key: 'svid_key.pem',
        bundle: 'svid_bundle.pem',
      });
      const certPem = readFileSync(join(dir, 'svid.pem'), 'utf8');
      const keyPem = readFileSync(join(dir, 'svid_key.pem'), 'utf8');
      const svid = X509Svid.parse(certPem, keyPem);
      assert.equal(svid.id.toString(), workloadId);
      assert.equal(svid.leaf.serialHex, got.svids[0]!.serial, 'the written SVID is the printed one');
      assert.equal(statSync(join(dir, 'svid_key.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'svid.pem')).mode & 0o777, 0o644);
      const roots = parseChainPem(readFileSync(join(dir, 'svid_bundle.pem')));
      assert.ok(roots.length >= 1 && roots.every((c) => c.basicConstraints?.cA === true));
      // The whole directory is the agent's layout: FileSource opens it and serves the same SVID.
      const source = await FileSource.open(dir, { pollIntervalMs: 0 });
      try {
        assert.equal(source.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
        assert.ok(source.getJwtBundleForTrustDomain(svid.id.trustDomain)!.size >= 1, 'JWT bundles written too');
      } finally {
        await source.close();
      }
      for (const text of [r.out, r.err]) {
        assert.ok(!text.includes(pemBody(keyPem)), 'the key is not printed');
        assert.doesNotMatch(text, /PRIVATE KEY/);
      }
      // In the text form too.
      const again = await api('fetch', 'x509', '--write', dir);
      assert.equal(again.code, 0, again.err);
      assert.match(
        again.out,
        new RegExp(`^wrote ${workloadId} to ${dir} \\(svid.pem, svid_key.pem, svid_bundle.pem\\)$`, 'm'),
      );
      assert.ok(!again.out.includes(pemBody(readFileSync(join(dir, 'svid_key.pem'), 'utf8'))));
    });

    it('--write replaces what is there atomically: a symlink planted at a final name is replaced, never followed', async () => {
      const base = join(mesh.dir, 'write-planted');
      const dir = join(base, 'svid');
      mkdirSync(dir, { recursive: true });
      const victims = ['svid.pem', 'svid_key.pem', 'svid_bundle.pem'].map((name) => {
        const victim = join(base, `victim-${name}`);
        writeFileSync(victim, 'not yours\n', { mode: 0o644 });
        symlinkSync(victim, join(dir, name));
        return victim;
      });
      const r = await api('fetch', 'x509', '--write', dir);
      assert.equal(r.code, 0, r.err);
      for (const victim of victims) {
        assert.equal(readFileSync(victim, 'utf8'), 'not yours\n', `${victim} untouched`);
        assert.equal(statSync(victim).mode & 0o777, 0o644);
      }
      for (const name of ['svid.pem', 'svid_key.pem', 'svid_bundle.pem']) {
        assert.equal(readlinkSync(join(dir, name)), `..data/${name}`, `${name} is the layout's link now`);
      }
      const first = readlinkSync(join(dir, '..data'));
      const svid = X509Svid.parse(readFileSync(join(dir, 'svid.pem')), readFileSync(join(dir, 'svid_key.pem')));
      assert.equal(svid.id.toString(), workloadId);
      // A second write swaps ..data to a new version and leaves no temporary entry behind.
      const second = await api('fetch', 'x509', '--write', dir);
      assert.equal(second.code, 0, second.err);
      const now = readlinkSync(join(dir, '..data'));
      assert.notEqual(now, first);
      const entries = readdirSync(dir).sort();
      assert.deepEqual(
        entries.filter((e) => e.startsWith('..')),
        ['..data', now].sort(),
        `only ..data and its version: ${entries.join(' ')}`,
      );
    });

    it('--write refuses a directory that is a symlink, and one every user can write (nothing is written)', async () => {
      const base = join(mesh.dir, 'write-refused');
      const real = join(base, 'real');
      mkdirSync(real, { recursive: true });
      const link = join(base, 'link');
      symlinkSync(real, link);
      const viaLink = await api('fetch', 'x509', '--write', link);
      assertOneLineError(viaLink, 1, 'ERR_AGENT_UNSAFE_DIR', /symlink/);
      assert.deepEqual(readdirSync(real), []);
      const open = join(base, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      const worldWritable = await api('fetch', 'x509', '--write', open);
      assertOneLineError(worldWritable, 1, 'ERR_AGENT_UNSAFE_DIR', /writable by every user/);
      assert.deepEqual(readdirSync(open), []);
      assert.ok(lstatSync(link).isSymbolicLink());
    });
  });

  describe('fetch jwt', () => {
    it('prints one token for the audiences, on stdout only', async () => {
      const r = await api('fetch', 'jwt', '--audience', 'spiffe://example.org/db', '--audience', 'billing');
      assert.equal(r.code, 0, r.err);
      assert.equal(r.err, '', 'nothing on stderr');
      const lines = r.out.split('\n');
      assert.equal(lines.length, 2, r.out);
      assert.equal(lines[1], '');
      const token = parseInsecure(lines[0]!);
      assert.equal(token.id.toString(), workloadId);
      assert.deepEqual([...token.audience].sort(), ['billing', 'spiffe://example.org/db']);
    });

    it('--json names each token’s SPIFFE ID, audience and expiry; --spiffe-id asks for that identity', async () => {
      const r = await api('fetch', 'jwt', '--audience', 'db', '--spiffe-id', workloadId, '--json');
      assert.equal(r.code, 0, r.err);
      const got = JSON.parse(r.out) as {
        svids: { spiffe_id: string; hint: string; audience: string[]; expires_at: string; token: string }[];
      };
      assert.equal(got.svids.length, 1);
      const s = got.svids[0]!;
      assert.equal(s.spiffe_id, workloadId);
      assert.deepEqual(s.audience, ['db']);
      assert.ok(Date.parse(s.expires_at) > Date.now());
      assert.equal(parseInsecure(s.token).id.toString(), workloadId);
    });

    it('an identity this process does not have is PERMISSION_DENIED (exit 1, plain sentence)', async () => {
      const r = await api('fetch', 'jwt', '--audience', 'db', '--spiffe-id', 'spiffe://example.org/not-mine');
      assertOneLineError(
        r,
        1,
        'ERR_WORKLOADAPI_PERMISSION_DENIED',
        /the agent at unix:\/\/\S+ has no identity for this process \(PERMISSION_DENIED\)$/m,
      );
    });

    const usage: [string, string[], RegExp][] = [
      ['no --audience', [], /--audience/],
      ['an empty --audience', ['--audience', ''], /--audience/],
      ['33 audiences', Array.from({ length: 33 }, (_, i) => ['--audience', `a${i}`]).flat(), /more than 32/],
      ['a --spiffe-id that is not one', ['--audience', 'db', '--spiffe-id', 'example.org/x'], /--spiffe-id/],
    ];
    for (const [name, args, message] of usage) {
      it(`usage: ${name} is exit 2`, async () => {
        const r = await api('fetch', 'jwt', ...args);
        assertOneLineError(r, 2, 'ERR_USAGE', message);
      });
    }
  });

  describe('fetch bundles', () => {
    it('prints the X.509 and JWT bundles per trust domain, the same authorities as the CA’s bundle', async () => {
      const ca = JSON.parse((await mesh.admin('bundle', 'show', '--json')).out) as {
        x509_authorities: { sha256: string }[];
        jwt_authorities: { kid: string }[];
      };
      const r = await api('fetch', 'bundles', '--json');
      assert.equal(r.code, 0, r.err);
      const got = JSON.parse(r.out) as {
        bundles: { trust_domain: string; x509_authorities: { sha256: string }[]; jwt_authorities: { kid: string }[] }[];
      };
      assert.deepEqual(
        got.bundles.map((b) => b.trust_domain),
        ['example.org'],
      );
      assert.deepEqual(got.bundles[0]!.x509_authorities, ca.x509_authorities);
      assert.deepEqual(got.bundles[0]!.jwt_authorities, ca.jwt_authorities);
      const text = await api('fetch', 'bundles');
      assert.equal(text.code, 0, text.err);
      assert.match(text.out, /^trust domain: example\.org\n\nX\.509 ROOT +NOT AFTER +SHA-256\n/);
      for (const root of ca.x509_authorities) assert.ok(text.out.includes(root.sha256));
      for (const key of ca.jwt_authorities) {
        assert.ok(
          text.out.split('\n').some((l) => l.startsWith(`${key.kid} `)),
          `JWT key ${key.kid} listed`,
        );
      }
    });
  });

  // Needs the agent's ValidateJWTSVID (the server side); until it is served the agent answers UNIMPLEMENTED.
  describe('validate jwt', () => {
    it('validates a token through the agent and prints its SPIFFE ID and claims (file and stdin)', async () => {
      const fetched = await api('fetch', 'jwt', '--audience', 'spiffe://example.org/db');
      assert.equal(fetched.code, 0, fetched.err);
      const file = join(mesh.dir, 'token.jwt');
      writeFileSync(file, fetched.out, { mode: 0o600 });
      const r = await api('validate', 'jwt', '--audience', 'spiffe://example.org/db', '--token', file);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^spiffe id: ${workloadId}\nclaims:\n\\{\n`));
      const claims = JSON.parse(r.out.slice(r.out.indexOf('{'))) as { sub: string; aud: string | string[] };
      assert.equal(claims.sub, workloadId);
      assert.deepEqual([claims.aud].flat(), ['spiffe://example.org/db']);
      const viaStdin = await validateStdin(mesh.endpoint, 'spiffe://example.org/db', fetched.out, '--json');
      assert.equal(viaStdin.code, 0, viaStdin.err);
      const got = JSON.parse(viaStdin.out) as { spiffe_id: string; claims: { sub: string } };
      assert.equal(got.spiffe_id, workloadId);
      assert.equal(got.claims.sub, workloadId);
    });

    it('a token for another audience is refused (exit 1) and the token is not echoed', async () => {
      const fetched = await api('fetch', 'jwt', '--audience', 'spiffe://example.org/db');
      assert.equal(fetched.code, 0, fetched.err);
      const r = await validateStdin(mesh.endpoint, 'spiffe://example.org/other', fetched.out);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, /^error ERR_WORKLOADAPI_INVALID_ARGUMENT: /);
      assert.ok(!r.err.includes(fetched.out.trim()), 'the token is not in the message');
    });

    it('an empty token is a usage error (exit 2), asked of no endpoint', async () => {
      const empty = await validateStdin(mesh.endpoint, 'db', '\n');
      assertOneLineError(empty, 2, 'ERR_USAGE', /holds no token/);
    });
  });

  describe('watch', () => {
    it('prints one line per X.509 update (here a rotation) until SIGTERM, then exits 0', async () => {
      const w = new Watch(['--socket', mesh.endpoint]);
      try {
        const line = new RegExp(
          `^\\S+Z ${workloadId} serial ([0-9a-fA-F]+) expires \\S+Z; trust domains example\\.org$`,
        );
        const first = await w.line('the first state', (l) => line.test(l));
        const serial = line.exec(first)![1];
        const rotated = await w.line('a rotation', (l) => line.test(l) && line.exec(l)![1] !== serial);
        assert.ok(rotated);
        const end = await w.stop('SIGTERM');
        assert.deepEqual(end, { code: 0, signal: null }, w.stderr);
        assert.ok(
          w.lines.every((l) => line.test(l) || l === ''),
          w.lines.join('\n'),
        );
        assert.equal(w.stderr, '');
      } finally {
        await w.kill();
      }
    });

    it('--json: one object per line; a new entry is an update; SIGINT stops it', async () => {
      const w = new Watch(['--socket', mesh.endpoint, '--json']);
      let second: string | undefined;
      try {
        type Line = { time: string; svids: { spiffe_id: string; serial: string }[]; trust_domains: string[] };
        const parse = (l: string) => JSON.parse(l) as Line;
        const first = parse(await w.line('the first state', (l) => l.startsWith('{')));
        assert.deepEqual(
          first.svids.map((s) => s.spiffe_id),
          [workloadId],
        );
        assert.deepEqual(first.trust_domains, ['example.org']);
        const otherId = `spiffe://example.org/cli/second-${uid}`;
        second = await mesh.createEntry(otherId, [`unix:uid:${uid}`]);
        const both = parse(
          await w.line('the state with the new entry', (l) => l.startsWith('{') && parse(l).svids.length === 2),
        );
        assert.deepEqual(both.svids.map((s) => s.spiffe_id).sort(), [otherId, workloadId].sort());
        const end = await w.stop('SIGINT');
        assert.deepEqual(end, { code: 0, signal: null }, w.stderr);
        assert.doesNotMatch(w.lines.join('\n'), /PRIVATE KEY|x509_svid_key/);
      } finally {
        await w.kill();
        if (second !== undefined) assert.equal((await mesh.admin('entry', 'delete', second)).code, 0);
      }
    });
  });

  describe('the endpoint address', () => {
    const bad: [string, string | undefined, string[], RegExp][] = [
      [
        'a relative unix path',
        undefined,
        ['--socket', 'unix:api.sock'],
        /^error ERR_USAGE: cli: --socket: .*relative path/,
      ],
      ['a host name', undefined, ['--socket', 'tcp://localhost:8000'], /--socket: .*not an IP address/],
      ['a plain path', undefined, ['--socket', '/run/api.sock'], /--socket: .*not a URI/],
      ['a bad SPIFFE_ENDPOINT_SOCKET', 'http://127.0.0.1:1', [], /SPIFFE_ENDPOINT_SOCKET: .*scheme "http"/],
      ['none at all', undefined, [], /no Workload API endpoint: pass --socket .* or set SPIFFE_ENDPOINT_SOCKET/],
      ['a bad --timeout', undefined, ['--socket', 'unix:///x/api.sock', '--timeout', '0'], /--timeout/],
    ];
    for (const [name, env, args, message] of bad) {
      it(`${name} is a usage error (exit 2)`, async () => {
        const r = await withEndpointEnv(env, ['api', 'fetch', 'x509', ...args]);
        assertOneLineError(r, 2, 'ERR_USAGE', message);
      });
    }

    it('nothing listening at the socket is exit 3 with a sentence that says so', async () => {
      const nowhere = `unix://${join(mesh.dir, 'nowhere', 'api.sock')}`;
      for (const args of [['fetch', 'x509'], ['fetch', 'bundles'], ['fetch', 'jwt', '--audience', 'db'], ['watch']]) {
        const r = await runCli(['api', ...args, '--socket', nowhere]);
        assertOneLineError(
          r,
          3,
          'ERR_WORKLOADAPI_UNAVAILABLE',
          new RegExp(`cannot reach the Workload API at ${nowhere} \\(UNAVAILABLE\\)`),
        );
      }
    });
  });

  // Last, so that no other test sees the second identity.
  describe('a process with two identities', () => {
    const otherId = `spiffe://example.org/cli/other-${uid}`;
    let entry: string | undefined;
    let order: string[] = [];
    before(async () => {
      entry = await mesh.createEntry(otherId, [`unix:uid:${uid}`]);
      // The agent learns of the entry at its next sync; wait for the state with exactly both identities.
      const want = [otherId, workloadId].sort().join(' ');
      for (;;) {
        const r = await api('fetch', 'x509', '--json');
        assert.equal(r.code, 0, r.err);
        order = (JSON.parse(r.out) as { svids: { spiffe_id: string }[] }).svids.map((s) => s.spiffe_id);
        if ([...order].sort().join(' ') === want) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    after(async () => {
      if (entry !== undefined) assert.equal((await mesh.admin('entry', 'delete', entry)).code, 0);
    });

    it('fetch x509 lists both; --write writes the default (the first) only', async () => {
      const r = await api('fetch', 'x509');
      assert.equal(r.code, 0, r.err);
      for (const id of order) assert.match(r.out, new RegExp(`^${id} `, 'm'));
      const dir = join(mesh.dir, 'write-two', 'svid');
      const w = await api('fetch', 'x509', '--write', dir, '--json');
      assert.equal(w.code, 0, w.err);
      const got = JSON.parse(w.out) as { svids: { spiffe_id: string }[]; written: { spiffe_id: string } };
      assert.equal(got.written.spiffe_id, got.svids[0]!.spiffe_id);
      const svid = X509Svid.parse(readFileSync(join(dir, 'svid.pem')), readFileSync(join(dir, 'svid_key.pem')));
      assert.equal(svid.id.toString(), got.svids[0]!.spiffe_id);
    });

    it('fetch jwt prints one token per identity, the default first; --spiffe-id picks one', async () => {
      const r = await api('fetch', 'jwt', '--audience', 'db');
      assert.equal(r.code, 0, r.err);
      const tokens = r.out.trimEnd().split('\n');
      assert.deepEqual(
        tokens.map((t) => parseInsecure(t).id.toString()),
        order,
        'in the order of the X.509-SVIDs, whose first is the default',
      );
      const one = await api('fetch', 'jwt', '--audience', 'db', '--spiffe-id', otherId);
      assert.equal(one.code, 0, one.err);
      const lines = one.out.trimEnd().split('\n');
      assert.equal(lines.length, 1);
      assert.equal(parseInsecure(lines[0]!).id.toString(), otherId);
    });
  });
});

describe('svidkit api: a caller the agent has no entry for', function () {
  this.timeout(120_000);
  let mesh: WorkloadMesh;
  const api = (...args: string[]) => runCli(['api', ...args, '--socket', mesh.endpoint]);

  before(async () => {
    mesh = await startWorkloadMesh();
    // An entry for another uid only: this process is attested, and matches nothing.
    await mesh.createEntry('spiffe://example.org/cli/someone-else', [`unix:uid:${uid + 1}`]);
  });
  after(async () => {
    await mesh?.close();
  });

  for (const args of [
    ['fetch', 'x509'],
    ['fetch', 'x509', '--write', 'DIR'],
    ['fetch', 'jwt', '--audience', 'db'],
    ['watch'],
  ]) {
    it(`api ${args.join(' ')}: PERMISSION_DENIED is exit 1 with a plain sentence`, async () => {
      const dir = join(mesh.dir, 'out');
      const r = await api(...args.map((a) => (a === 'DIR' ? dir : a)));
      assertOneLineError(
        r,
        1,
        'ERR_WORKLOADAPI_PERMISSION_DENIED',
        new RegExp(
          `^error ERR_WORKLOADAPI_PERMISSION_DENIED: api: the agent at ${mesh.endpoint} has no identity for this process \\(PERMISSION_DENIED\\)\n$`,
        ),
      );
      assert.throws(() => statSync(dir), /ENOENT/, 'nothing written');
    });
  }

  it('watch: an identity that goes away is a "no identity" update, and one that comes back another', async () => {
    const id = `spiffe://example.org/cli/late-${uid}`;
    const entry = await mesh.createEntry(id, [`unix:uid:${uid}`]);
    const w = new Watch(['--socket', mesh.endpoint, '--json']);
    try {
      await w.line('the first state', (l) => l.includes(id));
      const del = await mesh.admin('entry', 'delete', entry);
      assert.equal(del.code, 0, del.err);
      const denied = JSON.parse(await w.line('the denial', (l) => l.includes('"denied"'))) as {
        svids: unknown[];
        denied: boolean;
      };
      assert.deepEqual({ svids: denied.svids, denied: denied.denied }, { svids: [], denied: true });
      const from = w.lines.length;
      await mesh.createEntry(id, [`unix:uid:${uid}`]);
      await w.line('the identity back', (l) => l.includes(id), from);
      const end = await w.stop('SIGTERM');
      assert.deepEqual(end, { code: 0, signal: null }, w.stderr);
    } finally {
      await w.kill();
    }
  });
});

describe('svidkit api against a SPIRE agent, the reference Workload API endpoint', function () {
  this.timeout(180_000);
  const spire = peer('spire');
  let deployment: RunningSpire | undefined;
  let workloadId: string;
  const api = (...args: string[]) => runCli(['api', ...args, '--socket', deployment!.endpoint]);

  before(async function () {
    requirePeers(this, 'spire');
    const bins = spire.found ? spire.extra : {};
    deployment = await startSpire({ server: bins['server']!, agent: bins['agent']! });
    workloadId = `spiffe://${deployment.trustDomain}/cli/uid-${uid}`;
    await deployment.createEntry({ spiffeId: workloadId, selectors: [`unix:uid:${uid}`], hint: 'internal' });
    await deployment.waitForX509Svid(workloadId);
  });
  after(async () => {
    await deployment?.close();
  });

  it('fetch x509 shows the SVID with its hint; --write writes it', async () => {
    const r = await api('fetch', 'x509');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^${workloadId} +internal +[0-9a-fA-F]+ +\\S+Z$`, 'm'));
    const dir = join(deployment!.dir, 'cli-svid');
    const w = await api('fetch', 'x509', '--write', dir);
    assert.equal(w.code, 0, w.err);
    const svid = X509Svid.parse(readFileSync(join(dir, 'svid.pem')), readFileSync(join(dir, 'svid_key.pem')));
    assert.equal(svid.id.toString(), workloadId);
  });

  it('fetch jwt, then validate jwt through SPIRE’s ValidateJWTSVID; another audience is refused', async () => {
    const fetched = await api('fetch', 'jwt', '--audience', 'spiffe://example.org/db');
    assert.equal(fetched.code, 0, fetched.err);
    assert.equal(parseInsecure(fetched.out.trim()).id.toString(), workloadId);
    const r = await validateStdin(deployment!.endpoint, 'spiffe://example.org/db', fetched.out, '--json');
    assert.equal(r.code, 0, r.err);
    const got = JSON.parse(r.out) as { spiffe_id: string; claims: { sub: string } };
    assert.equal(got.spiffe_id, workloadId);
    assert.equal(got.claims.sub, workloadId);
    const other = await validateStdin(deployment!.endpoint, 'spiffe://example.org/other', fetched.out);
    assertOneLineError(other, 1, 'ERR_WORKLOADAPI_INVALID_ARGUMENT');
    assert.ok(!other.err.includes(fetched.out.trim()), 'the token is not in the message');
  });

  it('fetch bundles lists the trust domain with its roots and JWT keys', async () => {
    const r = await api('fetch', 'bundles', '--json');
    assert.equal(r.code, 0, r.err);
    const got = JSON.parse(r.out) as {
      bundles: { trust_domain: string; x509_authorities: unknown[]; jwt_authorities: unknown[] }[];
    };
    const own = got.bundles.find((b) => b.trust_domain === deployment!.trustDomain);
    assert.ok(own && own.x509_authorities.length >= 1 && own.jwt_authorities.length >= 1, r.out);
  });
});
