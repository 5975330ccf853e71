/** X.509 bundles: the root certificates that validate a trust domain's X.509-SVIDs. */
import { SvidkitError } from '../errors/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import { Certificate } from '../x509/certificate.js';
import { MAX_BUNDLE_BYTES, MAX_KEYS_PER_BUNDLE } from './json.js';

/** The X.509 authorities (roots) of one trust domain. Immutable. */
export class X509Bundle {
  /** The trust domain these roots belong to. */
  readonly trustDomain: TrustDomain;
  readonly #authorities: readonly Certificate[];

  /** Builds a bundle; duplicates (same DER) are kept once, and a root whose key cannot be used is refused. */
  constructor(trustDomain: TrustDomain, authorities: Iterable<Certificate> = []) {
    const seen = new Set<string>();
    const list: Certificate[] = [];
    for (const c of authorities) {
      const fp = c.fingerprint256();
      if (seen.has(fp)) continue;
      seen.add(fp);
      checkRootKey(c);
      list.push(c);
    }
    if (list.length > MAX_KEYS_PER_BUNDLE) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: more than ${MAX_KEYS_PER_BUNDLE} X.509 authorities`);
    }
    this.trustDomain = trustDomain;
    this.#authorities = Object.freeze(list);
  }

  /** Parses PEM roots (CERTIFICATE blocks only); an empty file is an empty bundle. */
  static parsePem(trustDomain: TrustDomain, pem: string | Uint8Array): X509Bundle {
    const size = typeof pem === 'string' ? Buffer.byteLength(pem) : pem.length;
    if (size > MAX_BUNDLE_BYTES) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: PEM is larger than ${MAX_BUNDLE_BYTES} bytes`);
    }
    const certs = Certificate.fromPem(pem, MAX_KEYS_PER_BUNDLE, MAX_BUNDLE_BYTES);
    // Empty input is an empty bundle; anything else must hold PEM blocks, as in go-spiffe: a file of
    // DER or of other text would otherwise trust nothing without saying so.
    if (certs.length === 0 && size > 0) {
      throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: no PEM block found in a non-empty bundle');
    }
    return new X509Bundle(trustDomain, certs);
  }

  /** The roots, in order. */
  authorities(): readonly Certificate[] {
    return this.#authorities;
  }

  /** Number of roots. */
  get size(): number {
    return this.#authorities.length;
  }

  /** True when this exact certificate is one of the roots. */
  hasAuthority(cert: Certificate): boolean {
    return this.#authorities.some((a) => a.der.equals(cert.der));
  }

  /** A new bundle with the root added. */
  withAuthority(cert: Certificate): X509Bundle {
    return new X509Bundle(this.trustDomain, [...this.#authorities, cert]);
  }

  /** A new bundle without the root. */
  withoutAuthority(cert: Certificate): X509Bundle {
    return new X509Bundle(
      this.trustDomain,
      this.#authorities.filter((a) => !a.der.equals(cert.der)),
    );
  }

  /** The roots as concatenated PEM. */
  toPem(): string {
    return this.#authorities.map((a) => a.toPem()).join('');
  }

  /** The bundle for the source interface: itself when the trust domain matches. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this : undefined;
  }
}

/** A root whose public key OpenSSL cannot import could neither verify a chain nor be published. */
function checkRootKey(cert: Certificate): void {
  try {
    cert.publicKey.export({ format: 'jwk' });
  } catch (cause) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: a root certificate has a public key that cannot be used', {
      cause,
    });
  }
}
