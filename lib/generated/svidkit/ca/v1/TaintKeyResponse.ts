// Original file: protos/svidkit/ca/v1/ca.proto


export interface TaintKeyResponse {
}

export interface TaintKeyResponse__Output {
}
