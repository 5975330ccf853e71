// Original file: protos/svidkit/ca/v1/ca.proto


export interface TaintKeyRequest {
  'id'?: (string);
}

export interface TaintKeyRequest__Output {
  'id': (string);
}
