/**
 * A certificate provider for grpc-js's experimental certificate-provider credentials that is fed by
 * the caller: set() publishes a new CA bundle and/or identity, and grpc-js swaps them in for new
 * handshakes without a restart. The identity's certificate and key are always published together,
 * so no handshake ever sees the certificate of one version with the key of another.
 */
import type { experimental } from '@grpc/grpc-js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** What set() publishes: PEM roots and/or a PEM chain with its PEM private key. */
export interface ProvidedCertificates {
  readonly caPem?: string;
  readonly identity?: { readonly certificatePem: string; readonly privateKeyPem: string };
}

/** A CertificateProvider whose contents the owner sets. */
export class PushCertificateProvider implements experimental.CertificateProvider {
  #ca: experimental.CaCertificateUpdate | null = null;
  #identity: experimental.IdentityCertificateUpdate | null = null;
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();

  /** Publishes new material; listeners registered by grpc-js see it at once. */
  set(update: ProvidedCertificates): void {
    if (update.caPem !== undefined) {
      this.#ca = { caCertificate: Buffer.from(update.caPem) };
      for (const l of this.#caListeners) l(this.#ca);
    }
    if (update.identity !== undefined) {
      this.#identity = {
        certificate: Buffer.from(update.identity.certificatePem),
        privateKey: Buffer.from(update.identity.privateKeyPem),
      };
      for (const l of this.#identityListeners) l(this.#identity);
    }
  }

  /** grpc-js interface. */
  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    // Delivered on a later tick: grpc-js registers its own watcher only after this call returns, so a
    // value handed over synchronously would never reach the TLS server.
    queueMicrotask(() => {
      if (this.#ca && this.#caListeners.has(listener)) listener(this.#ca);
    });
  }

  /** grpc-js interface. */
  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }

  /** grpc-js interface. */
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.#identity && this.#identityListeners.has(listener)) listener(this.#identity);
    });
  }

  /** grpc-js interface. */
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }
}
