// Original file: protos/svidkit/ca/v1/ca.proto


export interface CreateJoinTokenRequest {
  'ttlSeconds'?: (number);
}

export interface CreateJoinTokenRequest__Output {
  'ttlSeconds': (number);
}
