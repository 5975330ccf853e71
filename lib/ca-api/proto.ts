/** The svidkit.ca.v1 package (Node and Admin services), loaded with the loader options of lib/grpc. */
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { ProtoGrpcType as CaProto } from '../generated/ca.js';
import { LOADER_OPTIONS } from '../grpc/protos.js';

let ca: CaProto | undefined;

/** The svidkit.ca.v1 package, loaded once. */
export function caProto(): CaProto {
  ca ??= loadPackageDefinition(loadSync('svidkit/ca/v1/ca.proto', LOADER_OPTIONS)) as unknown as CaProto;
  return ca;
}
