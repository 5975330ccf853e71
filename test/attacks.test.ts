/**
 * Attacks on a running svidkit, each of which must be refused with a specific code: a real CA daemon
 * (gRPC on loopback, SQLite in a temporary directory), real agents writing real files, the library's
 * TLS, gRPC and HTTP servers on loopback. Nothing is mocked; what an attacker holds (a stolen agent
 * SVID, a public JWT key, a replayed join token) is taken from the real files the daemons wrote.
 *
 * Cases already covered elsewhere are not repeated here:
 * - a leaf signed by trust domain B's root claiming an A ID, refused by the node:tls server:
 *   test/tls.test.ts "refuses a leaf from trust domain B's root that claims an ID in trust domain A";
 * - a replayed join token and a ban seen by RenewAgent / ListAuthorizedEntries (store-level ban):
 *   test/ca-daemon.test.ts "attests an agent with a join token ... refuses the replay" and
 *   "renews the agent over mTLS, and refuses a banned agent";
 * - BatchNewX509Svid for a foreign or unknown entry, ListAuthorizedEntries showing only the caller's
 *   entries: test/ca-daemon.test.ts "issues a batch of workload SVIDs: each item has its own result";
 * - malformed entry IDs (dot segments, percent-encoding, //, trailing slash, other trust domain):
 *   test/ca-admin.test.ts "refuses ... with INVALID_ARGUMENT and stores nothing";
 * - JWT audiences with path tricks kept inside the jwt directory by the writer:
 *   test/agent-writer.test.ts "keeps every token file inside the jwt directory of the version";
 * - the JWT-SVID refusal matrix of parseAndValidate on its own: test/jwtsvid.test.ts;
 * - an oversized AttestAgent message: test/ca-daemon.test.ts "answers RESOURCE_EXHAUSTED past the
 *   message size limit"; an oversized file at FileSource.open: test/source-file.test.ts "refuses a file
 *   larger than its bound".
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { cp, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import type * as tls from 'node:tls';
import { credentials, Metadata, Server, ServerCredentials, type ServiceError, status } from '@grpc/grpc-js';
import { parseAgentConfig } from '../lib/agent/config.js';
import { type RunningAgent, runAgent } from '../lib/agent/daemon.js';
import { IDENTITY_FILE } from '../lib/agent/state.js';
import { writeWorkloadFiles } from '../lib/agent/writer.js';
import { authorizeId, authorizeMemberOf } from '../lib/authorize/index.js';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import { AdminClient } from '../lib/ca-api/admin-client.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import type { BatchNewX509SvidResponse__Output } from '../lib/generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
import type { HealthCheckResponse__Output } from '../lib/generated/grpc/health/v1/HealthCheckResponse.js';
import { HealthService } from '../lib/grpc/health.js';
import { requireJwtSvidForService } from '../lib/grpc/jwt.js';
import { authorizeService, mtlsChannelCredentials, mtlsServerCredentials } from '../lib/grpc/mtls.js';
import { caProto } from '../lib/ca-api/proto.js';
import { healthProto } from '../lib/grpc/protos.js';
import { JwtAuthError, JwtValidator, requireJwtSvid } from '../lib/jwtauth/index.js';
import { mintJwtSvid, parseAndValidate } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { MAX_BUNDLE_FILE_BYTES, MAX_PEM_FILE_BYTES, MAX_TOKEN_FILE_BYTES } from '../lib/layout/index.js';
import { FileSource, FileSourceError } from '../lib/source/file.js';
import { StaticSource } from '../lib/source/index.js';
import { MAX_ID_LENGTH, SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { connectMtls, createMtlsServer, peerSpiffeId } from '../lib/tls/index.js';
import { buildCsr } from '../lib/x509/csr.js';
import { X509Svid } from '../lib/x509svid/index.js';
import { snapshot, tempDir } from './helpers/agent-fs.js';
import { TestCa } from './helpers/ca.js';
import { captureLog } from './helpers/ca-context.js';
import { b64, craft } from './helpers/jwt.js';
import { assertCode, rejectsCode, rejectsStatus } from './helpers/assert.js';
import type {
  AttestAgentResponse__Output,
  Bundle__Output,
  ListAuthorizedEntriesResponse__Output,
  NewJwtSvidResponse__Output,
  NodeClient,
  RenewAgentResponse__Output,
} from '../lib/ca-api/index.js';

const TD = 'example.org';
const HOUR = 3600_000;
const AUD = 'spiffe://example.org/ns/prod/sa/api';

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One unary call as a promise. */
function call<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

/** What a thief copies from an agent's data dir: its SVID chain and key. */
interface StolenIdentity {
  certificates: string;
  key: string;
}

async function stealIdentity(dataDir: string): Promise<StolenIdentity> {
  return JSON.parse(await readFile(join(dataDir, IDENTITY_FILE), 'utf8')) as StolenIdentity;
}

/** The payload part of a compact JWS, decoded. */
function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('attacks on a running CA, agents and library servers', function () {
  this.timeout(60_000);
  let dir: string;
  let ca: RunningCa;
  let admin: AdminClient;
  // Every line the CA and the agents write, at debug level; the last test searches it for secrets.
  const logs = captureLog();
  // Every secret that passes through the test, to look for in the logs.
  const secrets = { joinTokens: [] as string[], jwts: [] as string[] };
  // Moves the CA's clock (only used for a few seconds, to expire a join token).
  let caOffsetMs = 0;
  const agents: { name: string; running: RunningAgent; dataDir: string; agentId: string; token: string }[] = [];

  const roots = () => Buffer.from(ca.context.keys.bundle().x509.toPem());
  const nodeClient = (identity?: StolenIdentity): NodeClient => {
    const creds = identity
      ? credentials.createSsl(roots(), Buffer.from(identity.key), Buffer.from(identity.certificates))
      : credentials.createSsl(roots());
    return new (caProto().svidkit.ca.v1.Node)(`localhost:${ca.nodePort}`, creds) as unknown as NodeClient;
  };

  /** Creates a join token and entries through the admin socket, starts an agent and waits until it is ready. */
  async function startAgent(
    name: string,
    workloads: { id: string; jwtAudiences?: string[]; x509Ttl?: number }[],
  ): Promise<(typeof agents)[number]> {
    const token = await admin.createJoinToken(600);
    secrets.joinTokens.push(token.token);
    for (const w of workloads) {
      await admin.createEntry({
        spiffeId: w.id,
        parentId: token.agentId,
        x509SvidTtlSeconds: w.x509Ttl ?? 600,
        jwtSvidTtlSeconds: 120,
      });
    }
    const dataDir = join(dir, name, 'agent');
    const config = parseAgentConfig(
      {
        trust_domain: TD,
        data_dir: dataDir,
        log_level: 'debug',
        ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation: { join_token: token.token },
        observability: { port: 0 },
        backoff: { min: '100ms', max: '1s' },
        entry_sync_interval: '1s',
        workloads: workloads.map((w, i) => ({
          spiffe_id: w.id,
          output_dir: join(dir, name, 'out', `w${i}`),
          jwt_audiences: w.jwtAudiences ?? [],
        })),
      },
      dir,
    );
    const running = await runAgent(config, {
      logger: createLogger({ name: 'svidkit-agent', level: 'debug', destination: logs }),
    });
    const a = { name, running, dataDir, agentId: token.agentId, token: token.token };
    agents.push(a);
    await until(`agent ${name} ready`, () => running.agent.ready());
    return a;
  }

  before(async () => {
    dir = await tempDir('svidkit-attacks-');
    ca = await run(
      parseCaConfig(
        {
          trust_domain: TD,
          data_dir: join(dir, 'ca'),
          log_level: 'debug',
          listen: { port: 0 },
          observability: { port: 0 },
          limits: { max_message_bytes: 65536, max_batch: 10 },
        },
        dir,
      ),
      {
        logger: createLogger({ name: 'svidkit-ca', level: 'debug', destination: logs }),
        clock: () => new Date(Date.now() + caOffsetMs),
      },
    );
    await writeFile(join(dir, 'bundle.pem'), ca.context.keys.bundle().x509.toPem());
    admin = new AdminClient(ca.adminSocket);
  });

  after(async () => {
    for (const a of agents.splice(0)) await a.running.close();
    admin?.close();
    await ca?.close(500);
    await rm(dir, { recursive: true, force: true });
  });

  describe('a workload of trust domain B is never accepted as A (both bundles trusted)', () => {
    const now = Date.now();
    const caWindow = { notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR) };
    const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + HOUR) };
    const rootA = TestCa.root({ trustDomain: 'a.test', ...caWindow });
    const rootB = TestCa.root({ trustDomain: 'b.test', ...caWindow });
    const both = () => new BundleSet([rootA.bundle(), rootB.bundle()]);
    const serverSvid = rootA.svid('/server', window);
    const genuineB = rootB.svid('/client', window);
    // B's root signs a leaf that claims an ID of trust domain A.
    const forged = (() => {
      const { chain, key } = rootB.leaf('/client', { ...window, uris: ['spiffe://a.test/client'] });
      return X509Svid.fromParts(chain, key);
    })();

    it('node:tls server with an A-only authorizer: a genuine B client is refused (ERR_TLS_PEER_DENIED) before any data', async () => {
      const handled: tls.TLSSocket[] = [];
      const server = createMtlsServer(
        new StaticSource({ svid: serverSvid, bundles: both() }),
        authorizeMemberOf('a.test'),
        (s) => {
          handled.push(s);
          s.end(`hello ${String(peerSpiffeId(s))}\n`);
        },
      );
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const port = (server.address() as AddressInfo).port;
        const refusal = once(server, 'tlsClientError');
        const client = await connectMtls(
          new StaticSource({ svid: genuineB, bundles: both() }),
          authorizeId('spiffe://a.test/server'),
          { host: '127.0.0.1', port },
        ).catch(() => undefined);
        client?.on('error', () => undefined);
        const [err] = (await refusal) as [SvidkitError];
        client?.destroy();
        assert.ok(err instanceof SvidkitError, String(err));
        assert.equal(err.code, 'ERR_TLS_PEER_DENIED', err.message);
        assert.equal((err.cause as SvidkitError).code, 'ERR_AUTHZ_DENIED');
        assert.equal(handled.length, 0, 'the handler never saw the B client');
      } finally {
        server.close();
      }
    });

    it('gRPC server: a genuine B client is PERMISSION_DENIED, a B-signed leaf claiming an A ID is UNAUTHENTICATED', async () => {
      const source = new StaticSource({ svid: serverSvid, bundles: both() });
      const health = new HealthService();
      health.setStatus('', 'SERVING');
      let served = 0;
      const h = health.handlers();
      const server = new Server();
      server.addService(
        healthProto().grpc.health.v1.Health.service,
        authorizeService(
          {
            ...h,
            Check: (c: Parameters<typeof h.Check>[0], cb: Parameters<typeof h.Check>[1]) => {
              served++;
              h.Check(c, cb);
            },
          },
          source,
          authorizeMemberOf('a.test'),
        ),
      );
      const creds = mtlsServerCredentials(source);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', creds.credentials, (e, p) => (e ? reject(e) : resolve(p))),
      );
      const check = async (svid: X509Svid) => {
        const channel = mtlsChannelCredentials(
          new StaticSource({ svid, bundles: both() }),
          authorizeId('spiffe://a.test/server'),
        );
        const c = new (healthProto().grpc.health.v1.Health)(`127.0.0.1:${port}`, channel.credentials);
        try {
          return await call<HealthCheckResponse__Output>((cb) =>
            c.Check({ service: '' }, { deadline: Date.now() + 5000 }, cb),
          );
        } finally {
          c.close();
          channel.close();
        }
      };
      try {
        assert.equal((await check(rootA.svid('/client', window))).status, 'SERVING', 'an A client is served');
        assert.equal(served, 1);
        await rejectsStatus(check(genuineB), status.PERMISSION_DENIED);
        const e = await rejectsStatus(check(forged), status.UNAUTHENTICATED);
        assert.match(e.details, /x509svid: /);
        assert.equal(served, 1, 'no refused call reached the handler');
      } finally {
        server.forceShutdown();
        creds.close();
      }
    });
  });

  describe('SPIFFE IDs never become paths', () => {
    const base = () => ({
      trust_domain: TD,
      data_dir: join(dir, 'paths', 'agent'),
      ca: { bundle_file: join(dir, 'bundle.pem') },
      attestation: { join_token_file: join(dir, 'unused.token') },
    });
    const hostile: [string, string][] = [
      ['a dot-dot segment', 'spiffe://example.org/../../etc'],
      ['a dot-dot segment in the middle', 'spiffe://example.org/ns/../../../tmp/x'],
      ['a percent-encoded dot-dot', 'spiffe://example.org/%2e%2e/%2e%2e/etc'],
      ['a percent-encoded slash', 'spiffe://example.org/a%2f..%2f..%2fetc'],
      ['a dot segment', 'spiffe://example.org/./w'],
      ['a backslash', 'spiffe://example.org/..\\..\\etc'],
      ['an empty segment (double slash)', 'spiffe://example.org//etc/passwd'],
      ['a trailing slash', 'spiffe://example.org/w/'],
      ['a NUL byte', 'spiffe://example.org/w\u0000/x'],
      [
        'an ID one byte over the limit',
        `spiffe://example.org/${'a'.repeat(MAX_ID_LENGTH - 'spiffe://example.org/'.length + 1)}`,
      ],
    ];

    for (const [label, id] of hostile) {
      it(`agent config refuses ${label} with ERR_CONFIG at workloads[0].spiffe_id`, () => {
        const err = assertCode(
          () =>
            parseAgentConfig({ ...base(), workloads: [{ spiffe_id: id, output_dir: join(dir, 'paths', 'o') }] }, dir),
          'ERR_CONFIG',
        );
        assert.match(err.message, /workloads\[0\]\.spiffe_id/);
      });
    }

    it('the CA refuses an entry with a percent-encoded dot-dot or an overlong ID (ERR_ADMIN_INVALID) and stores nothing', async () => {
      const before = (await admin.listEntries()).length;
      for (const id of hostile.filter(([l]) => /percent|over the limit/.test(l)).map(([, v]) => v)) {
        await rejectsCode(
          admin.createEntry({ spiffeId: id, parentId: 'spiffe://example.org/svidkit/agent/join_token/x' }),
          'ERR_ADMIN_INVALID',
        );
      }
      assert.equal((await admin.listEntries()).length, before);
    });

    it('agent config refuses JWT audiences whose token file names the writer would refuse (too long, colliding)', () => {
      const w = (jwt_audiences: string[]) => ({
        ...base(),
        workloads: [{ spiffe_id: 'spiffe://example.org/w', output_dir: join(dir, 'paths', 'o'), jwt_audiences }],
      });
      // 250 printable characters pass the length rule but make a 256-byte file name with ".token".
      let err = assertCode(() => parseAgentConfig(w(['ok', 'a'.repeat(250)]), dir), 'ERR_CONFIG');
      assert.match(err.message, /workloads\[0\]\.jwt_audiences\[1\]/);
      // Distinct audiences, one file name: "a_b.token".
      err = assertCode(() => parseAgentConfig(w(['a/b', 'a:b']), dir), 'ERR_CONFIG');
      assert.match(err.message, /workloads\[0\]\.jwt_audiences\[1\]/);
      // The longest audience that fits still passes.
      parseAgentConfig(w(['a'.repeat(249)]), dir);
    });

    it('a real agent with path-like IDs, a 2000-byte ID and hostile audiences writes only inside its output dirs', async () => {
      const long = `spiffe://example.org/${Array.from({ length: 10 }, () => 'x'.repeat(197)).join('/')}`;
      assert.ok(long.length > 1990 && long.length <= MAX_ID_LENGTH);
      const ids = ['spiffe://example.org/..data/...', `spiffe://example.org/..${'.'.repeat(40)}/etc`, long];
      const audiences = ['../../../../escape', 'spiffe://example.org/../x', '/etc/passwd', '..', '..data'];
      const before = new Set(Object.keys(await snapshot(dir)));
      const a = await startAgent('paths', [{ id: ids[0]!, jwtAudiences: audiences }, { id: ids[1]! }, { id: ids[2]! }]);
      const root = join(dir, 'paths');
      const created = Object.keys(await snapshot(dir)).filter((p) => !before.has(p));
      const outside = created.filter((p) => {
        const r = relative(root, join(dir, p));
        return r !== '' && (r.startsWith('..') || !/^(agent|out)(\/|$)/.test(r));
      });
      assert.deepEqual(outside, [], 'nothing was written outside the output and data dirs');
      for (const [i, id] of ids.entries()) {
        const meta = JSON.parse(await readFile(join(root, 'out', `w${i}`, 'meta.json'), 'utf8')) as {
          spiffe_id: string;
        };
        assert.equal(meta.spiffe_id, id);
      }
      const jwtFiles = Object.keys(await snapshot(join(root, 'out', 'w0')))
        .filter((p) => p.endsWith('.token'))
        .map((p) => p.split('/').slice(-1)[0]);
      assert.deepEqual(
        jwtFiles.sort(),
        [
          '.._.._.._.._escape.token',
          'spiffe___example.org_.._x.token',
          '_etc_passwd.token',
          '...token',
          '..data.token',
        ].sort(),
      );
      assert.equal((await readFile(join(root, 'out', 'w0', 'jwt', '..data.token'), 'utf8')).split('.').length, 3);
      await a.running.close();
      agents.splice(agents.indexOf(a), 1);
    });
  });

  describe('agents, join tokens and bans', () => {
    let main: (typeof agents)[number];
    let other: (typeof agents)[number];

    before(async () => {
      main = await startAgent('main', [
        { id: 'spiffe://example.org/ns/prod/sa/web', jwtAudiences: [AUD] },
        { id: 'spiffe://example.org/ns/prod/sa/db' },
      ]);
      other = await startAgent('other', [{ id: 'spiffe://example.org/ns/dev/sa/tool' }]);
    });

    it("an agent's SVID gets only its own entries; another agent's entry is refused like an unknown one", async () => {
      const mainEntries = await admin.listEntries({ parentId: main.agentId });
      assert.equal(mainEntries.length, 2);
      const thief = nodeClient(await stealIdentity(other.dataDir));
      try {
        const listed = await call<ListAuthorizedEntriesResponse__Output>((cb) => thief.ListAuthorizedEntries({}, cb));
        assert.deepEqual(
          listed.entries.map((e) => e.spiffeId),
          ['spiffe://example.org/ns/dev/sa/tool'],
        );
        const foreign = mainEntries[0]!.id;
        const unknown = '00000000-0000-4000-8000-000000000000';
        const csr = buildCsr({ key: generateKeyPair().privateKey });
        const res = await call<BatchNewX509SvidResponse__Output>((cb) =>
          thief.BatchNewX509Svid(
            {
              params: [
                { entryId: foreign, csr },
                { entryId: unknown, csr },
              ],
            },
            cb,
          ),
        );
        assert.deepEqual(
          res.results.map((r) => r.statusCode),
          [status.PERMISSION_DENIED, status.PERMISSION_DENIED],
        );
        assert.ok(res.results.every((r) => !r.svid));
        // The same answer for both: nothing tells a foreign entry from one that does not exist.
        assert.equal(
          res.results[0]!.statusMessage.replace(foreign, 'ID'),
          res.results[1]!.statusMessage.replace(unknown, 'ID'),
        );
        const jwtForeign = await rejectsStatus(
          call<NewJwtSvidResponse__Output>((cb) => thief.NewJwtSvid({ entryId: foreign, audience: [AUD] }, cb)),
          status.PERMISSION_DENIED,
        );
        const jwtUnknown = await rejectsStatus(
          call<NewJwtSvidResponse__Output>((cb) => thief.NewJwtSvid({ entryId: unknown, audience: [AUD] }, cb)),
          status.PERMISSION_DENIED,
        );
        assert.equal(jwtForeign.details.replace(foreign, 'ID'), jwtUnknown.details.replace(unknown, 'ID'));
      } finally {
        thief.close();
      }
    });

    it('a join token is single use (PERMISSION_DENIED on replay) and an expired one is refused the same way', async () => {
      const agentsBefore = (await admin.listAgents()).length;
      const c = nodeClient();
      const attest = (token: string) =>
        call<AttestAgentResponse__Output>((cb) =>
          c.AttestAgent({ joinToken: { token }, csr: buildCsr({ key: generateKeyPair().privateKey }) }, cb),
        );
      try {
        // main's token was consumed when main attested.
        const replay = await rejectsStatus(attest(main.token), status.PERMISSION_DENIED);
        const fresh = await admin.createJoinToken(10);
        secrets.joinTokens.push(fresh.token);
        caOffsetMs = 11_000; // the CA's clock is past the token's expiry
        let expired: ServiceError;
        try {
          expired = await rejectsStatus(attest(fresh.token), status.PERMISSION_DENIED);
        } finally {
          caOffsetMs = 0;
        }
        assert.equal(replay.details, expired.details, 'a replay and an expiry look the same to the caller');
        assert.equal((await admin.listAgents()).length, agentsBefore);
      } finally {
        c.close();
      }
    });

    it("a banned agent's stolen, still valid SVID is refused everywhere (PERMISSION_DENIED), RenewAgent too", async () => {
      const victim = await startAgent('victim', [{ id: 'spiffe://example.org/ns/prod/sa/victim' }]);
      const stolen = await stealIdentity(victim.dataDir);
      const entryId = (await admin.listEntries({ parentId: victim.agentId }))[0]!.id;
      const svidBefore = await readFile(join(dir, 'victim', 'out', 'w0', 'svid.pem'));
      await admin.banAgent(victim.agentId);
      assert.equal((await admin.listAgents()).find((a) => a.spiffeId === victim.agentId)?.banned, true);
      const thief = nodeClient(stolen);
      try {
        const csr = buildCsr({ key: generateKeyPair().privateKey });
        await rejectsStatus(
          call<RenewAgentResponse__Output>((cb) => thief.RenewAgent({ csr }, cb)),
          status.PERMISSION_DENIED,
        );
        await rejectsStatus(
          call<ListAuthorizedEntriesResponse__Output>((cb) => thief.ListAuthorizedEntries({}, cb)),
          status.PERMISSION_DENIED,
        );
        await rejectsStatus(
          call<BatchNewX509SvidResponse__Output>((cb) => thief.BatchNewX509Svid({ params: [{ entryId, csr }] }, cb)),
          status.PERMISSION_DENIED,
        );
        await rejectsStatus(
          call<NewJwtSvidResponse__Output>((cb) => thief.NewJwtSvid({ entryId, audience: [AUD] }, cb)),
          status.PERMISSION_DENIED,
        );
        const stream = thief.WatchBundle({});
        const streamErr = await new Promise<ServiceError>((resolve, reject) => {
          stream.on('data', (b: Bundle__Output) => reject(new Error(`a banned agent got bundle ${b.sequence}`)));
          stream.on('error', resolve);
        });
        assert.equal(streamErr.code, status.PERMISSION_DENIED);
      } finally {
        thief.close();
      }
      // The banned agent itself gets nothing new; its files stay as they were.
      await until('the banned agent to be refused', () =>
        logs.all.includes(
          `"reason":"ERR_AGENT_CA: agent: ListAuthorizedEntries failed: PERMISSION_DENIED: the agent is banned"`,
        ),
      );
      assert.deepEqual(await readFile(join(dir, 'victim', 'out', 'w0', 'svid.pem')), svidBefore);
      await victim.running.close();
      agents.splice(agents.indexOf(victim), 1);
    });

    it('JWT forgeries are refused by parseAndValidate, the HTTP middleware (401) and gRPC (UNAUTHENTICATED)', async () => {
      const caBundle = ca.context.keys.bundle();
      const [authority] = caBundle.jwt.authorities();
      assert.ok(authority);
      // A second, federated trust domain the validators also trust, whose key the attacker holds.
      const otherTd = TrustDomain.parse('other.org');
      const evil = generateKeyPair('ec-p256');
      const bundles = new BundleSet([
        caBundle,
        new SpiffeBundle(otherTd, {
          jwt: new JwtBundle(otherTd, [importJwtAuthority('evil-kid', evil.publicKey.export({ format: 'jwk' }))]),
        }),
      ]);
      const stolenMain = nodeClient(await stealIdentity(main.dataDir));
      const entryId = (
        await admin.listEntries({ parentId: main.agentId, spiffeId: 'spiffe://example.org/ns/prod/sa/web' })
      )[0]!.id;
      const issue = async (audience: string) => {
        const res = await call<NewJwtSvidResponse__Output>((cb) =>
          stolenMain.NewJwtSvid({ entryId, audience: [audience] }, cb),
        );
        secrets.jwts.push(res.token);
        return res.token;
      };
      const genuine = await issue(AUD);
      const otherAudience = await issue('spiffe://example.org/elsewhere');
      stolenMain.close();
      const [gh, gp, gs] = genuine.split('.') as [string, string, string];
      const header = JSON.parse(Buffer.from(gh, 'base64url').toString('utf8')) as Record<string, unknown>;
      const claims = claimsOf(genuine);
      const signer = ca.context.keys.jwtSigner();
      const expired = await mintJwtSvid({
        id: SpiffeId.parse(String(claims['sub'])),
        audience: AUD,
        key: signer.key,
        kid: signer.kid,
        ttlSeconds: 60,
        clock: () => new Date(Date.now() - HOUR),
      });
      const publicPem = authority.key.export({ type: 'spki', format: 'pem' });
      const publicDer = authority.key.export({ type: 'spki', format: 'der' });
      const cases: [string, string, ErrorCode][] = [
        [
          'HS256 keyed with the public key PEM',
          craft({ alg: 'HS256', kid: authority.kid, typ: 'JWT' }, claims, publicPem, 'HS256'),
          'ERR_JWTSVID_ALGORITHM',
        ],
        [
          'HS256 keyed with the public key DER',
          craft({ alg: 'HS256', kid: authority.kid, typ: 'JWT' }, claims, publicDer, 'HS256'),
          'ERR_JWTSVID_ALGORITHM',
        ],
        [
          'alg none, no signature',
          craft({ alg: 'none', kid: authority.kid, typ: 'JWT' }, claims),
          'ERR_JWTSVID_ALGORITHM',
        ],
        [
          'alg none with the genuine signature',
          `${b64({ ...header, alg: 'none' })}.${gp}.${gs}`,
          'ERR_JWTSVID_ALGORITHM',
        ],
        [
          'missing kid (genuine payload and signature)',
          `${b64({ alg: header['alg'], typ: 'JWT' })}.${gp}.${gs}`,
          'ERR_JWTSVID_MISSING_KID',
        ],
        [
          'a kid found only in another trust domain',
          craft({ alg: 'ES256', kid: 'evil-kid', typ: 'JWT' }, claims, evil.privateKey),
          'ERR_JWTSVID_UNKNOWN_KID',
        ],
        ['an expired token signed by the CA', expired, 'ERR_JWTSVID_EXPIRED'],
        ['a token for another audience', otherAudience, 'ERR_JWTSVID_AUDIENCE'],
      ];
      secrets.jwts.push(expired, ...cases.map(([, t]) => t));

      // HTTP: requireJwtSvid on a real server.
      const seen: unknown[] = [];
      const httpValidator = new JwtValidator({ source: new StaticSource({ bundles }), audience: AUD });
      const middleware = requireJwtSvid(httpValidator, { onError: (err) => seen.push(err) });
      const http: HttpServer = createServer((req, res) => void middleware(req, res, () => res.end('ok')));
      http.listen(0, '127.0.0.1');
      await once(http, 'listening');
      const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;

      // gRPC: requireJwtSvidForService in front of the health service.
      const health = new HealthService();
      health.setStatus('', 'SERVING');
      const grpcValidator = new JwtValidator({ source: new StaticSource({ bundles }), audience: AUD });
      const grpcServer = new Server();
      grpcServer.addService(
        healthProto().grpc.health.v1.Health.service,
        requireJwtSvidForService(health.handlers(), grpcValidator),
      );
      const grpcPort = await new Promise<number>((resolve, reject) =>
        grpcServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
      );
      const grpcClient = new (healthProto().grpc.health.v1.Health)(
        `127.0.0.1:${grpcPort}`,
        credentials.createInsecure(),
      );
      const grpcCheck = (token: string) => {
        const md = new Metadata();
        md.set('authorization', `Bearer ${token}`);
        return call<HealthCheckResponse__Output>((cb) => grpcClient.Check({ service: '' }, md, cb));
      };

      try {
        // The genuine token passes all three, so each refusal below is about the forgery alone.
        assert.equal((await parseAndValidate(genuine, bundles, AUD)).id.toString(), claims['sub']);
        assert.equal((await fetch(httpUrl, { headers: { authorization: `Bearer ${genuine}` } })).status, 200);
        assert.equal((await grpcCheck(genuine)).status, 'SERVING');
        for (const [label, token, code] of cases) {
          await rejectsCode(parseAndValidate(token, bundles, AUD), code).catch((e: Error) => {
            throw new Error(`${label}: ${e.message}`);
          });
          const before = seen.length;
          const res = await fetch(httpUrl, { headers: { authorization: `Bearer ${token}` } });
          assert.equal(res.status, 401, label);
          assert.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"', label);
          const body = await res.text();
          assert.equal(body, 'unauthorized\n', label);
          const err = seen[before] as JwtAuthError;
          assert.ok(err instanceof JwtAuthError, label);
          assert.equal(err.reason, code, label);
          assert.ok(!err.message.includes(token), label);
          const ge = await rejectsStatus(grpcCheck(token), status.UNAUTHENTICATED);
          assert.equal(ge.details, 'a valid JWT-SVID is required', label);
        }
      } finally {
        grpcClient.close();
        grpcServer.forceShutdown();
        http.closeAllConnections();
        http.close();
        httpValidator.close();
        grpcValidator.close();
      }
    });

    it('oversized gRPC messages are RESOURCE_EXHAUSTED on the Node and Admin services, and so is a batch over max_batch', async () => {
      const thief = nodeClient(await stealIdentity(main.dataDir));
      const entryId = (await admin.listEntries({ parentId: main.agentId }))[0]!.id;
      try {
        // Authenticated, so the size limit is what refuses it, not the missing client certificate.
        const big = await rejectsStatus(
          call<BatchNewX509SvidResponse__Output>((cb) =>
            thief.BatchNewX509Svid({ params: [{ entryId, csr: Buffer.alloc(70_000, 0x30) }] }, cb),
          ),
          status.RESOURCE_EXHAUSTED,
        );
        assert.match(big.details, /larger than max/i);
        const csr = buildCsr({ key: generateKeyPair().privateKey });
        const many = await rejectsStatus(
          call<BatchNewX509SvidResponse__Output>((cb) =>
            thief.BatchNewX509Svid({ params: Array.from({ length: 11 }, () => ({ entryId, csr })) }, cb),
          ),
          status.RESOURCE_EXHAUSTED,
        );
        assert.equal(many.details, 'at most 10 CSRs per batch');
      } finally {
        thief.close();
      }
      const raw = new (caProto().svidkit.ca.v1.Admin)(`unix:${ca.adminSocket}`, credentials.createInsecure());
      try {
        const before = (await admin.listEntries()).length;
        await rejectsStatus(
          call((cb) =>
            raw.createEntry(
              {
                entry: {
                  spiffeId: 'spiffe://example.org/big',
                  parentId: main.agentId,
                  dnsNames: Array.from({ length: 400 }, (_, i) => `${'n'.repeat(200)}${i}.example.org`),
                },
              },
              cb,
            ),
          ),
          status.RESOURCE_EXHAUSTED,
        );
        assert.equal((await admin.listEntries()).length, before);
      } finally {
        raw.close();
      }
    });
  });

  describe('oversized files', () => {
    it('FileSource refuses an oversized SVID, bundle or token file with its typed error and keeps the last good set', async () => {
      const now = Date.now();
      const root = TestCa.root({ notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR) });
      const jwtKey = generateKeyPair();
      const td = TrustDomain.parse(TD);
      const bundles = new BundleSet([
        new SpiffeBundle(td, {
          x509: root.bundle(),
          jwt: new JwtBundle(td, [importJwtAuthority('k1', jwtKey.publicKey.export({ format: 'jwk' }))]),
        }),
      ]);
      // ECDSA signatures are randomized: make each token once.
      const tokens = new Map(
        ['x', 'y'].map((aud) => [
          aud,
          craft(
            { alg: 'ES256', kid: 'k1', typ: 'JWT' },
            { sub: `spiffe://${TD}/w`, aud: [aud], exp: Math.floor(now / 1000) + 600 },
            jwtKey.privateKey,
          ),
        ]),
      );
      const out = join(dir, 'filesource');
      const svid = root.svid('/w', { notBefore: new Date(now - 60_000), notAfter: new Date(now + HOUR) });
      await writeWorkloadFiles({ svid, bundles, jwtTokens: tokens, version: 1 }, { dir: out });
      const good = await readlink(join(out, '..data'));
      const errors: SvidkitError[] = [];
      const source = await FileSource.open(out, { onError: (e) => errors.push(e), pollIntervalMs: 0 });
      // One swap may be read more than once (the watcher can report it again, and a read that starts
      // while the next case copies its files sees the same version): each case waits for the error
      // that names its own version and file, never for the first error with a matching code.
      let n = 0;
      /** A new version: the good one with one file replaced by `size` bytes, swapped in as the writer does. */
      const swapIn = async (file: string, size: number) => {
        const version = `..oversized${++n}`;
        await cp(join(out, good), join(out, version), { recursive: true });
        await writeFile(join(out, version, file), Buffer.alloc(size, 0x41));
        await symlink(version, join(out, '..data_tmp'));
        await rename(join(out, '..data_tmp'), join(out, '..data'));
        return version;
      };
      const errorFor = async (version: string, file: string) => {
        const about = (e: SvidkitError) => e instanceof FileSourceError && e.version === version && e.file === file;
        await until(`an error about ${file} in ${version}`, () => errors.some(about));
        return errors.find(about)!;
      };
      try {
        const serial = source.getX509Svid().leaf.serialHex;
        const bundleJson = JSON.stringify(source.getBundleSet().toJson());
        const cases: [string, number, ErrorCode, RegExp][] = [
          ['svid.pem', MAX_PEM_FILE_BYTES + 1, 'ERR_SOURCE_READ', /svid\.pem .*larger than 65536 bytes/],
          ['bundle.spiffe.json', MAX_BUNDLE_FILE_BYTES + 1, 'ERR_SOURCE_READ', /bundle\.spiffe\.json .*larger than/],
          ['jwt/x.token', MAX_TOKEN_FILE_BYTES + 1, 'ERR_SOURCE_INVALID_JWT', /jwt\/x\.token .*larger than .*left out/],
        ];
        for (const [file, size, code, message] of cases) {
          const version = await swapIn(file, size);
          const err = await errorFor(version, file);
          assert.equal(err.code, code, err.message);
          assert.match(err.message, message);
          assert.ok(!err.message.includes('AAAAAAAA'), 'the message does not quote the file');
          assert.equal(source.getX509Svid().leaf.serialHex, serial, `${file}: the last good SVID is served`);
          assert.equal(
            JSON.stringify(source.getBundleSet().toJson()),
            bundleJson,
            `${file}: the last good bundles are served`,
          );
          assert.equal(source.getJwtSvid('y'), tokens.get('y'));
        }
        // An oversized token file leaves out that token only (the rest of its version is valid and accepted).
        assertCode(() => source.getJwtSvid('x'), 'ERR_SOURCE_NO_SVID');
        assert.equal(source.status().lastErrorCode, 'ERR_SOURCE_INVALID_JWT');
        assert.ok((await stat(join(out, good))).isDirectory());
      } finally {
        await source.close();
      }
    });
  });

  // Runs last: it searches everything the daemons above logged.
  describe('logs and key files', () => {
    it('no private key, join token, JWT or bearer credential reaches a log line; key files are 0600 in 0700 dirs', async () => {
      // The cycle above ran on these loggers: attestation, issuance, JWT-SVIDs, refusals, a ban.
      const text = logs.all;
      for (const expected of [
        'agent attested',
        '"event":"x509svid_issued"',
        '"event":"jwtsvid_issued"',
        'call refused',
        'workload files written',
      ]) {
        assert.ok(text.includes(expected), `the log shows ${expected}`);
      }
      assert.ok(text.split('\n').length > 50);
      assert.doesNotMatch(text, /PRIVATE KEY/);
      assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/, 'no compact JWS/JWT');
      assert.doesNotMatch(text, /bearer\s+(?!\[REDACTED\])\S/i, 'no bearer credential');
      for (const t of secrets.joinTokens) assert.ok(!text.includes(t), 'a join token leaked');
      const tokens = [...secrets.jwts];
      const keyBodies: string[] = [];
      const keyLines = (pem: string) =>
        pem
          .split('\n')
          .filter((l) => l.length >= 40 && !l.startsWith('-----'))
          .forEach((l) => keyBodies.push(l));
      // Every private key and token on disk: the CA's key files, agent identities, workload keys and JWTs.
      const files = await snapshot(dir);
      const checked = { caKeys: 0, identities: 0, workloadKeys: 0, tokens: 0, datastore: 0 };
      for (const [p, e] of Object.entries(files)) {
        if (e.type !== 'file') continue;
        const full = join(dir, p);
        if (p.startsWith('ca/keys/')) {
          checked.caKeys++;
          assert.equal(e.mode, 0o600, `${p} is 0600`);
          keyLines(await readFile(full, 'utf8'));
        } else if (p.endsWith(`/${IDENTITY_FILE}`)) {
          checked.identities++;
          assert.equal(e.mode, 0o600, `${p} is 0600`);
          keyLines((JSON.parse(await readFile(full, 'utf8')) as StolenIdentity).key);
        } else if (p.endsWith('/svid_key.pem')) {
          checked.workloadKeys++;
          assert.equal(e.mode, 0o600, `${p} is 0600`);
          keyLines(await readFile(full, 'utf8'));
        } else if (p.endsWith('.token') && p.includes('/out/')) {
          checked.tokens++;
          assert.equal(e.mode, 0o600, `${p} is 0600`);
          tokens.push((await readFile(full, 'utf8')).trim());
        } else if (/^ca\/ca\.sqlite/.test(p)) {
          checked.datastore++;
          assert.equal(e.mode, 0o600, `${p} is 0600`);
        }
      }
      for (const [what, n] of Object.entries(checked)) assert.ok(n > 0, `no ${what} found to check`);
      assert.ok(keyBodies.length > 10 && tokens.length > 10);
      for (const l of keyBodies) assert.ok(!text.includes(l), 'a piece of a private key leaked');
      for (const t of tokens) {
        const signature = t.split('.')[2]!;
        if (signature !== '') assert.ok(!text.includes(signature), 'a token signature leaked');
      }
      for (const d of [
        'ca',
        'ca/keys',
        ...agents.map((a) => relative(dir, a.dataDir)),
        'paths/agent',
        'victim/agent',
      ]) {
        assert.equal(files[d]?.type, 'dir', d);
        assert.equal(files[d]!.mode, 0o700, `${d} is 0700`);
      }
      assert.equal((await stat(ca.adminSocket)).mode & 0o777, 0o600);
    });
  });
});
