/** The CA's certificate profiles (the daemon itself comes with svidkit-ca). */
export { CLOCK_SKEW_MS, type Signer, selfSignedRoot, signWorkloadSvid } from './profile.js';
