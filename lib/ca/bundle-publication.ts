/**
 * Publication of the CA's trust bundle: what goes into it and when it takes a new sequence number.
 *
 * The X.509 part holds the upstream roots (upstream mode) or every self-signed root that is not
 * dropped (embedded mode: prepared, active and old); the JWT part every JWT key that is not dropped.
 * A key is in the bundle before it signs, since preparation and activation are separate
 * publications. The content, including each key's state, is summed up in a fingerprint: every change
 * of it, and only that, takes exactly one sequence number from the store.
 */
import { createHash } from 'node:crypto';
import { type JwtAuthority, JwtBundle } from '../bundle/jwt.js';
import { SpiffeBundle } from '../bundle/spiffe.js';
import { X509Bundle } from '../bundle/x509.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { CaKeyKind, CaKeyState } from '../store/types.js';
import type { Certificate } from '../x509/certificate.js';
import { caError, errorDetail } from './ca-error.js';
import type { KeyLog } from './key-journal.js';

/** Upper bound of the bundle's refresh hint, in seconds. */
export const MAX_REFRESH_HINT_SECONDS = 300;

/** What publication reads of a key. */
export interface PublishedKey {
  readonly kind: CaKeyKind;
  readonly state: CaKeyState;
  readonly selfSigned: boolean;
  readonly chain: readonly Certificate[];
  readonly authority?: JwtAuthority;
}

/** The bundle's authorities, each with the state (or `upstream`) that put it there. */
export interface BundleEntries {
  readonly x509: readonly (readonly [Certificate, string])[];
  readonly jwt: readonly (readonly [JwtAuthority, string])[];
}

/** The bundle's spiffe_refresh_hint for a CA lifetime: min(300 s, caTtl / 24), at least 1 s. */
export function refreshHintSeconds(caTtlMs: number): number {
  return Math.max(1, Math.floor(Math.min(MAX_REFRESH_HINT_SECONDS * 1000, caTtlMs / 24) / 1000));
}

/** The authorities of the bundle: the upstream roots, then the self-signed roots and JWT keys in journal order. */
export function bundleEntries(upstreamRoots: readonly Certificate[], keys: readonly PublishedKey[]): BundleEntries {
  const x509: [Certificate, string][] = upstreamRoots.map((c) => [c, 'upstream']);
  for (const k of keys) if (k.kind === 'x509' && k.selfSigned) x509.push([k.chain[0]!, k.state]);
  const jwt = keys.filter((k) => k.kind === 'jwt').map((k): [JwtAuthority, string] => [k.authority!, k.state]);
  return { x509, jwt };
}

/** A digest of everything a publication shows, states included: equal digests need no new sequence number. */
export function bundleFingerprint(entries: BundleEntries, refreshHint: number): string {
  const doc = {
    refreshHint,
    x509: entries.x509.map(([c, s]) => `${c.fingerprint256()}:${s}`),
    jwt: entries.jwt.map(([a, s]) => `${a.kid}:${JSON.stringify(a.jwk)}:${s}`),
  };
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex');
}

/** The SPIFFE bundle of `entries` under `sequence`. */
export function buildBundle(
  td: TrustDomain,
  entries: BundleEntries,
  sequence: number,
  refreshHint: number,
): SpiffeBundle {
  return new SpiffeBundle(td, {
    x509: new X509Bundle(
      td,
      entries.x509.map(([c]) => c),
    ),
    jwt: new JwtBundle(
      td,
      entries.jwt.map(([a]) => a),
    ),
    sequence,
    refreshHint,
  });
}

/** The published bundle, its fingerprint, and the listeners told of each new one. */
export class BundlePublisher {
  readonly #listeners = new Set<(bundle: SpiffeBundle) => void>();
  readonly #log: KeyLog;
  #fingerprint?: string;
  #snapshot?: SpiffeBundle;

  constructor(log: KeyLog) {
    this.#log = log;
  }

  /** The fingerprint of the last publication (possibly by an earlier run), if any. */
  get fingerprint(): string | undefined {
    return this.#fingerprint;
  }

  /** The bundle published by this run, if any. */
  get snapshot(): SpiffeBundle | undefined {
    return this.#snapshot;
  }

  /** Takes a fingerprint an earlier run published (read from the state file at start). */
  restore(fingerprint: string | undefined): void {
    this.#fingerprint = fingerprint;
  }

  /** Whether content with `fingerprint` differs from what was last published. */
  changed(fingerprint: string): boolean {
    return fingerprint !== this.#fingerprint;
  }

  /** Makes `bundle` the published one without telling anyone: the start-up bundle when nothing changed. */
  adopt(bundle: SpiffeBundle): void {
    this.#snapshot = bundle;
  }

  /** Publishes `bundle` under `fingerprint`. */
  set(fingerprint: string, bundle: SpiffeBundle): void {
    this.#fingerprint = fingerprint;
    this.#snapshot = bundle;
  }

  /** Tells every listener of the current bundle; a listener that throws is logged and does not stop the others. */
  notify(): void {
    const bundle = this.#snapshot;
    if (bundle === undefined) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener(bundle);
      } catch (err) {
        this.#log('warn', { error: errorDetail(err) }, 'ca: a bundle listener failed');
      }
    }
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: (bundle: SpiffeBundle) => void): () => void {
    if (typeof listener !== 'function') throw caError('ERR_CA_CONFIG', 'listener must be a function');
    const entry = (b: SpiffeBundle) => listener(b);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }
}
