import { strict as assert } from 'node:assert';
import { credentials, Server, type ServiceError, status } from '@grpc/grpc-js';
import { authorizeAny, authorizeId } from '../lib/authorize/index.js';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import { HealthService } from '../lib/grpc/health.js';
import { jwtCallCredentials, jwtSvidOfCall, requireJwtSvidForService } from '../lib/grpc/jwt.js';
import { authorizeService, mtlsChannelCredentials, mtlsServerCredentials } from '../lib/grpc/mtls.js';
import { healthProto } from '../lib/grpc/protos.js';
import { JwtValidator } from '../lib/jwtauth/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { TestCa } from './helpers/ca.js';
import { bindLoopback, checkHealth } from './helpers/grpc.js';

const now = Date.now();
const window = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) };
const AUD = 'spiffe://example.org/ns/a/sa/server';

describe('grpc-js with JWT-SVID audience checks over mTLS', function () {
  this.timeout(30_000);
  const ca = TestCa.root({ notBefore: new Date(now - 86400_000), notAfter: new Date(now + 86400_000) });
  const jwtKey = generateKeyPair();
  const td = ca.trustDomain;
  const bundles = new BundleSet([
    new SpiffeBundle(td, {
      x509: ca.bundle(),
      jwt: new JwtBundle(td, [importJwtAuthority('k1', jwtKey.publicKey.export({ format: 'jwk' }))]),
    }),
  ]);
  const serverSource = new StaticSource({ svid: ca.svid('/ns/a/sa/server', window), bundles });
  const server = new Server();
  let port = 0;
  let subject: string | undefined;
  let creds: ReturnType<typeof mtlsServerCredentials>;
  const mint = (id: string, audience = AUD) =>
    mintJwtSvid({ id: SpiffeId.parse(id), audience, key: jwtKey.privateKey, kid: 'k1' });

  before(async () => {
    const health = new HealthService();
    health.setStatus('', 'SERVING');
    const h = health.handlers();
    const validator = new JwtValidator({
      source: serverSource,
      audience: AUD,
      authorizer: (id) => {
        if (id.path.endsWith('/blocked')) throw new Error('blocked');
      },
      requireSubjectEquals: true,
    });
    const inner = {
      ...h,
      Check: (call: Parameters<typeof h.Check>[0], cb: Parameters<typeof h.Check>[1]) => {
        subject = jwtSvidOfCall(call)?.id.toString();
        h.Check(call, cb);
      },
    };
    server.addService(
      healthProto().grpc.health.v1.Health.service,
      authorizeService(requireJwtSvidForService(inner, validator), serverSource, authorizeAny()),
    );
    creds = mtlsServerCredentials(serverSource);
    port = await bindLoopback(server, creds.credentials);
  });
  after(() => {
    server.forceShutdown();
    creds.close();
  });

  const call = async (clientPath: string, tokens: Map<string, string>) => {
    const source = new StaticSource({ svid: ca.svid(clientPath, window), bundles, jwtSvids: tokens });
    const channel = mtlsChannelCredentials(source, authorizeId(AUD));
    const c = new (healthProto().grpc.health.v1.Health)(
      `127.0.0.1:${port}`,
      credentials.combineChannelCredentials(channel.credentials, jwtCallCredentials(source, AUD)),
    );
    try {
      return await checkHealth(c);
    } finally {
      c.close();
    }
  };
  const fails = async (p: Promise<unknown>, code: status) =>
    assert.rejects(p, (err: ServiceError) => {
      assert.equal(err.code, code, err.message);
      return true;
    });

  it('accepts a valid token whose subject is the mTLS peer, and hands it to the handler', async () => {
    const id = 'spiffe://example.org/ns/a/sa/client';
    assert.equal((await call('/ns/a/sa/client', new Map([[AUD, await mint(id)]]))).status, 'SERVING');
    assert.equal(subject, id);
  });

  it('answers UNAUTHENTICATED for a token for another audience', async () => {
    const token = await mint('spiffe://example.org/ns/a/sa/client', 'spiffe://example.org/other');
    await fails(call('/ns/a/sa/client', new Map([[AUD, token]])), status.UNAUTHENTICATED);
  });

  it('answers PERMISSION_DENIED when the subject is not the mTLS peer, or the authorizer refuses it', async () => {
    await fails(
      call('/ns/a/sa/client', new Map([[AUD, await mint('spiffe://example.org/ns/a/sa/someone-else')]])),
      status.PERMISSION_DENIED,
    );
    await fails(
      call('/ns/a/sa/blocked', new Map([[AUD, await mint('spiffe://example.org/ns/a/sa/blocked')]])),
      status.PERMISSION_DENIED,
    );
  });

  it('fails the call on the client when the source has no token for the audience', async () => {
    // grpc-js fails a call whose metadata generator reports an error (here one without a numeric gRPC
    // code) with UNKNOWN and the generator's message; the call never reaches the handler.
    subject = 'untouched';
    await assert.rejects(call('/ns/a/sa/client', new Map()), (err: ServiceError) => {
      assert.equal(err.code, status.UNKNOWN, err.message);
      assert.match(err.details, /Getting metadata from plugin failed/);
      assert.ok(err.details.includes(`source: no JWT-SVID for audience "${AUD}"`), err.details);
      return true;
    });
    assert.equal(subject, 'untouched');
  });

  it('sends the rotated token on the next call of the same channel', async () => {
    const id = 'spiffe://example.org/ns/a/sa/client';
    const source = new StaticSource({
      svid: ca.svid('/ns/a/sa/client', window),
      bundles,
      jwtSvids: new Map([[AUD, await mint(id)]]),
    });
    const channel = mtlsChannelCredentials(source, authorizeId(AUD));
    const c = new (healthProto().grpc.health.v1.Health)(
      `127.0.0.1:${port}`,
      credentials.combineChannelCredentials(channel.credentials, jwtCallCredentials(source, AUD)),
    );
    const check = () => checkHealth(c);
    try {
      assert.equal((await check()).status, 'SERVING');
      // A token whose subject is not the peer: refused, so the new token was the one sent.
      source.set({ jwtSvids: new Map([[AUD, await mint('spiffe://example.org/ns/a/sa/someone-else')]]) });
      await fails(check(), status.PERMISSION_DENIED);
      source.set({ jwtSvids: new Map([[AUD, await mint(id)]]) });
      assert.equal((await check()).status, 'SERVING');
    } finally {
      c.close();
      channel.close();
    }
  });
});
