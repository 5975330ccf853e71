// Original file: protos/svidkit/ca/v1/ca.proto


export interface NewJwtSvidRequest {
  'entryId'?: (string);
  'audience'?: (string)[];
  /**
   * For an entry with a spiffe_id_template: the filled ID asked for. Must be empty otherwise.
   */
  'spiffeId'?: (string);
}

export interface NewJwtSvidRequest__Output {
  'entryId': (string);
  'audience': (string)[];
  /**
   * For an entry with a spiffe_id_template: the filled ID asked for. Must be empty otherwise.
   */
  'spiffeId': (string);
}
