// Original file: protos/spiffe/workload/workload.proto


export interface WITSVID {
  'spiffeId'?: (string);
  /**
   * The token, JWS compact serialization.
   */
  'witSvid'?: (string);
  /**
   * The private key, a JWK (RFC 7517).
   */
  'witSvidKey'?: (string);
  /**
   * As X509SVID.hint.
   */
  'hint'?: (string);
}

export interface WITSVID__Output {
  'spiffeId': (string);
  /**
   * The token, JWS compact serialization.
   */
  'witSvid': (string);
  /**
   * The private key, a JWK (RFC 7517).
   */
  'witSvidKey': (string);
  /**
   * As X509SVID.hint.
   */
  'hint': (string);
}
