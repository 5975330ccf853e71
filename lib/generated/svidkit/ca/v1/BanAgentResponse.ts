// Original file: protos/svidkit/ca/v1/ca.proto


export interface BanAgentResponse {
}

export interface BanAgentResponse__Output {
}
