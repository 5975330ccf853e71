// Original file: protos/spiffe/workload/workload.proto


export interface JWTSVIDRequest {
  /**
   * At least one.
   */
  'audience'?: (string)[];
  /**
   * When set, only the JWT-SVID of this SPIFFE ID; else one for every identity of the caller.
   */
  'spiffeId'?: (string);
}

export interface JWTSVIDRequest__Output {
  /**
   * At least one.
   */
  'audience': (string)[];
  /**
   * When set, only the JWT-SVID of this SPIFFE ID; else one for every identity of the caller.
   */
  'spiffeId': (string);
}
