/**
 * grpc-js with SPIFFE mTLS: server and channel credentials fed by a source through certificate
 * providers (rotation without a restart, and never a certificate paired with another version's key),
 * handler wrappers that authorize the caller's SPIFFE ID per service or method, and a channel check of
 * the server's SPIFFE ID.
 */
import { type DetailedPeerCertificate, type PeerCertificate, TLSSocket } from 'node:tls';
import {
  type ChannelCredentials,
  experimental,
  type ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServerReadableStream,
  type ServerDuplexStream,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Authorizer } from '../authorize/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { type CachedPeer, cachesOf, chainKey, verifyPeerOnce } from '../tls/peer-cache.js';
import { presentedChain, presentedDers } from '../tls/peer.js';
import type { X509Source } from '../source/index.js';
import type { SpiffeId } from '../spiffeid/index.js';
import { Certificate } from '../x509/certificate.js';
import { idFromLeaf, verify } from '../x509svid/index.js';
import { PushCertificateProvider } from './provider.js';

/** Providers kept in step with a source; close() stops following it. */
export interface SourceProviders {
  readonly identity: PushCertificateProvider;
  readonly roots: PushCertificateProvider;
  close(): void;
}

function rootsPem(source: X509Source): string {
  if (!source.getBundleSet) {
    throw new TypeError('grpc: the source must list its trusted bundles (getBundleSet) for gRPC credentials');
  }
  return source
    .getBundleSet()
    .bundles()
    .map((b) => b.x509.toPem())
    .join('');
}

/** Feeds a pair of certificate providers from a source, now and on every update. */
export function providersFromSource(source: X509Source): SourceProviders {
  const identity = new PushCertificateProvider();
  const roots = new PushCertificateProvider();
  const push = () => {
    const svid = source.getX509Svid(); // throws ERR_SOURCE_NO_SVID: no credentials without an SVID
    identity.set({ identity: { certificatePem: svid.certificatesPem(), privateKeyPem: svid.privateKeyPem() } });
    roots.set({ caPem: rootsPem(source) });
  };
  push();
  const off = source.onUpdate(() => {
    try {
      push();
    } catch {
      // A source never drops its last good SVID; an error here leaves the previous material in place.
    }
  });
  return { identity, roots, close: off };
}

/**
 * Checks a peer leaf that OpenSSL has already verified against the union of trusted roots: it must be a
 * valid X509-SVID of a trusted trust domain and, when several trust domains are trusted, chain to a root
 * of its own trust domain's bundle (never another's).
 */
export function verifyPeer(leaf: Certificate, chain: readonly Certificate[], source: X509Source): SpiffeId {
  return verifyPeerPath(leaf, chain, source).id;
}

/**
 * verifyPeer, also giving the certificates the check relied on (their validity bounds a cached result).
 * `intermediates` may be a function: it is called only when the re-check needs them.
 */
function verifyPeerPath(
  leaf: Certificate,
  intermediates: readonly Certificate[] | (() => readonly Certificate[]),
  source: X509Source,
): { id: SpiffeId; path: readonly Certificate[] } {
  const id = idFromLeaf(leaf);
  const set = source.getBundleSet?.();
  if (set && set.size === 1 && set.get(id.trustDomain)) {
    // One trusted trust domain: OpenSSL's chain check ran against exactly this bundle, at this instant.
    return { id, path: [leaf, ...(typeof intermediates === 'function' ? [] : intermediates)] };
  }
  // Several trust domains: re-check against the leaf's own bundle (intermediates must be known here).
  const chain = typeof intermediates === 'function' ? intermediates() : intermediates;
  const verified = verify([leaf, ...chain], source);
  return { id, path: [...verified.chain, ...chain] };
}

/** Server credentials that present the source's SVID and require a client SVID from a trusted bundle. */
export function mtlsServerCredentials(source: X509Source): { credentials: ServerCredentials; close(): void } {
  const p = providersFromSource(source);
  // grpc-js takes the identity provider first here; the client certificate is required.
  const credentials = experimental.createCertificateProviderServerCredentials(p.identity, p.roots, true);
  return { credentials, close: p.close };
}

/**
 * The server's SPIFFE ID and its presented chain (what the authorizer sees), verified once per leaf
 * and source version (see lib/internal/peer-cache.ts); throws when the check fails.
 */
function verifiedServer(cert: PeerCertificate, source: X509Source): CachedPeer | undefined {
  const ders = presentedDers(cert as DetailedPeerCertificate);
  if (ders.length === 0) return undefined;
  return verifyPeerOnce(
    source,
    'grpc-client',
    () => chainKey([ders[0]!]),
    () => {
      const chain = presentedChain(ders);
      const { id, path } = verifyPeerPath(chain[0]!, chain.slice(1), source);
      return { id, chain, path };
    },
  );
}

/** Channel credentials that present the source's SVID and accept only a server the authorizer allows. */
export function mtlsChannelCredentials(
  source: X509Source,
  authorizer: Authorizer,
): { credentials: ChannelCredentials; close(): void } {
  if (typeof authorizer !== 'function') throw new TypeError('grpc: an authorizer is required');
  const p = providersFromSource(source);
  const credentials = experimental.createCertificateProviderChannelCredentials(p.roots, p.identity, {
    // Replaces hostname checks: the server is who its SVID says, and the authorizer decides.
    checkServerIdentity: (_host, cert) => {
      try {
        const server = verifiedServer(cert, source);
        if (!server) return new Error('grpc: the server sent no certificate');
        authorizer(server.id, server.chain);
        return undefined;
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    },
  });
  return { credentials, close: p.close };
}

type AnyCall =
  | ServerUnaryCall<unknown, unknown>
  | ServerWritableStream<unknown, unknown>
  | ServerReadableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;

const peers = new WeakMap<object, SpiffeId>();

/** The caller's verified SPIFFE ID inside a handler wrapped by authorizeService. */
export function callerId(call: object): SpiffeId | undefined {
  return peers.get(call);
}

/**
 * The TLS connection a server call arrived on, found through grpc-js's call objects (not public API:
 * checked against grpc-js 1.14, see test/grpc-mtls.test.ts). Undefined when the shape differs, and
 * callers then fall back to the public getAuthContext(). Node's http2 disables renegotiation on its
 * sockets, so a connection's client certificate never changes. Exported for tests, not from the package.
 */
export function connectionOf(call: object): TLSSocket | undefined {
  let at: unknown = (call as { call?: unknown }).call;
  for (let hops = 0; hops < 16 && typeof at === 'object' && at !== null; hops++) {
    const socket = (at as { stream?: { session?: { socket?: unknown } } }).stream?.session?.socket;
    if (socket !== undefined) return socket instanceof TLSSocket && socket.authorized ? socket : undefined;
    at = (at as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** A connection's verified client, remembered with the source version it was checked against. */
interface ConnectionPeer {
  readonly peer: CachedPeer;
  readonly generation: number;
}

const byConnection = new WeakMap<TLSSocket, ConnectionPeer>();

/**
 * Authenticates a call's peer; throws a gRPC status object. The certificate of a connection is the same
 * for all its calls, so it is parsed and checked once per connection and source version (see
 * lib/internal/peer-cache.ts), not once per call; the validity window is checked on every call.
 */
function authenticate(call: AnyCall, source: X509Source): SpiffeId {
  const caches = cachesOf(source);
  const socket = caches === undefined ? undefined : connectionOf(call);
  if (socket !== undefined) {
    const known = byConnection.get(socket);
    const now = Date.now();
    if (
      known !== undefined &&
      known.generation === caches!.generation &&
      now >= known.peer.validFrom &&
      now <= known.peer.validUntil
    ) {
      return known.peer.id;
    }
  }
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert?.raw) throw { code: status.UNAUTHENTICATED, details: 'a client X.509-SVID is required' };
  const leafDer = cert.raw;
  const generation = caches?.generation;
  let peer: CachedPeer;
  try {
    peer = verifyPeerOnce(
      source,
      'grpc-server',
      () => chainKey([leafDer]),
      () => {
        // The intermediates the client sent, from its TLS connection (grpc-js's auth context has the
        // leaf only); needed when several trust domains are trusted and the leaf is re-checked.
        const connection = socket ?? connectionOf(call);
        const intermediates = () =>
          connection === undefined ? [] : presentedChain(presentedDers(connection.getPeerCertificate(true))).slice(1);
        const { id, path } = verifyPeerPath(Certificate.fromDer(leafDer), intermediates, source);
        return { id, chain: [], path };
      },
    );
  } catch (err) {
    throw {
      code: status.UNAUTHENTICATED,
      details: isSvidkitError(err) ? err.message : 'invalid client certificate',
    };
  }
  // Remembered for the connection only when it was checked against the current source version.
  if (socket !== undefined && generation === caches?.generation)
    byConnection.set(socket, { peer, generation: generation! });
  return peer.id;
}

/**
 * Wraps every handler of a service so that it runs only for callers the authorizer allows (one
 * authorizer for the service, or one per method name); inside, `callerId(call)` gives the caller's ID.
 * Refusals are UNAUTHENTICATED (no or bad SVID) and PERMISSION_DENIED (authorizer).
 */
export function authorizeService<T extends UntypedServiceImplementation>(
  handlers: T,
  source: X509Source,
  authorizer: Authorizer | Readonly<Record<string, Authorizer>>,
): T {
  if (typeof authorizer !== 'function' && (typeof authorizer !== 'object' || authorizer === null)) {
    throw new TypeError('grpc: an authorizer or a map of method names to authorizers is required');
  }
  const out = ownHandlers();
  for (const [method, handler] of Object.entries(handlers)) {
    // Own properties only: an inherited member such as toString or constructor is no authorizer.
    const authz =
      typeof authorizer === 'function'
        ? authorizer
        : Object.hasOwn(authorizer, method)
          ? authorizer[method]
          : undefined;
    if (typeof authz !== 'function') throw new TypeError(`grpc: no authorizer for method ${method}`);
    defineHandler(out, method, (call: AnyCall, callback?: (err: unknown) => void) => {
      try {
        const id = authenticate(call, source);
        try {
          authz(id, []);
        } catch (err) {
          throw { code: status.PERMISSION_DENIED, details: isSvidkitError(err) ? err.message : 'permission denied' };
        }
        peers.set(call, id);
      } catch (statusErr) {
        if (typeof callback === 'function') callback(statusErr);
        else call.emit('error', statusErr);
        return;
      }
      (handler as (c: AnyCall, cb?: (err: unknown) => void) => void)(call, callback);
    });
  }
  return out as T;
}

/**
 * A handler map without a prototype: grpc-js looks each method of the service up by name, so on a
 * plain object a method the caller left out but named like an Object.prototype member (toString,
 * constructor) would be served by that member, without any check. Internal to lib/grpc.
 */
export function ownHandlers(): Record<string, unknown> {
  return Object.create(null) as Record<string, unknown>;
}

/** Adds a handler as an own property, also for a name such as __proto__ that assignment would not create. */
export function defineHandler(out: Record<string, unknown>, method: string, fn: unknown): void {
  Object.defineProperty(out, method, { value: fn, enumerable: true, writable: true, configurable: true });
}

/** A clear error for code that builds credentials before its source has an SVID. */
export function assertSourceReady(source: X509Source): void {
  try {
    source.getX509Svid();
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    throw new SvidkitError('ERR_SOURCE_NO_SVID', 'grpc: the source has no SVID yet');
  }
}
