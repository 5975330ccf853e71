/**
 * The standard gRPC health service (grpc.health.v1) with statuses a daemon sets as it starts, becomes
 * ready and drains. Watchers get the current status at once and every change after it.
 */
import { type Server, type ServerWritableStream, status as grpcStatus } from '@grpc/grpc-js';
import type { HealthHandlers } from '../generated/grpc/health/v1/Health.js';
import type { HealthCheckRequest__Output } from '../generated/grpc/health/v1/HealthCheckRequest.js';
import type { HealthCheckResponse } from '../generated/grpc/health/v1/HealthCheckResponse.js';
import { healthProto } from './protos.js';

/** A serving status a daemon can set. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

type Watcher = ServerWritableStream<HealthCheckRequest__Output, HealthCheckResponse>;

/** Longest service name accepted in a request; names are ours and short. */
const MAX_SERVICE_NAME = 256;
/** Most concurrent Watch streams; a health checker needs one or two. */
const MAX_WATCHERS = 64;

/** Health statuses by service name ("" is the whole server). */
export class HealthService {
  readonly #status = new Map<string, ServingStatus>();
  readonly #watchers = new Set<{ service: string; call: Watcher }>();

  /** Starts with every named service (and the server, "") at NOT_SERVING. */
  constructor(services: readonly string[] = []) {
    for (const s of ['', ...services]) this.#status.set(s, 'NOT_SERVING');
  }

  /** Sets a service's status and tells its watchers. */
  setStatus(service: string, status: ServingStatus): void {
    if (this.#status.get(service) === status) return;
    this.#status.set(service, status);
    for (const w of this.#watchers) if (w.service === service) w.call.write({ status });
  }

  /** Sets every service to NOT_SERVING (used while draining) and ends the watch streams. */
  shutdown(): void {
    for (const s of this.#status.keys()) this.setStatus(s, 'NOT_SERVING');
    for (const w of this.#watchers) w.call.end();
    this.#watchers.clear();
  }

  /** The current status, or undefined for an unknown service. */
  getStatus(service: string): ServingStatus | undefined {
    return this.#status.get(service);
  }

  /** The grpc-js handlers. */
  handlers(): HealthHandlers {
    return {
      Check: (call, callback) => {
        const service = call.request.service;
        const status = service.length <= MAX_SERVICE_NAME ? this.#status.get(service) : undefined;
        if (status === undefined) {
          callback({ code: grpcStatus.NOT_FOUND, details: 'unknown service' });
          return;
        }
        callback(null, { status });
      },
      Watch: (call) => {
        const service = call.request.service;
        if (service.length > MAX_SERVICE_NAME || this.#watchers.size >= MAX_WATCHERS) {
          call.emit('error', { code: grpcStatus.RESOURCE_EXHAUSTED, details: 'too many health watchers' });
          return;
        }
        const entry = { service, call };
        this.#watchers.add(entry);
        call.write({ status: this.#status.get(service) ?? 'SERVICE_UNKNOWN' });
        call.on('cancelled', () => this.#watchers.delete(entry));
        call.on('close', () => this.#watchers.delete(entry));
      },
    };
  }

  /** Registers the health service on a grpc-js server. */
  addTo(server: Server): void {
    server.addService(healthProto().grpc.health.v1.Health.service, this.handlers());
  }
}
