/**
 * The plain-HTTP endpoint both daemons expose for Prometheus and for Kubernetes probes.
 *
 * It binds to loopback by default because metrics describe the deployment (agent names, error
 * rates) and nothing on it is authenticated; exposing it is an explicit choice of host. It never
 * reads a request body and bounds how long a client may hold a connection, so a slow or hostile
 * client costs a socket for seconds, not memory. A flood of slow connections cannot lock the
 * probes out: at the connection limit a new connection closes the oldest one that has no request
 * being answered, so the kubelet's fresh connection always gets a slot.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Registry } from './metrics.js';

/** Options of startObservabilityServer. */
export interface ObservabilityServerOptions {
  /** Address to bind; 127.0.0.1 unless given ("0.0.0.0" or "::" to let a scraper in another pod reach it). */
  host?: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Metrics served on /metrics. */
  registry: Registry;
  /** Readiness: true once the daemon can do its job (CA keys loaded, agent holding a valid SVID). */
  ready: () => boolean | Promise<boolean>;
  /** Liveness: false only when a restart would help; always true unless given. */
  live?: () => boolean;
  /** Longest wait for ready() before answering 503; 5000 ms unless given. */
  readyTimeoutMs?: number;
  /** Most simultaneous connections (the oldest idle or incomplete one makes room); 64 unless given. */
  maxConnections?: number;
  /** Told about failures that turned into a 500 or 503 (a throwing ready() or render()), for logging. */
  onError?: (err: unknown) => void;
}

/** A running observability server. */
export interface ObservabilityServer {
  /** The bound port (the chosen one when 0 was asked). */
  readonly port: number;
  /** The bound address. */
  readonly host: string;
  /** Stops listening and closes every open connection, keep-alive ones included. */
  close(): Promise<void>;
}

// Probes and scrapes are tiny requests sent at once; a client slower than this is stuck or hostile.
// The kubelet's probe timeout is 1 s by default, so no real probe comes near these.
const HEADERS_TIMEOUT_MS = 3_000;
const REQUEST_TIMEOUT_MS = 5_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const SOCKET_IDLE_TIMEOUT_MS = 10_000;
// Node checks the two timeouts above only this often (30 s by default, which let them bite late).
const CONNECTIONS_CHECK_INTERVAL_MS = 500;

type Outcome = { status: number; body: string; contentType?: string; headers?: Record<string, string> };

/** Starts the /metrics, /healthz and /readyz server and resolves once it is listening. */
export async function startObservabilityServer(opts: ObservabilityServerOptions): Promise<ObservabilityServer> {
  const host = opts.host ?? '127.0.0.1';
  const { port, registry, ready } = opts;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError('observe: port must be 0..65535');
  if (typeof ready !== 'function') throw new TypeError('observe: ready must be a function');
  const maxConnections = opts.maxConnections ?? 64;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new TypeError('observe: maxConnections must be a positive integer');
  }
  const live = opts.live ?? (() => true);
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5_000;
  const onError = opts.onError ?? (() => {});

  const report = (err: unknown): void => {
    try {
      onError(err);
    } catch {
      // A faulty error callback must not take the endpoint down with it.
    }
  };

  async function checkReady(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A readiness check stuck on a dead dependency must answer "not ready", not hang the probe.
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), readyTimeoutMs);
        timer.unref();
      });
      return (await Promise.race([Promise.resolve().then(ready), timeout])) === true;
    } catch (err) {
      report(err);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async function route(req: IncomingMessage): Promise<Outcome> {
    const path = pathOf(req.url);
    if (path === undefined) return { status: 400, body: 'bad request\n' };
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return { status: 404, body: 'not found\n' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return { status: 405, body: 'method not allowed\n', headers: { allow: 'GET, HEAD' } };
    }
    if (path === '/metrics') {
      try {
        return { status: 200, body: await registry.render(), contentType: registry.contentType };
      } catch (err) {
        report(err);
        return { status: 500, body: 'internal error\n' };
      }
    }
    if (path === '/healthz') {
      let ok = false;
      try {
        ok = live() === true;
      } catch (err) {
        report(err);
      }
      return ok ? { status: 200, body: 'ok\n' } : { status: 503, body: 'not ok\n' };
    }
    return (await checkReady()) ? { status: 200, body: 'ready\n' } : { status: 503, body: 'not ready\n' };
  }

  function send(req: IncomingMessage, res: ServerResponse, o: Outcome): void {
    res.statusCode = o.status;
    res.setHeader('content-type', o.contentType ?? 'text/plain; charset=utf-8');
    res.setHeader('content-length', Buffer.byteLength(o.body));
    // Probe answers go stale in a second; no cache between a probe and the daemon may keep one.
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    for (const [k, v] of Object.entries(o.headers ?? {})) res.setHeader(k, v);
    // A request that carries a body is answered and the connection closed, so the unread body
    // is never drained into this process.
    if (hasBody(req)) res.setHeader('connection', 'close');
    // Node sends no body for HEAD by itself; content-length still tells the size of GET's.
    res.end(o.body);
  }

  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      maxHeaderSize: 8192,
    },
    (req, res) => {
      route(req).then(
        (o) => send(req, res, o),
        (err: unknown) => {
          report(err);
          if (!res.headersSent) send(req, res, { status: 500, body: 'internal error\n' });
          else res.destroy();
        },
      );
    },
  );
  server.maxHeadersCount = 64;
  admitConnections(server, maxConnections);
  server.setTimeout(SOCKET_IDLE_TIMEOUT_MS, (socket) => socket.destroy());
  // Malformed requests get Node's default 400 only if the socket is still writable; otherwise drop it.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onListenError = (err: Error) => reject(err);
    server.once('error', onListenError);
    server.listen({ host, port }, () => {
      server.off('error', onListenError);
      resolve();
    });
  });
  // After startup, errors (e.g. EMFILE on accept) are reported instead of crashing the daemon.
  server.on('error', report);

  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    host: address.address,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // close() alone waits for keep-alive connections to time out; a shutdown should not.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * Keeps at most `limit` connections, oldest first. A connection whose request is being answered is
 * kept; otherwise the oldest (a slow client still sending headers, or a keep-alive one between
 * requests) is closed to make room, so a flood of slow connections costs the attacker its own
 * oldest connections and never the newest one, a probe. Only when every slot is answering a request
 * is the new connection refused. Node's maxConnections would refuse the newest instead.
 */
function admitConnections(server: ReturnType<typeof createServer>, limit: number): void {
  const open = new Set<Socket>();
  const answering = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= limit) {
      let victim: Socket | undefined;
      for (const s of open) {
        if (!answering.has(s)) {
          victim = s;
          break;
        }
      }
      if (victim === undefined) {
        socket.destroy();
        return;
      }
      open.delete(victim);
      victim.destroy();
    }
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      answering.delete(socket);
    });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    answering.add(socket);
    res.once('close', () => answering.delete(socket));
  });
}

/** The path of a request target (origin-form or absolute-form), or undefined when it is not a URL. */
function pathOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url, 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
