/**
 * The Workload API's accepted connections: each is taken from the agent's own net.Server while it is
 * still paused, its kernel credentials are read, and only then is it handed to grpc-js through a
 * connection injector. grpc-js does not tell a handler which socket a call came on, so each socket is
 * given a unique `remoteAddress` (a Unix socket has none), which grpc-js reports as the call's peer;
 * `forCall` maps it back to the connection and its credentials.
 */
import type { Server, Socket } from 'node:net';

/** A call as grpc-js gives it to a handler: only its peer is read. */
export interface CallPeer {
  getPeer(): string;
}

/** One accepted connection and what the kernel said about its caller. */
export interface Connection<C> {
  /** The peer string grpc-js reports for calls on this connection. */
  readonly key: string;
  readonly socket: Socket;
  readonly credentials: C;
}

/** How connections are read, handed over and released. */
export interface ConnectionTableOptions<C> {
  /** Most open connections; one more is closed at once. */
  readonly maxConnections: number;
  /** Reads the caller's credentials from the paused socket; throws when they cannot be read (the connection is closed). */
  readonly credentialsOf: (socket: Socket) => C;
  /** Frees what the credentials hold (a pidfd) when the connection ends. */
  readonly release?: (credentials: C) => void;
  /** Hands the socket to grpc-js (ConnectionInjector.injectConnection). */
  readonly inject: (socket: Socket) => void;
  /** Told of each connection refused at accept, with the reason. */
  readonly onRefused?: (reason: 'too-many' | 'credentials', err?: unknown) => void;
}

const PEER_PREFIX = 'svidkit-workload-api#';

/** The open Workload API connections of one agent, by the peer string grpc-js reports. */
export class ConnectionTable<C> {
  readonly #opts: ConnectionTableOptions<C>;
  readonly #open = new Map<string, Connection<C>>();
  #next = 0;

  constructor(opts: ConnectionTableOptions<C>) {
    this.#opts = opts;
  }

  /** Takes every connection the server accepts (it must have been created with pauseOnConnect). */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    if (this.#open.size >= this.#opts.maxConnections) {
      socket.destroy();
      this.#opts.onRefused?.('too-many');
      return;
    }
    let credentials: C;
    try {
      credentials = this.#opts.credentialsOf(socket);
    } catch (err) {
      socket.destroy();
      this.#opts.onRefused?.('credentials', err);
      return;
    }
    const key = `${PEER_PREFIX}${++this.#next}`;
    // A Unix socket has no remote address; this one is what grpc-js will report as every call's peer.
    Object.defineProperty(socket, 'remoteAddress', { value: key, configurable: true });
    const conn: Connection<C> = { key, socket, credentials };
    this.#open.set(key, conn);
    socket.once('close', () => {
      this.#open.delete(key);
      this.#opts.release?.(credentials);
    });
    // Node's HTTP/2 session reads through the socket's stream: a socket still paused would never be read.
    // The credentials are taken by now, so nothing the caller sends has been looked at before them.
    socket.resume();
    this.#opts.inject(socket);
  }

  /** The connection a call arrived on; undefined when it is gone (or the call did not come through this table). */
  forCall(call: CallPeer): Connection<C> | undefined {
    const peer = call.getPeer();
    return peer.startsWith(PEER_PREFIX) ? this.#open.get(peer) : undefined;
  }

  /** Closes a connection whose caller can no longer be trusted (it changed since it connected). */
  drop(conn: Connection<C>): void {
    conn.socket.destroy();
  }

  /** How many connections are open. */
  get size(): number {
    return this.#open.size;
  }

  /** Closes every connection. */
  closeAll(): void {
    for (const c of [...this.#open.values()]) c.socket.destroy();
  }
}
