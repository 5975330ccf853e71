// Original file: protos/spiffe/workload/workload.proto


export interface JWTBundlesResponse {
  /**
   * Keyed by trust domain ID: a JWKS document (JSON).
   */
  'bundles'?: ({[key: string]: Buffer | Uint8Array | string});
}

export interface JWTBundlesResponse__Output {
  /**
   * Keyed by trust domain ID: a JWKS document (JSON).
   */
  'bundles': ({[key: string]: Buffer});
}
