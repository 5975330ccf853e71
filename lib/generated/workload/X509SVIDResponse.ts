// Original file: protos/spiffe/workload/workload.proto

import type { X509SVID as _X509SVID, X509SVID__Output as _X509SVID__Output } from './X509SVID.js';

/**
 * The full X.509 state of the caller.
 */
export interface X509SVIDResponse {
  /**
   * At least one; the first is the default.
   */
  'svids'?: (_X509SVID)[];
  /**
   * DER certificate revocation lists.
   */
  'crl'?: (Buffer | Uint8Array | string)[];
  /**
   * Bundles of other trust domains, keyed by trust domain ID (spiffe://name): concatenated DER
   * certificates.
   */
  'federatedBundles'?: ({[key: string]: Buffer | Uint8Array | string});
}

/**
 * The full X.509 state of the caller.
 */
export interface X509SVIDResponse__Output {
  /**
   * At least one; the first is the default.
   */
  'svids': (_X509SVID__Output)[];
  /**
   * DER certificate revocation lists.
   */
  'crl': (Buffer)[];
  /**
   * Bundles of other trust domains, keyed by trust domain ID (spiffe://name): concatenated DER
   * certificates.
   */
  'federatedBundles': ({[key: string]: Buffer});
}
