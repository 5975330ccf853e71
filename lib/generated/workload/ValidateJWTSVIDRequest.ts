// Original file: protos/spiffe/workload/workload.proto


export interface ValidateJWTSVIDRequest {
  /**
   * The audience of the validating party; the token's aud must contain it.
   */
  'audience'?: (string);
  /**
   * The token, JWS compact serialization.
   */
  'svid'?: (string);
}

export interface ValidateJWTSVIDRequest__Output {
  /**
   * The audience of the validating party; the token's aud must contain it.
   */
  'audience': (string);
  /**
   * The token, JWS compact serialization.
   */
  'svid': (string);
}
