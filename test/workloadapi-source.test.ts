/**
 * WorkloadApiSource against a real gRPC server on a real Unix socket, started here with grpc-js and
 * the Workload API proto (a stand-in endpoint whose answers each test sets): the first update, a
 * rotation on the same stream, PERMISSION_DENIED and coming back, UNAVAILABLE then reconnection, every
 * kind of bad message refused while the last good SVID stays, the security header on every call, the
 * unary JWT calls, and mTLS between two processes that each get their identity from an endpoint.
 * Every wait is for an event (an update, a reported error, a call reaching the server).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { authorizeId } from '../lib/authorize/index.js';
import { importJwtAuthority, JwtBundle } from '../lib/bundle/index.js';
import type { SvidkitError } from '../lib/errors/index.js';
import type { X509SVIDResponse } from '../lib/generated/workload/X509SVIDResponse.js';
import type { JWTBundlesResponse } from '../lib/generated/workload/JWTBundlesResponse.js';
import type { X509BundlesResponse } from '../lib/generated/workload/X509BundlesResponse.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { WorkloadApiClient, WorkloadApiSource } from '../lib/source/index.js';
import { jwtRenewDelay } from '../lib/source/workloadapi-jwt.js';
import { backoffDelay, defaultBackoff, MAX_BACKOFF_MS } from '../lib/source/workloadapi-watch.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { createMtlsHttpsServer, peerSpiffeId } from '../lib/tls/index.js';
import { loadWorkloadApi, MAX_MESSAGE_BYTES, WORKLOAD_API_HEADER } from '../lib/workloadapi/index.js';
import type { X509Svid } from '../lib/x509svid/index.js';
import { tempDir } from './helpers/agent-fs.js';
import { assertCode, checkError, rejectsCode } from './helpers/assert.js';
import { TestCa } from './helpers/ca.js';

const run = promisify(execFile);
const HOUR = 3600_000;
/** Certificates valid around the real time: the mTLS case has OpenSSL check them against the wall clock. */
const validity = () => ({ notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + HOUR) });
const PREFIX = { prefix: 'workloadapi: ' };

type Status = { code: grpc.status; details: string };

/** Things that happen, and waits for the next one that matches (no polling, no guessed delays). */
class Events<T> {
  readonly seen: T[] = [];
  #waiters: { match: (x: T) => boolean; resolve: (x: T) => void }[] = [];
  push(x: T): void {
    this.seen.push(x);
    for (const w of [...this.#waiters]) {
      if (w.match(x)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(x);
      }
    }
  }
  /** The next matching event from now on. */
  next(match: (x: T) => boolean = () => true): Promise<T> {
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }
}

/** An X509SVIDResponse for `svids`, each with its chain, PKCS#8 DER key and its CA's root. */
function x509Message(
  ca: TestCa,
  svids: { svid: X509Svid; hint?: string }[],
  federated: Record<string, Buffer> = {},
): X509SVIDResponse {
  return {
    svids: svids.map(({ svid, hint }) => ({
      spiffeId: svid.id.toString(),
      x509Svid: Buffer.concat(svid.certificates.map((c) => c.der)),
      x509SvidKey: svid.privateKey.export({ format: 'der', type: 'pkcs8' }),
      bundle: ca.cert.der,
      hint: hint ?? '',
    })),
    crl: [],
    federatedBundles: federated,
  };
}

/** A Workload API endpoint on a Unix socket whose answers the test sets. */
class Endpoint {
  readonly path: string;
  readonly address: string;
  /** The header value each call carried ('' when absent), with its method. */
  readonly calls = new Events<{ method: string; header: string }>();
  x509: X509SVIDResponse | Status | undefined;
  jwtBundles: JWTBundlesResponse | Status | undefined;
  x509Bundles: X509BundlesResponse | Status | undefined = { code: grpc.status.UNIMPLEMENTED, details: 'not here' };
  jwtSvid:
    | ((audience: string[], spiffeId: string) => Promise<{ svids: { spiffeId: string; svid: string; hint: string }[] }>)
    | undefined;
  validate: ((audience: string, token: string) => Record<string, unknown>) | undefined;
  #server: grpc.Server | undefined;
  readonly #streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  constructor(dir: string, name: string) {
    this.path = join(dir, name);
    this.address = `unix://${this.path}`;
  }

  #admit(method: string, call: { metadata: grpc.Metadata }): Status | undefined {
    const header = call.metadata.get(WORKLOAD_API_HEADER).map(String)[0] ?? '';
    this.calls.push({ method, header });
    return header === 'true' ? undefined : { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing' };
  }

  async start(): Promise<void> {
    const { proto } = await loadWorkloadApi();
    const server = new grpc.Server();
    const stream = (method: string, current: () => unknown) => (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const refused = this.#admit(method, call);
      const state = current();
      const status =
        refused ?? (state === undefined ? { code: grpc.status.UNAVAILABLE, details: 'not ready' } : undefined);
      if (status || 'code' in (state as object)) {
        call.emit('error', status ?? state);
        return;
      }
      this.#streams.add(call);
      (call as unknown as { method: string }).method = method;
      call.on('cancelled', () => this.#streams.delete(call));
      call.write(state);
    };
    const unimplemented = (_call: unknown, cb?: grpc.sendUnaryData<unknown>) => {
      const err = { code: grpc.status.UNIMPLEMENTED, details: 'no WIT-SVIDs' };
      if (cb) cb(err);
      else (_call as grpc.ServerWritableStream<unknown, unknown>).emit('error', err);
    };
    server.addService(proto.SpiffeWorkloadAPI.service, {
      FetchX509SVID: stream('FetchX509SVID', () => this.x509),
      FetchJWTBundles: stream('FetchJWTBundles', () => this.jwtBundles),
      FetchX509Bundles: stream('FetchX509Bundles', () => this.x509Bundles),
      FetchWITSVID: unimplemented,
      FetchWITBundles: unimplemented,
      FetchJWTSVID: (
        call: grpc.ServerUnaryCall<{ audience: string[]; spiffeId: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        const refused = this.#admit('FetchJWTSVID', call);
        if (refused) return cb(refused);
        if (!this.jwtSvid) return cb({ code: grpc.status.PERMISSION_DENIED, details: 'no identity' });
        this.jwtSvid(call.request.audience, call.request.spiffeId).then(
          (res) => cb(null, res),
          (err: Error) => cb({ code: grpc.status.INTERNAL, details: err.message }),
        );
      },
      ValidateJWTSVID: (
        call: grpc.ServerUnaryCall<{ audience: string; svid: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        const refused = this.#admit('ValidateJWTSVID', call);
        if (refused) return cb(refused);
        const claims = this.validate?.(call.request.audience, call.request.svid);
        if (!claims) return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'token not valid' });
        cb(null, { spiffeId: String(claims['sub']), claims: toStruct(claims) });
      },
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${this.path}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.#server = server;
  }

  /** Sends `msg` to every open stream of `method` and to every later one. */
  send(method: 'FetchX509SVID' | 'FetchJWTBundles', msg: X509SVIDResponse | JWTBundlesResponse): void {
    if (method === 'FetchX509SVID') this.x509 = msg as X509SVIDResponse;
    else this.jwtBundles = msg as JWTBundlesResponse;
    for (const s of this.#streams) if ((s as unknown as { method: string }).method === method) s.write(msg);
  }

  /** Ends every open stream of `method` with `status`, and answers later calls so too. */
  fail(method: 'FetchX509SVID' | 'FetchJWTBundles', status: Status): void {
    if (method === 'FetchX509SVID') this.x509 = status;
    else this.jwtBundles = status;
    for (const s of [...this.#streams]) {
      if ((s as unknown as { method: string }).method !== method) continue;
      this.#streams.delete(s);
      s.emit('error', status);
    }
  }

  /** Stops serving at once: open streams break, the socket goes away. */
  stop(): void {
    this.#server?.forceShutdown();
    this.#server = undefined;
    this.#streams.clear();
    rmSync(this.path, { force: true });
  }
}

/** A JSON object as a google.protobuf.Struct. */
function toStruct(obj: Record<string, unknown>): unknown {
  const value = (v: unknown): unknown => {
    if (v === null) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: toStruct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, value(v)])) };
}

describe('WorkloadApiSource over a real Unix socket', function () {
  this.timeout(30_000);
  const TD = 'example.org';
  const ID = `spiffe://${TD}/web`;
  let dir: string;
  let ca: TestCa;
  let jwtKey: ReturnType<typeof generateKeyPair>;
  let jwtBundles: JWTBundlesResponse;
  const cleanups: (() => unknown)[] = [];

  before(async () => {
    dir = await tempDir('svidkit-wl-');
    ca = TestCa.root({ trustDomain: TD, ...validity() });
    jwtKey = generateKeyPair('ec-p256');
    const jwks = new JwtBundle(ca.trustDomain, [
      importJwtAuthority('k1', jwtKey.publicKey.export({ format: 'jwk' })),
    ]).toJwks();
    jwtBundles = { bundles: { [`spiffe://${TD}`]: Buffer.from(JSON.stringify(jwks)) } };
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  let n = 0;
  /** A started endpoint serving `first` (and the JWT bundles), stopped after the test. */
  async function endpoint(first?: X509SVIDResponse): Promise<Endpoint> {
    const ep = new Endpoint(dir, `api-${++n}.sock`);
    ep.x509 = first;
    ep.jwtBundles = jwtBundles;
    await ep.start();
    cleanups.push(() => ep.stop());
    return ep;
  }

  /** An open source on `ep` whose problems and updates are recorded. */
  async function open(ep: Endpoint, extra: Parameters<typeof WorkloadApiSource.open>[0] = {}) {
    const errors = new Events<SvidkitError>();
    const updates = new Events<number>();
    const source = await WorkloadApiSource.open({
      address: ep.address,
      backoff: () => 0,
      onError: (e) => errors.push(e),
      ...extra,
    });
    cleanups.push(() => source.close());
    let count = 0;
    source.onUpdate(() => updates.push(++count));
    return { source, errors, updates };
  }

  it('serves the first SVID and the bundles, and every call carried the security header', async () => {
    const svid = ca.svid('/web', validity());
    const ep = await endpoint(x509Message(ca, [{ svid }]));
    const { source } = await open(ep);
    assert.equal(source.getX509Svid().id.toString(), ID);
    assert.equal(source.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
    assert.ok(source.getX509BundleForTrustDomain(ca.trustDomain)?.hasAuthority(ca.cert));
    assert.ok(source.getJwtBundleForTrustDomain(ca.trustDomain)?.findAuthority('k1'));
    assert.equal(source.getBundleSet().size, 1);
    const st = source.status();
    assert.equal(st.spiffeId, ID);
    assert.equal(st.target, `unix:${ep.path}`);
    assert.equal(st.svids, 1);
    assert.deepEqual(ep.calls.seen.map((c) => c.method).sort(), ['FetchJWTBundles', 'FetchX509SVID']);
    assert.ok(
      ep.calls.seen.every((c) => c.header === 'true'),
      JSON.stringify(ep.calls.seen),
    );
  });

  it('the stand-in endpoint refuses a call without the header, so the source’s calls prove they carry it', async () => {
    const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
    const { grpc: g, proto } = await loadWorkloadApi();
    const client = new proto.SpiffeWorkloadAPI(`unix:${ep.path}`, g.credentials.createInsecure());
    cleanups.push(() => client.close());
    const call = client.FetchX509SVID({});
    call.on('error', () => undefined);
    const st = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
    assert.deepEqual(ep.calls.seen, [{ method: 'FetchX509SVID', header: '' }]);
  });

  it('follows a rotation on the same stream and tells listeners', async () => {
    const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
    const { source, updates } = await open(ep);
    const before = source.getX509Svid().leaf.serialHex;
    const next = ca.svid('/web', validity());
    const updated = updates.next();
    ep.send('FetchX509SVID', x509Message(ca, [{ svid: next }]));
    await updated;
    assert.equal(source.getX509Svid().leaf.serialHex, next.leaf.serialHex);
    assert.notEqual(before, next.leaf.serialHex);
    assert.equal(ep.calls.seen.filter((c) => c.method === 'FetchX509SVID').length, 1, 'one stream, no reconnection');
  });

  it('stops serving the SVID after PERMISSION_DENIED, tells listeners, and serves again when the identity comes back', async () => {
    const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
    const { source, errors, updates } = await open(ep);
    const denied = errors.next((e) => e.code === 'ERR_WORKLOADAPI_PERMISSION_DENIED');
    const told = updates.next();
    ep.fail('FetchX509SVID', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' });
    checkError(await denied, 'ERR_WORKLOADAPI_PERMISSION_DENIED', { ...PREFIX, message: /no identity issued/ });
    await told;
    assert.throws(
      () => source.getX509Svid(),
      (e: unknown) => !!checkError(e, 'ERR_SOURCE_NO_SVID', { message: /no identity/ }),
    );
    assert.equal(source.status().denied, true);
    // The source keeps asking: the identity may arrive later.
    const asked = ep.calls.next((c) => c.method === 'FetchX509SVID');
    await asked;
    const back = updates.next();
    const again = ca.svid('/web', validity());
    ep.send('FetchX509SVID', x509Message(ca, [{ svid: again }]));
    await back;
    assert.equal(source.getX509Svid().leaf.serialHex, again.leaf.serialHex);
    assert.equal(source.status().denied, false);
  });

  it('keeps the last good SVID while the endpoint is UNAVAILABLE, and reconnects with backoff', async () => {
    const first = ca.svid('/web', validity());
    const ep = await endpoint(x509Message(ca, [{ svid: first }]));
    const attempts: number[] = [];
    const { source, errors, updates } = await open(ep, {
      jwtBundles: false,
      backoff: (attempt) => {
        attempts.push(attempt);
        return 0;
      },
    });
    const down = errors.next((e) => e.code === 'ERR_WORKLOADAPI_UNAVAILABLE');
    ep.stop();
    checkError(await down, 'ERR_WORKLOADAPI_UNAVAILABLE', PREFIX);
    assert.equal(source.getX509Svid().leaf.serialHex, first.leaf.serialHex, 'the last good SVID stays');
    // A few more refused attempts while the socket is gone; then the endpoint comes back.
    await errors.next((e) => e.code === 'ERR_WORKLOADAPI_UNAVAILABLE');
    const next = ca.svid('/web', validity());
    const back = updates.next();
    ep.x509 = x509Message(ca, [{ svid: next }]);
    await ep.start();
    await back;
    assert.equal(source.getX509Svid().leaf.serialHex, next.leaf.serialHex);
    assert.ok(attempts.length >= 2, `backoff attempts ${attempts.join()}`);
    assert.deepEqual(attempts, [...attempts.keys()], 'the backoff grows with every failed attempt');
  });

  it('refuses a message over the size bound, keeps the last good SVID and opens the stream again', async () => {
    const good = ca.svid('/web', validity());
    const ep = await endpoint(x509Message(ca, [{ svid: good }]));
    const { source, errors } = await open(ep, { jwtBundles: false });
    const refused = errors.next();
    const reopened = ep.calls.next((c) => c.method === 'FetchX509SVID');
    const huge = x509Message(ca, [{ svid: ca.svid('/web', validity()) }]);
    ep.send('FetchX509SVID', { ...huge, crl: [Buffer.alloc(MAX_MESSAGE_BYTES + 1)] });
    const err = checkError(await refused, 'ERR_WORKLOADAPI_FAILED', { ...PREFIX, message: /RESOURCE_EXHAUSTED/ });
    assert.equal(err.detail['status'], 'RESOURCE_EXHAUSTED');
    await reopened;
    assert.equal(source.getX509Svid().leaf.serialHex, good.leaf.serialHex);
  });

  describe('refuses bad messages and keeps the last good state', () => {
    const other = () => TestCa.root({ trustDomain: 'example.org', ...validity() });
    const cases: [string, (good: X509SVIDResponse) => X509SVIDResponse, RegExp][] = [
      [
        'a chain that is not DER',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, x509Svid: Buffer.from('not der at all') }] }),
        /not valid DER certificates/,
      ],
      [
        'a truncated chain',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, x509Svid: (m.svids![0]!.x509Svid as Buffer).subarray(0, 100) }] }),
        /not valid DER/,
      ],
      [
        'an empty chain',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, x509Svid: Buffer.alloc(0) }] }),
        /without certificates/,
      ],
      [
        'a key that is not PKCS#8',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, x509SvidKey: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]) }] }),
        /not unencrypted PKCS#8/,
      ],
      [
        'a key of another leaf',
        (m) => ({
          ...m,
          svids: [
            {
              ...m.svids![0]!,
              x509SvidKey: generateKeyPair('ec-p256').privateKey.export({ format: 'der', type: 'pkcs8' }),
            },
          ],
        }),
        /does not match/,
      ],
      [
        'a spiffe_id that is not the certificate’s',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, spiffeId: 'spiffe://example.org/other' }] }),
        /not for its spiffe_id/,
      ],
      [
        'an invalid spiffe_id',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, spiffeId: 'https://example.org/web' }] }),
        /invalid spiffe_id/,
      ],
      [
        'a bundle that does not verify the chain',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, bundle: other().cert.der }] }),
        /own bundle does not verify/,
      ],
      [
        'no bundle',
        (m) => ({ ...m, svids: [{ ...m.svids![0]!, bundle: Buffer.alloc(0) }] }),
        /without its trust domain's bundle/,
      ],
      ['no SVID', (m) => ({ ...m, svids: [] }), /without any SVID/],
      [
        'two SVIDs with one hint',
        (m) => ({
          ...m,
          svids: [
            { ...m.svids![0]!, hint: 'a' },
            { ...m.svids![0]!, hint: 'a' },
          ],
        }),
        /two X.509-SVIDs with the hint "a"/,
      ],
      [
        'too many SVIDs',
        (m) => ({ ...m, svids: Array.from({ length: 65 }, () => m.svids![0]!) }),
        /more than 64 X.509-SVIDs/,
      ],
      [
        'a federated bundle keyed by a non-ID',
        (m) => ({ ...m, federatedBundles: { 'not a td!': other().cert.der } }),
        /not a trust domain ID/,
      ],
      [
        'a federated bundle for its own trust domain',
        (m) => ({ ...m, federatedBundles: { 'spiffe://example.org': other().cert.der } }),
        /its own trust domain/,
      ],
    ];
    for (const [name, breakIt, why] of cases) {
      it(name, async () => {
        const good = ca.svid('/web', validity());
        const ep = await endpoint(x509Message(ca, [{ svid: good }]));
        const { source, errors } = await open(ep);
        const refused = errors.next();
        ep.send('FetchX509SVID', breakIt(x509Message(ca, [{ svid: ca.svid('/web', validity()) }])));
        checkError(await refused, 'ERR_WORKLOADAPI_BAD_RESPONSE', { ...PREFIX, message: why });
        assert.equal(source.getX509Svid().leaf.serialHex, good.leaf.serialHex);
        assert.equal(source.status().lastErrorCode, 'ERR_WORKLOADAPI_BAD_RESPONSE');
      });
    }

    it('a JWT bundle that is not a JWKS', async () => {
      const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
      const { source, errors } = await open(ep);
      const refused = errors.next();
      ep.send('FetchJWTBundles', { bundles: { [`spiffe://${TD}`]: Buffer.from('{"nope": 1}') } });
      checkError(await refused, 'ERR_WORKLOADAPI_BAD_RESPONSE', { ...PREFIX, message: /JWT bundle for "example.org"/ });
      assert.ok(source.getJwtBundleForTrustDomain(ca.trustDomain)?.findAuthority('k1'));
    });
  });

  it('picks an SVID by hint or by SPIFFE ID, and fails open() in time when none matches', async () => {
    const web = ca.svid('/web', validity());
    const db = ca.svid('/db', validity());
    const ep = await endpoint(
      x509Message(ca, [
        { svid: web, hint: 'internal' },
        { svid: db, hint: 'external' },
      ]),
    );
    const byHint = await open(ep, { pick: { hint: 'external' } });
    assert.equal(byHint.source.getX509Svid().id.toString(), 'spiffe://example.org/db');
    assert.equal(byHint.source.status().hint, 'external');
    assert.equal(byHint.source.getX509Svids().length, 2);
    const byId = await open(ep, { pick: { spiffeId: 'spiffe://example.org/web' } });
    assert.equal(byId.source.getX509Svid().leaf.serialHex, web.leaf.serialHex);
    const plain = await open(ep);
    assert.equal(plain.source.getX509Svid().id.toString(), ID, 'the first is the default');
    await rejectsCode(
      WorkloadApiSource.open({ address: ep.address, pick: { hint: 'nope' }, timeoutMs: 200, backoff: () => 0 }),
      'ERR_WORKLOADAPI_TIMEOUT',
      {
        ...PREFIX,
        message:
          /within 200 ms; last problem: source: the endpoint serves no X.509-SVID that matches pick \{"hint":"nope"\}/,
      },
    );
  });

  it('open() fails at once on INVALID_ARGUMENT, and without an address', async () => {
    const ep = await endpoint({ code: grpc.status.INVALID_ARGUMENT, details: 'bad request' } as never);
    await rejectsCode(
      WorkloadApiSource.open({ address: ep.address, backoff: () => 0 }),
      'ERR_WORKLOADAPI_INVALID_ARGUMENT',
      {
        ...PREFIX,
        message: /refused the request \(INVALID_ARGUMENT: bad request\)/,
      },
    );
    assert.equal(ep.calls.seen.filter((c) => c.method === 'FetchX509SVID').length, 1, 'not retried');
    const saved = process.env['SPIFFE_ENDPOINT_SOCKET'];
    delete process.env['SPIFFE_ENDPOINT_SOCKET'];
    try {
      await rejectsCode(WorkloadApiSource.open(), 'ERR_WORKLOADAPI_ADDRESS', PREFIX);
      await rejectsCode(WorkloadApiSource.open({ address: 'tcp://localhost:1' }), 'ERR_WORKLOADAPI_ADDRESS', PREFIX);
    } finally {
      if (saved !== undefined) process.env['SPIFFE_ENDPOINT_SOCKET'] = saved;
    }
  });

  it('fetches JWT-SVIDs and has tokens validated, with the header, bounded audiences and checked answers', async () => {
    const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
    const mint = (id: string, audience: string[]) =>
      mintJwtSvid({ id: SpiffeId.parse(id), audience, key: jwtKey.privateKey, kid: 'k1' });
    ep.jwtSvid = async (audience, spiffeId) => ({
      svids: [{ spiffeId: spiffeId || ID, svid: await mint(spiffeId || ID, audience), hint: '' }],
    });
    ep.validate = (audience, token) =>
      (token.split('.').length === 3
        ? { sub: ID, aud: [audience], n: 1, nested: { ok: true, list: [1, 'a', null] } }
        : undefined) as Record<string, unknown>;
    const { source } = await open(ep);
    const jwt = await source.fetchJwtSvid({ audience: ['svc-a', 'svc-b'] });
    assert.equal(jwt.id.toString(), ID);
    assert.deepEqual(jwt.audience, ['svc-a', 'svc-b']);
    assert.ok(!String(jwt).includes(jwt.marshal()), 'the token stays out of toString');
    const asked = await source.fetchJwtSvid({ audience: 'svc-a', spiffeId: 'spiffe://example.org/db' });
    assert.equal(asked.id.toString(), 'spiffe://example.org/db');
    const validated = await source.validateJwtSvid(jwt.marshal(), 'svc-a');
    assert.equal(validated.spiffeId.toString(), ID);
    assert.deepEqual(validated.claims, { sub: ID, aud: ['svc-a'], n: 1, nested: { ok: true, list: [1, 'a', null] } });
    await rejectsCode(source.validateJwtSvid('not-a-token', 'svc-a'), 'ERR_WORKLOADAPI_INVALID_ARGUMENT', PREFIX);
    await rejectsCode(source.fetchJwtSvid({ audience: [] }), 'ERR_WORKLOADAPI_REQUEST', PREFIX);
    await rejectsCode(
      source.fetchJwtSvid({ audience: Array.from({ length: 33 }, (_, i) => `a${i}`) }),
      'ERR_WORKLOADAPI_REQUEST',
      PREFIX,
    );
    // An answer for another ID than the one asked for, or without the audience, is refused.
    ep.jwtSvid = async () => ({ svids: [{ spiffeId: ID, svid: await mint(ID, ['svc-a']), hint: '' }] });
    await rejectsCode(
      source.fetchJwtSvid({ audience: 'svc-a', spiffeId: 'spiffe://example.org/db' }),
      'ERR_WORKLOADAPI_BAD_RESPONSE',
      {
        ...PREFIX,
        message: /another SPIFFE ID/,
      },
    );
    await rejectsCode(source.fetchJwtSvid({ audience: 'svc-z' }), 'ERR_WORKLOADAPI_BAD_RESPONSE', {
      ...PREFIX,
      message: /requested audience/,
    });
    ep.jwtSvid = undefined;
    await rejectsCode(source.fetchJwtSvid({ audience: 'svc-a' }), 'ERR_WORKLOADAPI_PERMISSION_DENIED', PREFIX);
    const unary = ep.calls.seen.filter((c) => c.method === 'FetchJWTSVID' || c.method === 'ValidateJWTSVID');
    assert.ok(unary.length >= 6 && unary.every((c) => c.header === 'true'));
    await source.close();
    await rejectsCode(source.fetchJwtSvid({ audience: 'svc-a' }), 'ERR_WORKLOADAPI_CLOSED', PREFIX);
  });

  it('keeps a JWT-SVID per jwtAudiences entry for getJwtSvid, renewed at half-life and dropped on denial', async () => {
    const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
    const asked = new Events<{ audience: string[]; spiffeId: string; token: string }>();
    let lifetimeSeconds = 3600;
    ep.jwtSvid = async (audience, spiffeId) => {
      const token = await mintJwtSvid({
        id: SpiffeId.parse(spiffeId),
        audience,
        key: jwtKey.privateKey,
        kid: 'k1',
        ttlSeconds: lifetimeSeconds,
      });
      asked.push({ audience, spiffeId, token });
      return { svids: [{ spiffeId, svid: token, hint: '' }] };
    };
    await assert.rejects(WorkloadApiSource.open({ address: ep.address, jwtAudiences: [''] }), TypeError);
    const { source, updates } = await open(ep, { jwtAudiences: ['svc-a', 'svc-b', 'svc-a'] });
    // open() waited for both tokens, each asked for the served SVID's own SPIFFE ID.
    assert.deepEqual(asked.seen.map((a) => [a.audience, a.spiffeId]).sort(), [
      [['svc-a'], ID],
      [['svc-b'], ID],
    ]);
    const first = source.getJwtSvid('svc-a');
    assert.equal(first, asked.seen.find((a) => a.audience[0] === 'svc-a')!.token);
    assertCode(() => source.getJwtSvid('svc-c'), 'ERR_SOURCE_NO_SVID', { message: /not one of/ });

    // A token renews at half its lifetime: one of two seconds renews after one second.
    lifetimeSeconds = 2;
    const other = ca.svid('/db', validity());
    const renewedForDb = asked.next((a) => a.spiffeId === 'spiffe://example.org/db' && a.audience[0] === 'svc-a');
    // A new identity gets its own tokens at once, and the old identity's is gone when it is served.
    const tokenOf = (aud: string) => {
      try {
        return source.getJwtSvid(aud);
      } catch {
        return undefined;
      }
    };
    const newIdentity = updates.next(() => source.getX509Svid().id.equals(other.id));
    ep.send('FetchX509SVID', x509Message(ca, [{ svid: other }]));
    await newIdentity;
    assert.notEqual(tokenOf('svc-a'), first, 'no token of the previous identity beside the new SVID');
    const db = await renewedForDb;
    await updates.next(() => tokenOf('svc-a') === db.token);
    const renewed = await asked.next((a) => a.audience[0] === 'svc-a');
    assert.notEqual(renewed.token, db.token);
    await updates.next(() => tokenOf('svc-a') === renewed.token);

    // PERMISSION_DENIED: no token is served any more.
    ep.fail('FetchX509SVID', { code: grpc.status.PERMISSION_DENIED, details: 'no identity' });
    await updates.next(() => source.status().denied);
    assertCode(() => source.getJwtSvid('svc-a'), 'ERR_SOURCE_NO_SVID', { message: /no current JWT-SVID/ });
  });

  it('open() with jwtAudiences fails in time when the endpoint gives no JWT-SVID', async () => {
    const ep = await endpoint(x509Message(ca, [{ svid: ca.svid('/web', validity()) }]));
    ep.jwtSvid = undefined; // PERMISSION_DENIED for every FetchJWTSVID
    await rejectsCode(
      // Long enough for the X.509-SVID and several refused token fetches on a loaded machine.
      WorkloadApiSource.open({ address: ep.address, backoff: () => 50, timeoutMs: 5000, jwtAudiences: ['svc-a'] }),
      'ERR_WORKLOADAPI_TIMEOUT',
      { ...PREFIX, message: /jwtAudiences.*PERMISSION_DENIED|jwtAudiences.*no identity/ },
    );
  });

  it('WorkloadApiClient answers one-shot questions, and fails at once with the typed error', async () => {
    const web = ca.svid('/web', validity());
    const db = ca.svid('/db', validity());
    const federated = TestCa.root({ trustDomain: 'partner.example', ...validity() });
    const ep = await endpoint(
      x509Message(ca, [{ svid: web }, { svid: db, hint: 'external' }], {
        'spiffe://partner.example': federated.cert.der,
      }),
    );
    const client = await WorkloadApiClient.connect({ address: ep.address });
    cleanups.push(() => client.close());
    const ctx = await client.fetchX509Context();
    assert.deepEqual(
      ctx.svids.map((s) => [s.svid.id.toString(), s.hint, s.svid.leaf.serialHex]),
      [
        [ID, '', web.leaf.serialHex],
        ['spiffe://example.org/db', 'external', db.leaf.serialHex],
      ],
    );
    assert.deepEqual([...ctx.bundles.keys()].sort(), ['example.org', 'partner.example']);
    const jwt = await client.fetchJwtBundles();
    assert.ok(jwt.get('example.org')?.findAuthority('k1'));
    await rejectsCode(client.fetchX509Bundles(), 'ERR_WORKLOADAPI_FAILED', { ...PREFIX, message: /UNIMPLEMENTED/ });
    ep.x509Bundles = { bundles: { [`spiffe://${TD}`]: ca.cert.der }, crl: [] };
    const bundles = await client.fetchX509Bundles();
    assert.ok(bundles.get('example.org')?.hasAuthority(ca.cert));
    ep.x509Bundles = { bundles: {}, crl: [] };
    await rejectsCode(client.fetchX509Bundles(), 'ERR_WORKLOADAPI_BAD_RESPONSE', {
      ...PREFIX,
      message: /without any bundle/,
    });
    // PERMISSION_DENIED is an answer, not a reason to wait: one call, one typed error.
    ep.fail('FetchX509SVID', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' });
    const before = ep.calls.seen.filter((c) => c.method === 'FetchX509SVID').length;
    await rejectsCode(client.fetchX509Context(), 'ERR_WORKLOADAPI_PERMISSION_DENIED', PREFIX);
    assert.equal(ep.calls.seen.filter((c) => c.method === 'FetchX509SVID').length, before + 1);
    assert.ok(ep.calls.seen.every((c) => c.header === 'true'));
    client.close();
    await rejectsCode(client.fetchJwtBundles(), 'ERR_WORKLOADAPI_CLOSED', PREFIX);
  });

  it('gives two processes mTLS with createMtlsHttpsServer, each identity from its own endpoint', async function () {
    const SERVER = `spiffe://${TD}/server`;
    const CLIENT = `spiffe://${TD}/client`;
    const serverEp = await endpoint(x509Message(ca, [{ svid: ca.svid('/server', validity()) }]));
    const clientEp = await endpoint(x509Message(ca, [{ svid: ca.svid('/client', validity()) }]));
    const { source } = await open(serverEp);
    const server = createMtlsHttpsServer(source, authorizeId(CLIENT), (req, res) => res.end(String(peerSpiffeId(req))));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as AddressInfo).port;
    const lib = join(import.meta.dirname, '..', 'lib');
    // The other process finds its endpoint as any SPIFFE client would: through SPIFFE_ENDPOINT_SOCKET.
    const client = `
      import https from 'node:https';
      const { WorkloadApiSource } = await import(${JSON.stringify(join(lib, 'source', 'index.js'))});
      const { mtlsHttpsAgent } = await import(${JSON.stringify(join(lib, 'tls', 'index.js'))});
      const { authorizeId } = await import(${JSON.stringify(join(lib, 'authorize', 'index.js'))});
      const source = await WorkloadApiSource.open();
      const agent = mtlsHttpsAgent(source, authorizeId(${JSON.stringify(SERVER)}));
      const body = await new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port: ${port}, path: '/', agent }, (res) => {
          let b = ''; res.setEncoding('utf8').on('data', (d) => (b += d)).on('end', () => resolve(b));
        }).on('error', reject);
      });
      console.log(body);
      agent.destroy();
      await source.close();
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', client], {
      env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: clientEp.address },
    });
    assert.equal(stdout.trim(), CLIENT);
  });
});

describe('WorkloadApiSource JWT-SVID renewal time', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const later = (ms: number) => new Date(at.getTime() + ms);
  it('is half the lifetime from iat (else from now), at least 1 s, and never more than a timer holds', () => {
    assert.equal(jwtRenewDelay({ issuedAt: at, expiry: later(600_000) }, at), 300_000);
    assert.equal(jwtRenewDelay({ issuedAt: undefined, expiry: later(600_000) }, later(0)), 300_000);
    assert.equal(jwtRenewDelay({ issuedAt: at, expiry: later(600_000) }, later(400_000)), 1000);
    assert.equal(jwtRenewDelay({ issuedAt: at, expiry: later(1000) }, at), 1000);
    // 100 days: half is past setTimeout's 2^31-1 ms, which would otherwise fire at once, in a loop.
    assert.equal(jwtRenewDelay({ issuedAt: at, expiry: later(100 * 86_400_000) }, at), 2 ** 31 - 1);
  });
});

describe('WorkloadApiSource reconnection backoff', () => {
  it('bounds whatever an injected backoff returns to [0, 5 min], falling back to the default for junk', () => {
    const table: [string, (attempt: number) => number, (ms: number) => boolean][] = [
      ['a plain value', () => 250, (ms) => ms === 250],
      ['a negative value', () => -5, (ms) => ms === 0],
      ['a huge value', () => 1e12, (ms) => ms === MAX_BACKOFF_MS],
      ['NaN', () => Number.NaN, (ms) => ms >= 100 && ms <= 110],
      [
        'a throw',
        () => {
          throw new Error('no');
        },
        (ms) => ms >= 100 && ms <= 110,
      ],
      ['a non-number', () => 'soon' as unknown as number, (ms) => ms >= 100 && ms <= 110],
    ];
    for (const [name, fn, ok] of table) {
      const ms = backoffDelay(fn, 0);
      assert.ok(ok(ms), `${name}: ${ms}`);
    }
  });

  it('doubles from 100 ms to 30 s by default, with at most 10% jitter', () => {
    for (const [attempt, base] of [
      [0, 100],
      [1, 200],
      [5, 3200],
      [9, 30_000],
      [1000, 30_000],
    ] as const) {
      const ms = defaultBackoff(attempt);
      assert.ok(ms >= base && ms <= base * 1.1, `attempt ${attempt}: ${ms}`);
    }
  });
});
