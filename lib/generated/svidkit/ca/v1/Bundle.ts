// Original file: protos/svidkit/ca/v1/ca.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A SPIFFE bundle of one trust domain, in the SPIFFE bundle JSON format, with its sequence number.
 */
export interface Bundle {
  'trustDomain'?: (string);
  /**
   * The SPIFFE bundle document (JWK Set with x509-svid and jwt-svid keys).
   */
  'spiffeBundleJson'?: (string);
  'sequence'?: (number | string | Long);
}

/**
 * A SPIFFE bundle of one trust domain, in the SPIFFE bundle JSON format, with its sequence number.
 */
export interface Bundle__Output {
  'trustDomain': (string);
  /**
   * The SPIFFE bundle document (JWK Set with x509-svid and jwt-svid keys).
   */
  'spiffeBundleJson': (string);
  'sequence': (number);
}
