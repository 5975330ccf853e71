/**
 * Client-side mTLS: a promise-returning connect that resolves only with a verified socket, an
 * https.Agent that follows the source's rotations, and verifyTlsPeer for sockets made by hand.
 */
import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import type { Authorizer } from '../authorize/index.js';
import { SvidkitError } from '../errors/index.js';
import type { X509Source } from '../source/index.js';
import {
  buildClientConnectOptions,
  buildClientOptions,
  checkArguments,
  type MtlsClientExtra,
  spiffeServerCheck,
} from './options.js';
import { type PeerRole, recordPeer, type VerifiedPeer, verifySocketPeer } from './peer.js';
import { type TrustOptions, TrustScope } from './trust.js';

/**
 * Verifies the peer of a connected TLSSocket with svidkit's SPIFFE check and records it for
 * peerSpiffeId; for sockets opened by hand, e.g. with tls.connect(mtlsClientOptions(...)) on
 * 'secureConnect'. `peer` says which side the peer is (default 'server', for client sockets).
 * Throws ERR_TLS_NO_PEER_CERTIFICATE, ERR_TLS_PEER_UNTRUSTED or ERR_TLS_PEER_DENIED.
 */
export function verifyTlsPeer(
  socket: tls.TLSSocket,
  source: X509Source,
  authorizer: Authorizer,
  options: TrustOptions & { readonly peer?: PeerRole } = {},
): VerifiedPeer {
  checkArguments('verifyTlsPeer', source, authorizer);
  return verifySocketPeer(socket, new TrustScope(source, options.trustDomains), authorizer, options.peer ?? 'server');
}

/** Where connectMtls connects, with optional extra client options. */
export interface MtlsConnectTarget extends MtlsClientExtra {
  readonly port: number;
  /** Default 'localhost'. */
  readonly host?: string;
}

/** Gives a connection failure a code that says which step failed; our own refusals pass through. */
function connectError(err: unknown, socket: tls.TLSSocket, where: string, tcpUp: boolean): SvidkitError {
  if (err instanceof SvidkitError) return err;
  const e: Error & { code?: unknown } = err instanceof Error ? err : new Error(String(err));
  const detail = typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message;
  if (socket.authorizationError) {
    // OpenSSL's chain check against the union of roots failed (unknown issuer, expired, ...).
    return new SvidkitError('ERR_TLS_PEER_UNTRUSTED', `tls: server certificate of ${where} refused: ${detail}`, {
      cause: e,
    });
  }
  if (tcpUp) {
    return new SvidkitError('ERR_TLS_HANDSHAKE', `tls: TLS handshake with ${where} failed: ${detail}`, { cause: e });
  }
  return new SvidkitError('ERR_TLS_CONNECT', `tls: cannot connect to ${where}: ${detail}`, { cause: e });
}

/**
 * After a client handshake: records the server that this handshake's checkServerIdentity verified and
 * authorized. A resumed session (never offered: these options carry none) skips that check, and so
 * does any path that did not record one, so the server is verified here instead.
 */
function settleServer(
  socket: tls.TLSSocket,
  checked: VerifiedPeer | undefined,
  scope: TrustScope,
  authorizer: Authorizer,
): void {
  if (checked !== undefined && !socket.isSessionReused()) recordPeer(socket, checked);
  else verifySocketPeer(socket, scope, authorizer, 'server');
}

/**
 * Connects with the source's SVID and resolves with a TLSSocket whose server passed the SPIFFE check
 * and the authorizer (peerSpiffeId(socket) is set). Rejects with ERR_TLS_CONNECT (no TCP connection),
 * ERR_TLS_HANDSHAKE (TLS failed, e.g. the server sent an alert), ERR_TLS_PEER_UNTRUSTED (the server's
 * chain failed OpenSSL's or svidkit's check) or ERR_TLS_PEER_DENIED (the authorizer refused the server).
 *
 * With TLS 1.3 the server judges the client's certificate after the client's handshake has finished,
 * so a server that refuses this client closes the connection (or sends an alert) after the promise
 * resolved: keep an 'error' listener on the socket.
 */
export function connectMtls(
  source: X509Source,
  authorizer: Authorizer,
  target: MtlsConnectTarget,
): Promise<tls.TLSSocket> {
  checkArguments('connectMtls', source, authorizer);
  if (typeof target !== 'object' || target === null || !Number.isInteger(target.port)) {
    throw new TypeError('tls: connectMtls needs { host, port } with an integer port');
  }
  const { host = 'localhost', port, trustDomains, ...tlsExtra } = target;
  const scope = new TrustScope(source, trustDomains);
  // The server this handshake's checkServerIdentity verified (these options serve one connection).
  let checked: VerifiedPeer | undefined;
  const options = buildClientConnectOptions(source, authorizer, scope, tlsExtra, (peer) => {
    checked = peer;
  });
  const where = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...options, host, port });
    let tcpUp = false;
    socket.once('connect', () => {
      tcpUp = true;
    });
    const onError = (err: unknown) => {
      socket.destroy();
      reject(connectError(err, socket, where, tcpUp));
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.removeListener('error', onError);
      try {
        settleServer(socket, checked, scope, authorizer);
      } catch (err) {
        socket.destroy();
        reject(connectError(err, socket, where, true));
        return;
      }
      resolve(socket);
    });
  });
}

/** Options of mtlsHttpsAgent: https.Agent options (keepAlive, maxSockets...) and the accepted trust domains. */
export type MtlsAgentOptions = TrustOptions &
  Omit<https.AgentOptions, 'cert' | 'key' | 'ca' | 'pfx' | 'passphrase' | 'rejectUnauthorized' | 'checkServerIdentity'>;

/** An https.Agent whose TLS options come from an X509Source; see mtlsHttpsAgent. */
export class MtlsHttpsAgent extends https.Agent {
  readonly #scope: TrustScope;
  readonly #authorizer: Authorizer;
  readonly #unsubscribe: () => void;

  /** Prefer mtlsHttpsAgent(source, authorizer, options). */
  constructor(source: X509Source, authorizer: Authorizer, options: MtlsAgentOptions = {}) {
    checkArguments('mtlsHttpsAgent', source, authorizer);
    const { trustDomains, ...agentOptions } = options;
    for (const key of ['cert', 'key', 'ca', 'pfx', 'passphrase', 'rejectUnauthorized', 'checkServerIdentity']) {
      if (key in agentOptions) throw new TypeError(`tls: mtlsHttpsAgent sets "${key}" itself; it cannot be passed in`);
    }
    const scope = new TrustScope(source, trustDomains);
    // A cached session would be resumed without checkServerIdentity, so the agent keeps none.
    super({ ...agentOptions, ...buildClientOptions(source, authorizer, scope, {}), maxCachedSessions: 0 });
    this.#scope = scope;
    this.#authorizer = authorizer;
    this.#unsubscribe = source.onUpdate(() => {
      try {
        // The pool key includes cert, key and ca, so new requests get new connections; open ones go on.
        Object.assign(this.options, buildClientOptions(source, authorizer, scope, {}));
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        process.emitWarning(`tls: source update not applied, the agent keeps its current certificate: ${why}`, {
          code: 'SVIDKIT_TLS_UPDATE',
        });
      }
    });
  }

  /** Opens the TLS connection and records the verified server ID once the handshake is done. */
  override createConnection(
    options: https.RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    // The same SPIFFE check as the agent's options, but recording the server it verified for this
    // connection, so that 'secureConnect' need not verify it again.
    let checked: VerifiedPeer | undefined;
    const perConnection = {
      ...options,
      checkServerIdentity: spiffeServerCheck(this.#scope, this.#authorizer, (peer) => {
        checked = peer;
      }),
    };
    const socket = super.createConnection(perConnection, callback);
    if (socket instanceof tls.TLSSocket) {
      socket.once('secureConnect', () => {
        try {
          settleServer(socket, checked, this.#scope, this.#authorizer);
        } catch (err) {
          socket.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      });
    }
    return socket;
  }

  /** Closes the pooled sockets and stops following the source. */
  override destroy(): void {
    this.#unsubscribe();
    super.destroy();
  }
}

/**
 * An https.Agent for SPIFFE mTLS requests: client certificate and roots from the source (fresh options
 * for new connections after every update), the server checked by mtlsClientOptions' SPIFFE
 * checkServerIdentity, no TLS session cache, and peerSpiffeId(res.socket) set. Call destroy() when done.
 */
export function mtlsHttpsAgent(source: X509Source, authorizer: Authorizer, options?: MtlsAgentOptions): MtlsHttpsAgent {
  return new MtlsHttpsAgent(source, authorizer, options);
}
