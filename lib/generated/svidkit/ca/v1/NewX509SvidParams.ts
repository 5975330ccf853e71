// Original file: protos/svidkit/ca/v1/ca.proto


export interface NewX509SvidParams {
  'entryId'?: (string);
  /**
   * DER CSR; only its public key is used, and its signature must verify.
   */
  'csr'?: (Buffer | Uint8Array | string);
  /**
   * For an entry with a spiffe_id_template: the filled ID asked for. Must be empty otherwise.
   */
  'spiffeId'?: (string);
}

export interface NewX509SvidParams__Output {
  'entryId': (string);
  /**
   * DER CSR; only its public key is used, and its signature must verify.
   */
  'csr': (Buffer);
  /**
   * For an entry with a spiffe_id_template: the filled ID asked for. Must be empty otherwise.
   */
  'spiffeId': (string);
}
