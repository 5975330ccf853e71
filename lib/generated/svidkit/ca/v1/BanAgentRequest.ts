// Original file: protos/svidkit/ca/v1/ca.proto


export interface BanAgentRequest {
  'spiffeId'?: (string);
}

export interface BanAgentRequest__Output {
  'spiffeId': (string);
}
