// Original file: protos/svidkit/ca/v1/ca.proto


export interface JoinTokenCredential {
  'token'?: (string);
}

export interface JoinTokenCredential__Output {
  'token': (string);
}
