/**
 * The SPIFFE Workload API contract shared by svidkit's client (WorkloadApiSource in svidkit/source)
 * and its server (svidkit-agent): the proto loader, the security header, the bounds and the endpoint
 * address rules.
 */
export {
  ENDPOINT_SOCKET_ENV,
  MAX_ADDRESS_LENGTH,
  MAX_UNIX_PATH_BYTES,
  parseEndpointAddress,
  resolveEndpointAddress,
} from './address.js';
export {
  MAX_AUDIENCE_BYTES,
  MAX_AUDIENCES_PER_REQUEST,
  MAX_CLAIMS_DEPTH,
  MAX_CRLS_PER_RESPONSE,
  MAX_HINT_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_SVIDS_PER_RESPONSE,
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
  WORKLOAD_API_SERVICE,
} from './limits.js';
export {
  loadWorkloadApi,
  WORKLOAD_LOADER_OPTIONS,
  WORKLOAD_PROTO_FILE,
  WORKLOAD_PROTOS_DIR,
  type WorkloadApiModules,
} from './proto.js';
