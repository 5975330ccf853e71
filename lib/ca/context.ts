/**
 * Everything the CA's gRPC services share: configuration, datastore, keys, attestors, logger and
 * metrics, plus the issuer for the currently active CA key (rebuilt when the key rotates).
 */
import type { PsatAttestor } from '../attest/index.js';
import { Counter, Histogram, type Logger, Registry } from '../observe/index.js';
import type { Datastore } from '../store/index.js';
import type { CaConfig } from './config.js';
import { SvidIssuer } from './issuer.js';
import type { CaKeyManager } from './keys.js';

/** Prometheus metrics of the CA. */
export interface CaMetrics {
  readonly registry: Registry;
  readonly issued: Counter;
  readonly latency: Histogram;
  readonly attestationFailures: Counter;
}

/** Creates the CA's metrics in a new registry. */
export function createCaMetrics(): CaMetrics {
  const registry = new Registry();
  return {
    registry,
    issued: registry.register(
      new Counter({
        name: 'svidkit_ca_svids_issued_total',
        help: 'SVIDs issued, by kind and result',
        labelNames: ['kind', 'result'],
      }),
    ),
    latency: registry.register(
      new Histogram({
        name: 'svidkit_ca_issue_seconds',
        help: 'time to handle one issuance call',
        labelNames: ['method'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      }),
    ),
    attestationFailures: registry.register(
      new Counter({
        name: 'svidkit_ca_attestation_failures_total',
        help: 'refused attestations, by type',
        labelNames: ['type'],
      }),
    ),
  };
}

/** The shared state of a running CA. */
export class CaContext {
  readonly config: CaConfig;
  readonly store: Datastore;
  readonly keys: CaKeyManager;
  readonly psat: PsatAttestor | undefined;
  readonly log: Logger;
  readonly metrics: CaMetrics;
  readonly clock: () => Date;
  #issuer: { id: string; issuer: SvidIssuer } | undefined;

  constructor(parts: {
    config: CaConfig;
    store: Datastore;
    keys: CaKeyManager;
    psat?: PsatAttestor;
    log: Logger;
    metrics: CaMetrics;
    clock?: () => Date;
  }) {
    this.config = parts.config;
    this.store = parts.store;
    this.keys = parts.keys;
    this.psat = parts.psat;
    this.log = parts.log;
    this.metrics = parts.metrics;
    this.clock = parts.clock ?? (() => new Date());
  }

  /** The issuer of the active X.509 CA key; rebuilt once after each activation. */
  issuer(): { issuer: SvidIssuer; chain: Buffer[] } {
    const signer = this.keys.x509Signer();
    if (this.#issuer?.id !== signer.id) this.#issuer = { id: signer.id, issuer: new SvidIssuer(signer) };
    return { issuer: this.#issuer.issuer, chain: signer.chain().map((c) => c.der) };
  }
}
