/**
 * Two workloads over gRPC with SPIFFE mTLS and a JWT-SVID audience check, each reading its SVID,
 * bundles and JWT-SVIDs from the files an svidkit-agent keeps fresh:
 *
 *   node dist/examples/grpc-pair.js <dir>
 *
 * where <dir>/server and <dir>/client are the agent's output directories for
 * spiffe://example.org/ns/demo/sa/server and spiffe://example.org/ns/demo/sa/client, and the client's
 * workload config lists the server's ID under jwt_audiences. The service is grpc.health.v1 for brevity.
 */
import { join } from 'node:path';
import { credentials, Server } from '@grpc/grpc-js';
import { authorizeId } from '../lib/authorize/index.js';
import {
  authorizeService,
  callerId,
  HealthService,
  healthProto,
  jwtCallCredentials,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  requireJwtSvidForService,
} from '../lib/grpc/index.js';
import { JwtValidator } from '../lib/jwtauth/index.js';
import { FileSource } from '../lib/source/index.js';

const SERVER_ID = 'spiffe://example.org/ns/demo/sa/server';
const CLIENT_ID = 'spiffe://example.org/ns/demo/sa/client';

async function main(dir: string): Promise<void> {
  const serverSource = await FileSource.open(join(dir, 'server'));
  const clientSource = await FileSource.open(join(dir, 'client'));

  // Server: mTLS with the demo client only, then a JWT-SVID for our audience whose subject is that client.
  const health = new HealthService();
  health.setStatus('', 'SERVING');
  const handlers = health.handlers();
  const check: typeof handlers.Check = (call, cb) => {
    process.stdout.write(`server: call from ${String(callerId(call))}\n`);
    handlers.Check(call, cb);
  };
  const validator = new JwtValidator({ source: serverSource, audience: SERVER_ID, requireSubjectEquals: true });
  const server = new Server();
  server.addService(
    healthProto().grpc.health.v1.Health.service,
    authorizeService(
      requireJwtSvidForService({ ...handlers, Check: check }, validator),
      serverSource,
      authorizeId(CLIENT_ID),
    ),
  );
  const serverCreds = mtlsServerCredentials(serverSource);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCreds.credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );

  // Client: accepts only the demo server and sends its JWT-SVID for the server's audience.
  const channel = mtlsChannelCredentials(clientSource, authorizeId(SERVER_ID));
  const client = new (healthProto().grpc.health.v1.Health)(
    `127.0.0.1:${port}`,
    credentials.combineChannelCredentials(channel.credentials, jwtCallCredentials(clientSource, SERVER_ID)),
  );
  try {
    const status = await new Promise<string>((resolve, reject) =>
      client.Check({ service: '' }, (err, res) => (err ? reject(err) : resolve(res!.status))),
    );
    process.stdout.write(`client: ${SERVER_ID} answered ${status}\n`);
  } finally {
    client.close();
    server.forceShutdown();
    serverCreds.close();
    channel.close();
    validator.close();
    await Promise.all([serverSource.close(), clientSource.close()]);
  }
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node dist/examples/grpc-pair.js <dir with server/ and client/>\n');
  process.exit(2);
}
main(dir).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
