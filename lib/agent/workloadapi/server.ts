/**
 * svidkit-agent's SPIFFE Workload API server: grpc-js over the agent's own Unix socket listener, every
 * caller identified by the kernel (lib/agent/caller) on every RPC, its identities read from the
 * agent's in-memory Workload API SVIDs (lib/agent/api-identities.ts). Streams send the full state first
 * and again on every change; a caller that has no identity gets PERMISSION_DENIED, a caller that
 * changed since it connected UNAUTHENTICATED and its connection closed.
 */
import type { Server as NetServer } from 'node:net';
import type * as GrpcJs from '@grpc/grpc-js';
import type { SpiffeBundle } from '../../bundle/index.js';
import { isSvidkitError } from '../../errors/index.js';
import { KeyedSlots } from '../../internal/slots.js';
import type { ValidateJWTSVIDRequest__Output } from '../../generated/workload/ValidateJWTSVIDRequest.js';
import type { Logger } from '../../observe/index.js';
import { SpiffeId } from '../../spiffeid/index.js';
import type { X509Svid } from '../../x509svid/index.js';
import {
  loadWorkloadApi,
  MAX_AUDIENCE_BYTES,
  MAX_AUDIENCES_PER_REQUEST,
  MAX_MESSAGE_BYTES,
  MAX_SVIDS_PER_RESPONSE,
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
} from '../../workloadapi/index.js';
import type { AgentWorkloadApi, WorkloadApiEvents, WorkloadApiRefusal, WorkloadApiStreamRpc } from '../agent-types.js';
import type { ApiSvid } from '../api-identities.js';
import { type AttestedCaller, CallerAttestor, peerCredentials, type PeerCredentials } from '../caller/index.js';
import type { WorkloadApiConfig } from '../config-workload-api.js';
import { type Connection, ConnectionTable } from './connections.js';
import { listenWorkloadApi } from './listen.js';
import { validateJwtSvid } from './validate.js';

/** How long a caller that matches entries not minted yet waits for them before the answer. */
const FIRST_SVID_WAIT_MS = 30_000;

/** How long the connection of a caller that changed may stay open for its answer to be read. */
const DROP_GRACE_MS = 2000;

/** A gRPC status to answer with, and the metric reason of the refusal (none for a malformed request). */
class CallRefused extends Error {
  constructor(
    readonly code: GrpcJs.status,
    message: string,
    readonly reason?: WorkloadApiRefusal,
  ) {
    super(message);
  }
}

/** The bundle's encodings sent on the streams, with the bundle they were made from. */
interface BundleWire {
  readonly of: SpiffeBundle | undefined;
  readonly der: Buffer;
  /** What tells two bundle states apart on a stream (base64 of `der`). */
  readonly derKey: string;
  readonly jwks: string;
}

/** An SVID's encodings sent on the X.509 stream. */
interface SvidWire {
  readonly chain: Buffer;
  readonly key: Buffer;
}

/** Options of WorkloadApiServer.start. */
export interface WorkloadApiServerOptions {
  readonly agent: AgentWorkloadApi;
  readonly config: WorkloadApiConfig;
  readonly logger: Logger;
  /** Defaults to one built from the configuration (path discovery, binary size cap). */
  readonly attestor?: CallerAttestor;
  /** Metric hooks (the daemon's Prometheus metrics). */
  readonly events?: WorkloadApiEvents;
}

/** One full-state message of a stream; `key` tells whether it differs from the last one sent. */
interface StreamState {
  readonly message: object;
  readonly key: string;
  /** How many X.509-SVIDs the message carries (FetchX509SVID only), for the served metric. */
  readonly x509Svids?: number;
}

/** An attested caller of one RPC. */
interface Caller {
  readonly conn: Connection<PeerCredentials>;
  readonly attested: AttestedCaller;
  readonly selectors: ReadonlySet<string>;
}

/** The running Workload API server of one agent. */
export class WorkloadApiServer {
  readonly #o: WorkloadApiServerOptions;
  readonly #grpc: typeof GrpcJs;
  readonly #server: GrpcJs.Server;
  readonly #attestor: CallerAttestor;
  readonly #table: ConnectionTable<PeerCredentials>;
  readonly #streams: KeyedSlots<number>;
  readonly #stops = new Set<() => void>();
  /** Connections whose caller changed: no call on them is served again while they are being closed. */
  readonly #untrusted = new WeakSet<Connection<PeerCredentials>>();
  #net: NetServer | undefined;
  #bundleMemo: BundleWire | undefined;
  readonly #svidMemo = new WeakMap<X509Svid, SvidWire>();

  private constructor(o: WorkloadApiServerOptions, grpc: typeof GrpcJs, service: GrpcJs.ServiceDefinition) {
    this.#o = o;
    this.#grpc = grpc;
    this.#streams = new KeyedSlots(o.config.maxStreamsPerCaller);
    this.#attestor =
      o.attestor ?? new CallerAttestor({ discoverPath: o.config.discoverPath, maxBinarySize: o.config.maxBinaryBytes });
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // HTTP/2 would otherwise let one connection run about 2^31 calls at once, each attested.
      'grpc.max_concurrent_streams': maxCallsPerConnection(o.config),
    });
    this.#server.addService(service, this.#handlers());
    const injector = this.#server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.#table = new ConnectionTable<PeerCredentials>({
      maxConnections: o.config.maxConnections,
      credentialsOf: (socket) => peerCredentials(socket),
      release: (c) => c.close(),
      inject: (socket) => injector.injectConnection(socket),
      onRefused: (reason, err) => {
        this.#emit((e) => e.refused?.(reason === 'too-many' ? 'too_many_connections' : 'no_credentials'));
        this.#o.logger.warn({ reason, err: describe(err) }, 'Workload API connection refused');
      },
    });
  }

  /** Calls a metric hook; a hook that throws must not change what a caller is answered. */
  #emit(call: (events: WorkloadApiEvents) => void): void {
    const events = this.#o.events;
    if (!events) return;
    try {
      call(events);
    } catch (err) {
      this.#o.logger.warn({ err: describe(err) }, 'Workload API metric hook failed');
    }
  }

  /** Loads the Workload API, binds the socket and starts serving. */
  static async start(o: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
    const { grpc, proto } = await loadWorkloadApi();
    const s = new WorkloadApiServer(o, grpc, proto.SpiffeWorkloadAPI.service);
    s.#net = await listenWorkloadApi(o.config.socketPath);
    s.#table.attach(s.#net);
    o.logger.info({ socket: o.config.socketPath }, 'Workload API serving');
    return s;
  }

  /** Open connections (for metrics). */
  get connections(): number {
    return this.#table.size;
  }

  /** Stops accepting, ends every stream and closes every connection. */
  async close(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    await new Promise<void>((resolve) => (this.#net ? this.#net.close(() => resolve()) : resolve()));
    this.#table.closeAll();
    this.#server.forceShutdown();
  }

  #status(code: keyof typeof GrpcJs.status): GrpcJs.status {
    return this.#grpc.status[code];
  }

  /** The header check, the connection, the kernel's attestation; throws CallRefused. */
  async #caller(call: { metadata: GrpcJs.Metadata; getPeer(): string }): Promise<Caller> {
    const header = call.metadata.get(WORKLOAD_API_HEADER);
    if (header.length !== 1 || header[0] !== WORKLOAD_API_HEADER_VALUE) {
      throw new CallRefused(this.#status('INVALID_ARGUMENT'), `security header missing from request`, 'no_header');
    }
    const conn = this.#table.forCall(call);
    if (!conn || this.#untrusted.has(conn)) {
      throw new CallRefused(
        this.#status('UNAUTHENTICATED'),
        'the connection is not known to the agent',
        'unknown_connection',
      );
    }
    let attested: AttestedCaller;
    try {
      attested = await this.#attestor.attest(conn.credentials);
    } catch (err) {
      this.#dropAfterReply(conn);
      throw new CallRefused(
        this.#status('UNAUTHENTICATED'),
        `the caller could not be attested: ${describe(err)}`,
        'attest_failed',
      );
    }
    return { conn, attested, selectors: new Set(attested.selectors) };
  }

  /**
   * Closes the connection of a caller that changed, after its UNAUTHENTICATED answer: destroying the
   * socket at once would cut that answer off, and the client would see a bare disconnect. The answer is
   * handed to the HTTP/2 session in the ticks after the refusal; the shutdown is queued behind it, and
   * the socket is destroyed after DROP_GRACE_MS whatever the peer does. Meanwhile every call on the
   * connection is refused (#untrusted), so nothing depends on that timing but the answer's delivery.
   */
  #dropAfterReply(conn: Connection<PeerCredentials>): void {
    if (this.#untrusted.has(conn)) return;
    this.#untrusted.add(conn);
    setImmediate(() => setImmediate(() => conn.socket.end()));
    setTimeout(() => this.#table.drop(conn), DROP_GRACE_MS).unref();
  }

  /** SPIRE's re-check after matching: the process that asked must still be the one that connected. */
  async #recheck(c: Caller): Promise<void> {
    try {
      await this.#attestor.recheck(c.attested);
    } catch (err) {
      this.#dropAfterReply(c.conn);
      throw new CallRefused(this.#status('UNAUTHENTICATED'), `the caller changed: ${describe(err)}`, 'caller_changed');
    }
  }

  /** The caller's SVIDs, waiting (bounded) for entries it matches that have none yet, or asking for a sync. */
  async #svidsOf(c: Caller): Promise<ApiSvid[]> {
    const ids = this.#o.agent.identities;
    let entries = ids.entriesFor(c.selectors);
    if (entries.length === 0) {
      await this.#o.agent.requestEntrySync();
      entries = ids.entriesFor(c.selectors);
    }
    const wanted = entries.map((e) => e.id);
    if (!ids.settled(wanted)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, FIRST_SVID_WAIT_MS);
        const stop = ids.subscribe(() => {
          if (ids.settled(wanted)) done();
        });
        function done(): void {
          clearTimeout(timer);
          stop();
          resolve();
        }
      });
    }
    return ids.svidsFor(c.selectors).slice(0, MAX_SVIDS_PER_RESPONSE);
  }

  /**
   * The current bundle as the streams send it, encoded once per bundle: one change fans out to every
   * open stream, and each of them would otherwise encode the same bytes again.
   */
  #bundleWire(): BundleWire {
    const b = this.#o.agent.bundle();
    let memo = this.#bundleMemo;
    if (memo === undefined || memo.of !== b) {
      const der = Buffer.concat((b?.x509.authorities() ?? []).map((c) => c.der));
      memo = { of: b, der, derKey: der.toString('base64'), jwks: JSON.stringify(b?.jwt.toJwks() ?? { keys: [] }) };
      this.#bundleMemo = memo;
    }
    return memo;
  }

  /** An SVID's chain and PKCS#8 key as sent, encoded once per SVID (held only as long as the SVID is). */
  #svidWire(svid: X509Svid): SvidWire {
    let wire = this.#svidMemo.get(svid);
    if (!wire) {
      wire = {
        chain: Buffer.concat(svid.certificates.map((c) => c.der)),
        key: svid.privateKey.export({ type: 'pkcs8', format: 'der' }),
      };
      this.#svidMemo.set(svid, wire);
    }
    return wire;
  }

  #x509Response(svids: readonly ApiSvid[], bundle: Buffer): object {
    return {
      svids: svids.map(({ svid }) => {
        const wire = this.#svidWire(svid);
        return { spiffeId: svid.id.toString(), x509Svid: wire.chain, x509SvidKey: wire.key, bundle, hint: '' };
      }),
      crl: [],
      federatedBundles: {},
    };
  }

  /** Counts a stream against its caller's uid; throws RESOURCE_EXHAUSTED over the bound. */
  #openStream(uid: number): () => void {
    const release = this.#streams.take(uid);
    if (!release) {
      throw new CallRefused(
        this.#status('RESOURCE_EXHAUSTED'),
        `at most ${this.#streams.max} open streams per caller`,
        'resource_exhausted',
      );
    }
    return release;
  }

  /**
   * Runs a server stream: `state` gives the full message for the caller now, or undefined when the caller
   * has no identity any more (the stream then ends with PERMISSION_DENIED). A message is sent first and
   * again on every change that alters it; a caller that does not read gets only the latest state when it
   * does (nothing piles up). `rpc` names the stream in the metrics.
   */
  async #stream(
    rpc: WorkloadApiStreamRpc,
    call: GrpcJs.ServerWritableStream<unknown, unknown>,
    state: (c: Caller) => Promise<StreamState | undefined>,
  ): Promise<void> {
    let release: (() => void) | undefined;
    try {
      const c = await this.#caller(call);
      release = this.#openStream(c.attested.uid);
      const first = await state(c);
      if (!first) throw new CallRefused(this.#status('PERMISSION_DENIED'), 'no identity issued', 'no_identity');
      await this.#recheck(c);
      let lastKey = first.key;
      let waitingDrain = false;
      let dirty = false;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        stopListening();
        this.#stops.delete(stopAll);
        release?.();
        this.#emit((e) => e.streamClosed?.(rpc));
      };
      const send = (s: StreamState): boolean => {
        if (s.x509Svids) this.#emit((e) => e.served?.('x509', s.x509Svids!));
        return call.write(s.message);
      };
      const push = async () => {
        if (ended) return;
        if (waitingDrain) {
          dirty = true;
          return;
        }
        const next = await state(c).catch(() => undefined);
        if (ended) return;
        if (!next) {
          end();
          this.#emit((e) => e.refused?.('no_identity'));
          call.emit('error', { code: this.#status('PERMISSION_DENIED'), details: 'no identity issued' });
          return;
        }
        if (next.key === lastKey) return;
        lastKey = next.key;
        if (!send(next)) {
          waitingDrain = true;
          call.once('drain', () => {
            waitingDrain = false;
            if (dirty) {
              dirty = false;
              void push();
            }
          });
        }
      };
      const stopListening = this.#o.agent.identities.subscribe(() => void push());
      const stopAll = () => {
        end();
        call.end();
      };
      this.#stops.add(stopAll);
      call.on('cancelled', end);
      call.on('close', end);
      this.#emit((e) => e.streamOpened?.(rpc));
      // A caller that went away while it was attested or waited for its SVIDs fired 'cancelled' before the
      // listener above existed: without this its slot and its subscription would stay taken for good.
      if (call.cancelled) {
        end();
        return;
      }
      send(first);
    } catch (err) {
      release?.();
      const { code, details } = this.#refusal(err);
      call.emit('error', { code, details });
    }
  }

  #refusal(err: unknown): { code: GrpcJs.status; details: string } {
    if (err instanceof CallRefused) {
      const { reason } = err;
      if (reason) this.#emit((e) => e.refused?.(reason));
      return { code: err.code, details: err.message.toWellFormed() };
    }
    this.#o.logger.error({ err: describe(err) }, 'Workload API call failed');
    return { code: this.#status('UNAVAILABLE'), details: 'the agent cannot answer now' };
  }

  #handlers(): GrpcJs.UntypedServiceImplementation {
    const unimplemented = (_call: unknown, cb: GrpcJs.sendUnaryData<unknown>) =>
      cb({ code: this.#status('UNIMPLEMENTED'), details: 'WIT-SVIDs are not supported' });
    return {
      FetchX509SVID: (call: GrpcJs.ServerWritableStream<unknown, unknown>) =>
        void this.#stream('FetchX509SVID', call, async (c) => {
          const svids = await this.#svidsOf(c);
          if (svids.length === 0) return undefined;
          const bundle = this.#bundleWire();
          return {
            message: this.#x509Response(svids, bundle.der),
            key: x509Key(svids, bundle.derKey),
            x509Svids: svids.length,
          };
        }),
      FetchX509Bundles: (call: GrpcJs.ServerWritableStream<unknown, unknown>) =>
        void this.#stream('FetchX509Bundles', call, async (c) => {
          if ((await this.#svidsOf(c)).length === 0) return undefined;
          const td = this.#o.agent.trustDomain.idString();
          const { der, derKey } = this.#bundleWire();
          return { message: { crl: [], bundles: { [td]: der } }, key: derKey };
        }),
      FetchJWTBundles: (call: GrpcJs.ServerWritableStream<unknown, unknown>) =>
        void this.#stream('FetchJWTBundles', call, async (c) => {
          if ((await this.#svidsOf(c)).length === 0) return undefined;
          const td = this.#o.agent.trustDomain.idString();
          const { jwks } = this.#bundleWire();
          return { message: { bundles: { [td]: Buffer.from(jwks) } }, key: jwks };
        }),
      FetchJWTSVID: (
        call: GrpcJs.ServerUnaryCall<{ audience: string[]; spiffeId: string }, unknown>,
        cb: GrpcJs.sendUnaryData<unknown>,
      ) =>
        void this.#fetchJwt(call).then(
          (res) => cb(null, res),
          (err: unknown) => cb(this.#refusal(err)),
        ),
      ValidateJWTSVID: (
        call: GrpcJs.ServerUnaryCall<ValidateJWTSVIDRequest__Output, unknown>,
        cb: GrpcJs.sendUnaryData<unknown>,
      ) =>
        void validateJwtSvid(call.request, {
          attest: () => this.#caller(call),
          recheck: (c) => this.#recheck(c),
          bundle: () => this.#o.agent.bundle(),
          clock: this.#o.agent.clock,
          refuse: (code, message) => new CallRefused(this.#status(code), message),
        }).then(
          (res) => cb(null, res),
          (err: unknown) => cb(this.#refusal(err)),
        ),
      FetchWITSVID: unimplemented,
      FetchWITBundles: (call: GrpcJs.ServerWritableStream<unknown, unknown>) =>
        call.emit('error', { code: this.#status('UNIMPLEMENTED'), details: 'WIT-SVIDs are not supported' }),
    };
  }

  async #fetchJwt(call: GrpcJs.ServerUnaryCall<{ audience: string[]; spiffeId: string }, unknown>): Promise<object> {
    const { audience, spiffeId } = call.request;
    const bad = (m: string) => new CallRefused(this.#status('INVALID_ARGUMENT'), m);
    if (audience.length === 0) throw bad('audience must be specified');
    if (audience.length > MAX_AUDIENCES_PER_REQUEST) throw bad(`at most ${MAX_AUDIENCES_PER_REQUEST} audiences`);
    if (audience.some((a) => a.length === 0 || Buffer.byteLength(a) > MAX_AUDIENCE_BYTES)) {
      throw bad(`each audience must be 1 to ${MAX_AUDIENCE_BYTES} bytes`);
    }
    let asked: SpiffeId | undefined;
    if (spiffeId !== '') {
      try {
        asked = SpiffeId.parse(spiffeId);
      } catch (err) {
        throw bad(`spiffe_id is not a SPIFFE ID (${isSvidkitError(err) ? err.code : 'invalid'})`);
      }
    }
    const c = await this.#caller(call);
    let svids = await this.#svidsOf(c);
    if (asked) svids = svids.filter((s) => s.svid.id.equals(asked));
    if (svids.length === 0) {
      throw new CallRefused(this.#status('PERMISSION_DENIED'), 'no identity issued', 'no_identity');
    }
    await this.#recheck(c);
    const out = [];
    for (const s of svids) {
      out.push({ spiffeId: s.svid.id.toString(), svid: await this.#o.agent.jwtSvid(s.entry.id, audience), hint: '' });
    }
    this.#emit((e) => e.served?.('jwt', out.length));
    return { svids: out };
  }
}

/** Fewest concurrent calls a connection may carry: a client puts its streams and unary calls on one. */
export const MIN_CALLS_PER_CONNECTION = 128;

/** Concurrent calls (HTTP/2 streams) one connection may carry: enough for every stream a caller may open. */
export function maxCallsPerConnection(config: Pick<WorkloadApiConfig, 'maxStreamsPerCaller'>): number {
  return Math.max(MIN_CALLS_PER_CONNECTION, config.maxStreamsPerCaller + 64);
}

/** The identity of an X509SVIDResponse's content: serials and the bundle. */
function x509Key(svids: readonly ApiSvid[], bundleKey: string): string {
  return `${svids.map((s) => `${s.entry.id}:${s.svid.leaf.serialHex}`).join(',')}|${bundleKey}`;
}

function describe(err: unknown): string {
  if (isSvidkitError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
