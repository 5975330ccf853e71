// Original file: protos/svidkit/ca/v1/ca.proto


export interface DeleteEntryResponse {
}

export interface DeleteEntryResponse__Output {
}
