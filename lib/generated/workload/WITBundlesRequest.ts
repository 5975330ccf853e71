// Original file: protos/spiffe/workload/workload.proto


/**
 * No parameters.
 */
export interface WITBundlesRequest {
}

/**
 * No parameters.
 */
export interface WITBundlesRequest__Output {
}
