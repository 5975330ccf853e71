// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

export interface CreateJoinTokenResponse {
  'token'?: (string);
  /**
   * The agent ID the token will attest as.
   */
  'agentId'?: (string);
  'expiresAt'?: (number | string | Long);
}

export interface CreateJoinTokenResponse__Output {
  'token': (string);
  /**
   * The agent ID the token will attest as.
   */
  'agentId': (string);
  'expiresAt': (number);
}
