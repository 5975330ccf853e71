// Original file: protos/svidkit/ca/v1/ca.proto

import type { BatchNewX509SvidResult as _svidkit_ca_v1_BatchNewX509SvidResult, BatchNewX509SvidResult__Output as _svidkit_ca_v1_BatchNewX509SvidResult__Output } from '../../../svidkit/ca/v1/BatchNewX509SvidResult.js';

export interface BatchNewX509SvidResponse {
  'results'?: (_svidkit_ca_v1_BatchNewX509SvidResult)[];
}

export interface BatchNewX509SvidResponse__Output {
  'results': (_svidkit_ca_v1_BatchNewX509SvidResult__Output)[];
}
