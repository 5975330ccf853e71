// Original file: protos/spiffe/workload/workload.proto


export interface JWTSVID {
  'spiffeId'?: (string);
  /**
   * The token, JWS compact serialization.
   */
  'svid'?: (string);
  /**
   * As X509SVID.hint.
   */
  'hint'?: (string);
}

export interface JWTSVID__Output {
  'spiffeId': (string);
  /**
   * The token, JWS compact serialization.
   */
  'svid': (string);
  /**
   * As X509SVID.hint.
   */
  'hint': (string);
}
