import { strict as assert } from 'node:assert';
import {
  Client,
  credentials,
  Metadata,
  type MethodDefinition,
  type sendUnaryData,
  Server,
  type ServerUnaryCall,
  type ServiceDefinition,
  type ServiceError,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { authorizeId, authorizeMemberOf } from '../lib/authorize/index.js';
import { BundleSet } from '../lib/bundle/index.js';
import { HealthService } from '../lib/grpc/health.js';
import { requireJwtSvidForService } from '../lib/grpc/jwt.js';
import { authorizeService, callerId, mtlsChannelCredentials, mtlsServerCredentials } from '../lib/grpc/mtls.js';
import { healthProto } from '../lib/grpc/protos.js';
import { JwtValidator } from '../lib/jwtauth/index.js';
import { StaticSource } from '../lib/source/index.js';
import type { SpiffeId } from '../lib/spiffeid/index.js';
import { TestCa } from './helpers/ca.js';
import { bindLoopback, checkHealth } from './helpers/grpc.js';

const now = Date.now();
const window = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) };
const caWindow = { notBefore: new Date(now - 86400_000), notAfter: new Date(now + 86400_000) };

describe('grpc-js with SPIFFE mTLS (real server on loopback)', function () {
  this.timeout(30_000);
  const ca = TestCa.root(caWindow);
  const other = TestCa.root({ ...caWindow, trustDomain: 'other.org' });
  const bundles = new BundleSet([ca.bundle()]);
  const serverSource = new StaticSource({ svid: ca.svid('/ns/a/sa/server', window), bundles });
  const server = new Server();
  const health = new HealthService();
  let seen: SpiffeId | undefined;
  let port = 0;
  let serverCreds: ReturnType<typeof mtlsServerCredentials>;

  before(async () => {
    health.setStatus('', 'SERVING');
    const handlers = health.handlers();
    const wrapped = authorizeService(
      {
        ...handlers,
        Check: (call: Parameters<typeof handlers.Check>[0], cb: Parameters<typeof handlers.Check>[1]) => {
          seen = callerId(call);
          handlers.Check(call, cb);
        },
      },
      serverSource,
      { Check: authorizeMemberOf('example.org'), Watch: authorizeId('spiffe://example.org/ns/a/sa/admin') },
    );
    server.addService(healthProto().grpc.health.v1.Health.service, wrapped);
    serverCreds = mtlsServerCredentials(serverSource);
    port = await bindLoopback(server, serverCreds.credentials);
  });
  after(() => {
    server.forceShutdown();
    serverCreds.close();
  });

  const client = (source: StaticSource, serverId = 'spiffe://example.org/ns/a/sa/server') => {
    const c = mtlsChannelCredentials(source, authorizeId(serverId));
    return new (healthProto().grpc.health.v1.Health)(`127.0.0.1:${port}`, c.credentials);
  };
  const check = (c: ReturnType<typeof client>) => checkHealth(c);

  it('authenticates both sides and gives the handler the caller ID', async () => {
    const c = client(new StaticSource({ svid: ca.svid('/ns/a/sa/client', window), bundles }));
    assert.equal((await check(c)).status, 'SERVING');
    assert.equal(seen?.toString(), 'spiffe://example.org/ns/a/sa/client');
    c.close();
  });

  it('answers PERMISSION_DENIED when the method authorizer refuses the caller', async () => {
    const c = client(new StaticSource({ svid: ca.svid('/ns/a/sa/client', window), bundles }));
    const stream = c.Watch({ service: '' });
    const err = await new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    assert.equal(err.code, status.PERMISSION_DENIED);
    c.close();
  });

  it('refuses a server whose SPIFFE ID the client does not expect', async () => {
    const c = client(
      new StaticSource({ svid: ca.svid('/ns/a/sa/client', window), bundles }),
      'spiffe://example.org/ns/a/sa/other',
    );
    await assert.rejects(check(c), (err: ServiceError) => err.code === status.UNAVAILABLE);
    c.close();
  });

  it('refuses a client from an untrusted trust domain, and a client without a certificate', async () => {
    const foreign = new StaticSource({ svid: other.svid('/ns/x', window), bundles });
    const c = client(foreign);
    await assert.rejects(check(c), (err: ServiceError) => err.code === status.UNAVAILABLE);
    c.close();
    const bare = new (healthProto().grpc.health.v1.Health)(
      `127.0.0.1:${port}`,
      credentials.createSsl(Buffer.from(ca.cert.toPem())),
    );
    await assert.rejects(check(bare), (err: ServiceError) => err.code === status.UNAVAILABLE);
    bare.close();
  });

  it('picks up a rotated server SVID for new connections without a restart', async () => {
    const before = serverSource.getX509Svid().leaf.serialHex;
    serverSource.set({ svid: ca.svid('/ns/a/sa/server', window) });
    const after = serverSource.getX509Svid().leaf.serialHex;
    assert.notEqual(before, after);
    let presented = '';
    const creds = mtlsChannelCredentials(
      new StaticSource({ svid: ca.svid('/ns/a/sa/client', window), bundles }),
      (id, chain) => {
        authorizeId('spiffe://example.org/ns/a/sa/server')(id, chain);
        presented = chain[0]!.serialHex;
      },
    );
    const c = new (healthProto().grpc.health.v1.Health)(`127.0.0.1:${port}`, creds.credentials);
    assert.equal((await check(c)).status, 'SERVING');
    assert.equal(presented, after, 'a new handshake sees the new SVID');
    c.close();
  });

  it('refuses to build credentials from a source without an SVID', () => {
    assert.throws(() => mtlsServerCredentials(new StaticSource({ bundles })), { code: 'ERR_SOURCE_NO_SVID' });
    assert.throws(() => mtlsChannelCredentials(new StaticSource({ bundles }), undefined as never), TypeError);
  });
});

describe('grpc-js server trusting several trust domains', function () {
  this.timeout(30_000);
  const ca = TestCa.root(caWindow);
  const inter = ca.intermediate(caWindow);
  const other = TestCa.root({ ...caWindow, trustDomain: 'other.org' });
  const otherInter = other.intermediate(caWindow);
  const bundles = new BundleSet([ca.bundle(), other.bundle()]);
  const serverSource = new StaticSource({ svid: ca.svid('/server', window), bundles });
  const server = new Server();
  const health = new HealthService();
  let seen: SpiffeId | undefined;
  let port = 0;
  let creds: ReturnType<typeof mtlsServerCredentials>;

  before(async () => {
    health.setStatus('', 'SERVING');
    const handlers = health.handlers();
    server.addService(
      healthProto().grpc.health.v1.Health.service,
      authorizeService(
        {
          ...handlers,
          Check: (call: Parameters<typeof handlers.Check>[0], cb: Parameters<typeof handlers.Check>[1]) => {
            seen = callerId(call);
            handlers.Check(call, cb);
          },
        },
        serverSource,
        authorizeMemberOf('example.org'),
      ),
    );
    creds = mtlsServerCredentials(serverSource);
    port = await bindLoopback(server, creds.credentials);
  });
  after(() => {
    server.forceShutdown();
    creds.close();
  });

  const call = async (svid: ReturnType<TestCa['svid']>) => {
    const channel = mtlsChannelCredentials(
      new StaticSource({ svid, bundles }),
      authorizeId('spiffe://example.org/server'),
    );
    const c = new (healthProto().grpc.health.v1.Health)(`127.0.0.1:${port}`, channel.credentials);
    try {
      return await checkHealth(c);
    } finally {
      c.close();
      channel.close();
    }
  };

  it("accepts a client whose SVID comes through an intermediate, re-checked against its own trust domain's bundle", async () => {
    const svid = inter.svid('/via-intermediate', window);
    assert.equal(svid.certificates.length, 2);
    assert.equal((await call(svid)).status, 'SERVING');
    assert.equal(seen?.toString(), 'spiffe://example.org/via-intermediate');
  });

  it("refuses a leaf from the other trust domain's intermediate that claims an ID in this one", async () => {
    const forged = otherInter.svid('/x', { ...window, uris: ['spiffe://example.org/x'] });
    await assert.rejects(call(forged), (err: ServiceError) => err.code === status.UNAUTHENTICATED);
    assert.equal(seen?.toString(), 'spiffe://example.org/via-intermediate', 'the handler did not run');
  });
});

describe('grpc-js authorizers and handler maps with method names from Object.prototype', function () {
  this.timeout(30_000);
  const ca = TestCa.root(caWindow);
  const bundles = new BundleSet([ca.bundle()]);
  const serverSource = new StaticSource({ svid: ca.svid('/ns/a/sa/server', window), bundles });
  const clientSource = new StaticSource({ svid: ca.svid('/ns/a/sa/client', window), bundles });
  const server = new Server();
  let port = 0;
  let serverCreds: ReturnType<typeof mtlsServerCredentials>;
  let clientCreds: ReturnType<typeof mtlsChannelCredentials>;
  const client = () => new Client(`127.0.0.1:${port}`, clientCreds.credentials);

  /** A unary service with raw bytes in and out, whose method names are the caller's choice. */
  const service = (name: string, methods: readonly string[]): ServiceDefinition => {
    const same = (b: Buffer) => b;
    const def: Record<string, MethodDefinition<Buffer, Buffer>> = Object.create(null) as never;
    for (const m of methods) {
      Object.defineProperty(def, m, {
        enumerable: true,
        value: {
          path: `/test.${name}/${m}`,
          requestStream: false,
          responseStream: false,
          requestSerialize: same,
          requestDeserialize: same,
          responseSerialize: same,
          responseDeserialize: same,
          originalName: m,
        },
      });
    }
    return def as ServiceDefinition;
  };
  const PROTO_NAMES = ['toString', 'constructor', 'valueOf', 'hasOwnProperty'] as const;
  const reply = (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) =>
    cb(null, Buffer.from(`${callerId(call)?.toString()} ${call.getPath()}`));
  /** Own-property handler maps, also for names such as __proto__ that an object literal cannot hold. */
  const handlersFor = (names: readonly string[]) => {
    const h: UntypedServiceImplementation = {};
    for (const n of names) Object.defineProperty(h, n, { enumerable: true, value: reply });
    return h;
  };
  /** One unary call; resolves with the reply or the ServiceError, so that a hang shows as DEADLINE_EXCEEDED. */
  const invoke = (c: Client, path: string) =>
    new Promise<{ err: ServiceError | null; body?: string }>((resolve) =>
      c.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from('x'),
        new Metadata(),
        { deadline: Date.now() + 5000 },
        (err, res) => resolve({ err, body: res?.toString() }),
      ),
    );

  before(async () => {
    clientCreds = mtlsChannelCredentials(clientSource, authorizeId('spiffe://example.org/ns/a/sa/server'));
    const member = authorizeMemberOf('example.org');
    const admin = authorizeId('spiffe://example.org/ns/a/sa/admin');
    // Listed: the prototype-named methods have their own authorizer, which refuses the client.
    server.addService(
      service('Listed', ['Echo', ...PROTO_NAMES]),
      authorizeService(handlersFor(['Echo', ...PROTO_NAMES]), serverSource, {
        Echo: member,
        ...Object.fromEntries(PROTO_NAMES.map((n) => [n, admin])),
      }),
    );
    // Left out: the service has the prototype-named methods, the handler maps do not.
    server.addService(
      service('MtlsLeftOut', ['Echo', ...PROTO_NAMES]),
      authorizeService(handlersFor(['Echo']), serverSource, { Echo: member }),
    );
    const validator = new JwtValidator({ source: serverSource, audience: 'spiffe://example.org/ns/a/sa/server' });
    server.addService(
      service('JwtLeftOut', ['Echo', ...PROTO_NAMES]),
      requireJwtSvidForService(handlersFor(['Echo']), validator),
    );
    serverCreds = mtlsServerCredentials(serverSource);
    port = await bindLoopback(server, serverCreds.credentials);
  });
  after(() => {
    server.forceShutdown();
    serverCreds.close();
    clientCreds.close();
  });

  it('refuses to wrap a handler named like an Object.prototype member that the per-method map does not list', () => {
    const member = authorizeMemberOf('example.org');
    for (const name of [...PROTO_NAMES, '__proto__']) {
      assert.throws(
        () => authorizeService(handlersFor(['Echo', name]), serverSource, { Echo: member }),
        (err: unknown) => err instanceof TypeError && err.message === `grpc: no authorizer for method ${name}`,
        `${name} has no authorizer of its own`,
      );
    }
    // A map whose entry is not a function is no authorizer either.
    assert.throws(
      () => authorizeService(handlersFor(['Echo']), serverSource, { Echo: 'yes' as never }),
      /no authorizer for method Echo/,
    );
  });

  it('a verified peer is refused (PERMISSION_DENIED) by the own authorizer of toString, and gets UNIMPLEMENTED for one left out', async () => {
    const c = client();
    try {
      const echo = await invoke(c, '/test.Listed/Echo');
      assert.equal(echo.err, null);
      assert.equal(echo.body, 'spiffe://example.org/ns/a/sa/client /test.Listed/Echo');
      for (const name of PROTO_NAMES) {
        const listed = await invoke(c, `/test.Listed/${name}`);
        assert.equal(listed.err?.code, status.PERMISSION_DENIED, `Listed/${name}: ${listed.err?.details}`);
        // Before, grpc-js took Object.prototype's member of the wrapped map as the handler: it ran with
        // no authorizer and never answered.
        for (const svc of ['MtlsLeftOut', 'JwtLeftOut']) {
          const left = await invoke(c, `/test.${svc}/${name}`);
          assert.equal(left.err?.code, status.UNIMPLEMENTED, `${svc}/${name}: ${left.err?.details}`);
        }
      }
      assert.equal((await invoke(c, '/test.MtlsLeftOut/Echo')).err, null);
    } finally {
      c.close();
    }
  });
});
