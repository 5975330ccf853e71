// Original file: protos/spiffe/workload/workload.proto


/**
 * Every X.509 bundle the caller should trust.
 */
export interface X509BundlesResponse {
  /**
   * DER certificate revocation lists.
   */
  'crl'?: (Buffer | Uint8Array | string)[];
  /**
   * Keyed by trust domain ID, the own trust domain included: concatenated DER certificates.
   */
  'bundles'?: ({[key: string]: Buffer | Uint8Array | string});
}

/**
 * Every X.509 bundle the caller should trust.
 */
export interface X509BundlesResponse__Output {
  /**
   * DER certificate revocation lists.
   */
  'crl': (Buffer)[];
  /**
   * Keyed by trust domain ID, the own trust domain included: concatenated DER certificates.
   */
  'bundles': ({[key: string]: Buffer});
}
