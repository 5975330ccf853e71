// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

export interface CaKey {
  'id'?: (string);
  /**
   * "x509" or "jwt".
   */
  'kind'?: (string);
  /**
   * "prepared", "active" or "old".
   */
  'state'?: (string);
  'notAfter'?: (number | string | Long);
  'tainted'?: (boolean);
}

export interface CaKey__Output {
  'id': (string);
  /**
   * "x509" or "jwt".
   */
  'kind': (string);
  /**
   * "prepared", "active" or "old".
   */
  'state': (string);
  'notAfter': (number);
  'tainted': (boolean);
}
