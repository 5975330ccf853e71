/** Bundle sources: anything that can hand out the current bundle of a trust domain. */
import type { TrustDomain } from '../spiffeid/index.js';
import type { JwtBundle } from './jwt.js';
import type { X509Bundle } from './x509.js';

/** Gives the X.509 bundle of a trust domain, or undefined when that trust domain is not trusted. */
export interface X509BundleSource {
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined;
}

/** Gives the JWT bundle of a trust domain, or undefined when that trust domain is not trusted. */
export interface JwtBundleSource {
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined;
}
