/**
 * svidkit-ca assembled: datastore, key manager, attestors, the Node service over TLS (mTLS after
 * attestation), the Admin service on a 0600 Unix socket, health, metrics and the rotation timer.
 * run() returns a handle whose close() drains in-flight calls, as SIGTERM asks.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { experimental, Server, ServerCredentials } from '@grpc/grpc-js';
import { PsatAttestor } from '../attest/index.js';
import { SvidkitError } from '../errors/index.js';
import { generateKeyPair, privateKeyToPem } from '../keys/index.js';
import { HealthService } from '../grpc/health.js';
import { PushCertificateProvider } from '../grpc/provider.js';
import { caProto } from '../ca-api/proto.js';
import { createLogger, Gauge, type Logger, startObservabilityServer } from '../observe/index.js';
import { caServerId } from '../ca-api/index.js';
import { SqliteStore } from '../store/index.js';
import { buildCsr } from '../x509/csr.js';
import { Certificate } from '../x509/certificate.js';
import { adminHandlers } from './admin-service.js';
import type { CaConfig } from './config.js';
import { CaContext, createCaMetrics } from './context.js';
import { CaKeyManager } from './keys.js';
import { listenNode, nodeServerOptions } from './node-listener.js';
import { nodeHandlers } from './node-service.js';
import { bindPrivateSocket, ensurePrivateDir } from './private-dir.js';

const NODE_SERVICE = 'svidkit.ca.v1.Node';
const ADMIN_SERVICE = 'svidkit.ca.v1.Admin';
/** How often the key lifecycle is checked; rotation points are hours apart, so a minute is plenty. */
const TICK_MS = 30_000;

/** Options of run() beyond the configuration; tests inject time and capture logs. */
export interface CaRunOptions {
  clock?: () => Date;
  logger?: Logger;
  /** PSAT discovery HTTP client (tests). */
  fetch?: typeof fetch;
}

/** A running CA. */
export interface RunningCa {
  readonly context: CaContext;
  /** The bound Node service port (useful when the config says 0). */
  readonly nodePort: number;
  readonly observabilityPort: number;
  readonly adminSocket: string;
  /** The bound admin mTLS port, when admin.mtls is configured. */
  readonly adminTlsPort: number | undefined;
  /** Stops accepting calls, lets in-flight ones finish (up to `graceMs`), then closes everything. */
  close(graceMs?: number): Promise<void>;
}

function bindAsync(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/** Starts the CA described by `config`. */
export async function run(config: CaConfig, options: CaRunOptions = {}): Promise<RunningCa> {
  const clock = options.clock ?? (() => new Date());
  const log = options.logger ?? createLogger({ name: 'svidkit-ca', level: config.logLevel });
  // Both before anything is opened or bound, so a refusal leaves nothing behind.
  await ensurePrivateDir(config.dataDir, 'data_dir');
  await ensurePrivateDir(dirname(config.admin.socket), 'admin.socket');
  const store = await SqliteStore.open(join(config.dataDir, 'ca.sqlite'));
  const keys = await CaKeyManager.open({
    trustDomain: config.trustDomain,
    store,
    keyDir: join(config.dataDir, 'keys'),
    clock,
    caTtlMs: config.ca.ttlMs,
    keyType: config.ca.keyType,
    jwtKeyType: config.ca.jwtKeyType,
    logger: log,
    upstream: config.ca.upstream ? await readUpstream(config.ca.upstream) : undefined,
  });
  await keys.tick();
  const psat =
    config.k8sPsat.length > 0
      ? new PsatAttestor(config.trustDomain, config.k8sPsat, { clock, fetch: options.fetch })
      : undefined;
  const metrics = createCaMetrics();
  const ctx = new CaContext({ config, store, keys, psat, log, metrics, clock });
  metrics.registry.register(
    new Gauge({
      name: 'svidkit_ca_expiry_seconds',
      help: 'seconds until the active X.509 CA expires',
      collect: () => (keys.x509Signer().cert.notAfter.getTime() - clock().getTime()) / 1000,
    }),
  );

  // The Node port: the CA's own SVID as the server identity, the bundle roots to verify agent SVIDs.
  const identity = new PushCertificateProvider();
  const roots = new PushCertificateProvider();
  const serverId = caServerId(config.trustDomain);
  let serverSvidExpires = 0;
  const refreshServerSvid = () => {
    const pair = generateKeyPair('ec-p256');
    const { issuer, chain } = ctx.issuer();
    const cert = issuer.issue({
      id: serverId,
      csrDer: buildCsr({ key: pair.privateKey, uris: [serverId.toString()] }),
      now: clock(),
      ttlMs: keys.maxSvidTtlMs,
      dnsNames: ['localhost'],
    });
    serverSvidExpires = cert.notAfter.getTime();
    identity.set({
      identity: {
        certificatePem: [cert.der, ...chain].map((d) => Certificate.fromDer(d).toPem()).join(''),
        privateKeyPem: privateKeyToPem(pair.privateKey),
      },
    });
  };
  const publishRoots = () => roots.set({ caPem: keys.bundle().x509.toPem() });
  publishRoots();
  refreshServerSvid();
  const offBundle = keys.onBundleChange(() => {
    publishRoots();
    refreshServerSvid();
  });

  const health = new HealthService([NODE_SERVICE, ADMIN_SERVICE]);
  const grpcOptions = {
    'grpc.max_receive_message_length': config.limits.maxMessageBytes,
    'grpc.max_send_message_length': config.limits.maxMessageBytes,
  };
  // Two servers behind one port: connections whose client certificate verified, and the rest (an
  // agent attesting, a probe), which get limits sized for AttestAgent (lib/ca/node-listener.ts).
  const nodeServers = (['verified', 'unverified'] as const).map((tier) => {
    const server = new Server(nodeServerOptions(config.limits, tier));
    server.addService(caProto().svidkit.ca.v1.Node.service, nodeHandlers(ctx));
    health.addTo(server);
    return server;
  });
  const nodeListener = await listenNode({
    address: config.listen.address,
    port: config.listen.port,
    limits: config.limits,
    verified: nodeServers[0]!,
    unverified: nodeServers[1]!,
    identity,
    roots,
    log,
  });
  const nodePort = nodeListener.port;

  const adminServer = new Server(grpcOptions);
  adminServer.addService(caProto().svidkit.ca.v1.Admin.service, adminHandlers(ctx));
  health.addTo(adminServer);
  await bindPrivateSocket(config.admin.socket, async (temp) => {
    await bindAsync(adminServer, `unix://${temp}`, ServerCredentials.createInsecure());
  });

  // Optional: the admin API over mTLS for configured admin SPIFFE IDs; a client certificate is required.
  let adminTlsServer: Server | undefined;
  let adminTlsPort: number | undefined;
  if (config.admin.mtls) {
    adminTlsServer = new Server(grpcOptions);
    adminTlsServer.addService(caProto().svidkit.ca.v1.Admin.service, adminHandlers(ctx, { transport: 'mtls' }));
    const creds = experimental.createCertificateProviderServerCredentials(identity, roots, true);
    adminTlsPort = await bindAsync(adminTlsServer, `${config.admin.mtls.address}:${config.admin.mtls.port}`, creds);
  }

  let ready = true;
  const obs = await startObservabilityServer({
    host: config.observability.address,
    port: config.observability.port,
    registry: metrics.registry,
    ready: () => ready,
  });

  const timer = setInterval(() => {
    keys
      .tick()
      .then(() => {
        // Renew the serving SVID at half-life, like any other SVID.
        if (clock().getTime() > serverSvidExpires - keys.maxSvidTtlMs / 2) refreshServerSvid();
      })
      .catch((err: unknown) => log.error({ err }, 'key rotation check failed'));
  }, TICK_MS);
  timer.unref();

  for (const s of ['', NODE_SERVICE, ADMIN_SERVICE]) health.setStatus(s, 'SERVING');
  log.info(
    {
      trust_domain: config.trustDomain.name,
      node_port: nodePort,
      admin_socket: config.admin.socket,
      metrics_port: obs.port,
    },
    'svidkit-ca ready',
  );

  let closing: Promise<void> | undefined;
  return {
    context: ctx,
    nodePort,
    observabilityPort: obs.port,
    adminSocket: config.admin.socket,
    adminTlsPort,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        ready = false;
        health.shutdown();
        clearInterval(timer);
        offBundle();
        const servers = [...nodeServers, adminServer, ...(adminTlsServer ? [adminTlsServer] : [])];
        const nodeClosed = nodeListener.close();
        await Promise.all(servers.map((s) => drain(s, graceMs)));
        nodeListener.destroyAll();
        await nodeClosed;
        await obs.close();
        await store.close();
        await rm(config.admin.socket, { force: true });
        log.info({}, 'svidkit-ca stopped');
      })();
      return closing;
    },
  };
}

/** tryShutdown waits for in-flight calls; past the grace period the rest are cut. */
function drain(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function readUpstream(u: NonNullable<CaConfig['ca']['upstream']>) {
  const read = async (path: string) => {
    try {
      return await readFile(path, 'utf8');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? 'error';
      throw new SvidkitError('ERR_CONFIG', `config: cannot read upstream file ${path} (${code})`, { cause });
    }
  };
  const [certPem, keyPem, bundlePem] = await Promise.all([read(u.certFile), read(u.keyFile), read(u.bundleFile)]);
  return { certPem, keyPem, bundlePem };
}
