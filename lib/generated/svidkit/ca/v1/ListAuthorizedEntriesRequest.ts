// Original file: protos/svidkit/ca/v1/ca.proto


export interface ListAuthorizedEntriesRequest {
}

export interface ListAuthorizedEntriesRequest__Output {
}
