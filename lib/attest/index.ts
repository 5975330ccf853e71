/**
 * Node attestation for the CA daemon: how a node agent proves which node it is before it gets an
 * agent SVID. Pure library code with injected clocks and HTTP, so the daemon owns all I/O policy.
 */
export {
  /** Shortest join token accepted. */
  MIN_JOIN_TOKEN_LENGTH,
  /** Longest join token accepted. */
  MAX_JOIN_TOKEN_LENGTH,
  /** Throws ERR_ATTEST_JOIN_TOKEN_MALFORMED for anything but 16..256 base64url characters. */
  validateJoinToken,
  /** A new random 32-byte join token in base64url. */
  generateJoinToken,
  /** The SHA-256 hex of a join token, the only form the CA stores. */
  hashJoinToken,
  /** Constant-time check of a token against a stored hash. */
  joinTokenMatchesHash,
  /** The agent ID for a join token, built from its hash. */
  agentIdForJoinToken,
} from './join-token.js';
export {
  /** Largest PSAT accepted, in bytes. */
  MAX_PSAT_BYTES,
  /** The fixed clock-skew allowance for exp and nbf. */
  PSAT_LEEWAY_SECONDS,
  /** Default JWKS cache lifetime. */
  DEFAULT_JWKS_CACHE_SECONDS,
  /** Least time between two unknown-kid refetches. */
  JWKS_REFETCH_INTERVAL_SECONDS,
  /** Kubernetes projected service-account token attestor. */
  PsatAttestor,
  /** One accepted cluster. */
  type PsatClusterConfig,
  /** Options of PsatAttestor. */
  type PsatAttestorOptions,
  /** The result of a successful PSAT attestation. */
  type PsatAttestation,
} from './k8s-psat.js';
export {
  /** Signature algorithms a PSAT may use. */
  PSAT_ALGORITHMS,
  /** One of PSAT_ALGORITHMS. */
  type PsatAlgorithm,
  /** Largest JWKS accepted, in bytes. */
  MAX_JWKS_BYTES,
  /** Largest OIDC discovery document accepted, in bytes. */
  MAX_DISCOVERY_BYTES,
  /** Time allowed for one discovery or JWKS request. */
  FETCH_TIMEOUT_MS,
} from './jwks.js';
