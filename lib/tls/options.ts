/**
 * node:tls options built from an X509Source: the SVID as certificate and key, the union of the accepted
 * trust domains' roots as `ca`, and on the client a checkServerIdentity that performs the SPIFFE check.
 */
import { constants } from 'node:crypto';
import * as tls from 'node:tls';
import type { ConnectionOptions, PeerCertificate, SecureVersion, TlsOptions } from 'node:tls';
import type { Authorizer } from '../authorize/index.js';
import { cachesOf } from './peer-cache.js';
import type { X509Source } from '../source/index.js';
import { type VerifiedPeer, verifyPeerCertificate } from './peer.js';
import { type TrustOptions, TrustScope } from './trust.js';

/** Options svidkit owns on both sides; passing any of them in `extra` is a TypeError. */
const OWNED_KEYS = [
  'cert',
  'key',
  'ca',
  'pfx',
  'passphrase',
  'secureContext',
  'rejectUnauthorized',
  'requestCert',
  'checkServerIdentity',
  'session',
  'secureProtocol',
] as const;
type OwnedKey = (typeof OWNED_KEYS)[number];

/** Extra node:tls server options (ciphers, maxVersion, ALPN...); the keys svidkit sets are excluded. */
export type MtlsServerExtra = TrustOptions & Omit<TlsOptions, OwnedKey>;

/** Extra node:tls client options (servername, ALPN...); the keys svidkit sets are excluded. */
export type MtlsClientExtra = TrustOptions & Omit<ConnectionOptions, OwnedKey>;

/** What the server half needs to rebuild its options on rotation and to verify each client. */
export interface ServerBinding {
  readonly source: X509Source;
  readonly authorizer: Authorizer;
  readonly scope: TrustScope;
  readonly tlsExtra: Omit<TlsOptions, OwnedKey>;
}

/** Options objects returned by mtlsServerOptions, with what attachMtls needs to finish the job. */
const serverBindings = new WeakMap<object, ServerBinding>();

/** The binding of an options object from mtlsServerOptions, if it is one. */
export function serverBindingOf(options: object): ServerBinding | undefined {
  return serverBindings.get(options);
}

/** Throws TypeError for a missing source or authorizer: misuse is reported at the call, not at the first handshake. */
export function checkArguments(fn: string, source: unknown, authorizer: unknown): void {
  const s = source as Partial<X509Source> | null | undefined;
  if (typeof s?.getX509Svid !== 'function' || typeof s.getX509BundleForTrustDomain !== 'function') {
    throw new TypeError(`tls: ${fn} needs an X509Source (getX509Svid, getX509BundleForTrustDomain, onUpdate)`);
  }
  if (typeof s.onUpdate !== 'function') throw new TypeError(`tls: ${fn} needs a source with onUpdate`);
  if (typeof authorizer !== 'function') {
    throw new TypeError(`tls: ${fn} needs an authorizer, e.g. authorizeId(...) or authorizeMemberOf(...)`);
  }
}

function splitExtra<E extends TrustOptions>(fn: string, extra: E | undefined): [TrustOptions, Omit<E, 'trustDomains'>] {
  if (extra !== undefined && (typeof extra !== 'object' || extra === null)) {
    throw new TypeError(`tls: ${fn} options must be an object`);
  }
  const { trustDomains, ...rest } = extra ?? ({} as E);
  for (const key of OWNED_KEYS) {
    if (key in rest) throw new TypeError(`tls: ${fn} sets "${key}" itself; it cannot be passed in`);
  }
  return [{ trustDomains }, rest];
}

/** TLS 1.2 at least; a caller may raise the floor to 1.3, never lower it. */
function minVersionOf(fn: string, requested: SecureVersion | undefined): SecureVersion {
  if (requested === undefined || requested === 'TLSv1.2') return 'TLSv1.2';
  if (requested === 'TLSv1.3') return 'TLSv1.3';
  throw new TypeError(`tls: ${fn} does not allow minVersion ${String(requested)}; TLS 1.2 is the lowest`);
}

/** What both sides present and trust: the caller's extras, the TLS floor, the SVID as cert and key, the roots as ca. */
function identityOptions<T extends TlsOptions | ConnectionOptions>(
  fn: string,
  source: X509Source,
  scope: TrustScope,
  tlsExtra: T,
): T {
  const svid = source.getX509Svid();
  return {
    ...tlsExtra,
    minVersion: minVersionOf(fn, tlsExtra.minVersion),
    cert: svid.certificatesPem(),
    key: svid.privateKeyPem(),
    ca: scope.roots().map((c) => c.toPem()),
  };
}

/** Builds the server options for the source's current SVID and roots; throws ERR_SOURCE_NO_SVID or ERR_TLS_NO_TRUSTED_ROOTS. */
export function buildServerOptions(
  source: X509Source,
  scope: TrustScope,
  tlsExtra: Omit<TlsOptions, OwnedKey>,
): TlsOptions {
  return {
    ...identityOptions('mtlsServerOptions', source, scope, tlsExtra),
    requestCert: true,
    rejectUnauthorized: true,
    // A resumed session skips the client's certificate, so there would be no chain to re-check: no tickets.
    // A TLS 1.2 renegotiation could swap the certificate after the check: none either.
    secureOptions: (tlsExtra.secureOptions ?? 0) | constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION,
  };
}

/**
 * Server options for tls.createServer, https.createServer and http2.createSecureServer: the source's
 * SVID (leaf and intermediates as PEM, PKCS#8 key), client certificates required and checked by
 * OpenSSL against the union of the accepted trust domains' roots, TLS 1.2 or later, no session tickets
 * and no renegotiation.
 *
 * This is only the first half. OpenSSL cannot tell which root may vouch for which trust domain, nor run
 * the authorizer: pass the same object to attachMtls(server, options), or use createMtlsServer,
 * createMtlsHttpsServer or createMtlsHttp2Server, which do both.
 *
 * Throws ERR_SOURCE_NO_SVID when the source has no SVID yet, ERR_TLS_NO_TRUSTED_ROOTS when it has no
 * roots for the accepted trust domains, and TypeError for a missing source or authorizer.
 */
export function mtlsServerOptions(source: X509Source, authorizer: Authorizer, extra?: MtlsServerExtra): TlsOptions {
  checkArguments('mtlsServerOptions', source, authorizer);
  const [trust, tlsExtra] = splitExtra('mtlsServerOptions', extra);
  const scope = new TrustScope(source, trust.trustDomains);
  const options = buildServerOptions(source, scope, tlsExtra);
  serverBindings.set(options, { source, authorizer, scope, tlsExtra });
  return options;
}

/** The client options that depend on the source's SVID and roots: everything but checkServerIdentity. */
function clientMaterial(
  source: X509Source,
  scope: TrustScope,
  tlsExtra: Omit<ConnectionOptions, OwnedKey>,
): ConnectionOptions {
  return {
    ...identityOptions('mtlsClientOptions', source, scope, tlsExtra),
    rejectUnauthorized: true,
    // The server's certificate is checked once, so it must not change through a TLS 1.2 renegotiation.
    secureOptions: (tlsExtra.secureOptions ?? 0) | constants.SSL_OP_NO_RENEGOTIATION,
  };
}

/**
 * The SPIFFE checkServerIdentity. SPIFFE authenticates the ID in the URI SAN, not a host name. Node
 * calls this only after OpenSSL's chain check passed and only on full handshakes, which is why these
 * options never carry a session. `onVerified` receives the verified server of this handshake.
 */
export function spiffeServerCheck(
  scope: TrustScope,
  authorizer: Authorizer,
  onVerified?: (peer: VerifiedPeer) => void,
): (hostname: string, cert: PeerCertificate) => Error | undefined {
  return (_hostname, cert) => {
    try {
      const peer = verifyPeerCertificate(cert, scope, authorizer, 'server');
      onVerified?.(peer);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };
}

/** Builds client options for the source's current SVID and roots. */
export function buildClientOptions(
  source: X509Source,
  authorizer: Authorizer,
  scope: TrustScope,
  tlsExtra: Omit<ConnectionOptions, OwnedKey>,
  onVerified?: (peer: VerifiedPeer) => void,
): ConnectionOptions {
  return {
    ...clientMaterial(source, scope, tlsExtra),
    checkServerIdentity: spiffeServerCheck(scope, authorizer, onVerified),
  };
}

/**
 * A key for the secure context built from `scope` and `tlsExtra`, or undefined when an extra option is
 * not a plain value (a Buffer, a function...) and the context is better not shared.
 */
function contextKey(scope: TrustScope, tlsExtra: object): string | undefined {
  // The defaults node:tls fills in when an option is absent; a program may change them.
  const parts: unknown[] = [
    scope.key,
    tls.DEFAULT_CIPHERS,
    tls.DEFAULT_ECDH_CURVE,
    tls.DEFAULT_MIN_VERSION,
    tls.DEFAULT_MAX_VERSION,
  ];
  for (const [name, value] of Object.entries(tlsExtra).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (value === undefined) continue;
    const plain =
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean' ||
      (Array.isArray(value) && value.every((v) => typeof v === 'string'));
    if (!plain) return undefined;
    parts.push(name, value);
  }
  return JSON.stringify(parts);
}

/**
 * Client options like buildClientOptions, plus a `secureContext` created once per source version
 * (and trust scope and extra options) instead of at every tls.connect. The cert, key and ca strings
 * stay in the options (an https.Agent's pool key is made of them); node:tls uses the context.
 */
export function buildClientConnectOptions(
  source: X509Source,
  authorizer: Authorizer,
  scope: TrustScope,
  tlsExtra: Omit<ConnectionOptions, OwnedKey>,
  onVerified?: (peer: VerifiedPeer) => void,
): ConnectionOptions {
  const key = contextKey(scope, tlsExtra);
  const caches = key === undefined ? undefined : cachesOf(source);
  if (caches === undefined) return buildClientOptions(source, authorizer, scope, tlsExtra, onVerified);
  const material = caches.memo(`tls-client ${key!}`, () => {
    const options = clientMaterial(source, scope, tlsExtra);
    // The same options tls.connect would build its context from.
    const secureContext = tls.createSecureContext({ ciphers: tls.DEFAULT_CIPHERS, ...options });
    return Object.freeze({ ...options, secureContext });
  });
  return { ...material, checkServerIdentity: spiffeServerCheck(scope, authorizer, onVerified) };
}

/**
 * Client options for tls.connect, https.request and http2.connect: the source's SVID as client
 * certificate, the accepted roots as `ca`, rejectUnauthorized kept on, and checkServerIdentity replaced
 * by the SPIFFE check (chain against the server's own trust domain bundle, then the authorizer).
 *
 * Node skips checkServerIdentity on resumed sessions, so never add a `session` to these options (an
 * https.Agent caches sessions: use mtlsHttpsAgent). The verified ID is recorded for peerSpiffeId only
 * by connectMtls, mtlsHttpsAgent or a call to verifyTlsPeer on 'secureConnect'.
 */
export function mtlsClientOptions(
  source: X509Source,
  authorizer: Authorizer,
  extra?: MtlsClientExtra,
): ConnectionOptions {
  checkArguments('mtlsClientOptions', source, authorizer);
  const [trust, tlsExtra] = splitExtra('mtlsClientOptions', extra);
  return buildClientOptions(source, authorizer, new TrustScope(source, trust.trustDomains), tlsExtra);
}
