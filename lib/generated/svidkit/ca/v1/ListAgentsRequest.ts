// Original file: protos/svidkit/ca/v1/ca.proto


export interface ListAgentsRequest {
}

export interface ListAgentsRequest__Output {
}
