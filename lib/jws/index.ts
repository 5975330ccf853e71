/**
 * The JWS core (RFC 7515/7518) shared by JWT-SVID validation and the Kubernetes token attestor:
 * decoding, the algorithm allow-list, key fit and signature checks. Claim and time rules stay with
 * each caller; both take their clock by injection.
 */
export {
  CURVE_FOR_ALG,
  decodeCompactJws,
  decodeCompactJwsAs,
  type DecodedJws,
  isJwsAlgorithm,
  isNumericDate,
  JWS_ALGORITHMS,
  type JsonObject,
  type JwsAlgorithm,
  JwsError,
  type JwsFailure,
  keyMismatch,
  looksLikeCompactJws,
  MIN_RSA_BITS,
  quote,
} from './decode.js';
export { verifyJwsSignature } from './signature.js';
