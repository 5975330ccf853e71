// Original file: protos/spiffe/workload/workload.proto


/**
 * No parameters.
 */
export interface X509BundlesRequest {
}

/**
 * No parameters.
 */
export interface X509BundlesRequest__Output {
}
