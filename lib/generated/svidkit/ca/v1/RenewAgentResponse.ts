// Original file: protos/svidkit/ca/v1/ca.proto

import type { X509Svid as _svidkit_ca_v1_X509Svid, X509Svid__Output as _svidkit_ca_v1_X509Svid__Output } from '../../../svidkit/ca/v1/X509Svid.js';

export interface RenewAgentResponse {
  'svid'?: (_svidkit_ca_v1_X509Svid | null);
}

export interface RenewAgentResponse__Output {
  'svid': (_svidkit_ca_v1_X509Svid__Output | null);
}
