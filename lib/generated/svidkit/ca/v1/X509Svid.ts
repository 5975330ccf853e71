// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

/**
 * An X.509-SVID chain: the leaf first, then intermediates, each DER-encoded.
 */
export interface X509Svid {
  'spiffeId'?: (string);
  'certChain'?: (Buffer | Uint8Array | string)[];
  /**
   * Unix seconds.
   */
  'expiresAt'?: (number | string | Long);
}

/**
 * An X.509-SVID chain: the leaf first, then intermediates, each DER-encoded.
 */
export interface X509Svid__Output {
  'spiffeId': (string);
  'certChain': (Buffer)[];
  /**
   * Unix seconds.
   */
  'expiresAt': (number);
}
