/**
 * The service library against the bare stacks it wraps, in the same run: mTLS handshakes through
 * svidkit (SPIFFE re-check + authorizer on both sides) against node:tls with the same certificates,
 * and gRPC unary calls with mTLS + authorizer + JWT-SVID check against plain grpc-js mTLS.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { credentials, Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { authorizeAny } from '../lib/authorize/index.js';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import {
  authorizeService,
  HealthService,
  healthProto,
  jwtCallCredentials,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  requireJwtSvidForService,
} from '../lib/grpc/index.js';
import { JwtValidator } from '../lib/jwtauth/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { connectMtls, createMtlsServer } from '../lib/tls/index.js';
import { TestCa } from '../test/helpers/ca.js';
import { type BenchResult, compare } from './support.js';

/** Concurrent connections or calls, so that network waits overlap as in a real service. */
const IN_FLIGHT = 8;

/** compare() with IN_FLIGHT concurrent loops and one-second rounds (handshakes are slow). */
const compareInFlight = (...args: [string, string, () => unknown, string, () => unknown]) =>
  compare(...args, { concurrency: IN_FLIGHT, roundMs: 1000 });

function pki() {
  const now = Date.now();
  const ca = TestCa.root({ notBefore: new Date(now - 86400_000), notAfter: new Date(now + 86400_000) });
  const window = { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) };
  const jwtKey = generateKeyPair();
  const bundles = new BundleSet([
    new SpiffeBundle(ca.trustDomain, {
      x509: ca.bundle(),
      jwt: new JwtBundle(ca.trustDomain, [importJwtAuthority('k1', jwtKey.publicKey.export({ format: 'jwk' }))]),
    }),
  ]);
  return {
    ca,
    window,
    jwtKey,
    bundles,
    server: ca.svid('/bench/server', window),
    client: ca.svid('/bench/client', window),
  };
}

async function handshakes(): Promise<BenchResult> {
  const p = pki();
  const serverSource = new StaticSource({ svid: p.server, bundles: p.bundles });
  const clientSource = new StaticSource({ svid: p.client, bundles: p.bundles });
  const ours = createMtlsServer(serverSource, authorizeAny(), (s) => s.end());
  ours.listen(0, '127.0.0.1');
  await once(ours, 'listening');
  const rootPem = p.ca.cert.toPem();
  const bare = tls.createServer(
    {
      cert: p.server.certificatesPem(),
      key: p.server.privateKeyPem(),
      ca: rootPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (s) => s.end(),
  );
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  const portOf = (s: tls.Server) => (s.address() as AddressInfo).port;
  // The strongest bare client: one secure context for every connection, as svidkit builds it once per
  // SVID version. (A context per tls.connect, the naive form, is about half as fast.)
  const bareContext = tls.createSecureContext({
    cert: p.client.certificatesPem(),
    key: p.client.privateKeyPem(),
    ca: rootPem,
  });
  try {
    return await compareInFlight(
      'tls: mTLS handshakes through svidkit (both sides checked)',
      'handshakes/s',
      async () => {
        const s = await connectMtls(clientSource, authorizeAny(), { host: '127.0.0.1', port: portOf(ours) });
        s.destroy();
      },
      'bare node:tls mTLS, same certificates, one shared secure context',
      () =>
        new Promise<void>((resolve, reject) => {
          const s = tls.connect(
            {
              host: '127.0.0.1',
              port: portOf(bare),
              secureContext: bareContext,
              // The bare baseline does no identity check at all; ours does the SPIFFE check instead.
              checkServerIdentity: () => undefined,
            },
            () => {
              s.destroy();
              resolve();
            },
          );
          s.once('error', reject);
        }),
    );
  } finally {
    ours.close();
    bare.close();
  }
}

async function grpcCalls(): Promise<BenchResult> {
  const p = pki();
  const serverSource = new StaticSource({ svid: p.server, bundles: p.bundles });
  const aud = 'spiffe://example.org/bench/server';
  const token = await mintJwtSvid({
    id: SpiffeId.parse('spiffe://example.org/bench/client'),
    audience: aud,
    key: p.jwtKey.privateKey,
    kid: 'k1',
    ttlSeconds: 3600,
  });
  const clientSource = new StaticSource({ svid: p.client, bundles: p.bundles, jwtSvids: new Map([[aud, token]]) });
  const health = new HealthService();
  health.setStatus('', 'SERVING');
  const validator = new JwtValidator({ source: serverSource, audience: aud, requireSubjectEquals: true });
  const ours = new Server();
  ours.addService(
    healthProto().grpc.health.v1.Health.service,
    authorizeService(requireJwtSvidForService(health.handlers(), validator), serverSource, authorizeAny()),
  );
  const oursCreds = mtlsServerCredentials(serverSource);
  const plain = new Server();
  plain.addService(healthProto().grpc.health.v1.Health.service, health.handlers());
  const rootPem = Buffer.from(p.ca.cert.toPem());
  const bind = (s: Server, c: ServerCredentials) =>
    new Promise<number>((resolve, reject) =>
      s.bindAsync('127.0.0.1:0', c, (e, port) => (e ? reject(e) : resolve(port))),
    );
  const oursPort = await bind(ours, oursCreds.credentials);
  const plainPort = await bind(
    plain,
    ServerCredentials.createSsl(
      rootPem,
      [{ cert_chain: Buffer.from(p.server.certificatesPem()), private_key: Buffer.from(p.server.privateKeyPem()) }],
      true,
    ),
  );
  const channel = mtlsChannelCredentials(clientSource, authorizeAny());
  const Health = healthProto().grpc.health.v1.Health;
  const oursClient = new Health(
    `127.0.0.1:${oursPort}`,
    credentials.combineChannelCredentials(channel.credentials, jwtCallCredentials(clientSource, aud)),
  );
  const plainClient = new Health(
    `127.0.0.1:${plainPort}`,
    credentials.createSsl(rootPem, Buffer.from(p.client.privateKeyPem()), Buffer.from(p.client.certificatesPem()), {
      checkServerIdentity: () => undefined,
    }),
  );
  const check = (c: InstanceType<typeof Health>) => () =>
    new Promise<void>((resolve, reject) =>
      c.Check({ service: '' }, (err: ServiceError | null) => (err ? reject(err) : resolve())),
    );
  try {
    return await compareInFlight(
      'grpc: unary calls with mTLS + authorizer + JWT-SVID check',
      'calls/s',
      check(oursClient),
      'plain grpc-js mTLS, same certificates',
      check(plainClient),
    );
  } finally {
    oursClient.close();
    plainClient.close();
    ours.forceShutdown();
    plain.forceShutdown();
    oursCreds.close();
    channel.close();
    validator.close();
  }
}

/** The library rows of `npm run bench`. */
export async function libraryBench(): Promise<BenchResult[]> {
  return [await handshakes(), await grpcCalls()];
}
