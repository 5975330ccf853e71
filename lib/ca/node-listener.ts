/**
 * The Node port's TCP and TLS front. svidkit-ca owns this listening socket instead of grpc-js's
 * bindAsync so that it can bound what a peer holds before it has proved anything: grpc-js has no
 * connection limit, no handshake deadline and one message limit for every caller. Here the TLS
 * handshake has a deadline, the port has a connection cap, connections still in their handshake or
 * without a verified client certificate share a small pool (when a new one needs a slot, the oldest
 * of the peer address holding the most is closed), and each finished connection is handed to one of two grpc-js servers: one with the
 * limits of an attested agent, one with the much smaller limits AttestAgent needs.
 */
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { experimental, Server, ServerOptions } from '@grpc/grpc-js';
import { ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from '../observe/index.js';
import type { CaLimits } from './config.js';

/** How long calls on a connection past its maximum age may still run; unary calls have 15 s deadlines. */
const AGE_GRACE_MS = 60_000;
/** The same for a connection without a verified client certificate: AttestAgent takes milliseconds. */
const UNVERIFIED_AGE_GRACE_MS = 5_000;
/** Pings on a verified connection without traffic find a peer that vanished without a FIN. */
const KEEPALIVE_TIME_MS = 5 * 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;
/** nghttp2's own memory per unverified session, in MB (Node's unit): headers, queued frames. */
const UNVERIFIED_SESSION_MEMORY_MB = 4;

/** Which of the two grpc-js servers a connection goes to. */
export type NodeTier = 'verified' | 'unverified';

/** grpc-js options of the server for one tier, from the configured limits. */
export function nodeServerOptions(limits: CaLimits, tier: NodeTier): ServerOptions {
  if (tier === 'verified') {
    return {
      'grpc.max_receive_message_length': limits.maxMessageBytes,
      'grpc.max_send_message_length': limits.maxMessageBytes,
      'grpc.max_concurrent_streams': limits.maxStreams,
      'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
      'grpc.max_connection_age_ms': limits.maxConnectionAgeMs,
      'grpc.max_connection_age_grace_ms': AGE_GRACE_MS,
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    };
  }
  const u = limits.unauthenticated;
  return {
    // grpc-js refuses a message as soon as its 5-byte prefix announces more than this, before buffering it.
    'grpc.max_receive_message_length': Math.min(u.maxMessageBytes, limits.maxMessageBytes),
    'grpc.max_send_message_length': limits.maxMessageBytes,
    'grpc.max_concurrent_streams': u.maxStreams,
    'grpc.max_connection_idle_ms': u.idleTimeoutMs,
    'grpc.max_connection_age_ms': u.maxAgeMs,
    'grpc.max_connection_age_grace_ms': UNVERIFIED_AGE_GRACE_MS,
    'grpc-node.max_session_memory': UNVERIFIED_SESSION_MEMORY_MB,
  };
}

/** Options of listenNode. */
export interface NodeListenerOptions {
  readonly address: string;
  readonly port: number;
  readonly limits: CaLimits;
  /** Serves connections whose client certificate verified against the bundle. */
  readonly verified: Server;
  /** Serves every other connection (attestation, health). */
  readonly unverified: Server;
  /** The CA's serving identity and the roots client certificates are checked against; followed as they change. */
  readonly identity: experimental.CertificateProvider;
  readonly roots: experimental.CertificateProvider;
  readonly log: Logger;
}

/** The listening Node port. */
export interface NodeListener {
  /** The bound port (the chosen one when 0 was asked). */
  readonly port: number;
  /**
   * Stops accepting and drops connections still in their TLS handshake (they have no session to
   * drain); resolves once the last connection has ended, which the grpc-js servers' drain decides.
   */
  close(): Promise<void>;
  /** Destroys every connection still open (past the drain's grace). */
  destroyAll(): void;
}

/** Binds the Node port once the first identity and roots are known; resolves when it listens. */
export async function listenNode(opts: NodeListenerOptions): Promise<NodeListener> {
  const { limits, log } = opts;
  const tls: TlsServer = createServer({
    // Asked for but not required: AttestAgent comes without one. OpenSSL still verifies every
    // certificate presented; socket.authorized carries the result and decides the server below,
    // and every method but AttestAgent demands a verified one (as grpc-js's own credentials did).
    requestCert: true,
    // eslint-disable-next-line no-restricted-syntax -- verification runs; its result picks the tier
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    // Node's deadline starts with the first byte and is not extended by a peer trickling more; a
    // peer that sends nothing at all is caught by the timer set at accept below.
    handshakeTimeout: limits.handshakeTimeoutMs,
  });
  tls.maxConnections = limits.maxConnections;

  let identity: experimental.IdentityCertificateUpdate | null = null;
  let roots: experimental.CaCertificateUpdate | null = null;
  let firstContext!: () => void;
  const haveContext = new Promise<void>((resolve) => (firstContext = resolve));
  const apply = () => {
    if (identity === null || roots === null) return;
    tls.setSecureContext({ cert: identity.certificate, key: identity.privateKey, ca: roots.caCertificate });
    firstContext();
  };
  const onIdentity = (u: experimental.IdentityCertificateUpdate | null) => {
    // A withdrawn identity keeps the last one: the port stays up with the certificate it has.
    if (u === null) return;
    identity = u;
    apply();
  };
  const onRoots = (u: experimental.CaCertificateUpdate | null) => {
    if (u === null) return;
    roots = u;
    apply();
  };
  opts.identity.addIdentityCertificateListener(onIdentity);
  opts.roots.addCaCertificateListener(onRoots);

  const verified = opts.verified.createConnectionInjector(ServerCredentials.createInsecure());
  const unverified = opts.unverified.createConnectionInjector(ServerCredentials.createInsecure());

  // Connections in their handshake or without a verified client certificate, oldest first. The
  // key is the peer's address and port, which name one live TCP connection on this listener.
  const pending = new Map<string, Socket>();
  const secured = new Set<string>();
  const all = new Set<Socket>();
  const keyOf = (s: Socket) => `${s.remoteAddress ?? ''} ${s.remotePort ?? ''}`;
  let evicted = 0;

  tls.on('connection', (raw: Socket) => {
    all.add(raw);
    const key = keyOf(raw);
    pending.set(key, raw);
    const deadline = setTimeout(() => {
      if (!secured.has(key)) raw.destroy();
    }, limits.handshakeTimeoutMs);
    deadline.unref();
    raw.once('close', () => {
      clearTimeout(deadline);
      all.delete(raw);
      secured.delete(key);
      if (pending.get(key) === raw) pending.delete(key);
    });
    if (pending.size > limits.unauthenticated.maxConnections) {
      const [victimKey, victim] = evictionVictim(pending);
      pending.delete(victimKey);
      victim.destroy();
      if (evicted++ % 1000 === 0) {
        log.warn(
          { evicted, limit: limits.unauthenticated.maxConnections },
          'closing unauthenticated connections over the limit',
        );
      }
    }
  });
  tls.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', (err) => log.debug({ err }, 'Node port connection error'));
    secured.add(keyOf(socket));
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      return;
    }
    if (socket.authorized) {
      pending.delete(keyOf(socket));
      verified.injectConnection(socket);
    } else {
      unverified.injectConnection(socket);
    }
  });
  tls.on('tlsClientError', (err) => log.debug({ err }, 'Node port TLS handshake failed'));
  tls.on('drop', () => log.debug({ limit: limits.maxConnections }, 'Node port connection limit reached'));

  await haveContext;
  await new Promise<void>((resolve, reject) => {
    tls.once('error', reject);
    tls.listen({ host: opts.address, port: opts.port }, () => {
      tls.off('error', reject);
      resolve();
    });
  });
  // After startup an accept error (EMFILE) is logged; the listener keeps going.
  tls.on('error', (err) => log.error({ err }, 'Node port listener error'));
  const port = (tls.address() as { port: number }).port;

  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        opts.identity.removeIdentityCertificateListener(onIdentity);
        opts.roots.removeCaCertificateListener(onRoots);
        tls.close(() => resolve());
        for (const [key, s] of pending) if (!secured.has(key)) s.destroy();
      });
      return closing;
    },
    destroyAll() {
      for (const s of all) s.destroy();
    },
  };
}

/**
 * The connection to close when the unauthenticated pool is full: the oldest one of the peer address
 * that holds the most. A flood from one address then closes its own connections, and a handshake
 * from any other address keeps its slot; among equals the oldest goes, so the newest gets the slot.
 */
function evictionVictim(pending: ReadonlyMap<string, Socket>): [string, Socket] {
  const counts = new Map<string, number>();
  let top = '';
  let topCount = 0;
  for (const s of pending.values()) {
    const addr = s.remoteAddress ?? '';
    const n = (counts.get(addr) ?? 0) + 1;
    counts.set(addr, n);
    if (n > topCount) {
      top = addr;
      topCount = n;
    }
  }
  for (const entry of pending) if ((entry[1].remoteAddress ?? '') === top) return entry;
  return pending.entries().next().value as [string, Socket];
}
