// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

export interface NewJwtSvidResponse {
  'spiffeId'?: (string);
  'token'?: (string);
  /**
   * Unix seconds.
   */
  'expiresAt'?: (number | string | Long);
}

export interface NewJwtSvidResponse__Output {
  'spiffeId': (string);
  'token': (string);
  /**
   * Unix seconds.
   */
  'expiresAt': (number);
}
