/** A source whose contents the owner sets: for tests, and for programs that obtain SVIDs themselves. */
import { BundleSet, type JwtBundle, type X509Bundle } from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { X509Svid } from '../x509svid/index.js';
import type { JwtSource, JwtSvidSource, Unsubscribe, X509Source } from './types.js';

/** An in-memory X.509 and JWT source; set() replaces its contents and notifies listeners. */
export class StaticSource implements X509Source, JwtSource, JwtSvidSource {
  #svid: X509Svid | undefined;
  #bundles: BundleSet | undefined;
  #tokens = new Map<string, string>();
  readonly #listeners = new Set<() => void>();

  /** Starts with the given contents (all optional). */
  constructor(init: { svid?: X509Svid; bundles?: BundleSet; jwtSvids?: ReadonlyMap<string, string> } = {}) {
    this.#svid = init.svid;
    this.#bundles = init.bundles;
    if (init.jwtSvids) this.#tokens = new Map(init.jwtSvids);
  }

  /** Replaces any of the contents, then notifies listeners once. */
  set(update: { svid?: X509Svid; bundles?: BundleSet; jwtSvids?: ReadonlyMap<string, string> }): void {
    if (update.svid) this.#svid = update.svid;
    if (update.bundles) this.#bundles = update.bundles;
    if (update.jwtSvids) this.#tokens = new Map(update.jwtSvids);
    for (const l of [...this.#listeners]) l();
  }

  /** The current SVID; ERR_SOURCE_NO_SVID when none was set. */
  getX509Svid(): X509Svid {
    if (!this.#svid) throw new SvidkitError('ERR_SOURCE_NO_SVID', 'source: no X.509-SVID yet');
    return this.#svid;
  }

  /** Every trusted bundle (empty when none was set). */
  getBundleSet(): BundleSet {
    return this.#bundles ?? new BundleSet();
  }

  /** Bundle source interface. */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#bundles?.getX509BundleForTrustDomain(td);
  }

  /** Bundle source interface. */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
    return this.#bundles?.getJwtBundleForTrustDomain(td);
  }

  /** The token for an audience; ERR_SOURCE_NO_SVID when there is none. */
  getJwtSvid(audience: string): string {
    const t = this.#tokens.get(audience);
    if (t === undefined)
      throw new SvidkitError('ERR_SOURCE_NO_SVID', `source: no JWT-SVID for audience ${JSON.stringify(audience)}`);
    return t;
  }

  /** Change notifications. */
  onUpdate(listener: () => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
