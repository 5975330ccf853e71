/**
 * Loads the Workload API service definition from protos/spiffe/workload/workload.proto.
 *
 * @grpc/grpc-js and @grpc/proto-loader are optional peers of the library, and every module but
 * svidkit/grpc must load without them, so both are imported here at first use, never at module load.
 * The loader options are lib/grpc/protos.ts's (a test keeps them equal) so that the generated types in
 * lib/generated/workload describe exactly the objects grpc-js hands over. google/protobuf/struct.proto
 * needs no file under protos/: protobufjs resolves google/protobuf/* imports to its bundled copies
 * before it looks at includeDirs.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as GrpcJs from '@grpc/grpc-js';
import type { Options } from '@grpc/proto-loader';
import { SvidkitError } from '../errors/index.js';
import type { ProtoGrpcType as WorkloadProto } from '../generated/workload/workload.js';

/** The protos/ directory shipped with the package. */
export const WORKLOAD_PROTOS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'protos');

/** The Workload API proto, relative to WORKLOAD_PROTOS_DIR. */
export const WORKLOAD_PROTO_FILE = 'spiffe/workload/workload.proto';

/** Loader options; the same as lib/grpc/protos.ts's LOADER_OPTIONS, with this package's protos/ directory. */
export const WORKLOAD_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [WORKLOAD_PROTOS_DIR],
};

/** grpc-js and the loaded Workload API, as loadWorkloadApi gives them. */
export interface WorkloadApiModules {
  /** The @grpc/grpc-js module. */
  readonly grpc: typeof GrpcJs;
  /** The package definition: SpiffeWorkloadAPI (client constructor and `service`) and its messages. */
  readonly proto: WorkloadProto;
}

let loading: Promise<WorkloadApiModules> | undefined;

async function importPeer<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    throw new SvidkitError(
      'ERR_WORKLOADAPI_GRPC_MISSING',
      `workloadapi: the Workload API needs ${name}; install @grpc/grpc-js and @grpc/proto-loader beside svidkit`,
      { cause },
    );
  }
}

async function load(): Promise<WorkloadApiModules> {
  const grpc = await importPeer('@grpc/grpc-js', () => import('@grpc/grpc-js'));
  const loader = await importPeer('@grpc/proto-loader', () => import('@grpc/proto-loader'));
  const definition = loader.loadSync(WORKLOAD_PROTO_FILE, WORKLOAD_LOADER_OPTIONS);
  return { grpc, proto: grpc.loadPackageDefinition(definition) as unknown as WorkloadProto };
}

/**
 * grpc-js and the Workload API definition, loaded once. ERR_WORKLOADAPI_GRPC_MISSING when either peer
 * package is not installed (a later call tries again).
 */
export function loadWorkloadApi(): Promise<WorkloadApiModules> {
  loading ??= load().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}
