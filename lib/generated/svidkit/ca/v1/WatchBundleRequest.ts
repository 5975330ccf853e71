// Original file: protos/svidkit/ca/v1/ca.proto


export interface WatchBundleRequest {
}

export interface WatchBundleRequest__Output {
}
