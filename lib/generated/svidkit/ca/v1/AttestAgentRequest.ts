// Original file: protos/svidkit/ca/v1/ca.proto

import type { JoinTokenCredential as _svidkit_ca_v1_JoinTokenCredential, JoinTokenCredential__Output as _svidkit_ca_v1_JoinTokenCredential__Output } from '../../../svidkit/ca/v1/JoinTokenCredential.js';
import type { K8sPsatCredential as _svidkit_ca_v1_K8sPsatCredential, K8sPsatCredential__Output as _svidkit_ca_v1_K8sPsatCredential__Output } from '../../../svidkit/ca/v1/K8sPsatCredential.js';

export interface AttestAgentRequest {
  'joinToken'?: (_svidkit_ca_v1_JoinTokenCredential | null);
  'k8sPsat'?: (_svidkit_ca_v1_K8sPsatCredential | null);
  /**
   * DER CSR for the agent's own SVID; only its public key is used.
   */
  'csr'?: (Buffer | Uint8Array | string);
  'credential'?: "joinToken"|"k8sPsat";
}

export interface AttestAgentRequest__Output {
  'joinToken'?: (_svidkit_ca_v1_JoinTokenCredential__Output | null);
  'k8sPsat'?: (_svidkit_ca_v1_K8sPsatCredential__Output | null);
  /**
   * DER CSR for the agent's own SVID; only its public key is used.
   */
  'csr': (Buffer);
  'credential'?: "joinToken"|"k8sPsat";
}
