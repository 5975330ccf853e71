// Original file: protos/spiffe/workload/workload.proto


/**
 * No parameters.
 */
export interface JWTBundlesRequest {
}

/**
 * No parameters.
 */
export interface JWTBundlesRequest__Output {
}
