/**
 * Sources: things that hold the current SVID and bundles and tell listeners when they change. TLS and
 * gRPC configurations ask a source on every handshake instead of copying a snapshot, which is why
 * rotation needs no restart.
 */
import type { BundleSet, JwtBundleSource, X509BundleSource } from '../bundle/index.js';
import type { X509Svid } from '../x509svid/index.js';

/** Unsubscribes a listener. */
export type Unsubscribe = () => void;

/** Gives the current X.509-SVID; throws ERR_SOURCE_NO_SVID when there is none yet, never returns a stale or invalid one. */
export interface X509SvidSource {
  getX509Svid(): X509Svid;
}

/** An SVID and the bundles of every trusted trust domain, with change notifications. */
export interface X509Source extends X509SvidSource, X509BundleSource {
  /** Calls `listener` after every change of the SVID or of any bundle. */
  onUpdate(listener: () => void): Unsubscribe;
  /**
   * Every trusted bundle. TLS stacks that verify against one flat root list (OpenSSL through node:tls)
   * need them all; svidkit then re-checks each peer against its own trust domain's bundle.
   */
  getBundleSet?(): BundleSet;
}

/** Gives a JWT-SVID for an audience; throws ERR_SOURCE_NO_SVID when there is none for it. */
export interface JwtSvidSource {
  /** The compact token; never log it. */
  getJwtSvid(audience: string): string;
}

/** JWT bundles with change notifications (validators drop their caches on change). */
export interface JwtSource extends JwtBundleSource {
  onUpdate(listener: () => void): Unsubscribe;
}
