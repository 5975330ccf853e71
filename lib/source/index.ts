/** Sources of SVIDs and bundles that notify listeners on change. */
export {
  DEFAULT_DEBOUNCE_MS,
  DEFAULT_POLL_INTERVAL_MS,
  FileSource,
  FileSourceError,
  type FileSourceOptions,
  type FileSourceStatus,
} from './file.js';
// The directory layout FileSource reads has its own home (lib/layout); these stay exported here too.
export {
  CERT_MANAGER_FILE_NAMES,
  FILE_LAYOUTS,
  type FileLayout,
  layoutBaseNames,
  MAX_BUNDLE_FILE_BYTES,
  MAX_PEM_FILE_BYTES,
  MAX_TOKEN_FILE_BYTES,
} from '../layout/index.js';
export { StaticSource } from './static.js';
export type { JwtSource, JwtSvidSource, Unsubscribe, X509Source, X509SvidSource } from './types.js';
export {
  DEFAULT_WORKLOADAPI_TIMEOUT_MS,
  type SvidPick,
  type ValidatedJwt,
  WorkloadApiSource,
  type WorkloadApiSourceOptions,
  type WorkloadApiSourceStatus,
} from './workloadapi.js';
export { DEFAULT_CALL_TIMEOUT_MS, WorkloadApiClient, type WorkloadApiClientOptions } from './workloadapi-client.js';
export type { ServedJwtSvid, ServedX509Svid, X509Context } from './workloadapi-parse.js';
