/**
 * The mesh's two demo workloads, written as a service author would with the library: "web" serves
 * HTTPS and "orders" serves gRPC; each calls the other over SPIFFE mTLS with a JWT-SVID for the other's
 * audience, and each authorizes exactly the other's SPIFFE ID. Either may read its identity from the
 * agent's files (FileSource) or from the agent's Workload API (WorkloadApiSource): the code is the same,
 * and rotations apply without a restart.
 */
import { once } from 'node:events';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  Server,
  type ServiceError,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { authorizeId } from '../authorize/index.js';
import {
  authorizeService,
  callerId,
  jwtCallCredentials,
  LOADER_OPTIONS,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  PROTOS_DIR,
  requireJwtSvidForService,
} from '../grpc/index.js';
import { getJwtSvidOf, jwtHeaderFromSource, JwtValidator, requireJwtSvid } from '../jwtauth/index.js';
import type { JwtSource, JwtSvidSource, X509Source } from '../source/index.js';
import { createMtlsHttpsServer, mtlsHttpsAgent, peerSpiffeId } from '../tls/index.js';

/** What a demo service reads its identity from: a FileSource or a WorkloadApiSource with jwtAudiences. */
export type DemoSource = X509Source & JwtSource & JwtSvidSource;

/** What one demo call reports. */
export interface CallReport {
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  readonly line: string;
}

interface Order {
  id: string;
  item: string;
  servedTo: string;
}
type OrdersClient = InstanceType<ReturnType<typeof ordersService>>;

function ordersService() {
  const def = loadSync(join('svidkit', 'demo', 'v1', 'orders.proto'), { ...LOADER_OPTIONS, includeDirs: [PROTOS_DIR] });
  const pkg = loadPackageDefinition(def) as unknown as {
    svidkit: {
      demo: {
        v1: {
          Orders: (new (
            address: string,
            creds: ReturnType<typeof credentials.createInsecure>,
          ) => {
            GetOrder(
              req: { id: string },
              options: { deadline: number },
              cb: (err: ServiceError | null, res?: Order) => void,
            ): unknown;
            close(): void;
          }) & { service: Parameters<Server['addService']>[0] };
        };
      };
    };
  };
  return pkg.svidkit.demo.v1.Orders;
}

/** The two demo services, running. */
export class DemoServices {
  readonly #web: https.Server;
  readonly #orders: Server;
  readonly #closers: (() => void)[];
  readonly #ordersClient: OrdersClient;
  readonly #httpsAgent: https.Agent;
  readonly #webPort: number;
  readonly #webSource: DemoSource;
  readonly #ordersSource: DemoSource;
  readonly #webId: string;
  #sequence = 0;

  private constructor(init: {
    web: https.Server;
    orders: Server;
    closers: (() => void)[];
    ordersClient: OrdersClient;
    httpsAgent: https.Agent;
    webPort: number;
    webSource: DemoSource;
    ordersSource: DemoSource;
    webId: string;
  }) {
    this.#web = init.web;
    this.#orders = init.orders;
    this.#closers = init.closers;
    this.#ordersClient = init.ordersClient;
    this.#httpsAgent = init.httpsAgent;
    this.#webPort = init.webPort;
    this.#webSource = init.webSource;
    this.#ordersSource = init.ordersSource;
    this.#webId = init.webId;
  }

  /** Starts both services on loopback ports with the given sources and SPIFFE IDs. */
  static async start(opts: {
    webSource: DemoSource;
    ordersSource: DemoSource;
    webId: string;
    ordersId: string;
  }): Promise<DemoServices> {
    const { webSource, ordersSource, webId, ordersId } = opts;
    const closers: (() => void)[] = [];

    // web: HTTPS, only orders may call, with a JWT-SVID for web's audience whose subject is the mTLS peer.
    const webValidator = new JwtValidator({ source: webSource, audience: webId, requireSubjectEquals: true });
    closers.push(() => webValidator.close());
    const checkJwt = requireJwtSvid(webValidator, { peerIdOf: (req) => peerSpiffeId(req) });
    const web = createMtlsHttpsServer(webSource, authorizeId(ordersId), (req, res) => {
      void checkJwt(req, res, () => {
        const jwt = getJwtSvidOf(req);
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ stock: 42, served_to: String(peerSpiffeId(req)), jwt_subject: String(jwt?.id) }));
      });
    });
    web.on('tlsClientError', () => {}); // refusals are the point; the caller reports them
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    const webPort = (web.address() as AddressInfo).port;

    // orders: gRPC, only web may call GetOrder, with a JWT-SVID for orders' audience.
    const Orders = ordersService();
    const ordersValidator = new JwtValidator({ source: ordersSource, audience: ordersId, requireSubjectEquals: true });
    closers.push(() => ordersValidator.close());
    const handlers = {
      GetOrder: (call: ServerUnaryCall<{ id: string }, Order>, cb: sendUnaryData<Order>) => {
        cb(null, { id: call.request.id, item: 'a blue teapot', servedTo: String(callerId(call)) });
      },
    };
    const orders = new Server();
    orders.addService(
      Orders.service,
      authorizeService(requireJwtSvidForService(handlers, ordersValidator), ordersSource, {
        GetOrder: authorizeId(webId),
      }),
    );
    const serverCreds = mtlsServerCredentials(ordersSource);
    closers.push(() => serverCreds.close());
    const ordersPort = await new Promise<number>((resolve, reject) =>
      orders.bindAsync('127.0.0.1:0', serverCreds.credentials, (err, port) => (err ? reject(err) : resolve(port))),
    );

    // The callers: web calls orders over gRPC, orders calls web over HTTPS.
    const channel = mtlsChannelCredentials(webSource, authorizeId(ordersId));
    closers.push(() => channel.close());
    const ordersClient = new Orders(
      // By name: a literal IP as TLS server name is deprecated (RFC 6066).
      `localhost:${ordersPort}`,
      credentials.combineChannelCredentials(channel.credentials, jwtCallCredentials(webSource, ordersId)),
    );
    const httpsAgent = mtlsHttpsAgent(ordersSource, authorizeId(webId));
    return new DemoServices({
      web,
      orders,
      closers,
      ordersClient,
      httpsAgent,
      webPort,
      webSource,
      ordersSource,
      webId,
    });
  }

  /** web → orders: one gRPC GetOrder call. */
  callOrders(): Promise<CallReport> {
    const id = `o-${++this.#sequence}`;
    const serial = this.#webSource.getX509Svid().leaf.serialHex.slice(0, 8);
    return new Promise((resolve) => {
      this.#ordersClient.GetOrder({ id }, { deadline: Date.now() + 5000 }, (err, res) => {
        resolve(
          err || !res
            ? { from: 'web', to: 'orders', ok: false, line: `gRPC GetOrder failed: ${err?.details ?? 'no answer'}` }
            : {
                from: 'web',
                to: 'orders',
                ok: true,
                line: `gRPC GetOrder ${res.id} OK over mTLS + JWT-SVID; orders saw caller ${res.servedTo} (web cert ${serial}…)`,
              },
        );
      });
    });
  }

  /** orders → web: one HTTPS GET with a JWT-SVID for web's audience. */
  callWeb(): Promise<CallReport> {
    const serial = this.#ordersSource.getX509Svid().leaf.serialHex.slice(0, 8);
    const fail = (why: string): CallReport => ({
      from: 'orders',
      to: 'web',
      ok: false,
      line: `HTTPS GET /stock failed: ${why}`,
    });
    let authorization: string;
    try {
      authorization = jwtHeaderFromSource(this.#ordersSource, this.#webId);
    } catch (err) {
      return Promise.resolve(fail((err as Error).message));
    }
    return new Promise((resolve) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port: this.#webPort,
          path: '/stock',
          agent: this.#httpsAgent,
          headers: { authorization },
          timeout: 5000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (body.length < 4096) body += d;
          });
          res.on('end', () => {
            if (res.statusCode !== 200) return resolve(fail(`HTTP ${res.statusCode}`));
            let servedTo = '?';
            try {
              servedTo = String((JSON.parse(body) as { served_to?: unknown }).served_to);
            } catch {
              // a non-JSON body: report it as unknown
            }
            resolve({
              from: 'orders',
              to: 'web',
              ok: true,
              line: `HTTPS GET /stock 200 over mTLS + JWT-SVID; web saw caller ${servedTo} and answered as ${String(peerSpiffeId(res))} (orders cert ${serial}…)`,
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => resolve(fail(err.message)));
    });
  }

  /** Stops both servers and the callers. */
  async close(): Promise<void> {
    this.#ordersClient.close();
    this.#httpsAgent.destroy();
    this.#orders.forceShutdown();
    this.#web.closeAllConnections();
    await new Promise<void>((resolve) => this.#web.close(() => resolve()));
    for (const close of this.#closers) close();
  }
}
