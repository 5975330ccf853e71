// Original file: protos/svidkit/ca/v1/ca.proto

import type { NewX509SvidParams as _svidkit_ca_v1_NewX509SvidParams, NewX509SvidParams__Output as _svidkit_ca_v1_NewX509SvidParams__Output } from '../../../svidkit/ca/v1/NewX509SvidParams.js';

export interface BatchNewX509SvidRequest {
  'params'?: (_svidkit_ca_v1_NewX509SvidParams)[];
}

export interface BatchNewX509SvidRequest__Output {
  'params': (_svidkit_ca_v1_NewX509SvidParams__Output)[];
}
