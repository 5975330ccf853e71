// Original file: protos/svidkit/ca/v1/ca.proto

import type { CaKey as _svidkit_ca_v1_CaKey, CaKey__Output as _svidkit_ca_v1_CaKey__Output } from '../../../svidkit/ca/v1/CaKey.js';
import type { Bundle as _svidkit_ca_v1_Bundle, Bundle__Output as _svidkit_ca_v1_Bundle__Output } from '../../../svidkit/ca/v1/Bundle.js';

export interface GetCaStatusResponse {
  'trustDomain'?: (string);
  'keys'?: (_svidkit_ca_v1_CaKey)[];
  'bundle'?: (_svidkit_ca_v1_Bundle | null);
}

export interface GetCaStatusResponse__Output {
  'trustDomain': (string);
  'keys': (_svidkit_ca_v1_CaKey__Output)[];
  'bundle': (_svidkit_ca_v1_Bundle__Output | null);
}
