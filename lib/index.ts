/** svidkit: SPIFFE workload identity for Node.js. Each module is also available as a subpath export. */
export * from './bundle/index.js';
export * from './errors/index.js';
export * from './jwtsvid/index.js';
export * from './keys/index.js';
export * from './spiffeid/index.js';
export { Certificate, KeyUsageBit } from './x509/index.js';
export * from './x509svid/index.js';
