/**
 * Trust bundles: X.509 roots (PEM), JWT keys (JWKS), SPIFFE bundles and sets of them keyed by trust
 * domain. Every parser bounds its input and reports ERR_BUNDLE_* codes.
 */
import { SvidkitError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';
import { MAX_BUNDLE_BYTES, parseJsonBounded } from './json.js';
import { BundleSet, SpiffeBundle } from './spiffe.js';
import { X509Bundle } from './x509.js';

export { MAX_BUNDLE_BYTES, MAX_KEYS_PER_BUNDLE, MAX_TRUST_DOMAINS } from './json.js';
export { importJwtAuthority, type JwtAuthority, JwtBundle, MAX_KID_LENGTH } from './jwt.js';
export type { JwtBundleSource, X509BundleSource } from './source.js';
export { BundleSet, SpiffeBundle, type SpiffeBundleJson } from './spiffe.js';
export { X509Bundle } from './x509.js';

/**
 * Reads any bundle document svidkit accepts: PEM roots, one SPIFFE bundle (JSON with `keys`), or a
 * `trust_domains` map. PEM roots and a single SPIFFE bundle carry no trust domain name, so
 * `trustDomain` says whose they are; a root whose own SPIFFE ID names another trust domain is refused.
 */
export function parseBundleDocument(input: string | Uint8Array, trustDomain?: TrustDomain): BundleSet {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > 4 * MAX_BUNDLE_BYTES) throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', 'bundle: document is too large');
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  const head = text.trimStart();
  if (head.startsWith('{')) {
    const doc = parseJsonBounded(text, 4 * MAX_BUNDLE_BYTES) as Record<string, unknown>;
    if (doc['trust_domains'] !== undefined && doc['keys'] === undefined) return BundleSet.fromJson(doc);
    // A single bundle has the same bound wherever it is read (SpiffeBundle.parse); only sets are larger.
    if (size > MAX_BUNDLE_BYTES) throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', 'bundle: document is too large');
    const bundle = SpiffeBundle.fromJson(needTrustDomain(trustDomain, 'a SPIFFE bundle'), doc);
    checkRootsBelongTo(bundle.x509);
    return new BundleSet([bundle]);
  }
  // Text before the first block (a comment, openssl's "subject=" lines) is ignored, as OpenSSL does.
  if (text.includes('-----BEGIN')) {
    const bundle = X509Bundle.parsePem(needTrustDomain(trustDomain, 'PEM roots'), text);
    checkRootsBelongTo(bundle);
    return new BundleSet([bundle]);
  }
  throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: expected PEM certificates or a JSON bundle');
}

/** A root that carries its own trust domain ID must carry this bundle's: never trust it for another domain. */
function checkRootsBelongTo(bundle: X509Bundle): void {
  for (const root of bundle.authorities()) {
    for (const uri of root.subjectAltName?.uris ?? []) {
      const id = SpiffeId.tryParse(uri);
      if (id && !id.memberOf(bundle.trustDomain)) {
        throw new SvidkitError(
          'ERR_BUNDLE_TRUST_DOMAIN',
          `bundle: a root belongs to trust domain "${id.trustDomain.name}", not "${bundle.trustDomain.name}"`,
        );
      }
    }
  }
}

function needTrustDomain(td: TrustDomain | undefined, what: string): TrustDomain {
  if (!td)
    throw new SvidkitError('ERR_BUNDLE_TRUST_DOMAIN', `bundle: ${what} carry no trust domain; say which one it is`);
  return td;
}
