/**
 * Plain words for the errors a TLS connection attempt ends with: socket errno codes, the TLS alerts a
 * peer sends (as Node names them, ERR_SSL_TLSV1_ALERT_UNKNOWN_CA, or by their number), OpenSSL's
 * certificate verification codes and svidkit's own refusals. Nothing here quotes OpenSSL's raw
 * message lines, which carry addresses and source file names but no meaning for a reader.
 */
import { SvidkitError } from '../errors/index.js';

/** Which step of a connection an error belongs to. */
export type FailureStage =
  /** No TCP connection (refused, unresolvable, unreachable, timed out). */
  | 'connect'
  /** TCP is up but no usable TLS session came of it (not TLS, no common version, aborted). */
  | 'tls'
  /** The peer judged our certificate and refused it (or wanted one and got none). */
  | 'peer-refused-us'
  /** We judged the peer's certificate and refused it. */
  | 'we-refused-peer';

/** An error, explained. */
export interface Explanation {
  readonly stage: FailureStage;
  /** The code the explanation was chosen by (errno, Node or OpenSSL code), for reports and searches. */
  readonly code: string;
  /** The TLS alert number, when the peer sent an alert. */
  readonly alert?: number;
  /** What happened, in one line. */
  readonly text: string;
  /** What to do about it. */
  readonly fix: string;
}

/** What the explanation may mention about the attempt. */
export interface ExplainContext {
  /** host:port. */
  readonly address: string;
  /** Whether we sent a client certificate. */
  readonly sentCertificate: boolean;
  /** Our SPIFFE ID, when known. */
  readonly ourId?: string;
  /** The trust domain of our SVID, when known. */
  readonly ourTrustDomain?: string;
}

interface AlertInfo {
  readonly name: string;
  readonly stage: FailureStage;
  readonly text: (ctx: ExplainContext) => string;
  readonly fix: (ctx: ExplainContext) => string;
}

const ourRoot = (ctx: ExplainContext): string =>
  ctx.ourTrustDomain ? `the root of trust domain "${ctx.ourTrustDomain}"` : 'the root that issued our SVID';
const ours = (ctx: ExplainContext): string => ctx.ourId ?? 'our SVID';

const REFUSED_FIX = (ctx: ExplainContext): string =>
  `the peer's log says why; make sure it trusts ${ourRoot(ctx)} and that its policy allows ${ours(ctx)}`;

/** TLS alerts (RFC 8446 section 6, RFC 5246 section 7.2) a peer may send, by number. */
const ALERTS: ReadonlyMap<number, AlertInfo> = new Map<number, AlertInfo>([
  [
    10,
    {
      name: 'unexpected message',
      stage: 'tls',
      text: () => 'the peer received a TLS message it did not expect (alert 10, unexpected message)',
      fix: () => 'a proxy or load balancer between us and the peer may be altering the TLS stream',
    },
  ],
  [
    20,
    {
      name: 'bad record MAC',
      stage: 'tls',
      text: () => 'the peer could not authenticate our TLS records (alert 20, bad record MAC)',
      fix: () => 'something between us and the peer alters the traffic; check proxies and middleboxes',
    },
  ],
  [
    40,
    {
      name: 'handshake failure',
      stage: 'tls',
      text: (ctx) =>
        ctx.sentCertificate
          ? 'the peer aborted the handshake (alert 40, handshake failure): no cipher suite, signature algorithm or key type in common'
          : 'the peer aborted the handshake (alert 40, handshake failure): over TLS 1.2 this is how a peer says it requires a client certificate, and we had none to send',
      fix: (ctx) =>
        ctx.sentCertificate
          ? "compare the peer's TLS settings (minimum version, cipher suites, accepted key types) with our key type"
          : 'fix the local checks above so that these files give a usable client certificate',
    },
  ],
  [
    42,
    {
      name: 'bad certificate',
      stage: 'peer-refused-us',
      text: () =>
        'the peer refused our certificate (alert 42, bad certificate); Go and Envoy peers send this for an untrusted issuer as well as for a refused SPIFFE ID',
      fix: REFUSED_FIX,
    },
  ],
  [
    43,
    {
      name: 'unsupported certificate',
      stage: 'peer-refused-us',
      text: () => 'the peer cannot use our certificate (alert 43, unsupported certificate): its key type or usage',
      fix: () => "compare our key type and key usage with what the peer's TLS stack accepts",
    },
  ],
  [
    44,
    {
      name: 'certificate revoked',
      stage: 'peer-refused-us',
      text: () => 'the peer says our certificate is revoked (alert 44, certificate revoked)',
      fix: () => 'get a new SVID from the issuer',
    },
  ],
  [
    45,
    {
      name: 'certificate expired',
      stage: 'peer-refused-us',
      text: () => 'the peer says our certificate has expired (alert 45, certificate expired)',
      fix: () => "renew the SVID; if it is valid by our clock, the peer's clock is wrong",
    },
  ],
  [
    46,
    {
      name: 'certificate unknown',
      stage: 'peer-refused-us',
      text: () => 'the peer refused our certificate (alert 46, certificate unknown)',
      fix: REFUSED_FIX,
    },
  ],
  [
    47,
    {
      name: 'illegal parameter',
      stage: 'tls',
      text: () => 'the peer found a bad value in our handshake (alert 47, illegal parameter)',
      fix: () => 'a TLS stack incompatibility or a proxy in between; compare TLS versions and settings',
    },
  ],
  [
    48,
    {
      name: 'unknown CA',
      stage: 'peer-refused-us',
      text: (ctx) =>
        `the peer does not trust our bundle: it refused our certificate with alert 48 (unknown CA), so ${ourRoot(ctx)} is not among its trusted roots`,
      fix: (ctx) =>
        `give the peer the bundle of ${ctx.ourTrustDomain ? `"${ctx.ourTrustDomain}"` : 'our trust domain'} (or federate the two trust domains)`,
    },
  ],
  [
    49,
    {
      name: 'access denied',
      stage: 'peer-refused-us',
      text: (ctx) =>
        `the peer verified our certificate and then refused ${ours(ctx)} (alert 49, access denied): its authorization policy does not allow us`,
      fix: (ctx) => `allow ${ours(ctx)} in the peer's authorization policy`,
    },
  ],
  [
    50,
    {
      name: 'decode error',
      stage: 'tls',
      text: () => 'the peer could not decode our handshake (alert 50, decode error)',
      fix: () => 'a TLS stack incompatibility or a proxy in between',
    },
  ],
  [
    51,
    {
      name: 'decrypt error',
      stage: 'peer-refused-us',
      text: () =>
        'the peer could not verify our handshake signature (alert 51, decrypt error): our key does not match the certificate as the peer sees it',
      fix: () => 'make sure the peer receives the same certificate and key as these files; check for proxies',
    },
  ],
  [
    70,
    {
      name: 'protocol version',
      stage: 'tls',
      text: () => 'no TLS version in common (alert 70, protocol version); we offer TLS 1.2 and 1.3',
      fix: () => 'the peer only speaks an older TLS version: upgrade it to TLS 1.2 or later',
    },
  ],
  [
    71,
    {
      name: 'insufficient security',
      stage: 'tls',
      text: () => 'the peer wants stronger cipher suites than we offer (alert 71, insufficient security)',
      fix: () => "compare the peer's cipher suite settings with ours",
    },
  ],
  [
    80,
    {
      name: 'internal error',
      stage: 'tls',
      text: () => 'the peer failed internally during the handshake (alert 80, internal error)',
      fix: () => "check the peer's log; it may lack its own certificate or key",
    },
  ],
  [
    90,
    {
      name: 'user canceled',
      stage: 'tls',
      text: () => 'the peer canceled the handshake (alert 90, user canceled)',
      fix: () => "check the peer's log",
    },
  ],
  [
    109,
    {
      name: 'missing extension',
      stage: 'tls',
      text: () => 'the peer wanted a TLS extension we did not send (alert 109, missing extension)',
      fix: () => "compare the peer's TLS settings with ours",
    },
  ],
  [
    110,
    {
      name: 'unsupported extension',
      stage: 'tls',
      text: () => 'the peer refused a TLS extension we sent (alert 110, unsupported extension)',
      fix: () => "compare the peer's TLS settings with ours",
    },
  ],
  [
    112,
    {
      name: 'unrecognized name',
      stage: 'tls',
      text: () => 'the peer does not serve the host name we asked for in SNI (alert 112, unrecognized name)',
      fix: () => 'connect with the host name the peer serves (a name routed by the proxy), not its IP address',
    },
  ],
  [
    116,
    {
      name: 'certificate required',
      stage: 'peer-refused-us',
      text: (ctx) =>
        ctx.sentCertificate
          ? 'the peer requires a client certificate and did not accept ours (alert 116, certificate required)'
          : 'the peer requires a client certificate (alert 116, certificate required), and these files give none that can be sent',
      fix: (ctx) =>
        ctx.sentCertificate
          ? REFUSED_FIX(ctx)
          : 'fix the local checks above so that these files give a usable client certificate',
    },
  ],
  [
    120,
    {
      name: 'no application protocol',
      stage: 'tls',
      text: () =>
        'the peer wants an application protocol (ALPN) we did not offer (alert 120, no application protocol); we offer h2 and http/1.1',
      fix: () => 'the certificates are not the problem; the peer expects another protocol on this port',
    },
  ],
]);

/** Node's names for alerts: `ERR_SSL_<prefix>_ALERT_<NAME>` (and one without ALERT), by number. */
const ALERT_CODE_NAMES: ReadonlyMap<string, number> = new Map([
  ['UNEXPECTED_MESSAGE', 10],
  ['BAD_RECORD_MAC', 20],
  ['HANDSHAKE_FAILURE', 40],
  ['BAD_CERTIFICATE', 42],
  ['UNSUPPORTED_CERTIFICATE', 43],
  ['CERTIFICATE_REVOKED', 44],
  ['CERTIFICATE_EXPIRED', 45],
  ['CERTIFICATE_UNKNOWN', 46],
  ['ILLEGAL_PARAMETER', 47],
  ['UNKNOWN_CA', 48],
  ['ACCESS_DENIED', 49],
  ['DECODE_ERROR', 50],
  ['DECRYPT_ERROR', 51],
  ['PROTOCOL_VERSION', 70],
  ['INSUFFICIENT_SECURITY', 71],
  ['INTERNAL_ERROR', 80],
  ['USER_CANCELLED', 90],
  ['MISSING_EXTENSION', 109],
  ['UNSUPPORTED_EXTENSION', 110],
  ['UNRECOGNIZED_NAME', 112],
  ['CERTIFICATE_REQUIRED', 116],
  ['NO_APPLICATION_PROTOCOL', 120],
]);

/**
 * The TLS alert number an error reports, from OpenSSL's "SSL alert number N" or from Node's code
 * (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA, ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE, ERR_SSL_TLSV1_UNRECOGNIZED_NAME).
 */
export function alertOf(code: string | undefined, message: string | undefined): number | undefined {
  const m = message === undefined ? null : /SSL alert number (\d{1,3})/.exec(message);
  if (m) return Number(m[1]);
  const c = code === undefined ? null : /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_(?:ALERT_)?([A-Z_]+)$/.exec(code);
  return c ? ALERT_CODE_NAMES.get(c[1]!) : undefined;
}

interface Known {
  readonly stage: FailureStage;
  readonly text: (ctx: ExplainContext) => string;
  readonly fix: (ctx: ExplainContext) => string;
}

const NOT_TLS: Known = {
  stage: 'tls',
  text: (ctx) =>
    `the peer at ${ctx.address} does not speak TLS: it answered our ClientHello with something else (plain HTTP, or another protocol)`,
  fix: () =>
    'connect to the port where the peer serves mTLS; in a mesh, a sidecar may already terminate TLS on this port',
};

const UNTRUSTED_ISSUER: Known = {
  stage: 'we-refused-peer',
  text: () => "the peer's certificate was not issued by a root in our bundle",
  fix: () =>
    "if the peer is in another trust domain, add that trust domain's bundle (federation); if it is in ours, its CA is not in our bundle (a rotated or different root)",
};

/** Socket errno codes, OpenSSL verification codes and Node's SSL codes that are not alerts. */
const KNOWN: ReadonlyMap<string, Known> = new Map<string, Known>([
  [
    'ECONNREFUSED',
    {
      stage: 'connect',
      text: (ctx) => `connection refused: nothing listens on ${ctx.address} (or a firewall rejects the connection)`,
      fix: () => 'check the host and port, and that the peer is running (in Kubernetes: the Service targetPort)',
    },
  ],
  [
    'ENOTFOUND',
    {
      stage: 'connect',
      text: (ctx) => `the host name of ${ctx.address} does not resolve`,
      fix: () => 'check the spelling and the DNS configuration (in Kubernetes: the Service name and namespace)',
    },
  ],
  [
    'EAI_AGAIN',
    {
      stage: 'connect',
      text: (ctx) => `the host name of ${ctx.address} could not be resolved now (temporary DNS failure)`,
      fix: () => 'check the DNS server this machine uses, then try again',
    },
  ],
  [
    'EHOSTUNREACH',
    {
      stage: 'connect',
      text: (ctx) => `no route to the host of ${ctx.address}`,
      fix: () => 'check the address, routing and network policies',
    },
  ],
  [
    'ENETUNREACH',
    {
      stage: 'connect',
      text: (ctx) => `the network of ${ctx.address} is unreachable from this machine`,
      fix: () => 'check the address, routing and network policies',
    },
  ],
  [
    'ETIMEDOUT',
    {
      stage: 'connect',
      text: (ctx) => `the TCP connection to ${ctx.address} timed out`,
      fix: () => 'a firewall or network policy may drop the packets; check the address and the path to it',
    },
  ],
  [
    'EADDRNOTAVAIL',
    {
      stage: 'connect',
      text: (ctx) => `the address of ${ctx.address} cannot be used from this machine`,
      fix: () => 'check the address',
    },
  ],
  [
    'ECONNRESET',
    {
      stage: 'tls',
      text: () =>
        'the peer closed the connection during the TLS handshake without an alert: it may not speak TLS on this port, or it refused our certificate (Node.js peers refuse certificates this way)',
      fix: REFUSED_FIX,
    },
  ],
  [
    'EPIPE',
    {
      stage: 'tls',
      text: () => 'the peer closed the connection while we were still sending the handshake',
      fix: REFUSED_FIX,
    },
  ],
  ['ERR_SSL_WRONG_VERSION_NUMBER', NOT_TLS],
  ['ERR_SSL_PACKET_LENGTH_TOO_LONG', NOT_TLS],
  ['ERR_SSL_UNKNOWN_PROTOCOL', NOT_TLS],
  ['ERR_SSL_HTTP_REQUEST', NOT_TLS],
  ['ERR_SSL_RECORD_LAYER_FAILURE', NOT_TLS],
  [
    'ERR_SSL_UNSUPPORTED_PROTOCOL',
    {
      stage: 'tls',
      text: () => 'no TLS version in common; we offer TLS 1.2 and 1.3',
      fix: () => 'the peer only speaks an older TLS version: upgrade it to TLS 1.2 or later',
    },
  ],
  [
    'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
    {
      stage: 'tls',
      text: () => 'no TLS version in common; we offer TLS 1.2 and 1.3',
      fix: () => 'the peer only speaks an older TLS version: upgrade it to TLS 1.2 or later',
    },
  ],
  [
    'ERR_SSL_DH_KEY_TOO_SMALL',
    {
      stage: 'tls',
      text: () => "the peer's Diffie-Hellman key is too small for this machine's OpenSSL",
      fix: () => 'configure the peer with stronger key exchange parameters',
    },
  ],
  [
    'ERR_SSL_EE_KEY_TOO_SMALL',
    {
      stage: 'tls',
      text: () => "the peer's certificate key is too small for this machine's OpenSSL security level",
      fix: () => 'issue the peer a certificate with a stronger key (RSA 2048 or more, or EC P-256)',
    },
  ],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', UNTRUSTED_ISSUER],
  ['UNABLE_TO_GET_ISSUER_CERT', UNTRUSTED_ISSUER],
  [
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    {
      stage: 'we-refused-peer',
      text: () => 'the peer sent only its leaf certificate, and its issuer is not a root in our bundle',
      fix: UNTRUSTED_ISSUER.fix,
    },
  ],
  [
    'SELF_SIGNED_CERT_IN_CHAIN',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's chain ends at a root that is not in our bundle",
      fix: UNTRUSTED_ISSUER.fix,
    },
  ],
  [
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    {
      stage: 'we-refused-peer',
      text: () => 'the peer presents a self-signed certificate, not an SVID issued by a root in our bundle',
      fix: () => 'the peer is not using its SVID: check its certificate configuration',
    },
  ],
  [
    'CERT_HAS_EXPIRED',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's certificate (or a CA certificate in its chain) has expired",
      fix: () => "the peer's SVID is not being renewed: check its agent; or this machine's clock is wrong",
    },
  ],
  [
    'CERT_NOT_YET_VALID',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's certificate is not valid yet by this machine's clock",
      fix: () => "this machine's clock is behind (or the peer's issuer's clock is ahead): sync the clocks (NTP)",
    },
  ],
  [
    'CERT_SIGNATURE_FAILURE',
    {
      stage: 'we-refused-peer',
      text: () => "a signature in the peer's chain does not verify",
      fix: () => "the peer's chain is broken or forged: check its certificate files",
    },
  ],
  [
    'INVALID_CA',
    {
      stage: 'we-refused-peer',
      text: () => "a certificate in the peer's chain signs others but is not a CA",
      fix: () => "the peer's chain is wrong: check the intermediates it sends",
    },
  ],
  [
    'PATH_LENGTH_EXCEEDED',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's chain is longer than a CA in it allows",
      fix: () => "check the peer's intermediates",
    },
  ],
  [
    'INVALID_PURPOSE',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's certificate may not be used by a TLS server (extended key usage)",
      fix: () => 'SVIDs need both serverAuth and clientAuth (or no extended key usage at all)',
    },
  ],
  [
    'CERT_REVOKED',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's certificate is revoked",
      fix: () => 'the peer needs a new SVID',
    },
  ],
  [
    'CERT_CHAIN_TOO_LONG',
    {
      stage: 'we-refused-peer',
      text: () => "the peer's chain is too long",
      fix: () => "check the peer's intermediates",
    },
  ],
]);

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(err: unknown): string | undefined {
  return err instanceof Error ? err.message : undefined;
}

/** Errors from the innermost cause out, at most a few levels. */
function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    chain.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return chain.reverse();
}

/**
 * Explains why a connection attempt failed: `err` as connectMtls rejects (a SvidkitError whose cause is
 * Node's error) or as a socket emits it. The innermost code that is known wins.
 */
export function explainFailure(err: unknown, ctx: ExplainContext): Explanation {
  for (const e of causeChain(err)) {
    const code = codeOf(e);
    const alert = alertOf(code, messageOf(e));
    const a = alert === undefined ? undefined : ALERTS.get(alert);
    if (alert !== undefined) {
      // Over TLS 1.2 a peer that wants a client certificate and gets none says "handshake failure".
      const stage = alert === 40 && !ctx.sentCertificate ? 'peer-refused-us' : (a?.stage ?? 'tls');
      return {
        stage,
        code: code ?? `alert ${alert}`,
        alert,
        text: a ? a.text(ctx) : `the peer ended the handshake with TLS alert ${alert}`,
        fix: a ? a.fix(ctx) : "check the peer's log for why",
      };
    }
    const known = code === undefined ? undefined : KNOWN.get(code);
    if (known && code !== undefined) return { stage: known.stage, code, text: known.text(ctx), fix: known.fix(ctx) };
  }
  // svidkit's own refusal of the peer (the SPIFFE re-check after OpenSSL's): its message is safe to show.
  if (err instanceof SvidkitError && err.code === 'ERR_TLS_PEER_UNTRUSTED') {
    return {
      stage: 'we-refused-peer',
      code: err.code,
      text: err.plainMessage,
      fix: UNTRUSTED_ISSUER.fix(ctx),
    };
  }
  const code = causeChain(err)
    .map(codeOf)
    .find((c) => c !== undefined && !c.startsWith('ERR_TLS_'));
  const any = code ?? codeOf(err) ?? 'unknown';
  return {
    stage: code?.startsWith('E') && !code.startsWith('ERR_') ? 'connect' : 'tls',
    code: any,
    text: `the connection to ${ctx.address} failed (${any})`,
    fix: "check the peer's log",
  };
}

/** The name of an alert number, e.g. 48 "unknown CA"; undefined for numbers outside the table. */
export function alertName(alert: number): string | undefined {
  return ALERTS.get(alert)?.name;
}
