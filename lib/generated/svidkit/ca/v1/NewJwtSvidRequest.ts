// Original file: protos/svidkit/ca/v1/ca.proto


export interface NewJwtSvidRequest {
  'entryId'?: (string);
  'audience'?: (string)[];
}

export interface NewJwtSvidRequest__Output {
  'entryId': (string);
  'audience': (string)[];
}
