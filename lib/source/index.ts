/** Sources of SVIDs and bundles that notify listeners on change. */
export { StaticSource } from './static.js';
export type { JwtSource, JwtSvidSource, Unsubscribe, X509Source, X509SvidSource } from './types.js';
