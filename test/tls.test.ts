/**
 * Tests of lib/tls with real servers on 127.0.0.1: node:tls, https and http2, two trust domains whose
 * roots are both trusted by OpenSSL, and the SPIFFE re-check that keeps each root to its own trust
 * domain. TLS checks validity with the system clock, so the PKI here is valid around Date.now().
 */
import { strict as assert } from 'node:assert';
import { constants } from 'node:crypto';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { authorizeAny, authorizeId, authorizeMemberOf, type Authorizer } from '../lib/authorize/index.js';
import { BundleSet, type X509Bundle } from '../lib/bundle/index.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import { StaticSource, type Unsubscribe, type X509Source } from '../lib/source/index.js';
import type { TrustDomain } from '../lib/spiffeid/index.js';
import {
  attachMtls,
  connectMtls,
  createMtlsHttp2Server,
  createMtlsHttpsServer,
  createMtlsServer,
  mtlsClientOptions,
  mtlsHttpsAgent,
  mtlsServerOptions,
  peerSpiffeId,
  verifiedPeer,
  verifyTlsPeer,
} from '../lib/tls/index.js';
import { X509Svid } from '../lib/x509svid/index.js';
import { TestCa } from './helpers/ca.js';
import { rejectsCode } from './helpers/assert.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const now = Date.now();
const caValidity = { notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR) };
const leafValidity = { notBefore: new Date(now - 5 * MINUTE), notAfter: new Date(now + HOUR) };

const rootA = TestCa.root({ trustDomain: 'a.test', ...caValidity });
const intermediateA = rootA.intermediate(caValidity);
const rootB = TestCa.root({ trustDomain: 'b.test', ...caValidity });

const SERVER_ID = 'spiffe://a.test/server';
const CLIENT_ID = 'spiffe://a.test/client';
const serverSvid = intermediateA.svid('/server', leafValidity);
const clientSvid = rootA.svid('/client', leafValidity);
const clientBSvid = rootB.svid('/client', leafValidity);
/** Signed by trust domain B's root, but claiming an ID in trust domain A. */
const forgedSvid = (() => {
  const { chain, key } = rootB.leaf('/client', { ...leafValidity, uris: [CLIENT_ID] });
  return X509Svid.fromParts(chain, key);
})();
const expiredClientSvid = rootA.svid('/client', {
  notBefore: new Date(now - 2 * HOUR),
  notAfter: new Date(now - HOUR),
});
const expiredServerSvid = intermediateA.svid('/server', {
  notBefore: new Date(now - 2 * HOUR),
  notAfter: new Date(now - HOUR),
});

const bothDomains = () => new BundleSet([rootA.bundle(), rootB.bundle()]);
const source = (svid: X509Svid, bundles = bothDomains()) => new StaticSource({ svid, bundles });

/** A source that cannot list its bundles (no getBundleSet): the helpers fall back to trustDomains. */
class LookupOnlySource implements X509Source {
  readonly #inner: StaticSource;
  constructor(inner: StaticSource) {
    this.#inner = inner;
  }
  getX509Svid(): X509Svid {
    return this.#inner.getX509Svid();
  }
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#inner.getX509BundleForTrustDomain(td);
  }
  onUpdate(listener: () => void): Unsubscribe {
    return this.#inner.onUpdate(listener);
  }
}

/** A server on an ephemeral loopback port, closed (with its open connections) after each test. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    const closed = once(server, 'close');
    server.close();
    for (const s of sockets) s.destroy();
    await closed;
  });
  return (server.address() as net.AddressInfo).port;
}

/** The first refusal the server reports. */
function nextRefusal(server: tls.Server): Promise<Error & { code?: string }> {
  return once(server, 'tlsClientError').then(([err]) => err as Error & { code?: string });
}

/**
 * The reason of the first refusal by OpenSSL's chain check. Node finishes such a handshake, destroys
 * the socket and reports only a hang-up; the reason is left in socket.authorizationError.
 */
function nextChainRefusal(server: tls.Server): Promise<string | undefined> {
  return once(server, 'tlsClientError').then(([err, socket]) => {
    assert.equal((err as { code?: string }).code, 'ECONNRESET');
    return String((socket as tls.TLSSocket).authorizationError);
  });
}

/** A tls server that answers each line with the client ID it verified. */
function echoServer(src: X509Source, authorizer: Authorizer): { server: tls.Server; handled: tls.TLSSocket[] } {
  const handled: tls.TLSSocket[] = [];
  const server = createMtlsServer(src, authorizer, (socket) => {
    handled.push(socket);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => socket.write(`${d.toString().trim()} from ${String(peerSpiffeId(socket))}\n`));
  });
  return { server, handled };
}

/** Sends one line and resolves with the reply. */
async function ask(socket: tls.TLSSocket, line: string): Promise<string> {
  const reply = once(socket, 'data');
  socket.write(`${line}\n`);
  const [data] = (await reply) as [Buffer];
  return data.toString().trim();
}

/**
 * What a client that the server refuses sees: with TLS 1.3 its own handshake may finish first, so the
 * refusal shows as an alert, a reset or an end before any reply. Resolves with the reply or 'closed'.
 */
function outcome(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d.toString().trim()));
    socket.once('error', () => resolve('closed'));
    socket.once('close', () => resolve('closed'));
    socket.write('ping\n');
  });
}

/** Connects with tls.connect and reports what happened, whether the handshake fails or not. */
function rawAttempt(options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect(options);
    cleanups.push(() => void socket.destroy());
    socket.once('error', () => resolve('closed'));
    socket.once('secureConnect', () => void outcome(socket).then(resolve));
  });
}

/** connectMtls, then what the server's verdict turns out to be. */
async function attempt(
  src: X509Source,
  port: number,
  authorizer: Authorizer = authorizeId(SERVER_ID),
): Promise<string> {
  let socket: tls.TLSSocket;
  try {
    socket = await connectMtls(src, authorizer, { host: '127.0.0.1', port });
  } catch {
    return 'closed';
  }
  cleanups.push(() => void socket.destroy());
  return outcome(socket);
}

function assertRefusal(err: Error & { code?: string }, code: ErrorCode, causeCode: string): void {
  assert.ok(err instanceof SvidkitError, String(err));
  assert.equal(err.code, code, err.message);
  assert.ok(err.message.startsWith('tls: '), err.message);
  assert.equal((err.cause as { code?: string }).code, causeCode, err.message);
}

/** Lower-case hex without leading zeros, as Certificate.serialHex. */
const serialOf = (socket: tls.TLSSocket) =>
  socket
    .getPeerCertificate()
    .serialNumber.toLowerCase()
    .replace(/^0+(?=.)/, '');

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let body = '';
  for await (const chunk of stream) body += String(chunk);
  return body;
}

describe('tls: mutual TLS over node:tls', () => {
  it('connects a client and a server that verify each other, with the peer ID on both sides', async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeId(CLIENT_ID));
    const port = await listen(server);
    const socket = await connectMtls(source(clientSvid), authorizeId(SERVER_ID), { host: '127.0.0.1', port });
    cleanups.push(() => void socket.destroy());
    assert.equal(peerSpiffeId(socket)?.toString(), SERVER_ID);
    assert.equal(await ask(socket, 'hello'), `hello from ${CLIENT_ID}`);
    assert.equal(handled.length, 1);
    assert.equal(peerSpiffeId(handled[0]!)?.toString(), CLIENT_ID);
    // The server presented its intermediate; the client's path ends at trust domain A's root.
    assert.equal(serialOf(socket), serverSvid.leaf.serialHex);
  });

  it('verifies a client that sends an intermediate with its leaf', async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeId('spiffe://a.test/via-intermediate'));
    const port = await listen(server);
    const viaIntermediate = intermediateA.svid('/via-intermediate', leafValidity);
    assert.equal(viaIntermediate.certificates.length, 2);
    assert.equal(await attempt(source(viaIntermediate), port), 'ping from spiffe://a.test/via-intermediate');
    assert.equal(verifiedPeer(handled[0]!)?.chain.length, 3);
  });

  it('refuses a client without a certificate during the handshake', async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const refusal = nextRefusal(server);
    const noCertificate = { ...mtlsClientOptions(source(clientSvid), authorizeAny()), cert: undefined, key: undefined };
    assert.equal(await rawAttempt({ ...noCertificate, host: '127.0.0.1', port }), 'closed');
    assert.equal((await refusal).code, 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    assert.equal(handled.length, 0);
  });

  it("refuses a leaf from trust domain B's root that claims an ID in trust domain A", async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const refusal = nextRefusal(server);
    // OpenSSL accepts the chain (B's root is in the CA list); the per-trust-domain re-check does not.
    assert.equal(await attempt(source(forgedSvid), port), 'closed');
    assertRefusal(await refusal, 'ERR_TLS_PEER_UNTRUSTED', 'ERR_X509SVID_UNTRUSTED');
    assert.equal(handled.length, 0);
  });

  it("accepts a genuine trust domain B client when B's root is trusted and the authorizer allows it", async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeMemberOf('b.test'));
    const port = await listen(server);
    assert.equal(await attempt(source(clientBSvid), port), 'ping from spiffe://b.test/client');
    assert.equal(handled.length, 1);
  });

  it('refuses a client whose ID the authorizer does not allow', async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeId('spiffe://a.test/someone-else'));
    const port = await listen(server);
    const refusal = nextRefusal(server);
    assert.equal(await attempt(source(clientSvid), port), 'closed');
    const err = await refusal;
    assertRefusal(err, 'ERR_TLS_PEER_DENIED', 'ERR_AUTHZ_DENIED');
    assert.match(err.message, /client spiffe:\/\/a\.test\/client is not authorized/);
    assert.equal(handled.length, 0);
  });

  it('refuses an expired client certificate during the handshake', async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const refusal = nextChainRefusal(server);
    assert.equal(await attempt(source(expiredClientSvid), port), 'closed');
    assert.equal(await refusal, 'CERT_HAS_EXPIRED');
    assert.equal(handled.length, 0);
  });

  it('rejects an expired server certificate with ERR_TLS_PEER_UNTRUSTED', async () => {
    const { server, handled } = echoServer(source(expiredServerSvid), authorizeAny());
    const port = await listen(server);
    const p = connectMtls(source(clientSvid), authorizeAny(), { host: '127.0.0.1', port });
    await rejectsCode(p, 'ERR_TLS_PEER_UNTRUSTED', { causeCode: 'CERT_HAS_EXPIRED' });
    assert.equal(handled.length, 0);
  });

  it('rejects a server whose ID the client authorizer does not allow with ERR_TLS_PEER_DENIED', async () => {
    const { server, handled } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const p = connectMtls(source(clientSvid), authorizeId('spiffe://a.test/other-server'), { host: '127.0.0.1', port });
    const err = await rejectsCode(p, 'ERR_TLS_PEER_DENIED', { causeCode: 'ERR_AUTHZ_DENIED' });
    assert.match(err.message, /server spiffe:\/\/a\.test\/server is not authorized/);
    assert.equal(handled.length, 0);
  });

  it('rejects a server of a trust domain the client has no bundle for', async () => {
    const { server } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const onlyB = new StaticSource({ svid: clientBSvid, bundles: new BundleSet([rootB.bundle()]) });
    await rejectsCode(connectMtls(onlyB, authorizeAny(), { host: '127.0.0.1', port }), 'ERR_TLS_PEER_UNTRUSTED');
  });

  it('rejects with ERR_TLS_CONNECT when nothing listens', async () => {
    const probe = tls.createServer();
    const port = await listen(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const p = connectMtls(source(clientSvid), authorizeAny(), { host: '127.0.0.1', port });
    await rejectsCode(p, 'ERR_TLS_CONNECT', { causeCode: 'ECONNREFUSED' });
  });

  it('rejects with ERR_TLS_HANDSHAKE when the server does not speak TLS', async () => {
    const plain = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const port = await listen(plain);
    const p = connectMtls(source(clientSvid), authorizeAny(), { host: '127.0.0.1', port });
    await rejectsCode(p, 'ERR_TLS_HANDSHAKE', { causeCode: 'ERR_SSL_WRONG_VERSION_NUMBER' });
  });

  it('keeps open connections through a rotation and serves the new SVID to new handshakes', async () => {
    const serverSource = source(serverSvid);
    const { server } = echoServer(serverSource, authorizeId(CLIENT_ID));
    const port = await listen(server);
    const client = source(clientSvid);
    const first = await connectMtls(client, authorizeId(SERVER_ID), { host: '127.0.0.1', port });
    cleanups.push(() => void first.destroy());
    assert.equal(serialOf(first), serverSvid.leaf.serialHex);

    const rotated = intermediateA.svid('/server', leafValidity);
    assert.notEqual(rotated.leaf.serialHex, serverSvid.leaf.serialHex);
    serverSource.set({ svid: rotated });

    assert.equal(await ask(first, 'still there'), `still there from ${CLIENT_ID}`);
    const second = await connectMtls(client, authorizeId(SERVER_ID), { host: '127.0.0.1', port });
    cleanups.push(() => void second.destroy());
    assert.equal(serialOf(second), rotated.leaf.serialHex);
    assert.equal(await ask(second, 'hello'), `hello from ${CLIENT_ID}`);
    assert.equal(serialOf(first), serverSvid.leaf.serialHex);
  });

  it('never resumes a session, so every client certificate is checked again', async () => {
    const { server } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const options = { ...mtlsClientOptions(source(clientSvid), authorizeAny()), host: '127.0.0.1', port };
    const first = tls.connect(options);
    cleanups.push(() => void first.destroy());
    const [session] = (await once(first, 'session')) as [Buffer];
    const second = tls.connect({ ...options, session });
    cleanups.push(() => void second.destroy());
    await once(second, 'secureConnect');
    assert.equal(second.isSessionReused(), false);
    assert.equal(await ask(second, 'again'), `again from ${CLIENT_ID}`);
  });

  it('refuses a TLS 1.2 renegotiation, which could swap the certificate after the check', async () => {
    const { server } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const options = mtlsClientOptions(source(clientSvid), authorizeAny());
    assert.equal((options.secureOptions ?? 0) & constants.SSL_OP_NO_RENEGOTIATION, constants.SSL_OP_NO_RENEGOTIATION);
    // A client that would renegotiate: the server must refuse.
    const socket = tls.connect({ ...options, secureOptions: 0, maxVersion: 'TLSv1.2', host: '127.0.0.1', port });
    cleanups.push(() => void socket.destroy());
    await once(socket, 'secureConnect');
    assert.equal(socket.getProtocol(), 'TLSv1.2');
    const failure = new Promise<string | undefined>((resolve) => {
      socket.once('error', (err: Error & { code?: string }) => resolve(err.code));
      socket.renegotiate({}, (err) => {
        if (err) resolve((err as Error & { code?: string }).code);
      });
    });
    assert.equal(await failure, 'ERR_SSL_NO_RENEGOTIATION');
  });

  it('follows bundle updates: a trust domain dropped from the bundles is refused on new handshakes', async () => {
    const serverSource = source(serverSvid);
    const { server } = echoServer(serverSource, authorizeAny());
    const port = await listen(server);
    assert.equal(await attempt(source(clientBSvid), port), 'ping from spiffe://b.test/client');
    serverSource.set({ bundles: new BundleSet([rootA.bundle()]) });
    const refusal = nextChainRefusal(server);
    assert.equal(await attempt(source(clientBSvid), port), 'closed');
    // The client's OpenSSL sends B's root along (it completes chains from its own CA list).
    assert.equal(await refusal, 'SELF_SIGNED_CERT_IN_CHAIN');
  });
});

describe('tls: accepted trust domains', () => {
  it('defaults to the SVID trust domain when the source cannot list its bundles', async () => {
    const lookupOnly = new LookupOnlySource(source(serverSvid));
    const { server } = echoServer(lookupOnly, authorizeAny());
    const port = await listen(server);
    const refusal = nextChainRefusal(server);
    assert.equal(await attempt(source(clientBSvid), port), 'closed');
    // The client's OpenSSL sends B's root along (it completes chains from its own CA list).
    assert.equal(await refusal, 'SELF_SIGNED_CERT_IN_CHAIN');
    assert.equal(await attempt(source(clientSvid), port), `ping from ${CLIENT_ID}`);
  });

  it('accepts the trust domains named in trustDomains', async () => {
    const lookupOnly = new LookupOnlySource(source(serverSvid));
    const server = createMtlsServer(lookupOnly, authorizeAny(), (s) => s.end(`${String(peerSpiffeId(s))}\n`), {
      trustDomains: ['a.test', 'b.test'],
    });
    const port = await listen(server);
    assert.equal(await attempt(source(clientBSvid), port), 'spiffe://b.test/client');
  });

  it('narrows a bundle set to trustDomains, also in the SPIFFE re-check', async () => {
    const { server } = echoServer(source(serverSvid), authorizeAny());
    const port = await listen(server);
    const clientOnlyB = source(clientBSvid);
    const p = connectMtls(clientOnlyB, authorizeAny(), { host: '127.0.0.1', port, trustDomains: ['b.test'] });
    await rejectsCode(p, 'ERR_TLS_PEER_UNTRUSTED');
  });
});

describe('tls: https', () => {
  it('serves a request over mTLS with the peer IDs on the request and the response', async () => {
    let seen: string | undefined;
    const server = createMtlsHttpsServer(source(serverSvid), authorizeId(CLIENT_ID), (req, res) => {
      seen = peerSpiffeId(req)?.toString();
      res.end(`hello ${String(seen)}`);
    });
    const port = await listen(server);
    const agent = mtlsHttpsAgent(source(clientSvid), authorizeId(SERVER_ID));
    cleanups.push(() => agent.destroy());
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/', agent }, resolve).on('error', reject);
    });
    assert.equal(res.statusCode, 200);
    assert.equal(peerSpiffeId(res)?.toString(), SERVER_ID);
    assert.equal(await readAll(res), `hello ${CLIENT_ID}`);
    assert.equal(seen, CLIENT_ID);
  });

  it('never hands a refused client request to the listener', async () => {
    let requests = 0;
    const server = createMtlsHttpsServer(source(serverSvid), authorizeId(CLIENT_ID), (_req, res) => {
      requests++;
      res.end('no');
    });
    const port = await listen(server);
    const refusal = nextRefusal(server);
    const agent = mtlsHttpsAgent(source(forgedSvid), authorizeId(SERVER_ID));
    cleanups.push(() => agent.destroy());
    const failed = await new Promise<boolean>((resolve) => {
      https.get({ host: '127.0.0.1', port, path: '/', agent }, () => resolve(false)).on('error', () => resolve(true));
    });
    assert.equal(failed, true);
    assertRefusal(await refusal, 'ERR_TLS_PEER_UNTRUSTED', 'ERR_X509SVID_UNTRUSTED');
    assert.equal(requests, 0);
  });

  it('fails the request with ERR_TLS_PEER_DENIED when the agent refuses the server, before it is sent', async () => {
    let requests = 0;
    const server = createMtlsHttpsServer(source(serverSvid), authorizeAny(), (_req, res) => {
      requests++;
      res.end();
    });
    const port = await listen(server);
    const agent = mtlsHttpsAgent(source(clientSvid), authorizeId('spiffe://a.test/other-server'));
    cleanups.push(() => agent.destroy());
    const p = new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/', agent }, resolve).on('error', reject);
    });
    await rejectsCode(p, 'ERR_TLS_PEER_DENIED', { causeCode: 'ERR_AUTHZ_DENIED' });
    assert.equal(requests, 0);
  });

  it('the agent presents the rotated client SVID on new connections', async () => {
    const serials: string[] = [];
    const server = createMtlsHttpsServer(source(serverSvid), authorizeId(CLIENT_ID), (req, res) => {
      serials.push(serialOf(req.socket as tls.TLSSocket));
      res.end('ok');
    });
    const port = await listen(server);
    const clientSource = source(clientSvid);
    const agent = mtlsHttpsAgent(clientSource, authorizeId(SERVER_ID));
    cleanups.push(() => agent.destroy());
    const get = () =>
      new Promise<string>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => void readAll(res).then(resolve, reject));
      });
    assert.equal(await get(), 'ok');
    const rotated = rootA.svid('/client', leafValidity);
    clientSource.set({ svid: rotated });
    assert.equal(await get(), 'ok');
    assert.deepEqual(serials, [clientSvid.leaf.serialHex, rotated.leaf.serialHex]);
  });
});

describe('tls: http2', () => {
  async function http2Get(port: number, clientSource: X509Source): Promise<{ status: number; body: string }> {
    const session = http2.connect(`https://127.0.0.1:${port}`, mtlsClientOptions(clientSource, authorizeId(SERVER_ID)));
    cleanups.push(() => void session.close());
    const [, socket] = (await once(session, 'connect')) as [http2.ClientHttp2Session, tls.TLSSocket];
    assert.equal(verifyTlsPeer(socket, clientSource, authorizeId(SERVER_ID)).id.toString(), SERVER_ID);
    const req = session.request({ ':path': '/' });
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    const body = await readAll(req);
    session.close();
    return { status: Number(headers[':status']), body };
  }

  it('answers a stream from a verified client session with the peer ID on the stream', async () => {
    const server = createMtlsHttp2Server(source(serverSvid), authorizeId(CLIENT_ID), (stream) => {
      stream.respond({ ':status': 200 });
      stream.end(`stream ${String(peerSpiffeId(stream))} session ${String(peerSpiffeId(stream.session!))}`);
    });
    const port = await listen(server);
    assert.deepEqual(await http2Get(port, source(clientSvid)), {
      status: 200,
      body: `stream ${CLIENT_ID} session ${CLIENT_ID}`,
    });
  });

  it('gives the peer ID of an Http2ServerRequest (compatibility API)', async () => {
    const server = createMtlsHttp2Server(source(serverSvid), authorizeId(CLIENT_ID));
    server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      res.end(String(peerSpiffeId(req)));
    });
    const port = await listen(server);
    assert.deepEqual(await http2Get(port, source(clientSvid)), { status: 200, body: CLIENT_ID });
  });

  it('never opens a session for a refused client', async () => {
    let sessions = 0;
    const server = createMtlsHttp2Server(source(serverSvid), authorizeId(CLIENT_ID), (stream) => stream.respond());
    server.on('session', () => sessions++);
    const port = await listen(server);
    const refusal = nextRefusal(server);
    const session = http2.connect(`https://127.0.0.1:${port}`, mtlsClientOptions(source(forgedSvid), authorizeAny()));
    session.on('error', () => {});
    cleanups.push(() => void session.destroy());
    assertRefusal(await refusal, 'ERR_TLS_PEER_UNTRUSTED', 'ERR_X509SVID_UNTRUSTED');
    await once(session, 'close');
    assert.equal(sessions, 0);
  });
});

describe('tls: misuse', () => {
  it('throws ERR_SOURCE_NO_SVID from mtlsServerOptions when the source has no SVID yet', () => {
    assert.throws(
      () => mtlsServerOptions(new StaticSource({ bundles: bothDomains() }), authorizeAny()),
      (err: unknown) => err instanceof SvidkitError && err.code === 'ERR_SOURCE_NO_SVID',
    );
  });

  it('throws TypeError without an authorizer or a source', () => {
    const call = mtlsServerOptions as (...args: unknown[]) => unknown;
    assert.throws(() => call(source(serverSvid)), { name: 'TypeError', message: /needs an authorizer/ });
    assert.throws(() => call(undefined, authorizeAny()), { name: 'TypeError', message: /needs an X509Source/ });
    const client = mtlsClientOptions as (...args: unknown[]) => unknown;
    assert.throws(() => client(source(clientSvid), 'spiffe://a.test/server'), TypeError);
  });

  it('throws ERR_TLS_NO_TRUSTED_ROOTS when no accepted trust domain has X.509 roots', () => {
    assert.throws(
      () => mtlsClientOptions(new StaticSource({ svid: clientSvid }), authorizeAny()),
      (err: unknown) => err instanceof SvidkitError && err.code === 'ERR_TLS_NO_TRUSTED_ROOTS',
    );
  });

  it('refuses options svidkit owns and a minVersion below TLS 1.2', () => {
    const extra = { rejectUnauthorized: true } as unknown as Parameters<typeof mtlsServerOptions>[2];
    assert.throws(() => mtlsServerOptions(source(serverSvid), authorizeAny(), extra), /sets "rejectUnauthorized"/);
    assert.throws(() => mtlsClientOptions(source(clientSvid), authorizeAny(), { minVersion: 'TLSv1.1' }), TypeError);
    const options = mtlsServerOptions(source(serverSvid), authorizeAny(), { minVersion: 'TLSv1.3' });
    assert.equal(options.minVersion, 'TLSv1.3');
    assert.equal(options.requestCert, true);
    assert.equal(options.rejectUnauthorized, true);
  });

  it('attachMtls needs the very options object mtlsServerOptions returned, once per server', () => {
    const options = mtlsServerOptions(source(serverSvid), authorizeAny());
    assert.throws(() => attachMtls(tls.createServer({ ...options }), { ...options }), /needs the object/);
    const server = attachMtls(tls.createServer(options), options);
    assert.throws(() => attachMtls(server, options), /already called/);
    server.close();
  });
});
