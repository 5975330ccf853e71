/**
 * Which roots a TLS endpoint trusts. OpenSSL (through node:tls) verifies a peer against one flat CA
 * list, so it is handed the union of the roots of every accepted trust domain; svidkit's own re-check
 * (peer.ts) then looks only at the bundle of the trust domain the peer's SPIFFE ID names.
 */
import { MAX_TRUST_DOMAINS, type X509Bundle, type X509BundleSource } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import type { X509Source } from '../source/index.js';
import type { Certificate } from '../x509/certificate.js';

/** Which trust domains' peers an endpoint accepts. */
export interface TrustOptions {
  /**
   * Accept peers of these trust domains only. Default: every trust domain of `source.getBundleSet()`
   * when the source can list its bundles, otherwise the trust domain of the source's own SVID.
   */
  readonly trustDomains?: readonly (TrustDomain | string)[];
}

/**
 * The accepted trust domains of one endpoint, read live from its source. As a bundle source it hides
 * every trust domain outside the scope, so the SPIFFE re-check can never accept more than OpenSSL's
 * CA list did.
 */
export class TrustScope implements X509BundleSource {
  readonly #source: X509Source;
  readonly #explicit: readonly TrustDomain[] | undefined;

  constructor(source: X509Source, trustDomains?: readonly (TrustDomain | string)[]) {
    this.#source = source;
    if (trustDomains !== undefined) {
      if (!Array.isArray(trustDomains)) throw new TypeError('tls: trustDomains must be an array');
      if (trustDomains.length === 0) throw new TypeError('tls: trustDomains must name at least one trust domain');
      if (trustDomains.length > MAX_TRUST_DOMAINS) {
        throw new TypeError(`tls: trustDomains may name at most ${MAX_TRUST_DOMAINS} trust domains`);
      }
      this.#explicit = trustDomains.map((td) => (td instanceof TrustDomain ? td : TrustDomain.parse(td)));
    }
  }

  /** The source the scope reads from. */
  get source(): X509Source {
    return this.#source;
  }

  /**
   * A key that tells scopes apart: equal keys for the same source mean the same accepted trust domains
   * (an explicit list, or the source's own default).
   */
  get key(): string {
    return this.#explicit ? this.#explicit.map((td) => td.name).join(' ') : '*';
  }

  /** The accepted trust domains now (the source's bundle set and SVID may change between calls). */
  trustDomains(): readonly TrustDomain[] {
    if (this.#explicit) return this.#explicit;
    const set = this.#source.getBundleSet?.();
    if (set) return set.bundles().map((b) => b.trustDomain);
    return [this.#source.getX509Svid().id.trustDomain];
  }

  /** The bundle of `trustDomain` when it is in scope. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    if (!this.trustDomains().some((td) => td.equals(trustDomain))) return undefined;
    return this.#source.getX509BundleForTrustDomain(trustDomain);
  }

  /** The union of the roots of every accepted trust domain, for OpenSSL; ERR_TLS_NO_TRUSTED_ROOTS when empty. */
  roots(): Certificate[] {
    const domains = this.trustDomains();
    const seen = new Set<string>();
    const roots: Certificate[] = [];
    for (const td of domains) {
      for (const root of this.#source.getX509BundleForTrustDomain(td)?.authorities() ?? []) {
        const key = root.der.toString('base64');
        if (seen.has(key)) continue;
        seen.add(key);
        roots.push(root);
      }
    }
    if (roots.length === 0) {
      // An empty `ca` list would make every handshake fail with an opaque OpenSSL error; say why here.
      const names = domains.map((td) => `"${td.name}"`).join(', ') || 'none';
      throw new SvidkitError(
        'ERR_TLS_NO_TRUSTED_ROOTS',
        `tls: no X.509 roots to trust; the source has no X.509 authorities for the accepted trust domains (${names})`,
      );
    }
    return roots;
  }
}
