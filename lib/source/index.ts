/** Sources of SVIDs and bundles that notify listeners on change. */
export {
  CERT_MANAGER_FILE_NAMES,
  DEFAULT_DEBOUNCE_MS,
  DEFAULT_POLL_INTERVAL_MS,
  FILE_LAYOUTS,
  type FileLayout,
  FileSource,
  FileSourceError,
  type FileSourceOptions,
  type FileSourceStatus,
  layoutBaseNames,
  MAX_BUNDLE_FILE_BYTES,
  MAX_PEM_FILE_BYTES,
  MAX_TOKEN_FILE_BYTES,
} from './file.js';
export { StaticSource } from './static.js';
export type { JwtSource, JwtSvidSource, Unsubscribe, X509Source, X509SvidSource } from './types.js';
