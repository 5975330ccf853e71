/** grpc-js integration: SPIFFE mTLS credentials from a source, per-method authorizers, health, protos. */
export { HealthService, type ServingStatus } from './health.js';
export {
  assertSourceReady,
  authorizeService,
  callerId,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  providersFromSource,
  type SourceProviders,
  verifyPeer,
} from './mtls.js';
export { healthProto, LOADER_OPTIONS, PROTOS_DIR } from './protos.js';
export { type ProvidedCertificates, PushCertificateProvider } from './provider.js';
export { jwtCallCredentials, jwtSvidOfCall, requireJwtSvidForService } from './jwt.js';
