// Original file: protos/svidkit/ca/v1/ca.proto


export interface RotateCaRequest {
  /**
   * "x509", "jwt", or empty for both.
   */
  'kind'?: (string);
}

export interface RotateCaRequest__Output {
  /**
   * "x509", "jwt", or empty for both.
   */
  'kind': (string);
}
