/**
 * The constants of the Workload API contract that a client and a server must agree on: the security
 * header, and the bounds on what either side accepts. SPIRE bounds messages only through gRPC's
 * default 4 MiB receive limit and does not bound audiences; svidkit picks explicit numbers, each far
 * above what a real workload sends, so that a hostile peer cannot make the other side hold much.
 */

/** Metadata key every Workload API request carries (SPIFFE Workload Endpoint, section 3). */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io';
/** The only accepted value of WORKLOAD_API_HEADER (case-sensitive). */
export const WORKLOAD_API_HEADER_VALUE = 'true';

/** The service name: the proto has no package, so the method paths are /SpiffeWorkloadAPI/<Method>. */
export const WORKLOAD_API_SERVICE = 'SpiffeWorkloadAPI';

/** Largest message either side sends or receives, in bytes (gRPC's default receive limit). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Most X.509- or JWT-SVIDs in one response; SPIRE users run a handful per workload. */
export const MAX_SVIDS_PER_RESPONSE = 64;

/** Most audiences in one FetchJWTSVID request. */
export const MAX_AUDIENCES_PER_REQUEST = 32;

/** Longest audience string, in bytes. */
export const MAX_AUDIENCE_BYTES = 1024;

/** Longest hint, in bytes. */
export const MAX_HINT_BYTES = 256;

/** Deepest nesting of the claims in a ValidateJWTSVID answer, below the claims object itself. */
export const MAX_CLAIMS_DEPTH = 32;

/** Most CRLs in one response. */
export const MAX_CRLS_PER_RESPONSE = 64;
