// Original file: protos/svidkit/ca/v1/ca.proto

import type { X509Svid as _svidkit_ca_v1_X509Svid, X509Svid__Output as _svidkit_ca_v1_X509Svid__Output } from '../../../svidkit/ca/v1/X509Svid.js';

/**
 * The result of one item of a batch: a gRPC status code of its own, and the SVID when it is OK.
 */
export interface BatchNewX509SvidResult {
  'statusCode'?: (number);
  'statusMessage'?: (string);
  'svid'?: (_svidkit_ca_v1_X509Svid | null);
}

/**
 * The result of one item of a batch: a gRPC status code of its own, and the SVID when it is OK.
 */
export interface BatchNewX509SvidResult__Output {
  'statusCode': (number);
  'statusMessage': (string);
  'svid': (_svidkit_ca_v1_X509Svid__Output | null);
}
