/**
 * SPIFFE mTLS for node:tls, https and http2.
 *
 * Peers are verified in two steps, because OpenSSL (through node:tls) can only check a chain against one
 * flat list of roots:
 *
 * 1. OpenSSL checks the peer's chain against the union of the roots of every accepted trust domain
 *    (`ca`), with rejectUnauthorized kept on. Node refuses unknown issuers, expired certificates and
 *    clients without a certificate before any listener sees the socket.
 * 2. svidkit re-verifies the chain with x509svid.verify against the bundle of the trust domain the peer's
 *    SPIFFE ID names, so a root of trust domain B never vouches for an ID in trust domain A, and then runs
 *    the authorizer. Clients do this in checkServerIdentity (before 'secureConnect'); servers do it in a
 *    'secureConnection' listener that attachMtls puts first and that destroys refused sockets before
 *    any application data is read.
 *
 * The accepted trust domains are `trustDomains` when given, else every bundle of the source's optional
 * `getBundleSet()`, else the source SVID's own trust domain. Sessions are never resumed (a resumption
 * skips the certificates and Node skips checkServerIdentity) and TLS 1.2 renegotiation is off (it
 * could swap a certificate after the check). TLS checks validity with the system clock, so the
 * re-check does too. Servers and agents follow source updates without a restart.
 *
 * ```ts
 * const server = createMtlsHttpsServer(source, authorizeId('spiffe://example.org/ns/demo/sa/client'), (req, res) =>
 *   res.end(`hello ${peerSpiffeId(req)}`),
 * );
 * // or, for a server built by hand: the same options object goes to the server and to attachMtls
 * const options = mtlsServerOptions(source, authorizer);
 * attachMtls(https.createServer(options, app), options);
 * ```
 */
export {
  connectMtls,
  type MtlsAgentOptions,
  type MtlsConnectTarget,
  MtlsHttpsAgent,
  mtlsHttpsAgent,
  verifyTlsPeer,
} from './client.js';
export { type MtlsClientExtra, mtlsClientOptions, type MtlsServerExtra, mtlsServerOptions } from './options.js';
export { type PeerCarrier, type PeerRole, peerSpiffeId, type VerifiedPeer, verifiedPeer } from './peer.js';
export { attachMtls, createMtlsHttp2Server, createMtlsHttpsServer, createMtlsServer } from './server.js';
export type { TrustOptions } from './trust.js';
