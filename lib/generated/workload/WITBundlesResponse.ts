// Original file: protos/spiffe/workload/workload.proto


export interface WITBundlesResponse {
  /**
   * Keyed by trust domain ID: a JWK set in which every key has a kid.
   */
  'bundles'?: ({[key: string]: string});
}

export interface WITBundlesResponse__Output {
  /**
   * Keyed by trust domain ID: a JWK set in which every key has a kid.
   */
  'bundles': ({[key: string]: string});
}
