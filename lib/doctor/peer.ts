/**
 * The peer checks: a real mTLS handshake with the files of the SVID directory, made through the
 * library (connectMtls with an authorizer that records the peer instead of judging it), then a short
 * wait in which a peer that refuses our certificate says so. TLS 1.3 servers judge the client's
 * certificate after the client's side of the handshake is done, so a refusal (an alert, or a Node.js
 * server simply closing) arrives just after the handshake "succeeded".
 *
 * When the handshake cannot go through the library (we refused the peer, or our files give no usable
 * SVID) a second, plain node:tls connection with the same roots looks at the certificate the peer
 * presents, so that the report can still name the peer and say why it is not trusted. Every step is
 * bounded by the timeout; no socket outlives the check.
 */
import type { KeyObject } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Authorizer } from '../authorize/index.js';
import type { BundleSet } from '../bundle/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { privateKeyToPem } from '../keys/index.js';
import { StaticSource } from '../source/index.js';
import type { SpiffeId } from '../spiffeid/index.js';
import { connectMtls, verifyTlsPeer } from '../tls/index.js';
import { Certificate } from '../x509/certificate.js';
import type { X509Svid } from '../x509svid/index.js';
import { type ExplainContext, type Explanation, explainFailure } from './explain.js';
import { formatDuration, nameOf, quote } from './format.js';
import type { CheckList, PeerSummary } from './types.js';

/** Protocols offered by ALPN, so that peers which insist on one (gRPC, HTTP/2) complete the handshake. */
const ALPN = ['h2', 'http/1.1'];

/** What the peer checks need. */
export interface PeerInput {
  readonly host: string;
  readonly port: number;
  /** host:port as the user wrote it, for messages. */
  readonly address: string;
  /** Our SVID, when the files give one: the handshake then goes through connectMtls. */
  readonly svid?: X509Svid;
  /** Our chain and key when they parse and match but make no SVID (a leaf that breaks a rule). */
  readonly clientCertificate?: { readonly certPem: string; readonly key: KeyObject };
  readonly bundles?: BundleSet;
  readonly expect?: SpiffeId;
  readonly ourId?: SpiffeId;
  /** Bound of each connection attempt (TCP and TLS handshake together). */
  readonly timeoutMs: number;
  /** How long to wait after the handshake for the peer to refuse our certificate. */
  readonly settleMs: number;
}

/** How the wait after the handshake ended. */
type Settled = { kind: 'open' } | { kind: 'data' } | { kind: 'closed' } | { kind: 'error'; error: unknown };

/** One connection attempt. */
type Attempt =
  | { kind: 'tcp-failed'; error?: unknown; timedOut: boolean }
  | { kind: 'tls-failed'; error?: unknown; timedOut: boolean; seen?: PeerSeen }
  | { kind: 'connected'; tlsVersion: string | undefined; verifiedId: SpiffeId | undefined; settled: Settled };

/** What a plain connection saw of the peer's certificate. */
interface PeerSeen {
  /** The leaf's single URI SAN, as presented (not verified). */
  readonly claimedId?: string;
  readonly issuer?: string;
  readonly verifiedId?: SpiffeId;
  /** svidkit's reason for refusing the peer's chain. */
  readonly refusal?: SvidkitError;
}

function hostForSni(host: string): string | undefined {
  return net.isIP(host) === 0 ? host : undefined;
}

/** Opens a TCP connection within `ms`; the socket keeps a no-op error listener so that a late error never goes unhandled. */
function openTcp(host: string, port: number, ms: number): Promise<{ socket: net.Socket } | Attempt> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ kind: 'tcp-failed', timedOut: true });
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve({ socket });
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ kind: 'tcp-failed', error, timedOut: false });
    });
  });
}

/** Waits up to `ms` for the peer to send data, close, or fail the connection (an alert). */
function settle(socket: tls.TLSSocket, ms: number): Promise<Settled> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (s: Settled) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(s);
    };
    const timer = setTimeout(() => finish({ kind: 'open' }), ms);
    socket.on('error', (error) => finish({ kind: 'error', error }));
    socket.on('data', () => finish({ kind: 'data' }));
    socket.once('end', () => finish({ kind: 'closed' }));
    socket.once('close', () => finish({ kind: 'closed' }));
  });
}

/** Races `promise` with a timer; on timeout calls `onTimeout` and leaves the promise to settle unobserved. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => void,
): Promise<{ value: T } | { error: unknown } | { timedOut: true }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ timedOut: true }>((resolve) => {
    timer = setTimeout(() => resolve({ timedOut: true }), ms);
  });
  try {
    const r = await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      timeout,
    ]);
    if ('timedOut' in r) onTimeout();
    return r;
  } finally {
    clearTimeout(timer);
    promise.catch(() => undefined);
  }
}

/** The handshake through the library: connectMtls over our own TCP socket, so that every step is bounded. */
async function viaLibrary(
  input: PeerInput,
  svid: X509Svid,
  bundles: BundleSet,
  tcp: net.Socket,
  ms: number,
): Promise<Attempt> {
  let recorded: SpiffeId | undefined;
  const record: Authorizer = (id) => {
    recorded = id;
  };
  let pending: Promise<tls.TLSSocket>;
  try {
    pending = connectMtls(new StaticSource({ svid, bundles }), record, {
      host: input.host,
      port: input.port,
      socket: tcp,
      servername: hostForSni(input.host),
      ALPNProtocols: ALPN,
    });
  } catch (error) {
    tcp.destroy();
    return { kind: 'tls-failed', error, timedOut: false };
  }
  const r = await within(pending, ms, () => tcp.destroy(new Error('doctor: handshake timed out')));
  if ('timedOut' in r) return { kind: 'tls-failed', timedOut: true };
  if ('error' in r) {
    tcp.destroy();
    return { kind: 'tls-failed', error: r.error, timedOut: false };
  }
  const socket = r.value;
  socket.on('error', () => undefined);
  const tlsVersion = socket.getProtocol() ?? undefined;
  const settled = await settle(socket, input.settleMs);
  socket.destroy();
  return { kind: 'connected', tlsVersion, verifiedId: recorded, settled };
}

/** What the peer's leaf claims, read from the certificate node:tls hands over; never throws. */
function claimOf(socket: tls.TLSSocket): { claimedId?: string; issuer?: string } {
  try {
    const raw = socket.getPeerCertificate(false)?.raw;
    if (!raw) return {};
    const leaf = Certificate.fromDer(raw);
    const uris = leaf.subjectAltName?.uris ?? [];
    return { claimedId: uris.length === 1 ? uris[0] : undefined, issuer: nameOf(leaf, 'issuer') };
  } catch {
    return {};
  }
}

/**
 * A plain node:tls connection with our roots (and our certificate, when there is one) that records the
 * peer's certificate before Node's verification acts on it, and runs svidkit's SPIFFE check on it.
 */
async function look(
  input: PeerInput,
  tcp: net.Socket,
  ms: number,
  client: { readonly certPem: string; readonly key: KeyObject } | undefined,
): Promise<Attempt> {
  const bundles = input.bundles;
  const roots = bundles ? bundles.bundles().flatMap((b) => b.x509.authorities().map((c) => c.toPem())) : [];
  let seen: PeerSeen | undefined;
  const socket = tls.connect({
    socket: tcp,
    servername: hostForSni(input.host),
    ca: roots,
    ...(client ? { cert: client.certPem, key: privateKeyToPem(client.key) } : {}),
    minVersion: 'TLSv1.2',
    ALPNProtocols: ALPN,
    // The SPIFFE check below replaces the host name check; the chain check of OpenSSL stays on.
    checkServerIdentity: () => undefined,
  });
  socket.on('error', () => undefined);
  // 'secure' comes once the handshake is done and before node:tls acts on its own verification.
  socket.prependOnceListener('secure', () => {
    const claim = claimOf(socket);
    if (!bundles) {
      seen = claim;
      return;
    }
    try {
      const peer = verifyTlsPeer(socket, new StaticSource({ bundles }), () => undefined);
      seen = { ...claim, verifiedId: peer.id };
    } catch (err) {
      seen = { ...claim, refusal: isSvidkitError(err) ? err : undefined };
    }
  });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
    // A close without an error is a reset as far as the explanation goes.
    socket.once('close', () => reject(Object.assign(new Error('doctor: connection closed'), { code: 'ECONNRESET' })));
  });
  const r = await within(connected, ms, () => socket.destroy());
  if ('timedOut' in r) {
    socket.destroy();
    return { kind: 'tls-failed', timedOut: true, seen };
  }
  if ('error' in r) {
    socket.destroy();
    return { kind: 'tls-failed', error: r.error, timedOut: false, seen };
  }
  if (seen?.refusal) {
    socket.destroy();
    return { kind: 'tls-failed', error: seen.refusal, timedOut: false, seen };
  }
  const tlsVersion = socket.getProtocol() ?? undefined;
  const settled = await settle(socket, input.settleMs);
  socket.destroy();
  return { kind: 'connected', tlsVersion, verifiedId: seen?.verifiedId, settled };
}

/** One attempt: TCP within the timeout, then the handshake within what is left of it. */
async function attempt(input: PeerInput, how: (tcp: net.Socket, ms: number) => Promise<Attempt>): Promise<Attempt> {
  const start = Date.now();
  const tcp = await openTcp(input.host, input.port, input.timeoutMs);
  if (!('socket' in tcp)) return tcp;
  return how(tcp.socket, Math.max(1, input.timeoutMs - (Date.now() - start)));
}

/** The innermost svidkit error of the peer check, for a precise reason. */
function x509Reason(err: SvidkitError): SvidkitError {
  return err.cause instanceof SvidkitError ? err.cause : err;
}

function describeRefusal(refusal: SvidkitError, input: PeerInput): { text: string; fix: string } {
  const inner = x509Reason(refusal);
  const ours = input.ourId?.trustDomain.name;
  switch (inner.code) {
    case 'ERR_X509SVID_NO_BUNDLE': {
      const m = /trust domain "([^"]+)"/.exec(inner.message);
      const td = m ? m[1]! : 'its trust domain';
      return {
        text: `it belongs to trust domain "${td}", and our bundle has no roots for it`,
        fix: `if this peer should be trusted, federate with "${td}" (add its bundle); otherwise this is the wrong peer`,
      };
    }
    case 'ERR_X509SVID_UNTRUSTED':
      return {
        text: `its chain does not lead to a root in our bundle${ours ? ` of "${ours}"` : ''}`,
        fix: 'the peer was issued by a CA whose root is not in our bundle: a rotated root, or another CA of the same name',
      };
    case 'ERR_X509SVID_NO_URI_SAN':
    case 'ERR_X509SVID_MULTIPLE_URI_SANS':
    case 'ERR_X509SVID_INVALID_ID':
      return {
        text: `its certificate is not an X.509-SVID: ${inner.plainMessage}`,
        fix: 'the peer presents a certificate that is not its SVID (a web certificate?): check its TLS configuration',
      };
    default:
      return {
        text: inner.message.replace(/^(tls|x509svid): /, ''),
        fix: "check the peer's SVID: it must verify against the bundle of its trust domain",
      };
  }
}

function describeSettled(
  settled: Settled,
  ctx: ExplainContext,
  sentCertificate: boolean,
  settleMs: number,
): { status: 'pass' | 'warn' | 'fail'; text: string; fix: string; accepted: boolean } {
  switch (settled.kind) {
    case 'open':
    case 'data': {
      const how =
        settled.kind === 'data'
          ? 'it sent data after the handshake'
          : `it kept the connection open for ${formatDuration(settleMs)} after the handshake`;
      if (!sentCertificate) {
        return {
          status: 'warn',
          text: `the peer accepted us without a client certificate (${how}): it does not require mTLS`,
          fix: 'if this peer should only accept SPIFFE clients, make it require client certificates',
          accepted: true,
        };
      }
      return { status: 'pass', text: `the peer accepted our certificate (${how})`, fix: '', accepted: true };
    }
    case 'closed':
      return {
        status: 'fail',
        text: sentCertificate
          ? 'the peer closed the connection right after the handshake without a TLS alert: it refused our certificate (a Node.js or svidkit peer does this when it does not trust our bundle or its authorizer refuses our ID)'
          : 'the peer closed the connection right after the handshake: it wants a client certificate, and these files give none that can be sent',
        fix: sentCertificate
          ? `the peer's log says which: make sure it trusts the root of "${ctx.ourTrustDomain ?? 'our trust domain'}" and that its policy allows ${ctx.ourId ?? 'our ID'}`
          : 'fix the local checks above so that these files give a usable client certificate',
        accepted: false,
      };
    case 'error': {
      const ex = explainFailure(settled.error, ctx);
      if (ex.alert === undefined && (ex.code === 'ECONNRESET' || ex.code === 'EPIPE')) {
        return describeSettled({ kind: 'closed' }, ctx, sentCertificate, settleMs);
      }
      return { status: 'fail', text: ex.text, fix: ex.fix, accepted: false };
    }
  }
}

function timeoutText(input: PeerInput, stage: 'tcp' | 'tls'): { text: string; fix: string } {
  const limit = formatDuration(input.timeoutMs);
  if (stage === 'tcp') {
    return {
      text: `no TCP connection to ${input.address} within ${limit}: the packets go unanswered`,
      fix: 'a firewall or network policy may drop them, or the address is wrong',
    };
  }
  return {
    text: `the peer accepted the TCP connection but did not answer our TLS ClientHello within ${limit}: it is probably not a TLS server (a protocol where the server speaks first, or one that waits for a request)`,
    fix: 'connect to the port where the peer serves mTLS; a proxy that holds connections can also cause this',
  };
}

function reportTlsFailure(
  checks: CheckList,
  input: PeerInput,
  ex: Explanation,
): 'peer-refused-us' | 'we-refused-peer' | 'other' {
  const alert = ex.alert !== undefined ? ` with TLS alert ${ex.alert}` : '';
  switch (ex.stage) {
    case 'peer-refused-us':
      checks.pass('peer-tls', `the peer at ${input.address} speaks TLS (it answered${alert})`);
      checks.fail('peer-accepts', ex.text, ex.fix);
      return 'peer-refused-us';
    case 'we-refused-peer':
      return 'we-refused-peer';
    default:
      checks.fail('peer-tls', `${ex.text} [${ex.code}]`, ex.fix);
      return 'other';
  }
}

/** Runs the peer checks into `checks` and summarizes what was learnt about the peer. */
export async function checkPeer(input: PeerInput, checks: CheckList): Promise<PeerSummary> {
  const ctx: ExplainContext = {
    address: input.address,
    sentCertificate: input.svid !== undefined || input.clientCertificate !== undefined,
    ourId: input.ourId?.toString(),
    ourTrustDomain: input.ourId?.trustDomain.name,
  };
  const hasRoots = input.bundles?.bundles().some((b) => b.x509.size > 0) ?? false;
  const svid = input.svid;
  const bundles = input.bundles;
  const useLibrary = svid !== undefined && bundles !== undefined && hasRoots;
  const first = await attempt(input, (tcp, ms) =>
    useLibrary ? viaLibrary(input, svid, bundles, tcp, ms) : look(input, tcp, ms, input.clientCertificate),
  );

  if (first.kind === 'tcp-failed') {
    if (first.timedOut) {
      const t = timeoutText(input, 'tcp');
      checks.fail('peer-connect', t.text, t.fix);
    } else {
      const ex = explainFailure(first.error, ctx);
      checks.fail('peer-connect', `${ex.text} [${ex.code}]`, ex.fix);
    }
    return { address: input.address, verified: false };
  }
  checks.pass('peer-connect', `TCP connection to ${input.address} established`);

  let seen: PeerSeen | undefined;
  let refusal: { text: string; fix: string } | undefined;
  if (first.kind === 'tls-failed') {
    if (first.timedOut) {
      const t = timeoutText(input, 'tls');
      checks.fail('peer-tls', t.text, t.fix);
      return { address: input.address, verified: false };
    }
    const ex = explainFailure(first.error, ctx);
    const outcome = reportTlsFailure(checks, input, ex);
    if (outcome !== 'we-refused-peer') {
      return { address: input.address, verified: false, acceptedUs: outcome === 'peer-refused-us' ? false : undefined };
    }
    // We refused the peer. Look at what it presents, to name it and say why in SPIFFE terms.
    seen = first.seen;
    if (seen === undefined && useLibrary) {
      const second = await attempt(input, (tcp, ms) => look(input, tcp, ms, input.clientCertificate));
      if (second.kind === 'tls-failed') seen = second.seen;
    }
    checks.pass('peer-tls', `TLS handshake with ${input.address} completed`);
    refusal = seen?.refusal ? describeRefusal(seen.refusal, input) : { text: ex.text, fix: ex.fix };
    const who = seen?.claimedId ? `the peer presents ${quote(seen.claimedId)}` : 'the peer presents a certificate';
    const issuer = seen?.issuer ? ` issued by ${seen.issuer}` : '';
    checks.fail('peer-trusted', `${who}${issuer}, and we do not trust it: ${refusal.text}`, refusal.fix);
    checkExpected(checks, input, seen?.claimedId, false);
    return { address: input.address, spiffeId: seen?.claimedId, verified: false };
  }

  // The handshake completed and we trusted the peer.
  const id = first.verifiedId;
  checks.pass('peer-tls', `${first.tlsVersion ?? 'TLS'} handshake with ${input.address} completed`);
  if (id) {
    checks.pass(
      'peer-trusted',
      `the peer is ${id.toString()}, and its chain verifies against our bundle of "${id.trustDomain.name}"`,
    );
  } else {
    checks.fail(
      'peer-trusted',
      'the handshake completed, but the peer was not verified against our bundle',
      'fix the bundle checks above',
    );
  }
  const s = describeSettled(first.settled, ctx, ctx.sentCertificate, input.settleMs);
  if (s.status === 'pass') checks.pass('peer-accepts', s.text);
  else if (s.status === 'warn') checks.warn('peer-accepts', s.text, s.fix);
  else checks.fail('peer-accepts', s.text, s.fix);
  checkExpected(checks, input, id?.toString(), id !== undefined);
  return {
    address: input.address,
    spiffeId: id?.toString(),
    verified: id !== undefined,
    tlsVersion: first.tlsVersion,
    acceptedUs: s.accepted,
  };
}

function checkExpected(checks: CheckList, input: PeerInput, id: string | undefined, verified: boolean): void {
  const expect = input.expect;
  if (!expect || id === undefined) return;
  const want = expect.toString();
  if (!verified) {
    checks.fail(
      'peer-id',
      id === want
        ? `the peer claims the expected ID ${want}, but its certificate did not verify`
        : `the peer claims ${quote(id)}, not the expected ${want}, and its certificate did not verify`,
      'fix the trust problem first (peer-trusted)',
    );
    return;
  }
  if (id === want) {
    checks.pass('peer-id', `the peer is ${want}, as expected`);
    return;
  }
  checks.fail(
    'peer-id',
    `the peer is ${id}, not the expected ${want}`,
    'connect to the right service (check the address), or correct the expected ID in --expect and in your authorization policy',
  );
}
