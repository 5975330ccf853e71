/** The CA: certificate profiles, the fast issuance path, and (with svidkit-ca) the daemon. */
export { type IssuedSvid, type IssueRequest, SvidIssuer } from './issuer.js';
export { CLOCK_SKEW_MS, isDnsText, type Signer, selfSignedRoot, signWorkloadSvid } from './profile.js';
export {
  CaKeyManager,
  type CaKeyManagerOptions,
  type CaKeyStatus,
  DEFAULT_CA_TTL_MS,
  type JwtSigner,
  type RotationKind,
  type UpstreamCa,
  type X509CaSigner,
} from './keys.js';
