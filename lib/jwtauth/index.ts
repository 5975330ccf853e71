/**
 * JWT-SVID authentication for services: a validator for `Authorization: Bearer` headers with a
 * bounded cache of validated tokens, status mapping for HTTP and gRPC, and an HTTP middleware.
 */
export { DEFAULT_MAX_CACHE_ENTRIES } from './cache.js';
export { getJwtSvidOf, type JwtMiddleware, requireJwtSvid, type RequireJwtSvidOptions } from './http.js';
export {
  bearer,
  GRPC_STATUS,
  grpcStatusOf,
  httpStatusOf,
  type JwtAuthResult,
  JwtAuthError,
  type JwtAuthStatus,
  type JwtCacheStats,
  JwtValidator,
  type JwtValidatorOptions,
  jwtHeaderFromSource,
} from './validator.js';
