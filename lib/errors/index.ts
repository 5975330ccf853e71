/**
 * One error class for all of svidkit, with a stable machine-readable `code`.
 *
 * Messages start with the module that raised them ("spiffeid: ...") and never carry a secret:
 * no private key, no token, no whole JWT. A lower-level cause may be attached for logs only.
 */

/** Every error code svidkit raises, grouped by module. Codes are stable across releases. */
export const ERROR_CODES = [
  // spiffeid
  'ERR_SPIFFEID_EMPTY',
  'ERR_SPIFFEID_TOO_LONG',
  'ERR_SPIFFEID_SCHEME',
  'ERR_SPIFFEID_TRUST_DOMAIN_MISSING',
  'ERR_SPIFFEID_TRUST_DOMAIN_CHAR',
  'ERR_SPIFFEID_TRUST_DOMAIN_TOO_LONG',
  'ERR_SPIFFEID_PATH_CHAR',
  'ERR_SPIFFEID_PATH_DOT_SEGMENT',
  'ERR_SPIFFEID_PATH_EMPTY_SEGMENT',
  'ERR_SPIFFEID_PATH_TRAILING_SLASH',
  'ERR_SPIFFEID_PATH_LEADING_SLASH',
  'ERR_SPIFFEID_MISMATCH',
  // pem / der input
  'ERR_PEM_MALFORMED',
  'ERR_PEM_TOO_LARGE',
  'ERR_PEM_UNEXPECTED_TYPE',
  'ERR_DER_MALFORMED',
  // keys
  'ERR_KEY_UNSUPPORTED',
  'ERR_KEY_MALFORMED',
  // x509 certificates and CSRs
  'ERR_X509_MALFORMED',
  'ERR_X509_UNSUPPORTED_ALGORITHM',
  'ERR_CSR_MALFORMED',
  'ERR_CSR_SIGNATURE',
  // x509svid
  'ERR_X509SVID_NO_CERTIFICATES',
  'ERR_X509SVID_TOO_MANY_CERTIFICATES',
  'ERR_X509SVID_KEY_MISMATCH',
  'ERR_X509SVID_NO_URI_SAN',
  'ERR_X509SVID_MULTIPLE_URI_SANS',
  'ERR_X509SVID_INVALID_ID',
  'ERR_X509SVID_LEAF_IS_CA',
  'ERR_X509SVID_LEAF_KEY_USAGE',
  'ERR_X509SVID_LEAF_EXT_KEY_USAGE',
  'ERR_X509SVID_SAN_NOT_CRITICAL',
  'ERR_X509SVID_EXPIRED',
  'ERR_X509SVID_NOT_YET_VALID',
  'ERR_X509SVID_NO_BUNDLE',
  'ERR_X509SVID_UNTRUSTED',
  'ERR_X509SVID_BAD_SIGNATURE',
  'ERR_X509SVID_ISSUER_NOT_CA',
  'ERR_X509SVID_ISSUER_KEY_USAGE',
  'ERR_X509SVID_ISSUER_HAS_PATH',
  'ERR_X509SVID_PATH_LENGTH',
  'ERR_X509SVID_NAME_CONSTRAINTS',
  'ERR_X509SVID_UNHANDLED_CRITICAL_EXTENSION',
  // bundles
  'ERR_BUNDLE_MALFORMED',
  'ERR_BUNDLE_TOO_LARGE',
  'ERR_BUNDLE_DUPLICATE',
  'ERR_BUNDLE_TRUST_DOMAIN',
  // jwtsvid
  'ERR_JWTSVID_MALFORMED',
  'ERR_JWTSVID_TOO_LARGE',
  'ERR_JWTSVID_ALGORITHM',
  'ERR_JWTSVID_TYP',
  'ERR_JWTSVID_MISSING_KID',
  'ERR_JWTSVID_NO_BUNDLE',
  'ERR_JWTSVID_UNKNOWN_KID',
  'ERR_JWTSVID_SIGNATURE',
  'ERR_JWTSVID_SUBJECT',
  'ERR_JWTSVID_AUDIENCE',
  'ERR_JWTSVID_EXPIRED',
  'ERR_JWTSVID_MISSING_EXP',
  'ERR_JWTSVID_NOT_YET_VALID',
  'ERR_JWTSVID_MINT',
  // attestation
  'ERR_ATTEST_JOIN_TOKEN_MALFORMED',
  'ERR_ATTEST_PSAT_CONFIG',
  'ERR_ATTEST_PSAT_TOO_LARGE',
  'ERR_ATTEST_PSAT_MALFORMED',
  'ERR_ATTEST_PSAT_ALGORITHM',
  'ERR_ATTEST_PSAT_ISSUER',
  'ERR_ATTEST_PSAT_UNKNOWN_CLUSTER',
  'ERR_ATTEST_PSAT_JWKS',
  'ERR_ATTEST_PSAT_UNKNOWN_KID',
  'ERR_ATTEST_PSAT_AMBIGUOUS_KEY',
  'ERR_ATTEST_PSAT_SIGNATURE',
  'ERR_ATTEST_PSAT_EXPIRED',
  'ERR_ATTEST_PSAT_NOT_YET_VALID',
  'ERR_ATTEST_PSAT_AUDIENCE',
  'ERR_ATTEST_PSAT_SUBJECT',
  'ERR_ATTEST_PSAT_CLAIMS',
  'ERR_ATTEST_PSAT_NOT_ALLOWED',
  'ERR_ATTEST_PSAT_NODE_NAME',
  // registration entry selectors (lib/ca-api/selectors)
  'ERR_SELECTOR_INVALID',
  // SPIFFE ID templates of registration entries (lib/ca-api/templates)
  'ERR_TEMPLATE_INVALID',
  // store
  'ERR_STORE_CORRUPT',
  'ERR_STORE_LOCKED',
  'ERR_STORE_IO',
  'ERR_STORE_NOT_FOUND',
  'ERR_STORE_CONFLICT',
  // ca
  'ERR_CA_CONFIG',
  'ERR_CA_JOURNAL',
  'ERR_CA_KEY_MISSING',
  'ERR_CA_KEY_MISMATCH',
  'ERR_CA_KEY_IO',
  'ERR_CA_KEY_NOT_FOUND',
  'ERR_CA_TOO_MANY_KEYS',
  'ERR_CA_ROTATION_UNAVAILABLE',
  'ERR_CA_UPSTREAM_KEY_MISMATCH',
  'ERR_CA_UPSTREAM_NOT_CA',
  'ERR_CA_UPSTREAM_UNTRUSTED',
  'ERR_CA_UPSTREAM_BUNDLE',
  // ca admin client
  'ERR_ADMIN_UNREACHABLE',
  'ERR_ADMIN_NOT_FOUND',
  'ERR_ADMIN_INVALID',
  'ERR_ADMIN_DENIED',
  'ERR_ADMIN_FAILED',
  // cli and io
  'ERR_IO',
  'ERR_USAGE',
  'ERR_INTERNAL',
  // configuration
  'ERR_CONFIG',
  // agent (CA calls)
  'ERR_AGENT_CA',
  'ERR_AGENT_RELOAD',
  'ERR_AGENT_STATE',
  // agent (Workload API callers identified by the kernel)
  'ERR_CALLER_CREDENTIALS',
  'ERR_CALLER_GONE',
  'ERR_CALLER_CHANGED',
  'ERR_CALLER_PROC',
  // library: sources and authorization
  'ERR_SOURCE_NO_SVID',
  'ERR_SOURCE_READ',
  'ERR_SOURCE_INVALID',
  'ERR_SOURCE_KEY_MISMATCH',
  'ERR_SOURCE_INVALID_JWT',
  'ERR_SOURCE_WATCH',
  'ERR_SOURCE_LISTENER',
  'ERR_AUTHZ_DENIED',
  // library: mTLS over node:tls, https and http2
  'ERR_TLS_NO_TRUSTED_ROOTS',
  'ERR_TLS_CONNECT',
  'ERR_TLS_HANDSHAKE',
  'ERR_TLS_NO_PEER_CERTIFICATE',
  'ERR_TLS_PEER_UNTRUSTED',
  'ERR_TLS_PEER_DENIED',
  // library: JWT-SVID authentication of requests (lib/jwtauth)
  'ERR_JWTAUTH_UNAUTHENTICATED',
  'ERR_JWTAUTH_FORBIDDEN',
  // agent (file delivery)
  'ERR_AGENT_INVALID_SVID',
  'ERR_AGENT_INVALID_JWT',
  'ERR_AGENT_WRITE',
  'ERR_AGENT_READ',
  'ERR_AGENT_UNSAFE_DIR',
  // agent (the Workload API socket)
  'ERR_AGENT_WORKLOAD_API_SOCKET',
  // doctor (diagnosis of an SVID directory and of an mTLS peer)
  'ERR_DOCTOR_OPTIONS',
  'ERR_DOCTOR_FAILED',
  // library: the SPIFFE Workload API (lib/workloadapi, WorkloadApiSource)
  'ERR_WORKLOADAPI_ADDRESS',
  'ERR_WORKLOADAPI_GRPC_MISSING',
  'ERR_WORKLOADAPI_REQUEST',
  'ERR_WORKLOADAPI_UNAVAILABLE',
  'ERR_WORKLOADAPI_PERMISSION_DENIED',
  'ERR_WORKLOADAPI_INVALID_ARGUMENT',
  'ERR_WORKLOADAPI_FAILED',
  'ERR_WORKLOADAPI_BAD_RESPONSE',
  'ERR_WORKLOADAPI_TIMEOUT',
  'ERR_WORKLOADAPI_CLOSED',
] as const;

/** A stable error code; switch on this, never on the message. */
export type ErrorCode = (typeof ERROR_CODES)[number];

const known: ReadonlySet<string> = new Set(ERROR_CODES);

/** What an error is about, as data: the file, key, claim or field it names. */
export type ErrorDetail = Readonly<Record<string, string | number | boolean>>;

/** Options of SvidkitError. */
export interface SvidkitErrorOptions {
  /** The error this one wraps. */
  readonly cause?: unknown;
  /** What the error is about (`{ file: 'svid.pem' }`, `{ key: 'ca.address' }`, `{ claim: 'aud' }`). */
  readonly detail?: ErrorDetail;
}

const MODULE_PREFIX = /^([a-z][a-z0-9-]*): /;

/** The error svidkit throws for bad input, failed verification or refused operations. */
export class SvidkitError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** The module that raised it, as its message begins (`x509svid` for "x509svid: ..."), if it does. */
  readonly module: string | undefined;
  /** What the error is about, as data; empty when the message says it all. */
  readonly detail: ErrorDetail;

  constructor(code: ErrorCode, message: string, options?: SvidkitErrorOptions) {
    super(message, options !== undefined && 'cause' in options ? { cause: options.cause } : undefined);
    this.name = 'SvidkitError';
    this.code = code;
    this.module = MODULE_PREFIX.exec(message)?.[1];
    this.detail = Object.freeze({ ...options?.detail });
  }

  /** The message without the module's prefix: the part to quote inside another module's message. */
  get plainMessage(): string {
    return this.module === undefined ? this.message : this.message.slice(this.module.length + 2);
  }
}

/** True when `err` is a SvidkitError, optionally with the given code. */
export function isSvidkitError(err: unknown, code?: ErrorCode): err is SvidkitError {
  return err instanceof SvidkitError && (code === undefined || err.code === code);
}

/** True when `code` is one of svidkit's error codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return known.has(code);
}
