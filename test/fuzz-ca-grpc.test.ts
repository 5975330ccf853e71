/**
 * Fuzzing the CA's gRPC messages against a real daemon started in-process (lib/ca/daemon.ts run()):
 * the Node service over TLS (AttestAgent with random and mutated join tokens, CSRs and Kubernetes
 * tokens; the agent methods from an attested agent with mutated CSRs, entry ids and audiences) and
 * the Admin service over its Unix socket (entries, join tokens, bans, keys), with typed values,
 * mutated protobuf bytes and messages past limits.max_message_bytes. Every answer is OK or one of the
 * expected statuses, never INTERNAL or UNKNOWN; the daemon still answers its health check SERVING
 * afterwards, logged no internal error, and the process saw no unhandled rejection.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { type Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import { caProto } from '../lib/ca-api/proto.js';
import { healthProto } from '../lib/grpc/protos.js';
import { generateKeyPair, privateKeyToPem } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { anyText, FuzzStats, mutatedBytes, mutatedText, RejectionWatch } from './helpers/fuzz.js';
import { b64 } from './helpers/jwt.js';
import { psatClaims, signPsat } from './helpers/k8s.js';

const TD = TrustDomain.parse('example.org');
const MAX_MESSAGE_BYTES = 65536;
const MAX_BATCH = 10;
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const CALL_DEADLINE_MS = 20_000;

/** Statuses a refusal may carry; everything else (INTERNAL, UNKNOWN, DEADLINE_EXCEEDED...) fails. */
const NODE_STATUSES: ReadonlySet<status> = new Set([
  status.OK,
  status.INVALID_ARGUMENT,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.FAILED_PRECONDITION,
  status.RESOURCE_EXHAUSTED,
]);
const ADMIN_STATUSES: ReadonlySet<status> = new Set([...NODE_STATUSES, status.NOT_FOUND, status.ALREADY_EXISTS]);

interface Answer {
  code: status;
  details: string;
  res?: unknown;
}

type UnaryFn = (
  req: unknown,
  meta: Metadata,
  options: { deadline: number },
  cb: (err: ServiceError | null, res?: unknown) => void,
) => unknown;

/** One unary call with a deadline; the answer is the status, never a thrown error. */
function rpc(client: Client, method: string, req: unknown): Promise<Answer> {
  const fn = (client as unknown as Record<string, UnaryFn>)[method]!.bind(client);
  return new Promise((resolve) => {
    fn(req, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) =>
      resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '', res }),
    );
  });
}

/** One unary call whose request is given as raw protobuf bytes. */
function rawRpc(client: Client, path: string, bytes: Buffer): Promise<Answer> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err, res) => resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '', res }),
    );
  });
}

function assertStatus(a: Answer, allowed: ReadonlySet<status>, what: string): void {
  assert.ok(allowed.has(a.code), `${what}: unexpected status ${status[a.code]} (${a.details})`);
}

// ---------------------------------------------------------------------------------------------
// Inputs

const agentKey = generateKeyPair();
const clusterKey = generateKeyPair('rsa-2048');
const CSRS = [
  buildCsr({ key: agentKey.privateKey }),
  buildCsr({ key: generateKeyPair('ec-p384').privateKey, uris: ['spiffe://example.org/x'] }),
  buildCsr({ key: generateKeyPair('ed25519').privateKey }),
];
const csrBytes = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...CSRS) },
  { weight: 5, arbitrary: mutatedBytes(fc.constantFrom(...CSRS)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 8 * 1024 - 16, max: 8 * 1024 + 16 }).map((n) => Buffer.alloc(n, 0x30)) },
);
const spiffeLike = (path: fc.Arbitrary<string>) => path.map((p) => `spiffe://example.org${p}`);
const workloadPath = fc
  .array(fc.string({ unit: fc.constantFrom(...'abcXYZ09.-_'), minLength: 1, maxLength: 10 }), {
    minLength: 1,
    maxLength: 4,
  })
  .map((segs) => '/' + segs.join('/'));
const idText = fc.oneof(
  { weight: 3, arbitrary: spiffeLike(workloadPath) },
  { weight: 3, arbitrary: mutatedText(spiffeLike(workloadPath)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      'spiffe://example.org',
      'spiffe://example.org/svidkit/ca',
      'spiffe://example.org/svidkit',
      'spiffe://example.org/svidkit/agent/x',
      'spiffe://other.org/w',
      'spiffe://example.org/' + 'p'.repeat(3000),
      'spiffe://' + 'a'.repeat(300) + '/w',
    ),
  },
  { weight: 1, arbitrary: anyText },
);
const anyTtl = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(0, 1, 9, 10, 29, 30, 31, 3600, 86_400, 604_800, 604_801, -1, 2 ** 31 - 1, -(2 ** 31)),
);
/** Mostly TTLs an entry may have, so that entries get created and the later steps run too. */
const ttl = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0, 30, 600, 3600) }, { weight: 2, arbitrary: anyTtl });
const dnsName = fc.oneof(
  fc.constantFrom(
    'web.prod.svc',
    '*.prod.svc',
    '*.com',
    'a',
    'a..b',
    '-a.b',
    'a-.b',
    'a'.repeat(64) + '.b',
    'WEB.prod.svc',
  ),
  fc.domain(),
  mutatedText(fc.domain()),
  anyText,
  fc.integer({ min: 250, max: 260 }).map((n) => ('a'.repeat(60) + '.').repeat(5).slice(0, n)),
);
const objectIdText = fc.oneof(
  fc.uuid(),
  mutatedText(fc.uuid()),
  anyText,
  fc.integer({ min: 127, max: 300 }).map((n) => 'i'.repeat(n)),
);

describe('fuzz: the CA daemon over gRPC', function () {
  this.timeout(600_000);
  const stats = new FuzzStats('ca-grpc');
  const watch = new RejectionWatch();
  let dir: string;
  let ca: RunningCa;
  let logText = '';
  let roots = '';
  let node: Client;
  let agent: Client;
  let admin: Client;
  let agentId = '';
  const agentEntries: string[] = [];
  /** Agents attested while fuzzing AttestAgent, banned later by the Admin fuzzing. */
  const attestedAgents: string[] = [];
  let foreignEntry = '';

  const nodeClient = (agentChain?: string): Client =>
    new (caProto().svidkit.ca.v1.Node)(
      `localhost:${ca.nodePort}`,
      agentChain
        ? credentials.createSsl(
            Buffer.from(roots),
            Buffer.from(privateKeyToPem(agentKey.privateKey)),
            Buffer.from(agentChain),
          )
        : credentials.createSsl(Buffer.from(roots)),
    ) as unknown as Client;

  before(async () => {
    watch.start();
    dir = mkdtempSync(join(tmpdir(), 'svidkit-fuzz-ca-'));
    const jwks = { keys: [{ ...clusterKey.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig', alg: 'RS256' }] };
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
    const config = parseCaConfig(
      {
        trust_domain: TD.name,
        data_dir: join(dir, 'ca'),
        listen: { port: 0 },
        observability: { port: 0 },
        limits: { max_message_bytes: MAX_MESSAGE_BYTES, max_batch: MAX_BATCH },
        attestation: {
          k8s_psat: {
            clusters: [
              {
                name: 'prod-1',
                issuer: ISSUER,
                audience: 'svidkit-ca',
                jwks_file: 'jwks.json',
                allow: [{ namespace: 'svidkit', service_account: 'svidkit-agent' }],
              },
            ],
          },
        },
      },
      dir,
    );
    const logs = new PassThrough();
    logs.on('data', (d: Buffer) => {
      logText += d.toString();
    });
    ca = await run(config, { logger: createLogger({ name: 'svidkit-ca', destination: logs }) });
    roots = ca.context.keys.bundle().x509.toPem();
    node = nodeClient();
    admin = new (caProto().svidkit.ca.v1.Admin)(
      `unix://${ca.adminSocket}`,
      credentials.createInsecure(),
    ) as unknown as Client;

    // An attested agent with entries of its own, and an entry of another agent.
    const token = generateJoinToken();
    await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
    const attested = await rpc(node, 'AttestAgent', { joinToken: { token }, csr: CSRS[0] });
    assert.equal(attested.code, status.OK, attested.details);
    agentId = agentIdForJoinToken(TD, token).toString();
    const chain = (attested.res as { svid: { certChain: Buffer[] } }).svid.certChain;
    agent = nodeClient(chain.map((d) => Certificate.fromDer(d).toPem()).join(''));
    for (const [path, dns] of [
      ['/ns/prod/sa/web', ['web.prod.svc']],
      ['/ns/prod/sa/api', []],
    ] as const) {
      const e = await ca.context.store.createEntry({
        spiffeId: `spiffe://example.org${path}`,
        parentId: agentId,
        x509SvidTtlSeconds: 600,
        jwtSvidTtlSeconds: 300,
        dnsNames: [...dns],
      });
      agentEntries.push(e.id);
    }
    foreignEntry = (
      await ca.context.store.createEntry({
        spiffeId: 'spiffe://example.org/ns/other',
        parentId: 'spiffe://example.org/svidkit/agent/join_token/other',
        x509SvidTtlSeconds: 600,
        jwtSvidTtlSeconds: 300,
        dnsNames: [],
      })
    ).id;
  });

  after(async () => {
    for (const c of [node, agent, admin]) c?.close();
    await ca?.close(1000);
    if (dir) rmSync(dir, { recursive: true, force: true });
    watch.stop();
    stats.report();
  });

  it('AttestAgent: join tokens, CSRs and Kubernetes tokens, random and mutated', async () => {
    const validFormat = fc.stringMatching(/^[A-Za-z0-9_-]{16,256}$/);
    const psatToken = fc
      .record({
        ns: fc.oneof(fc.constant('svidkit'), anyText),
        sa: fc.oneof(fc.constant('svidkit-agent'), anyText),
        node: fc.oneof(fc.constant('node-1'), mutatedText('node-1'), anyText, fc.constant('n'.repeat(300))),
        aud: fc.oneof(fc.constant('svidkit-ca'), anyText),
        iss: fc.oneof(fc.constant(ISSUER), mutatedText(ISSUER)),
        lifetime: fc.integer({ min: -7200, max: 7200 }),
        kid: fc.oneof(fc.constant('k1'), anyText),
      })
      .map(async (f) =>
        signPsat(
          psatClaims({
            iss: f.iss,
            aud: f.aud,
            now: Math.floor(Date.now() / 1000),
            lifetime: f.lifetime,
            namespace: f.ns,
            serviceAccount: f.sa,
            nodeName: f.node,
          }),
          clusterKey.privateKey,
          { alg: 'RS256', kid: f.kid },
        ),
      );
    type Credential =
      { kind: 'join'; t: string } | { kind: 'psat'; t: Promise<string>; cluster: string } | { kind: 'none' };
    const credential: fc.Arbitrary<Credential> = fc.oneof<fc.Arbitrary<Credential>[]>(
      fc
        .oneof(anyText, validFormat, mutatedText(validFormat), fc.constant('fresh'))
        .map((t) => ({ kind: 'join' as const, t })),
      fc
        .tuple(
          fc.oneof(
            psatToken,
            anyText.map(async (t) => t),
            mutatedText(fc.constant(`${b64({ alg: 'RS256' })}.e30.`)).map(async (t) => t),
          ),
          fc.oneof(fc.constant(''), fc.constant('prod-1'), anyText),
        )
        .map(([t, cluster]) => ({ kind: 'psat' as const, t, cluster })),
      fc.constant({ kind: 'none' as const }),
    );
    await fc.assert(
      fc.asyncProperty(credential, csrBytes, async (cred, csr) => {
        stats.count('AttestAgent');
        let req: Record<string, unknown>;
        if (cred.kind === 'join') {
          let token = cred.t;
          if (token === 'fresh') {
            token = generateJoinToken();
            await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
          }
          req = { joinToken: { token }, csr };
        } else if (cred.kind === 'psat') {
          req = { k8sPsat: { token: await cred.t, cluster: cred.cluster }, csr };
        } else {
          req = { csr };
        }
        const a = await rpc(node, 'AttestAgent', req);
        assertStatus(a, NODE_STATUSES, 'AttestAgent');
        stats.outcome(`AttestAgent ${status[a.code]}`);
        if (a.code === status.OK) attestedAgents.push((a.res as { svid: { spiffeId: string } }).svid.spiffeId);
      }),
      stats.asyncParams(0.25),
    );
  });

  it('agent methods: BatchNewX509Svid, NewJwtSvid, RenewAgent with mutated CSRs, entry ids and audiences', async () => {
    const entryId = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...agentEntries) },
      { weight: 1, arbitrary: fc.constant(foreignEntry) },
      { weight: 2, arbitrary: objectIdText },
    );
    const call = fc.oneof(
      fc
        .array(fc.record({ entryId, csr: csrBytes }), { maxLength: MAX_BATCH + 2 })
        .map((params) => ({ method: 'BatchNewX509Svid', req: { params } })),
      fc
        .record({
          entryId,
          audience: fc.array(
            fc.oneof(fc.constant('spiffe://example.org/api'), anyText, fc.constant('a'.repeat(3000))),
            {
              maxLength: 20,
            },
          ),
        })
        .map((req) => ({ method: 'NewJwtSvid', req })),
      csrBytes.map((csr) => ({ method: 'RenewAgent', req: { csr } })),
      fc.constant({ method: 'ListAuthorizedEntries', req: {} }),
    );
    await fc.assert(
      fc.asyncProperty(call, fc.boolean(), async ({ method, req }, asAgent) => {
        stats.count(method);
        const a = await rpc(asAgent ? agent : node, method, req);
        assertStatus(a, NODE_STATUSES, method);
        stats.outcome(`${method} ${status[a.code]}`);
        if (method === 'BatchNewX509Svid' && a.code === status.OK) {
          for (const r of (a.res as { results: { statusCode: number; statusMessage: string }[] }).results) {
            assertStatus({ code: r.statusCode, details: r.statusMessage }, NODE_STATUSES, 'BatchNewX509Svid item');
          }
        }
      }),
      stats.asyncParams(0.25),
    );
  });

  it('Admin: CreateEntry, ListEntries, DeleteEntry, CreateJoinToken, BanAgent, TaintKey, RotateCa', async () => {
    const created: string[] = [];
    const keyIds = new Set(ca.context.keys.status().map((k) => k.id));
    const call = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .record({
            spiffeId: idText,
            parentId: fc.oneof(fc.constant(agentId), idText),
            x509SvidTtlSeconds: ttl,
            jwtSvidTtlSeconds: ttl,
            dnsNames: fc.oneof(
              fc.array(fc.constantFrom('web.prod.svc', '*.prod.svc', 'api.example.org'), { maxLength: 3 }),
              fc.array(dnsName, { maxLength: 40 }),
            ),
          })
          .map((entry) => ({ method: 'CreateEntry', req: { entry } })),
      },
      { weight: 1, arbitrary: fc.constant({ method: 'CreateEntry', req: {} }) },
      {
        weight: 1,
        arbitrary: fc
          .record({ parentId: fc.oneof(fc.constant(''), idText), spiffeId: fc.oneof(fc.constant(''), idText) })
          .map((req) => ({
            method: 'ListEntries',
            req,
          })),
      },
      {
        weight: 2,
        arbitrary: fc.oneof(objectIdText, fc.constant('created')).map((id) => ({ method: 'DeleteEntry', req: { id } })),
      },
      { weight: 1, arbitrary: anyTtl.map((ttlSeconds) => ({ method: 'CreateJoinToken', req: { ttlSeconds } })) },
      {
        weight: 1,
        arbitrary: fc
          .oneof(idText, mutatedText(fc.constant(agentId)), fc.constant('attested'))
          .filter((id) => id !== agentId)
          .map((spiffeId) => ({ method: 'BanAgent', req: { spiffeId } })),
      },
      {
        weight: 1,
        arbitrary: objectIdText.filter((id) => !keyIds.has(id)).map((id) => ({ method: 'TaintKey', req: { id } })),
      },
      {
        weight: 1,
        arbitrary: anyText
          .filter((k) => !['', 'x509', 'jwt'].includes(k))
          .map((kind) => ({ method: 'RotateCa', req: { kind } })),
      },
      { weight: 1, arbitrary: fc.constantFrom({ method: 'ListAgents', req: {} }, { method: 'GetCaStatus', req: {} }) },
    );
    await fc.assert(
      fc.asyncProperty(call, async ({ method, req }) => {
        stats.count(method);
        const r = req as { id?: string };
        if (method === 'DeleteEntry' && r.id === 'created') r.id = created.pop() ?? 'none';
        const b = req as { spiffeId?: string };
        if (method === 'BanAgent' && b.spiffeId === 'attested') b.spiffeId = attestedAgents.pop() ?? 'none';
        const a = await rpc(admin, method, req);
        assertStatus(a, ADMIN_STATUSES, method);
        stats.outcome(`${method} ${status[a.code]}`);
        if (method === 'CreateEntry' && a.code === status.OK) {
          created.push((a.res as { entry: { id: string } }).entry.id);
        }
      }),
      stats.asyncParams(0.5),
    );
  });

  it('mutated protobuf bytes reach the handlers as odd values, never as a crash', async () => {
    const Admin = caProto().svidkit.ca.v1.Admin.service;
    const Node = caProto().svidkit.ca.v1.Node.service;
    const samples: { client: () => Client; path: string; bytes: Buffer }[] = [
      {
        client: () => admin,
        path: Admin.CreateEntry.path,
        bytes: Admin.CreateEntry.requestSerialize({
          entry: {
            spiffeId: 'spiffe://example.org/raw',
            parentId: agentId,
            x509SvidTtlSeconds: 600,
            dnsNames: ['a.b.c'],
          },
        }),
      },
      {
        client: () => admin,
        path: Admin.CreateJoinToken.path,
        bytes: Admin.CreateJoinToken.requestSerialize({ ttlSeconds: 60 }),
      },
      {
        client: () => admin,
        path: Admin.BanAgent.path,
        bytes: Admin.BanAgent.requestSerialize({ spiffeId: 'spiffe://example.org/x' }),
      },
      {
        client: () => node,
        path: Node.AttestAgent.path,
        bytes: Node.AttestAgent.requestSerialize({ joinToken: { token: generateJoinToken() }, csr: CSRS[0] }),
      },
      {
        client: () => agent,
        path: Node.BatchNewX509Svid.path,
        bytes: Node.BatchNewX509Svid.requestSerialize({ params: [{ entryId: agentEntries[0], csr: CSRS[1] }] }),
      },
      {
        client: () => agent,
        path: Node.NewJwtSvid.path,
        bytes: Node.NewJwtSvid.requestSerialize({ entryId: agentEntries[1], audience: ['a', 'b'] }),
      },
    ];
    const input = fc
      .nat(samples.length - 1)
      .chain((i) =>
        fc.tuple(
          fc.constant(i),
          fc.oneof(
            { weight: 4, arbitrary: mutatedBytes(samples[i]!.bytes) },
            { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)) },
          ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(input, async ([i, bytes]) => {
        const s = samples[i]!;
        stats.count('raw protobuf');
        const a = await rawRpc(s.client(), s.path, bytes);
        stats.outcome(`raw ${status[a.code]}`);
        // grpc-js itself answers INTERNAL for bytes that are not a protobuf message at all; the handlers never run.
        if (a.code === status.INTERNAL && a.details === 'Error deserializing request') return;
        assertStatus(a, s.path.includes('Admin') ? ADMIN_STATUSES : NODE_STATUSES, s.path);
      }),
      stats.asyncParams(0.5),
    );
  });

  it('messages larger than limits.max_message_bytes are RESOURCE_EXHAUSTED', async () => {
    const big = fc.integer({ min: 1, max: 64 * 1024 });
    await fc.assert(
      fc.asyncProperty(big, fc.nat(3), async (extra, which) => {
        stats.count('oversized');
        const n = MAX_MESSAGE_BYTES + extra;
        const a =
          which === 0
            ? await rpc(node, 'AttestAgent', { joinToken: { token: generateJoinToken() }, csr: Buffer.alloc(n) })
            : which === 1
              ? await rpc(admin, 'CreateEntry', {
                  entry: { spiffeId: 'spiffe://example.org/' + 'x'.repeat(n), parentId: agentId },
                })
              : which === 2
                ? await rpc(agent, 'BatchNewX509Svid', {
                    params: Array.from({ length: MAX_BATCH }, () => ({
                      entryId: agentEntries[0],
                      csr: Buffer.alloc(Math.ceil(n / MAX_BATCH)),
                    })),
                  })
                : await rpc(admin, 'DeleteEntry', { id: 'd'.repeat(n) });
        assert.equal(a.code, status.RESOURCE_EXHAUSTED, `${status[a.code]} ${a.details}`);
      }),
      stats.asyncParams(0.05),
    );
  });

  it('afterwards the daemon is healthy, logged no internal error and nothing was left unhandled', async () => {
    const Health = healthProto().grpc.health.v1.Health;
    const checks: [Client, string][] = [
      [
        new Health(`localhost:${ca.nodePort}`, credentials.createSsl(Buffer.from(roots))) as unknown as Client,
        'svidkit.ca.v1.Node',
      ],
      [
        new Health(`unix://${ca.adminSocket}`, credentials.createInsecure()) as unknown as Client,
        'svidkit.ca.v1.Admin',
      ],
    ];
    for (const [client, service] of checks) {
      for (const s of ['', service]) {
        const a = await rpc(client, 'Check', { service: s });
        assert.equal(a.code, status.OK, a.details);
        assert.equal((a.res as { status: string }).status, 'SERVING');
      }
      client.close();
    }
    // The agent still works: its own entries are listed.
    const listed = await rpc(agent, 'ListAuthorizedEntries', {});
    assert.equal(listed.code, status.OK, listed.details);
    const internal = logText.split('\n').filter((l) => l.includes('"msg":"internal error"'));
    assert.deepEqual(internal, [], 'the CA logged internal errors');
    watch.assertNone();
  });
});
