// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

export interface Agent {
  'spiffeId'?: (string);
  'attestationType'?: (string);
  'serial'?: (string);
  'expiresAt'?: (number | string | Long);
  'banned'?: (boolean);
}

export interface Agent__Output {
  'spiffeId': (string);
  'attestationType': (string);
  'serial': (string);
  'expiresAt': (number);
  'banned': (boolean);
}
