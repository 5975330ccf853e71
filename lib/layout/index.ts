/**
 * The SVID directory layout, the contract between svidkit-agent (which writes it) and FileSource and
 * doctor (which read it): file names, the `..data` and version-directory rules, size bounds, one
 * bounded reader.
 */
export {
  CERT_MANAGER_FILE_NAMES,
  DEFAULT_FILE_NAMES,
  FILE_LAYOUTS,
  type FileLayout,
  type FileNames,
  layoutBaseNames,
  MAX_FILE_NAME_BYTES,
  MAX_JWT_AUDIENCES,
  resolveFileNames,
  TOKEN_SUFFIX,
  tokenFileName,
} from './names.js';
export {
  DATA_LINK,
  DATA_TMP_LINK,
  errnoOf,
  isMissing,
  isVersionDirName,
  LayoutReadError,
  LINK_TMP,
  MAX_BUNDLE_FILE_BYTES,
  MAX_PEM_FILE_BYTES,
  MAX_TOKEN_FILE_BYTES,
  readBounded,
  type BoundedRead,
  readBoundedFile,
  type ReadFailure,
  readDataLink,
  readlinkOrUndefined,
} from './read.js';
