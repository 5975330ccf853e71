// Original file: protos/svidkit/ca/v1/ca.proto


export interface RenewAgentRequest {
  'csr'?: (Buffer | Uint8Array | string);
}

export interface RenewAgentRequest__Output {
  'csr': (Buffer);
}
