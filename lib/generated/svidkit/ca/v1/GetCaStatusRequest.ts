// Original file: protos/svidkit/ca/v1/ca.proto


export interface GetCaStatusRequest {
}

export interface GetCaStatusRequest__Output {
}
