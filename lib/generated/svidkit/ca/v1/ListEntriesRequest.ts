// Original file: protos/svidkit/ca/v1/ca.proto


export interface ListEntriesRequest {
  'parentId'?: (string);
  'spiffeId'?: (string);
}

export interface ListEntriesRequest__Output {
  'parentId': (string);
  'spiffeId': (string);
}
