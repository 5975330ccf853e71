/**
 * Attacks on svidkit-ca from the agent side and from the host: an old copy of an agent's identity
 * file, oversized JWT audiences, too many bundle streams, a loose data directory or socket directory,
 * and key files a crash left behind. Every case runs against a real CA on loopback.
 */
import { strict as assert } from 'node:assert';
import type { KeyObject } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChannelCredentials, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { MAX_AUDIENCE_BYTES } from '../lib/ca-api/index.js';
import { MAX_WATCH_STREAMS_PER_AGENT } from '../lib/ca/node-service.js';
import { MAX_KID_LENGTH } from '../lib/bundle/jwt.js';
import { run } from '../lib/ca/daemon.js';
import type { BatchNewX509SvidResponse__Output } from '../lib/generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
import { caProto } from '../lib/ca-api/proto.js';
import { MAX_TOKEN_BYTES, mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair, privateKeyToPem } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { captureLog } from './helpers/ca-context.js';
import { rejectsStatus } from './helpers/assert.js';
import type {
  AttestAgentResponse__Output,
  Bundle__Output,
  ListAuthorizedEntriesResponse__Output,
  NewJwtSvidResponse__Output,
  NodeClient,
  RenewAgentResponse__Output,
} from '../lib/ca-api/index.js';

const TD = TrustDomain.parse('example.org');
const CA_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit-ca.js');

/** Promisifies one unary call. */
function call<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

/** The first message of a WatchBundle stream, or the status it ended with. */
function firstOfStream(c: NodeClient): Promise<{ bundle?: Bundle__Output; error?: ServiceError }> {
  const stream = c.WatchBundle({});
  return new Promise((resolve) => {
    stream.once('data', (bundle: Bundle__Output) => {
      resolve({ bundle });
      stream.cancel();
    });
    stream.on('error', (error: ServiceError) => resolve({ error }));
  });
}

/** An agent SVID as the agent would hold it on disk: the chain and its key. */
interface HeldSvid {
  readonly serial: string;
  readonly chainPem: string;
  readonly key: KeyObject;
}

function held(chain: Buffer[], key: KeyObject): HeldSvid {
  const certs = chain.map((d) => Certificate.fromDer(d));
  return { serial: certs[0]!.serialHex, chainPem: certs.map((c) => c.toPem()).join(''), key };
}

/** A CA on loopback, in a fresh directory, with its log captured. */
async function startCa(dir: string, doc: Record<string, unknown> = {}) {
  const log = captureLog();
  const ca = await run(
    parseCaConfig(
      { trust_domain: TD.name, data_dir: join(dir, 'ca'), listen: { port: 0 }, observability: { port: 0 }, ...doc },
      dir,
    ),
    { logger: createLogger({ name: 'svidkit-ca', destination: log }) },
  );
  const roots = () => Buffer.from(ca.context.keys.bundle().x509.toPem());
  const client = (creds: ChannelCredentials) =>
    new (caProto().svidkit.ca.v1.Node)(`localhost:${ca.nodePort}`, creds) as unknown as NodeClient;
  const clients: NodeClient[] = [];
  const as = (svid: HeldSvid) => {
    const c = client(
      credentials.createSsl(roots(), Buffer.from(privateKeyToPem(svid.key)), Buffer.from(svid.chainPem)),
    );
    clients.push(c);
    return c;
  };
  const attest = async (): Promise<HeldSvid> => {
    const token = generateJoinToken();
    await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
    const key = generateKeyPair().privateKey;
    const c = client(credentials.createSsl(roots()));
    clients.push(c);
    const res = await call<AttestAgentResponse__Output>((cb) =>
      c.AttestAgent({ joinToken: { token }, csr: buildCsr({ key }) }, cb),
    );
    assert.equal(res.svid!.spiffeId, agentIdForJoinToken(TD, token).toString());
    return held(res.svid!.certChain as Buffer[], key);
  };
  const renew = async (svid: HeldSvid): Promise<HeldSvid> => {
    const key = generateKeyPair().privateKey;
    const c = as(svid);
    const res = await call<RenewAgentResponse__Output>((cb) => c.RenewAgent({ csr: buildCsr({ key }) }, cb));
    return held(res.svid!.certChain as Buffer[], key);
  };
  const close = async () => {
    for (const c of clients) c.close();
    await ca.close(1000);
  };
  return { ca, log, as, attest, renew, close };
}

type TestCa = Awaited<ReturnType<typeof startCa>>;

describe('attacks on svidkit-ca', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-attacks-ca-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('a superseded agent SVID (an old copy of the identity file)', () => {
    let t: TestCa;
    afterEach(async () => t?.close());

    it('is PERMISSION_DENIED on every Node method, with an audit line, and cannot move the record', async () => {
      t = await startCa(dir);
      const s0 = await t.attest();
      const s1 = await t.renew(s0);
      // The agent uses its new SVID once, then renews again.
      await call<ListAuthorizedEntriesResponse__Output>((cb) => t.as(s1).ListAuthorizedEntries({}, cb));
      const s2 = await t.renew(s1);
      const id = pemId(s2);
      const entry = await t.ca.context.store.createEntry({
        spiffeId: 'spiffe://example.org/ns/prod/sa/web',
        parentId: id,
        x509SvidTtlSeconds: 600,
        jwtSvidTtlSeconds: 120,
        dnsNames: [],
      });
      const before = await t.ca.context.store.getAgent(id);
      assert.equal(before?.serial, s2.serial);
      t.log.clear();

      const old = t.as(s0);
      const csr = buildCsr({ key: generateKeyPair().privateKey });
      await rejectsStatus(
        call<RenewAgentResponse__Output>((cb) => old.RenewAgent({ csr }, cb)),
        status.PERMISSION_DENIED,
        'RenewAgent',
      );
      await rejectsStatus(
        call<ListAuthorizedEntriesResponse__Output>((cb) => old.ListAuthorizedEntries({}, cb)),
        status.PERMISSION_DENIED,
        'ListAuthorizedEntries',
      );
      await rejectsStatus(
        call<BatchNewX509SvidResponse__Output>((cb) =>
          old.BatchNewX509Svid({ params: [{ entryId: entry.id, csr }] }, cb),
        ),
        status.PERMISSION_DENIED,
        'BatchNewX509Svid',
      );
      await rejectsStatus(
        call<NewJwtSvidResponse__Output>((cb) => old.NewJwtSvid({ entryId: entry.id, audience: ['db'] }, cb)),
        status.PERMISSION_DENIED,
        'NewJwtSvid',
      );
      const watched = await firstOfStream(old);
      assert.equal(watched.bundle, undefined, 'WatchBundle sent a bundle to a superseded SVID');
      assert.equal(watched.error?.code, status.PERMISSION_DENIED, 'WatchBundle');

      const refusals = t.log.lines().filter((l) => l['event'] === 'agent_svid_refused');
      assert.equal(refusals.length, 5, 'one audit line per refused call');
      for (const l of refusals) {
        assert.equal(l['audit'], true);
        assert.equal(l['agent'], id);
        assert.equal(l['serial'], s0.serial);
      }
      assert.deepEqual(await t.ca.context.store.getAgent(id), before, 'the old copy did not move the record');

      // The real agent goes on with its current SVID.
      const s3 = await t.renew(s2);
      assert.equal((await t.ca.context.store.getAgent(id))?.serial, s3.serial);
    });

    it('accepts the previous SVID until the current one has been used, then refuses it', async () => {
      t = await startCa(dir);
      const s0 = await t.attest();
      const s1 = await t.renew(s0);
      const id = pemId(s1);
      // Crash between receiving s1 and saving it: the agent still holds s0, which keeps working.
      await call<ListAuthorizedEntriesResponse__Output>((cb) => t.as(s0).ListAuthorizedEntries({}, cb));
      assert.ok((await firstOfStream(t.as(s0))).bundle, 'WatchBundle with the previous SVID');
      // Renewing with it again replaces the lost SVID; s0 stays the previous one.
      const s2 = await t.renew(s0);
      let record = await t.ca.context.store.getAgent(id);
      assert.equal(record?.serial, s2.serial);
      assert.equal(record?.previousSerial, s0.serial);
      await rejectsStatus(
        call<ListAuthorizedEntriesResponse__Output>((cb) => t.as(s1).ListAuthorizedEntries({}, cb)),
        status.PERMISSION_DENIED,
        'the lost SVID',
      );
      // The first use of the current SVID ends the grace.
      await call<ListAuthorizedEntriesResponse__Output>((cb) => t.as(s2).ListAuthorizedEntries({}, cb));
      record = await t.ca.context.store.getAgent(id);
      assert.equal(record?.previousSerial, undefined);
      await rejectsStatus(
        call<ListAuthorizedEntriesResponse__Output>((cb) => t.as(s0).ListAuthorizedEntries({}, cb)),
        status.PERMISSION_DENIED,
        'the previous SVID after the grace',
      );
      await rejectsStatus(t.renew(s0), status.PERMISSION_DENIED, 'renewing with the previous SVID after the grace');
      assert.equal((await t.ca.context.store.getAgent(id))?.serial, s2.serial);
    });
  });

  describe('a bundle stream opened with the previous SVID', () => {
    let t: TestCa;
    afterEach(async () => t?.close());

    it('gets the next bundle change and then ends cleanly once the current SVID has been used', async () => {
      t = await startCa(dir);
      const s0 = await t.attest();
      const s1 = await t.renew(s0);
      const stream = t.as(s0).WatchBundle({});
      const bundles: Bundle__Output[] = [];
      let error: ServiceError | undefined;
      let first!: () => void;
      const gotFirst = new Promise<void>((resolve) => (first = resolve));
      // A forced rotation publishes twice (prepare, then activate): a stream that stays open gets both.
      const settled = new Promise<'ended' | 'stayed open'>((resolve) => {
        stream.on('data', (b: Bundle__Output) => {
          bundles.push(b);
          if (bundles.length === 1) first();
          if (bundles.length === 3) resolve('stayed open');
        });
        stream.on('error', (e: ServiceError) => {
          error = e;
          resolve('ended');
        });
        stream.on('end', () => resolve('ended'));
      });
      await gotFirst;
      await call<ListAuthorizedEntriesResponse__Output>((cb) => t.as(s1).ListAuthorizedEntries({}, cb));
      t.log.clear();
      await t.ca.context.keys.rotate('jwt');
      assert.equal(await settled, 'ended');
      assert.equal(error, undefined, `a clean end, not ${error?.message}`);
      assert.equal(bundles.length, 2, 'the change that ended the stream was still delivered');
      assert.ok(bundles[1]!.sequence > bundles[0]!.sequence);
      assert.ok(t.log.text.includes('bundle stream ended: its agent SVID was renewed'));
      assert.ok(!t.log.text.includes('agent_svid_refused'), 'an agent that renewed is not an attack');
      // Its slot is free again: the agent reopens the stream with its current SVID.
      assert.ok((await firstOfStream(t.as(s1))).bundle);
    });
  });

  describe('an entry ID that is cut inside a surrogate pair in the refusal', () => {
    let t: TestCa;
    afterEach(async () => t?.close());

    it('is answered PERMISSION_DENIED (grpc-js cannot send a lone surrogate, and the call would hang)', async () => {
      t = await startCa(dir);
      const s0 = await t.attest();
      const c = t.as(s0);
      // 127 ASCII characters and an emoji: the message's first 128 UTF-16 units end in half of it.
      const entryId = `${'e'.repeat(127)}\u{1F600}`;
      const err = await rejectsStatus(
        call<NewJwtSvidResponse__Output>((cb) => c.NewJwtSvid({ entryId, audience: ['db'] }, cb)),
        status.PERMISSION_DENIED,
      );
      assert.match(err.details, /is not authorized for this agent/);
    });
  });

  describe('NewJwtSvid with audiences inside the per-item limits but too big for a token', () => {
    let t: TestCa;
    afterEach(async () => t?.close());

    /** Four audiences whose JSON list takes exactly `bytes` bytes. */
    const audiencesOf = (bytes: number) => {
      const chars = bytes - 2 - 3 - 4 * 2;
      return [2048, 2048, 2048, chars - 3 * 2048].map((n, i) => String.fromCharCode(97 + i).repeat(n));
    };

    it('answers INVALID_ARGUMENT with the sizes, never INTERNAL or an error-level line', async () => {
      t = await startCa(dir, { ca: { jwt_key_type: 'rsa-4096' } });
      const s0 = await t.attest();
      // The longest SPIFFE ID and the largest signature: the worst case the bound is made for.
      const longId = `spiffe://example.org/${'w'.repeat(2048 - 'spiffe://example.org/'.length)}`;
      const entry = await t.ca.context.store.createEntry({
        spiffeId: longId,
        parentId: pemId(s0),
        x509SvidTtlSeconds: 600,
        jwtSvidTtlSeconds: 120,
        dnsNames: [],
      });
      const c = t.as(s0);
      t.log.clear();
      const mint = (audience: string[]) =>
        call<NewJwtSvidResponse__Output>((cb) => c.NewJwtSvid({ entryId: entry.id, audience }, cb));
      const cases: { name: string; audience: string[]; message: RegExp }[] = [
        {
          name: '16 audiences of 2000 characters',
          audience: Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(2000, 'x')),
          message: /the audiences take 32049 bytes in the token; at most 8192 are allowed/,
        },
        { name: 'one byte over the bound', audience: audiencesOf(MAX_AUDIENCE_BYTES + 1), message: /8193 bytes/ },
        {
          name: 'characters that JSON escapes',
          audience: ['\u0001'.repeat(1400)],
          message: /8404 bytes/,
        },
      ];
      for (const { name, audience, message } of cases) {
        const err = await rejectsStatus(mint(audience), status.INVALID_ARGUMENT, name);
        assert.match(err.details, message, name);
      }
      const levels = t.log.lines().map((l) => l['level']);
      assert.deepEqual(levels, ['warn', 'warn', 'warn'], 'one warning per refusal, nothing at error level');
      assert.ok(!t.log.text.includes('"stack"'), 'no stack trace in the log');

      // Exactly at the bound, with the worst-case subject and signature, the token fits.
      const res = await mint(audiencesOf(MAX_AUDIENCE_BYTES));
      assert.ok(Buffer.byteLength(res.token!) <= MAX_TOKEN_BYTES, `${Buffer.byteLength(res.token!)} bytes`);
    });

    it('the bound holds for the longest kid the bundle allows, too', async () => {
      const key = generateKeyPair('rsa-4096').privateKey;
      const token = await mintJwtSvid({
        id: SpiffeId.parse(`spiffe://example.org/${'w'.repeat(2048 - 'spiffe://example.org/'.length)}`),
        audience: audiencesOf(MAX_AUDIENCE_BYTES),
        key,
        kid: 'k'.repeat(MAX_KID_LENGTH),
        alg: 'RS512',
        expiresAt: new Date(8.64e12 * 1000 - 1000),
        clock: () => new Date(8.64e12 * 1000 - 2000),
      });
      assert.ok(Buffer.byteLength(token) <= MAX_TOKEN_BYTES, `${Buffer.byteLength(token)} bytes`);
    });
  });

  describe('WatchBundle streams of one agent', () => {
    let t: TestCa;
    afterEach(async () => t?.close());

    /** Opens a stream; resolves with it once its first bundle arrived, or with the status it ended with. */
    const open = (c: NodeClient) => {
      const stream = c.WatchBundle({});
      return new Promise<{ stream: typeof stream; error?: ServiceError }>((resolve) => {
        stream.once('data', () => resolve({ stream }));
        stream.on('error', (error: ServiceError) => resolve({ stream, error }));
      });
    };

    it(`are bounded at ${MAX_WATCH_STREAMS_PER_AGENT}: the next is RESOURCE_EXHAUSTED, a closed one frees its slot`, async () => {
      t = await startCa(dir);
      const agent = await t.attest();
      const other = await t.attest();
      const c = t.as(agent);
      const held = await Promise.all(Array.from({ length: MAX_WATCH_STREAMS_PER_AGENT }, () => open(c)));
      assert.deepEqual(
        held.map((h) => h.error?.code),
        held.map(() => undefined),
      );
      // Past the bound, on the same channel and on a new one.
      for (const client of [c, t.as(agent)]) {
        const extra = await open(client);
        assert.equal(extra.error?.code, status.RESOURCE_EXHAUSTED, extra.error?.message ?? 'a bundle was sent');
        assert.match(extra.error.details, new RegExp(`at most ${MAX_WATCH_STREAMS_PER_AGENT} bundle streams`));
      }
      // Another agent is not affected.
      const theirs = await open(t.as(other));
      assert.equal(theirs.error, undefined);
      theirs.stream.cancel();

      // The open streams still get the next bundle.
      const next = held.map((h) => new Promise<void>((resolve) => h.stream.once('data', () => resolve())));
      await t.ca.context.keys.rotate('jwt');
      await Promise.all(next);

      // Cancelling one frees one slot once the CA has seen the cancellation: retry until then.
      held[0]!.stream.cancel();
      let again: Awaited<ReturnType<typeof open>> | undefined;
      for (let i = 0; i < 200; i++) {
        again = await open(c);
        if (again.error?.code !== status.RESOURCE_EXHAUSTED) break;
      }
      assert.equal(again?.error, undefined, again?.error?.message);
      const extra = await open(c);
      assert.equal(extra.error?.code, status.RESOURCE_EXHAUSTED);
      for (const h of [...held, again!]) h.stream.cancel();
    });
  });

  describe('the data directory and the admin socket', () => {
    const isRoot = process.getuid?.() === 0;

    /** Runs the real svidkit-ca binary on a config; resolves with its exit code and stderr. */
    const refusedStart = async (doc: Record<string, unknown>) => {
      const config = join(dir, 'ca.yaml');
      writeFileSync(config, JSON.stringify({ listen: { port: 0 }, observability: { port: 0 }, ...doc }));
      const child = spawn(process.execPath, [CA_BIN, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // A CA that starts anyway is stopped at once, so a failing case leaves no daemon behind.
      let started = false;
      child.stdout.on('data', (d: Buffer) => {
        if (!started && d.toString().includes('svidkit-ca ready')) {
          started = true;
          child.kill('SIGKILL');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { code: started ? 'started' : code, stderr };
    };

    const cases: { name: string; make: () => Record<string, unknown>; message: RegExp; root?: boolean }[] = [
      {
        name: 'a world-writable data_dir (0777)',
        make: () => {
          mkdirSync(join(dir, 'data'));
          chmodSync(join(dir, 'data'), 0o777);
          return { data_dir: join(dir, 'data') };
        },
        message: /^error ERR_CONFIG: config: data_dir: \S+ is writable by group and others \(mode 0777\)/,
      },
      {
        name: 'a group-writable data_dir (0770)',
        make: () => {
          mkdirSync(join(dir, 'data'));
          chmodSync(join(dir, 'data'), 0o770);
          return { data_dir: join(dir, 'data') };
        },
        message: /^error ERR_CONFIG: config: data_dir: \S+ is writable by group \(mode 0770\)/,
      },
      {
        name: 'a symlinked data_dir',
        make: () => {
          mkdirSync(join(dir, 'real'), { mode: 0o700 });
          symlinkSync(join(dir, 'real'), join(dir, 'data'));
          return { data_dir: join(dir, 'data') };
        },
        message: /^error ERR_CONFIG: config: data_dir: \S+ is a symlink/,
      },
      {
        name: 'a data_dir owned by another uid',
        root: true,
        make: () => {
          mkdirSync(join(dir, 'data'), { mode: 0o700 });
          chownSync(join(dir, 'data'), 65534, 65534);
          return { data_dir: join(dir, 'data') };
        },
        message: /^error ERR_CONFIG: config: data_dir: \S+ is owned by uid 65534, not by the CA's uid 0/,
      },
      {
        name: 'an admin socket in a world-writable directory (like /tmp)',
        make: () => {
          mkdirSync(join(dir, 'run'));
          chmodSync(join(dir, 'run'), 0o1777);
          return { data_dir: join(dir, 'data'), admin: { socket: join(dir, 'run', 'admin.sock') } };
        },
        message: /^error ERR_CONFIG: config: admin.socket: \S+ is writable by group and others \(mode 1777\)/,
      },
    ];
    for (const { name, make, message, root } of cases) {
      it(`refuses ${name}: exit 1 with one line, nothing created`, async function () {
        if (root && !isRoot) this.skip(); // only root can give a directory to another uid
        const doc = make();
        const { code, stderr } = await refusedStart(doc);
        assert.equal(code, 1, stderr);
        assert.match(stderr, message);
        assert.equal(stderr.split('\n').length, 2, `one line: ${stderr}`);
        const dataDir = doc['data_dir'] as string;
        if (existsSync(dataDir)) assert.ok(!existsSync(join(dataDir, 'ca.sqlite')), 'no datastore was created');
      });
    }

    it('binds the admin socket 0600 in a 0700 directory; uid 65534 cannot connect (EACCES)', async function () {
      const t = await startCa(dir);
      try {
        const sock = t.ca.adminSocket;
        assert.equal(lstatSync(sock).mode & 0o777, 0o600);
        assert.ok(lstatSync(sock).isSocket());
        assert.equal(statSync(join(dir, 'ca')).mode & 0o777, 0o700);
        assert.deepEqual(
          readdirSync(join(dir, 'ca')).filter((f) => f.startsWith('.')),
          [],
          'no staging directory is left behind',
        );
        if (!isRoot) this.skip(); // connecting as another uid needs root to switch to it
        // Even with directories others may enter, the socket's own mode keeps them out.
        chmodSync(dir, 0o711);
        chmodSync(join(dir, 'ca'), 0o711);
        const probeArgs = [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          '-e',
          `require('net').connect(${JSON.stringify(sock)}).on('connect', () => { console.log('CONNECTED'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`,
        ];
        const probe = spawnSync('setpriv', probeArgs, { encoding: 'utf8' });
        assert.equal(probe.status, 0, probe.stderr);
        assert.equal(probe.stdout.trim(), 'EACCES');
        // The control: the same probe reaches a socket whose mode lets it.
        chmodSync(sock, 0o666);
        const control = spawnSync('setpriv', probeArgs, { encoding: 'utf8' });
        assert.equal(control.stdout.trim(), 'CONNECTED');
      } finally {
        await t.close();
      }
    });
  });
});

/** The SPIFFE ID in an SVID's leaf. */
function pemId(svid: HeldSvid): string {
  return Certificate.fromPem(svid.chainPem)[0]!.subjectAltName!.uris![0]!;
}
