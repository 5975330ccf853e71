// Original file: protos/svidkit/ca/v1/ca.proto


export interface K8sPsatCredential {
  /**
   * The cluster name as configured on the CA; optional when the token's issuer identifies it.
   */
  'cluster'?: (string);
  'token'?: (string);
}

export interface K8sPsatCredential__Output {
  /**
   * The cluster name as configured on the CA; optional when the token's issuer identifies it.
   */
  'cluster': (string);
  'token': (string);
}
