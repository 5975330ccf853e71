/** Small gRPC pieces the library's gRPC tests share: binding a server on loopback and one health check. */
import type { Server, ServerCredentials, ServiceError } from '@grpc/grpc-js';
import type { HealthCheckResponse__Output } from '../../lib/generated/grpc/health/v1/HealthCheckResponse.js';
import type { healthProto } from '../../lib/grpc/protos.js';

/** A client of grpc.health.v1.Health. */
export type HealthClient = InstanceType<ReturnType<typeof healthProto>['grpc']['health']['v1']['Health']>;

/** Binds `server` to an ephemeral loopback port with `creds`; resolves with the port. */
export function bindLoopback(server: Server, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/** One Check call for the whole server, with a 5 s deadline; rejects with the call's ServiceError. */
export function checkHealth(c: HealthClient): Promise<HealthCheckResponse__Output> {
  return new Promise((resolve, reject) =>
    c.Check(
      { service: '' },
      { deadline: Date.now() + 5000 },
      (err: ServiceError | null, res?: HealthCheckResponse__Output) => (err ? reject(err) : resolve(res!)),
    ),
  );
}
