import { strict as assert } from 'node:assert';
import { TLSSocket } from 'node:tls';
import { Server, type ServiceError, status } from '@grpc/grpc-js';
import { authorizeAny, authorizeId, type Authorizer } from '../lib/authorize/index.js';
import { BundleSet, importJwtAuthority, JwtBundle } from '../lib/bundle/index.js';
import { HealthService } from '../lib/grpc/health.js';
import { authorizeService, connectionOf, mtlsChannelCredentials, mtlsServerCredentials } from '../lib/grpc/mtls.js';
import { healthProto } from '../lib/grpc/protos.js';
import { chainKey, PeerCache, SourceCaches } from '../lib/tls/peer-cache.js';
import { JwtValidator } from '../lib/jwtauth/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { connectMtls, createMtlsServer } from '../lib/tls/index.js';
import { TestCa } from './helpers/ca.js';
import { bindLoopback, checkHealth } from './helpers/grpc.js';

const now = Date.now();
const window = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) };
const caWindow = { notBefore: new Date(now - 86400_000), notAfter: new Date(now + 86400_000) };

describe('remembered verifications (hot paths)', function () {
  this.timeout(30_000);
  const ca = TestCa.root(caWindow);
  const other = TestCa.root({ ...caWindow, trustDomain: 'other.org' });

  describe('PeerCache', () => {
    const id = SpiffeId.parse('spiffe://example.org/w');
    const leaf = ca.svid('/w', window).leaf;

    it('holds an entry only inside the validity window of its path', () => {
      const cache = new PeerCache();
      cache.set('k', id, [], [leaf]);
      assert.equal(cache.get('k', now)?.id, id);
      assert.equal(cache.get('k', leaf.notAfter.getTime() + 1), undefined, 'after notAfter');
      cache.set('k', id, [], [leaf]);
      assert.equal(cache.get('k', leaf.notBefore.getTime() - 1), undefined, 'before notBefore');
      assert.equal(cache.size, 0, 'a stale entry is dropped when met');
    });

    it('keeps at most maxEntries, evicting the least recently used', () => {
      const cache = new PeerCache(2);
      cache.set('a', id, [], [leaf]);
      cache.set('b', id, [], [leaf]);
      assert.ok(cache.get('a', now));
      cache.set('c', id, [], [leaf]);
      assert.equal(cache.size, 2);
      assert.equal(cache.get('b', now), undefined, 'b was the least recently used');
      assert.ok(cache.get('a', now));
      assert.ok(cache.get('c', now));
      assert.throws(() => new PeerCache(-1), RangeError);
    });

    it('never remembers an entry without a verified path, or with maxEntries 0', () => {
      const cache = new PeerCache(0);
      cache.set('a', id, [], [leaf]);
      assert.equal(cache.size, 0);
      const open = new PeerCache();
      open.set('a', id, [], []);
      assert.equal(open.size, 0);
    });

    it('chainKey tells apart lists whose concatenations are equal', () => {
      const a = Buffer.from([1, 2, 3]);
      const b = Buffer.from([1, 2]);
      const c = Buffer.from([3]);
      assert.notEqual(chainKey([a]), chainKey([b, c]));
      assert.equal(chainKey([a]), chainKey([Buffer.from([1, 2, 3])]));
    });

    it('SourceCaches forgets everything on clear and never stores a value built across a clear', () => {
      const caches = new SourceCaches();
      caches.peers('tls').set('k', id, [], [leaf]);
      assert.equal(
        caches.memo('v', () => 1),
        1,
      );
      assert.equal(
        caches.memo('v', () => 2),
        1,
      );
      caches.clear();
      assert.equal(caches.peers('tls').size, 0);
      assert.equal(
        caches.memo('w', () => {
          caches.clear(); // an update while building
          return 3;
        }),
        3,
      );
      assert.equal(
        caches.memo('w', () => 4),
        4,
        'the value built across the update was not kept',
      );
    });
  });

  describe('TLS', () => {
    it('runs the authorizer on every connection even when the client is remembered', async () => {
      const serverSource = new StaticSource({
        svid: ca.svid('/server', window),
        bundles: new BundleSet([ca.bundle()]),
      });
      const clientSource = new StaticSource({
        svid: ca.svid('/client', window),
        bundles: new BundleSet([ca.bundle()]),
      });
      let allow = true;
      const gate: Authorizer = (peer) => {
        if (!allow) throw new Error('closed');
        authorizeAny()(peer, []);
      };
      const refusals: Error[] = [];
      const server = createMtlsServer(serverSource, gate, (s) => s.end('ok'));
      server.on('tlsClientError', (err) => refusals.push(err));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      const read = async () => {
        const s = await connectMtls(clientSource, authorizeId('spiffe://example.org/server'), { port });
        const chunks: Buffer[] = [];
        for await (const c of s) chunks.push(c as Buffer);
        return Buffer.concat(chunks).toString();
      };
      try {
        assert.equal(await read(), 'ok');
        assert.equal(await read(), 'ok', 'the remembered client is accepted again');
        allow = false;
        await read().catch(() => '');
        assert.ok(
          refusals.some((e) => (e as { code?: string }).code === 'ERR_TLS_PEER_DENIED'),
          'the authorizer refused the remembered client',
        );
      } finally {
        server.close();
      }
    });
  });

  describe('gRPC', () => {
    const bundles = new BundleSet([ca.bundle()]);
    const serverSource = new StaticSource({ svid: ca.svid('/server', window), bundles });
    const server = new Server();
    const health = new HealthService();
    let port = 0;
    let creds: ReturnType<typeof mtlsServerCredentials>;
    let connection: unknown;

    before(async () => {
      health.setStatus('', 'SERVING');
      const handlers = health.handlers();
      server.addService(
        healthProto().grpc.health.v1.Health.service,
        authorizeService(
          {
            ...handlers,
            Check: (call: Parameters<typeof handlers.Check>[0], cb: Parameters<typeof handlers.Check>[1]) => {
              connection = connectionOf(call);
              handlers.Check(call, cb);
            },
          },
          serverSource,
          authorizeAny(),
        ),
      );
      creds = mtlsServerCredentials(serverSource);
      port = await bindLoopback(server, creds.credentials);
    });
    after(() => {
      server.forceShutdown();
      creds.close();
    });

    const check = checkHealth;

    /** A client of the test server with a fresh client SVID. */
    const open = () => {
      const channel = mtlsChannelCredentials(
        new StaticSource({ svid: ca.svid('/client', window), bundles }),
        authorizeId('spiffe://example.org/server'),
      );
      return { c: new (healthProto().grpc.health.v1.Health)(`127.0.0.1:${port}`, channel.credentials), channel };
    };

    it("finds the call's TLS connection in this grpc-js version (else every call re-reads the certificate)", async () => {
      const { c, channel } = open();
      try {
        await check(c);
        assert.ok(connection instanceof TLSSocket, 'connectionOf found the TLS socket');
        assert.equal((connection as TLSSocket).authorized, true);
        assert.equal(connectionOf({}), undefined, 'an object of another shape gives undefined');
      } finally {
        c.close();
        channel.close();
      }
    });

    it('re-checks an open connection after a bundle update that drops its trust domain', async () => {
      const { c, channel } = open();
      try {
        await check(c);
        await check(c); // remembered now
        const opened = connection;
        // Trust only other.org from now on: the open connection's client is no longer trusted.
        serverSource.set({ bundles: new BundleSet([other.bundle()]) });
        await assert.rejects(check(c), (err: ServiceError) => err.code === status.UNAUTHENTICATED);
        assert.equal(connection, opened, 'the same connection');
      } finally {
        serverSource.set({ bundles });
        c.close();
        channel.close();
      }
    });
  });

  describe('JwtValidator.check', () => {
    it('answers synchronously for a remembered token and with a promise the first time', async () => {
      const key = generateKeyPair();
      const td = ca.trustDomain;
      const source = new StaticSource({
        bundles: new BundleSet([
          new JwtBundle(td, [importJwtAuthority('k1', key.publicKey.export({ format: 'jwk' }))]),
        ]),
      });
      const aud = 'spiffe://example.org/server';
      const token = await mintJwtSvid({
        id: SpiffeId.parse('spiffe://example.org/client'),
        audience: aud,
        key: key.privateKey,
        kid: 'k1',
      });
      const validator = new JwtValidator({ source, audience: aud });
      try {
        const first = validator.check(`Bearer ${token}`);
        assert.ok(first instanceof Promise);
        assert.equal((await first).id.toString(), 'spiffe://example.org/client');
        const second = validator.check(`Bearer ${token}`);
        assert.ok(!(second instanceof Promise));
        assert.equal(second.id.toString(), 'spiffe://example.org/client');
        // A token never seen goes the asynchronous way, and is refused there.
        await assert.rejects(
          async () => validator.check('Bearer a.b.c'),
          (err: { status?: number }) => err.status === 401,
        );
      } finally {
        validator.close();
      }
    });
  });
});
