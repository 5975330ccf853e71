/**
 * Loads service definitions from protos/ with @grpc/proto-loader (the CA's own: lib/ca-api/proto.ts). The loader options here
 * must match the `gen:proto` script, so that the generated types in lib/generated describe exactly
 * the objects grpc-js hands to handlers; a test regenerates the types and fails when they are stale.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type { ProtoGrpcType as HealthProto } from '../generated/health.js';

/** The protos/ directory shipped with the package. */
export const PROTOS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'protos');

/** Loader options; keep in step with the flags of the gen:proto script in package.json. */
export const LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
};

let health: HealthProto | undefined;

/** The grpc.health.v1 package, loaded once. */
export function healthProto(): HealthProto {
  health ??= loadPackageDefinition(loadSync('grpc/health/v1/health.proto', LOADER_OPTIONS)) as unknown as HealthProto;
  return health;
}
