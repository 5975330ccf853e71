// Original file: protos/svidkit/ca/v1/ca.proto

import type { CaKey as _svidkit_ca_v1_CaKey, CaKey__Output as _svidkit_ca_v1_CaKey__Output } from '../../../svidkit/ca/v1/CaKey.js';

export interface RotateCaResponse {
  'keys'?: (_svidkit_ca_v1_CaKey)[];
}

export interface RotateCaResponse__Output {
  'keys': (_svidkit_ca_v1_CaKey__Output)[];
}
