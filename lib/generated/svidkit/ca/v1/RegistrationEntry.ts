// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

export interface RegistrationEntry {
  'id'?: (string);
  'spiffeId'?: (string);
  'parentId'?: (string);
  'x509SvidTtlSeconds'?: (number);
  'jwtSvidTtlSeconds'?: (number);
  'dnsNames'?: (string)[];
  /**
   * Unix seconds.
   */
  'createdAt'?: (number | string | Long);
}

export interface RegistrationEntry__Output {
  'id': (string);
  'spiffeId': (string);
  'parentId': (string);
  'x509SvidTtlSeconds': (number);
  'jwtSvidTtlSeconds': (number);
  'dnsNames': (string)[];
  /**
   * Unix seconds.
   */
  'createdAt': (number);
}
