/**
 * The Workload API's connection table (lib/agent/workloadapi/connections.ts) between the agent's
 * net.Server and a real grpc-js server over a real Unix socket: each call is mapped back to the
 * connection it came on, connections over the bound or without credentials are closed before grpc-js
 * sees them, and a dropped connection ends its caller's calls.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { connect, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  Client,
  credentials,
  Server,
  ServerCredentials,
  status,
  type ServiceError,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { ConnectionTable } from '../lib/agent/workloadapi/connections.js';
import { listenWorkloadApi } from '../lib/agent/workloadapi/listen.js';
import { tempDir } from './helpers/agent-fs.js';

const identity = (b: Buffer) => b;
const WHO = {
  path: '/test.Peer/Who',
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
} as const;

interface Creds {
  readonly n: number;
}

describe('agent: Workload API connections handed to grpc-js', function () {
  let dir: string;
  let net: NetServer;
  let grpc: Server;
  let table: ConnectionTable<Creds>;
  let accepted: number;
  const refused: string[] = [];
  const released: number[] = [];
  let failCredentials: boolean;
  const clients: Client[] = [];

  beforeEach(async function () {
    dir = await tempDir('svidkit-wlconn-');
    accepted = 0;
    failCredentials = false;
    refused.length = 0;
    released.length = 0;
    grpc = new Server();
    grpc.addService(
      { Who: WHO },
      {
        Who: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
          const conn = table.forCall(call);
          if (!conn) return cb({ code: status.UNAUTHENTICATED, details: 'unknown connection' });
          cb(null, Buffer.from(String(conn.credentials.n)));
        },
      },
    );
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure());
    table = new ConnectionTable<Creds>({
      maxConnections: 2,
      credentialsOf: () => {
        if (failCredentials) throw new Error('no credentials');
        return { n: ++accepted };
      },
      release: (c) => released.push(c.n),
      inject: (s: Socket) => injector.injectConnection(s),
      onRefused: (reason) => refused.push(reason),
    });
    net = await listenWorkloadApi(join(dir, 'api.sock'));
    table.attach(net);
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.close();
    table.closeAll();
    grpc.forceShutdown();
    await new Promise((r) => net.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client on its own connection (no subchannel shared with the other clients). */
  function client(): Client {
    const c = new Client(`unix:${join(dir, 'api.sock')}`, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(c);
    return c;
  }

  /** Resolves once `cond` holds, looking again after each turn of the event loop (no timer guessed). */
  function until(cond: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (cond() ? resolve() : setImmediate(check));
      check();
    });
  }

  function who(c: Client): Promise<string> {
    return new Promise((resolve, reject) =>
      c.makeUnaryRequest(WHO.path, identity, identity, Buffer.alloc(0), (err, res) =>
        err ? reject(err) : resolve(res!.toString()),
      ),
    );
  }

  it('maps every call back to the connection it came on', async function () {
    const a = client();
    const b = client();
    const [a1, b1] = [await who(a), await who(b)];
    assert.notEqual(a1, b1);
    assert.equal(await who(a), a1);
    assert.equal(await who(b), b1);
    assert.equal(table.size, 2);
  });

  it('closes connections over the bound, and those whose credentials cannot be read, before grpc-js sees them', async function () {
    await who(client());
    await who(client());
    const third = connect({ path: join(dir, 'api.sock') });
    await once(third, 'close');
    assert.deepEqual(refused, ['too-many']);
    table.closeAll();
    await until(() => released.length === 2);
    failCredentials = true;
    await assert.rejects(who(client()), (err: ServiceError) => err.code === status.UNAVAILABLE);
    assert.ok(refused.includes('credentials'));
  });

  it('a closed connection releases its credentials and leaves the table', async function () {
    const a = client();
    const n = Number(await who(a));
    table.closeAll();
    await until(() => released.includes(n));
    assert.equal(table.size, 0);
  });
});
