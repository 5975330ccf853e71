import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { type ChannelCredentials, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { BundleSet, SpiffeBundle } from '../lib/bundle/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import type { BatchNewX509SvidResponse__Output } from '../lib/generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
import { caProto } from '../lib/ca-api/proto.js';
import { healthProto } from '../lib/grpc/protos.js';
import { parseAndValidate } from '../lib/jwtsvid/index.js';
import { generateKeyPair, privateKeyToPem } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { verify } from '../lib/x509svid/index.js';
import { TestCa } from './helpers/ca.js';
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

/** Promisifies one unary call; the response type is named at the call site. */
function call<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

describe('svidkit-ca daemon over real gRPC on loopback', function () {
  this.timeout(60_000);
  let dir: string;
  let ca: RunningCa;
  let logText = '';
  const logStream = new PassThrough();
  logStream.on('data', (d: Buffer) => {
    logText += d.toString();
  });
  let rootsPem: string;
  const agentKey = generateKeyPair();
  let agentId: SpiffeId;
  let agentChainPem = '';
  const token = generateJoinToken();

  const config = () =>
    parseCaConfig(
      {
        trust_domain: 'example.org',
        data_dir: join(dir, 'ca'),
        listen: { port: 0 },
        observability: { port: 0 },
        limits: { max_message_bytes: 65536, max_batch: 10 },
      },
      dir,
    );
  const start = async () => {
    ca = await run(config(), { logger: createLogger({ name: 'svidkit-ca', destination: logStream }) });
    rootsPem = ca.context.keys.bundle().x509.toPem();
  };
  const client = (creds: ChannelCredentials): NodeClient =>
    new (caProto().svidkit.ca.v1.Node)(`localhost:${ca.nodePort}`, creds) as unknown as NodeClient;
  const tlsOnly = () => client(credentials.createSsl(Buffer.from(rootsPem)));
  const asAgent = () =>
    client(
      credentials.createSsl(
        Buffer.from(rootsPem),
        Buffer.from(privateKeyToPem(agentKey.privateKey)),
        Buffer.from(agentChainPem),
      ),
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-ca-'));
    await start();
    await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
  });
  after(async () => {
    await ca?.close(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves grpc.health.v1 over TLS with its own SVID', async () => {
    const h = new (healthProto().grpc.health.v1.Health)(
      `localhost:${ca.nodePort}`,
      credentials.createSsl(Buffer.from(rootsPem)),
    );
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      h.Check({ service: 'svidkit.ca.v1.Node' }, (err, r) => (err ? reject(err) : resolve(r!))),
    );
    assert.equal(res.status, 'SERVING');
    h.close();
  });

  it('keeps the admin socket 0600 and the datastore and keys private', () => {
    assert.equal(statSync(ca.adminSocket).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'ca')).mode & 0o777, 0o700);
  });

  it('attests an agent with a join token, from a CSR, and refuses the replay', async () => {
    const c = tlsOnly();
    const csr = buildCsr({ key: agentKey.privateKey });
    const res = await call<AttestAgentResponse__Output>((cb) => c.AttestAgent({ joinToken: { token }, csr }, cb));
    agentId = agentIdForJoinToken(TD, token);
    assert.equal(res.svid!.spiffeId, agentId.toString());
    assert.ok(!res.svid!.spiffeId!.includes(token), 'the agent ID never holds the token');
    const chain = res.svid!.certChain!.map((d) => Certificate.fromDer(d as Buffer));
    agentChainPem = chain.map((x) => x.toPem()).join('');
    const bundle = SpiffeBundle.parse(TD, res.bundle!.spiffeBundleJson!);
    assert.equal(verify(chain, bundle).id.toString(), agentId.toString());
    await rejectsStatus(
      call<AttestAgentResponse__Output>((cb) => c.AttestAgent({ joinToken: { token }, csr }, cb)),
      status.PERMISSION_DENIED,
    );
    await rejectsStatus(
      call<AttestAgentResponse__Output>((cb) => c.AttestAgent({ joinToken: { token: 'short' }, csr }, cb)),
      status.INVALID_ARGUMENT,
    );
    await rejectsStatus(
      call<AttestAgentResponse__Output>((cb) => c.AttestAgent({ csr }, cb)),
      status.INVALID_ARGUMENT,
    );
    c.close();
  });

  it('refuses agent methods without an agent SVID', async () => {
    const c = tlsOnly();
    await rejectsStatus(
      call<ListAuthorizedEntriesResponse__Output>((cb) => c.ListAuthorizedEntries({}, cb)),
      status.UNAUTHENTICATED,
    );
    c.close();
  });

  it('refuses an attested agent ID in a client certificate the CA did not issue (UNAUTHENTICATED)', async () => {
    // The Node port asks for a client certificate without requiring one (AttestAgent comes without);
    // one that does not verify against the bundle must never reach the agent check.
    const now = Date.now();
    const rogue = TestCa.root({
      trustDomain: 'example.org',
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 3600_000),
    });
    const { chain, key } = rogue.leaf('/x', {
      uris: [agentId.toString()],
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3600_000),
    });
    const c = client(
      credentials.createSsl(
        Buffer.from(rootsPem),
        Buffer.from(privateKeyToPem(key)),
        Buffer.from(chain.map((x) => x.toPem()).join('')),
      ),
    );
    await rejectsStatus(
      call<ListAuthorizedEntriesResponse__Output>((cb) => c.ListAuthorizedEntries({}, cb)),
      status.UNAUTHENTICATED,
    );
    await rejectsStatus(
      call<RenewAgentResponse__Output>((cb) =>
        c.RenewAgent({ csr: buildCsr({ key: generateKeyPair().privateKey }) }, cb),
      ),
      status.UNAUTHENTICATED,
    );
    c.close();
  });

  it('issues a batch of workload SVIDs: each item has its own result', async () => {
    const store = ca.context.store;
    const web = await store.createEntry({
      spiffeId: 'spiffe://example.org/ns/prod/sa/web',
      parentId: agentId.toString(),
      x509SvidTtlSeconds: 600,
      jwtSvidTtlSeconds: 120,
      dnsNames: ['web.prod.svc'],
    });
    const foreign = await store.createEntry({
      spiffeId: 'spiffe://example.org/ns/prod/sa/db',
      parentId: 'spiffe://example.org/svidkit/agent/join_token/other',
      x509SvidTtlSeconds: 600,
      jwtSvidTtlSeconds: 120,
      dnsNames: [],
    });
    const c = asAgent();
    const listed = await call<ListAuthorizedEntriesResponse__Output>((cb) => c.ListAuthorizedEntries({}, cb));
    assert.deepEqual(
      listed.entries!.map((e) => e.id),
      [web.id],
    );

    const wk = generateKeyPair();
    // The CSR asks for more than the entry; the certificate must not care.
    const goodCsr = buildCsr({ key: wk.privateKey, uris: ['spiffe://example.org/admin'], dnsNames: ['evil.example'] });
    const badCsr = Buffer.from(goodCsr);
    badCsr[badCsr.length - 5] = badCsr[badCsr.length - 5]! ^ 0xff;
    const res = await call<BatchNewX509SvidResponse__Output>((cb) =>
      c.BatchNewX509Svid(
        {
          params: [
            { entryId: web.id, csr: goodCsr },
            { entryId: web.id, csr: badCsr },
            { entryId: foreign.id, csr: goodCsr },
            { entryId: 'no-such-entry', csr: goodCsr },
          ],
        },
        cb,
      ),
    );
    assert.deepEqual(
      res.results!.map((r) => r.statusCode),
      [status.OK, status.INVALID_ARGUMENT, status.PERMISSION_DENIED, status.PERMISSION_DENIED],
    );
    const chain = res.results![0]!.svid!.certChain!.map((d) => Certificate.fromDer(d as Buffer));
    const leaf = chain[0]!;
    assert.deepEqual(leaf.subjectAltName?.uris, ['spiffe://example.org/ns/prod/sa/web']);
    assert.deepEqual(leaf.subjectAltName?.dnsNames, ['web.prod.svc']);
    assert.equal(leaf.basicConstraints?.cA, false);
    const bundles = new BundleSet([ca.context.keys.bundle()]);
    assert.equal(verify(chain, bundles).id.toString(), 'spiffe://example.org/ns/prod/sa/web');
    assert.ok(leaf.notAfter.getTime() - leaf.notBefore.getTime() <= 630_000);
    assert.match(logText, new RegExp(`"serial":"${leaf.serialHex}"`), 'one audit line per issued SVID');
    c.close();
  });

  it('mints JWT-SVIDs that validate with the published JWT keys', async () => {
    const [entry] = await ca.context.store.listEntries({ parentId: agentId.toString() });
    const c = asAgent();
    const res = await call<NewJwtSvidResponse__Output>((cb) =>
      c.NewJwtSvid({ entryId: entry!.id, audience: ['spiffe://example.org/ns/prod/sa/db'] }, cb),
    );
    const jwt = await parseAndValidate(
      res.token!,
      new BundleSet([ca.context.keys.bundle()]),
      'spiffe://example.org/ns/prod/sa/db',
    );
    assert.equal(jwt.id.toString(), entry!.spiffeId);
    await rejectsStatus(
      call<NewJwtSvidResponse__Output>((cb) => c.NewJwtSvid({ entryId: entry!.id, audience: [] }, cb)),
      status.INVALID_ARGUMENT,
    );
    assert.ok(!logText.includes(res.token!), 'tokens never reach the log');
    c.close();
  });

  it('streams the bundle and sends the next one when the CA rotates', async () => {
    const c = asAgent();
    const stream = c.WatchBundle({});
    const seen: Bundle__Output[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('error', (e: ServiceError) => (e.code === status.CANCELLED ? undefined : reject(e)));
      stream.on('data', (b: Bundle__Output) => {
        seen.push(b);
        if (seen.length === 1) ca.context.keys.rotate('x509').catch(reject);
        if (seen.length >= 2 && seen[seen.length - 1]!.sequence > seen[0]!.sequence + 1) resolve();
      });
    });
    stream.cancel();
    const last = SpiffeBundle.parse(TD, seen[seen.length - 1]!.spiffeBundleJson);
    assert.ok(last.x509.size >= 2, 'the new root is published while the old one stays');
    rootsPem = last.x509.toPem();
    c.close();
  });

  it('renews the agent over mTLS, and refuses a banned agent', async () => {
    let c = asAgent();
    const res = await call<RenewAgentResponse__Output>((cb) =>
      c.RenewAgent({ csr: buildCsr({ key: agentKey.privateKey }) }, cb),
    );
    assert.equal(res.svid!.spiffeId, agentId.toString());
    agentChainPem = res.svid!.certChain!.map((d) => Certificate.fromDer(d as Buffer).toPem()).join('');
    c.close();
    // A bundle stream opened before the ban ends at the next bundle change instead of receiving it.
    const watcher = asAgent();
    const stream = watcher.WatchBundle({});
    const ended = new Promise<ServiceError | undefined>((resolve) => {
      let first = true;
      stream.on('data', () => {
        if (!first) resolve(undefined);
        first = false;
      });
      stream.on('error', (e: ServiceError) => resolve(e));
    });
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    await ca.context.store.banAgent(agentId.toString());
    await ca.context.keys.rotate('jwt');
    const end = await ended;
    assert.equal(end?.code, status.PERMISSION_DENIED, 'the banned agent got no further bundle');
    watcher.close();
    c = asAgent();
    await rejectsStatus(
      call<RenewAgentResponse__Output>((cb) => c.RenewAgent({ csr: buildCsr({ key: agentKey.privateKey }) }, cb)),
      status.PERMISSION_DENIED,
    );
    await rejectsStatus(
      call<ListAuthorizedEntriesResponse__Output>((cb) => c.ListAuthorizedEntries({}, cb)),
      status.PERMISSION_DENIED,
    );
    c.close();
  });

  it('answers RESOURCE_EXHAUSTED past the message size limit', async () => {
    const c = tlsOnly();
    await rejectsStatus(
      call<AttestAgentResponse__Output>((cb) =>
        c.AttestAgent({ joinToken: { token }, csr: Buffer.alloc(100_000) }, cb),
      ),
      status.RESOURCE_EXHAUSTED,
    );
    c.close();
  });

  it('keeps every piece of state across a restart', async () => {
    const before = ca.context.keys.bundle();
    await ca.close(1000);
    await start();
    const afterRestart = ca.context.keys.bundle();
    assert.equal(afterRestart.sequence, before.sequence);
    assert.deepEqual(
      afterRestart.x509.authorities().map((a) => a.serialHex),
      before.x509.authorities().map((a) => a.serialHex),
    );
    assert.equal((await ca.context.store.listEntries()).length, 2);
    assert.equal((await ca.context.store.getAgent(agentId.toString()))?.banned, true);
  });

  it('never writes a private key or a join token into its log', () => {
    assert.ok(!logText.includes('PRIVATE KEY'));
    assert.ok(!logText.includes(token));
    assert.ok(!readFileSync(join(dir, 'ca', 'ca.sqlite')).includes('PRIVATE KEY'));
  });
});
