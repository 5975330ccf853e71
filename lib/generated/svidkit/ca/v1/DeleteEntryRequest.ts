// Original file: protos/svidkit/ca/v1/ca.proto


export interface DeleteEntryRequest {
  'id'?: (string);
}

export interface DeleteEntryRequest__Output {
  'id': (string);
}
