// Original file: protos/svidkit/ca/v1/ca.proto

import type { X509Svid as _svidkit_ca_v1_X509Svid, X509Svid__Output as _svidkit_ca_v1_X509Svid__Output } from '../../../svidkit/ca/v1/X509Svid.js';
import type { Bundle as _svidkit_ca_v1_Bundle, Bundle__Output as _svidkit_ca_v1_Bundle__Output } from '../../../svidkit/ca/v1/Bundle.js';

export interface AttestAgentResponse {
  'svid'?: (_svidkit_ca_v1_X509Svid | null);
  'bundle'?: (_svidkit_ca_v1_Bundle | null);
}

export interface AttestAgentResponse__Output {
  'svid': (_svidkit_ca_v1_X509Svid__Output | null);
  'bundle': (_svidkit_ca_v1_Bundle__Output | null);
}
