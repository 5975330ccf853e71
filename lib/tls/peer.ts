/**
 * The SPIFFE half of peer verification: rebuilds the chain a TLS peer presented, verifies it against
 * the bundle of the trust domain its leaf names, runs the authorizer, and remembers the verified ID
 * per socket so that handlers can ask for it.
 */
import type { Http2ServerRequest, Http2Session, Http2Stream } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import type { Authorizer } from '../authorize/index.js';
import type { X509BundleSource } from '../bundle/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { type CachedPeer, cachesOf, chainKey, type PeerVerification, verifyPeerOnce } from './peer-cache.js';
import type { SpiffeId } from '../spiffeid/index.js';
import { Certificate } from '../x509/certificate.js';
import { MAX_PATH_LENGTH, verify, type VerifiedChain } from '../x509svid/index.js';
import { TrustScope } from './trust.js';

/** A peer that passed svidkit's verification: its SPIFFE ID and the path from its leaf to a bundle root. */
export interface VerifiedPeer {
  readonly id: SpiffeId;
  /** Leaf first, root of the peer's trust domain bundle last. */
  readonly chain: readonly Certificate[];
}

/** Which side the peer is, seen from the verifying end; used in messages only. */
export type PeerRole = 'client' | 'server';

/** Anything peerSpiffeId can find a socket behind. */
export type PeerCarrier = TLSSocket | IncomingMessage | Http2ServerRequest | Http2Stream | Http2Session;

const verified = new WeakMap<object, VerifiedPeer>();
/**
 * The http2 compatibility layer hands out Proxies of the socket (session.socket, req.socket), which are
 * different WeakMap keys. A property read through those Proxies reaches the real socket, so every
 * verified socket carries a hidden reference to itself.
 */
const kSelf = Symbol('svidkit.tls.verifiedSocket');

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The chain as the peer sent it, leaf first, parsed from presentedDers. Node appends the issuer it
 * found in its own CA store; self-issued certificates after the leaf are dropped because
 * trust anchors must come from the peer's trust domain bundle, never from the connection.
 */
export function presentedChain(ders: readonly Buffer[]): Certificate[] {
  const chain: Certificate[] = [];
  for (let i = 0; i < ders.length; i++) {
    const parsed = Certificate.fromDer(ders[i]!);
    if (i === 0 || !parsed.isSelfIssued()) chain.push(parsed);
  }
  return chain;
}

/** The DER of every certificate of the detailed peer certificate, leaf first, in Node's issuer order. */
export function presentedDers(cert: DetailedPeerCertificate): Buffer[] {
  const ders: Buffer[] = [];
  let node: DetailedPeerCertificate | undefined = cert;
  // One node more than a path may hold, so an overlong chain reaches verify() and gets its own error.
  for (let i = 0; node?.raw && i <= MAX_PATH_LENGTH; i++) {
    ders.push(node.raw);
    const next: DetailedPeerCertificate | undefined = node.issuerCertificate;
    if (next === node || next?.raw === undefined || next.raw.equals(node.raw)) break;
    node = next;
  }
  return ders;
}

/**
 * A peer whose leaf (same DER bytes) passed verification before, against the same source version, still
 * inside its path's validity window, and whose trust domain is still in the scope. Entries hold
 * verifications against the source's own bundle of the peer's trust domain; a scope only narrows which
 * trust domains count, which is checked on every hit.
 */
function remembered(leafDer: Uint8Array, bundles: X509BundleSource): CachedPeer | undefined {
  const hit =
    bundles instanceof TrustScope
      ? cachesOf(bundles.source)
          ?.peers('tls')
          .get(chainKey([leafDer]))
      : undefined;
  return hit !== undefined && inScope(hit, bundles) ? hit : undefined;
}

function inScope(peer: CachedPeer, bundles: X509BundleSource): boolean {
  return bundles.getX509BundleForTrustDomain(peer.id.trustDomain) !== undefined;
}

/** Verifies the presented certificates against `bundles`, unless the leaf is remembered (see remembered). */
function verifyPresented(cert: DetailedPeerCertificate, bundles: X509BundleSource): VerifiedChain {
  const ders = presentedDers(cert);
  const check = (): PeerVerification => {
    const { id, chain } = verify(presentedChain(ders), bundles);
    return { id, chain, path: chain };
  };
  if (!(bundles instanceof TrustScope)) return check();
  return verifyPeerOnce(
    bundles.source,
    'tls',
    () => chainKey([ders[0]!]),
    check,
    (hit) => inScope(hit, bundles),
  );
}

/** Runs the authorizer on a verified peer; throws ERR_TLS_PEER_DENIED with the authorizer's error as cause. */
function authorized(id: SpiffeId, chain: readonly Certificate[], authorizer: Authorizer, role: PeerRole): VerifiedPeer {
  try {
    authorizer(id, chain);
  } catch (err) {
    throw new SvidkitError(
      'ERR_TLS_PEER_DENIED',
      `tls: ${role} ${id.toString()} is not authorized: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  return Object.freeze({ id, chain });
}

/**
 * Verifies a peer certificate from node:tls (detailed form, with its issuer links) against the bundle
 * of the peer's own trust domain and runs the authorizer. Throws ERR_TLS_NO_PEER_CERTIFICATE,
 * ERR_TLS_PEER_UNTRUSTED (cause: the x509svid error) or ERR_TLS_PEER_DENIED (cause: the authorizer's).
 */
export function verifyPeerCertificate(
  cert: PeerCertificate | DetailedPeerCertificate | null | undefined,
  bundles: X509BundleSource,
  authorizer: Authorizer,
  role: PeerRole,
): VerifiedPeer {
  if (!cert?.raw) {
    throw new SvidkitError('ERR_TLS_NO_PEER_CERTIFICATE', `tls: the ${role} presented no certificate`);
  }
  let verifiedChain: VerifiedChain;
  try {
    verifiedChain = verifyPresented(cert as DetailedPeerCertificate, bundles);
  } catch (err) {
    if (!isSvidkitError(err)) throw err;
    throw new SvidkitError(
      'ERR_TLS_PEER_UNTRUSTED',
      `tls: ${role} certificate failed SPIFFE verification: ${err.message} (${err.code})`,
      { cause: err },
    );
  }
  return authorized(verifiedChain.id, verifiedChain.chain, authorizer, role);
}

/** Verifies the peer of a connected socket (see verifyPeerCertificate) and records it for peerSpiffeId. */
export function verifySocketPeer(
  socket: TLSSocket,
  bundles: X509BundleSource,
  authorizer: Authorizer,
  role: PeerRole,
): VerifiedPeer {
  // The detailed certificate object costs about ten times the leaf alone (Node converts every
  // certificate of the chain to an object), so a remembered leaf skips it. Not getPeerX509Certificate:
  // in Node 20 its first call consumes the peer chain, and every later getPeerCertificate(true) (ours
  // or the application's) would see the leaf alone.
  const leaf = socket.getPeerCertificate();
  const hit = leaf?.raw === undefined ? undefined : remembered(leaf.raw, bundles);
  if (hit !== undefined) return recordPeer(socket, authorized(hit.id, hit.chain, authorizer, role));
  // Node reports a missing certificate as an empty object, and a closed socket as null.
  return recordPeer(socket, verifyPeerCertificate(socket.getPeerCertificate(true), bundles, authorizer, role));
}

/**
 * Records a peer verified during this socket's own handshake (the client's checkServerIdentity) for
 * peerSpiffeId, without verifying it a second time.
 */
export function recordPeer(socket: TLSSocket, peer: VerifiedPeer): VerifiedPeer {
  verified.set(socket, peer);
  if (!Object.prototype.hasOwnProperty.call(socket, kSelf)) {
    Object.defineProperty(socket, kSelf, { value: socket, enumerable: false, writable: false, configurable: false });
  }
  return peer;
}

function lookup(candidate: unknown): VerifiedPeer | undefined {
  if (typeof candidate !== 'object' || candidate === null) return undefined;
  const direct = verified.get(candidate);
  if (direct) return direct;
  const self: unknown = (candidate as { [kSelf]?: unknown })[kSelf];
  return typeof self === 'object' && self !== null ? verified.get(self) : undefined;
}

/** Reads a property, treating the throwing getters of closed http2 objects as absent. */
function prop(obj: unknown, name: string): unknown {
  if (typeof obj !== 'object' || obj === null) return undefined;
  try {
    return (obj as Record<string, unknown>)[name];
  } catch {
    return undefined;
  }
}

/** The verified peer of a socket, request, http2 stream or session; undefined when svidkit did not verify it. */
export function verifiedPeer(from: PeerCarrier): VerifiedPeer | undefined {
  const candidates = [
    () => from, // TLSSocket
    () => prop(from, 'socket'), // IncomingMessage, Http2ServerRequest, Http2Session
    () => prop(prop(from, 'session'), 'socket'), // Http2Stream
    () => prop(prop(prop(from, 'stream'), 'session'), 'socket'), // Http2ServerRequest, by its stream
  ];
  for (const get of candidates) {
    let peer: VerifiedPeer | undefined;
    try {
      peer = lookup(get());
    } catch {
      peer = undefined; // a Proxy whose session has lost its socket throws on every read
    }
    if (peer) return peer;
  }
  return undefined;
}

/** The verified SPIFFE ID of the peer behind a TLS socket, http request, http2 request, stream or session. */
export function peerSpiffeId(from: PeerCarrier): SpiffeId | undefined {
  return verifiedPeer(from)?.id;
}
