/**
 * The second half of server-side mTLS and the server helpers. attachMtls re-verifies every client that
 * OpenSSL let through, against the bundle of the client's own trust domain, runs the authorizer, and
 * destroys refused sockets before any listener reads from them. It also swaps the server's certificate
 * and roots with setSecureContext whenever the source updates.
 */
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Authorizer } from '../authorize/index.js';
import { SvidkitError } from '../errors/index.js';
import type { X509Source } from '../source/index.js';
import { buildServerOptions, type MtlsServerExtra, mtlsServerOptions, serverBindingOf } from './options.js';
import { verifiedPeer, verifySocketPeer } from './peer.js';

const attached = new WeakSet<tls.Server>();

/**
 * Finishes a server built from mtlsServerOptions: pass the very object that call returned.
 *
 * - Every 'secureConnection' is checked first (the listener is prepended): the client chain is verified
 *   against the bundle of the trust domain its SPIFFE ID names, so a root of trust domain B can never
 *   vouch for an ID in trust domain A even though OpenSSL trusted both roots; then the authorizer runs.
 *   A refused socket is destroyed at once, before any application data is read, and the server emits
 *   'tlsClientError' with the SvidkitError (ERR_TLS_PEER_UNTRUSTED, ERR_TLS_PEER_DENIED or
 *   ERR_TLS_NO_PEER_CERTIFICATE) so refusals show up where handshake failures are already logged.
 *   Clients that OpenSSL's own chain check refused (unknown issuer, expired) never reach this step:
 *   Node reports them as 'tlsClientError' ECONNRESET with the reason in socket.authorizationError.
 * - Listeners already registered (those https and http2 install in their constructors) are
 *   re-registered behind the check and never see a refused socket; listeners added later should check
 *   peerSpiffeId(socket) themselves.
 * - On every source update the server gets fresh options through setSecureContext: connections already
 *   open go on, new handshakes use the new SVID and roots. If the update cannot be built (no SVID, no
 *   roots) the previous context stays and a process warning says why. The subscription ends on 'close'.
 */
export function attachMtls<S extends tls.Server>(server: S, options: tls.TlsOptions): S {
  if (!(server instanceof tls.Server)) throw new TypeError('tls: attachMtls needs a tls, https or http2 secure server');
  const binding = typeof options === 'object' && options !== null ? serverBindingOf(options) : undefined;
  if (!binding) {
    throw new TypeError(
      'tls: attachMtls needs the object mtlsServerOptions returned (a copy loses its source and authorizer)',
    );
  }
  if (attached.has(server)) throw new TypeError('tls: attachMtls was already called for this server');
  attached.add(server);

  const gated = server.listeners('secureConnection') as ((socket: tls.TLSSocket) => void)[];
  server.removeAllListeners('secureConnection');
  for (const listener of gated) {
    server.on('secureConnection', function (this: S, socket: tls.TLSSocket) {
      if (verifiedPeer(socket)) listener.call(this, socket);
    });
  }
  server.prependListener('secureConnection', (socket: tls.TLSSocket) => {
    try {
      verifySocketPeer(socket, binding.scope, binding.authorizer, 'client');
    } catch (err) {
      socket.destroy();
      const refusal =
        err instanceof Error ? err : new SvidkitError('ERR_TLS_PEER_UNTRUSTED', 'tls: client refused', { cause: err });
      server.emit('tlsClientError', refusal, socket);
    }
  });

  const unsubscribe = binding.source.onUpdate(() => {
    let fresh: tls.TlsOptions;
    try {
      fresh = buildServerOptions(binding.source, binding.scope, binding.tlsExtra);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      process.emitWarning(`tls: source update not applied, the server keeps its current certificate: ${why}`, {
        code: 'SVIDKIT_TLS_UPDATE',
      });
      return;
    }
    server.setSecureContext(fresh);
  });
  server.once('close', unsubscribe);
  return server;
}

/**
 * A tls.Server that requires SPIFFE client certificates, verifies and authorizes each client, and
 * follows the source's rotations. `handler` sees verified sockets only (peerSpiffeId(socket) is set).
 */
export function createMtlsServer(
  source: X509Source,
  authorizer: Authorizer,
  handler?: (socket: tls.TLSSocket) => void,
  extra?: MtlsServerExtra,
): tls.Server {
  if (handler !== undefined && typeof handler !== 'function') {
    throw new TypeError('tls: createMtlsServer handler must be a function');
  }
  const options = mtlsServerOptions(source, authorizer, extra);
  const server = attachMtls(tls.createServer(options), options);
  if (handler) {
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      if (verifiedPeer(socket)) handler(socket);
    });
  }
  return server;
}

/**
 * An https.Server with SPIFFE mTLS (see attachMtls). Requests on a refused socket never reach
 * `requestListener`; peerSpiffeId(req) gives the client's verified ID.
 */
export function createMtlsHttpsServer(
  source: X509Source,
  authorizer: Authorizer,
  requestListener?: Parameters<typeof https.createServer>[1],
  extra?: MtlsServerExtra & Omit<https.ServerOptions, keyof tls.TlsOptions>,
): https.Server {
  const options = mtlsServerOptions(source, authorizer, extra);
  return attachMtls(
    requestListener ? https.createServer(options, requestListener) : https.createServer(options),
    options,
  );
}

/**
 * An http2 secure server with SPIFFE mTLS (see attachMtls). Streams of refused clients never arrive;
 * peerSpiffeId(stream), peerSpiffeId(stream.session) or peerSpiffeId(req) give the client's ID.
 */
export function createMtlsHttp2Server(
  source: X509Source,
  authorizer: Authorizer,
  onStream?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  extra?: MtlsServerExtra & Omit<http2.SecureServerOptions, keyof tls.TlsOptions>,
): http2.Http2SecureServer {
  if (onStream !== undefined && typeof onStream !== 'function') {
    throw new TypeError('tls: createMtlsHttp2Server onStream must be a function');
  }
  const options = mtlsServerOptions(source, authorizer, extra);
  const server = attachMtls(http2.createSecureServer(options), options);
  if (onStream) server.on('stream', onStream);
  return server;
}
