/**
 * Workload API callers identified by the kernel: the peer credentials of an accepted Unix socket
 * (SO_PEERCRED, SO_PEERPIDFD) and their attestation into SPIRE's unix selectors from /proc.
 */
export {
  type AttestedCaller,
  type AttestOptions,
  CallerAttestor,
  type CallerAttestorOptions,
  type WorkloadAttestor,
} from './attestor.js';
export { peerCredentials, PeerCredentials, type PeerCredentialsOptions } from './peer.js';
