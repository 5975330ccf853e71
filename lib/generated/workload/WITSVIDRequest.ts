// Original file: protos/spiffe/workload/workload.proto


export interface WITSVIDRequest {
  /**
   * When set, only the WIT-SVID of this SPIFFE ID.
   */
  'spiffeId'?: (string);
}

export interface WITSVIDRequest__Output {
  /**
   * When set, only the WIT-SVID of this SPIFFE ID.
   */
  'spiffeId': (string);
}
