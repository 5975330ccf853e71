/**
 * SPIFFE bundles (a JWK Set with `use` x509-svid / jwt-svid, spiffe_sequence and spiffe_refresh_hint)
 * and bundle sets keyed by trust domain, including the `{"trust_domains": {...}}` document.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SvidkitError } from '../errors/index.js';
import { samePublicKey } from '../keys/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import { Certificate } from '../x509/certificate.js';
import { MAX_BUNDLE_BYTES, MAX_KEYS_PER_BUNDLE, MAX_TRUST_DOMAINS, parseJsonBounded } from './json.js';
import { importJwtAuthority, type JwtAuthority, JwtBundle } from './jwt.js';
import type { JwtBundleSource, X509BundleSource } from './source.js';
import { X509Bundle } from './x509.js';

/** A SPIFFE bundle document as JSON. */
export interface SpiffeBundleJson {
  keys: (JsonWebKey & { use: string; kid?: string; x5c?: string[] })[];
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
}

function malformed(message: string, cause?: unknown): never {
  throw new SvidkitError('ERR_BUNDLE_MALFORMED', `bundle: ${message}`, cause === undefined ? undefined : { cause });
}

function optionalCount(doc: Record<string, unknown>, name: string): number | undefined {
  const v = doc[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) malformed(`${name} must be a non-negative integer`);
  return v;
}

/** A trust domain's X.509 and JWT authorities with the SPIFFE bundle metadata. Immutable. */
export class SpiffeBundle implements X509BundleSource, JwtBundleSource {
  /** The trust domain. */
  readonly trustDomain: TrustDomain;
  /** X.509 roots. */
  readonly x509: X509Bundle;
  /** JWT keys. */
  readonly jwt: JwtBundle;
  /** spiffe_sequence: increases with every change. */
  readonly sequence?: number;
  /** spiffe_refresh_hint in seconds. */
  readonly refreshHint?: number;

  /** Builds a bundle from its parts; both parts must belong to `trustDomain`. */
  constructor(
    trustDomain: TrustDomain,
    parts: { x509?: X509Bundle; jwt?: JwtBundle; sequence?: number; refreshHint?: number } = {},
  ) {
    for (const p of [parts.x509, parts.jwt]) {
      if (p && !p.trustDomain.equals(trustDomain)) {
        throw new SvidkitError(
          'ERR_BUNDLE_TRUST_DOMAIN',
          `bundle: part of trust domain "${p.trustDomain.name}" given for "${trustDomain.name}"`,
        );
      }
    }
    this.trustDomain = trustDomain;
    this.x509 = parts.x509 ?? new X509Bundle(trustDomain);
    this.jwt = parts.jwt ?? new JwtBundle(trustDomain);
    this.sequence = parts.sequence;
    this.refreshHint = parts.refreshHint;
  }

  /**
   * Parses a SPIFFE bundle JSON document for `trustDomain`. Keys with an unknown `use` or `kty`, or no
   * `use`, are ignored as the standard says; x509-svid keys need exactly one x5c certificate whose key
   * is the JWK's; jwt-svid keys need a kid.
   */
  static parse(trustDomain: TrustDomain, input: string | Uint8Array): SpiffeBundle {
    return SpiffeBundle.fromJson(trustDomain, parseJsonBounded(input, MAX_BUNDLE_BYTES));
  }

  /** Like parse, from an already-decoded JSON value. */
  static fromJson(trustDomain: TrustDomain, doc: unknown): SpiffeBundle {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      malformed('a SPIFFE bundle must be a JSON object');
    const obj = doc as Record<string, unknown>;
    if (!Array.isArray(obj['keys'])) malformed('a SPIFFE bundle needs a "keys" array');
    const keys = obj['keys'] as unknown[];
    if (keys.length > 2 * MAX_KEYS_PER_BUNDLE) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: more than ${2 * MAX_KEYS_PER_BUNDLE} keys`);
    }
    const roots: Certificate[] = [];
    const jwtKeys: JwtAuthority[] = [];
    for (const [i, k] of keys.entries()) {
      if (typeof k !== 'object' || k === null || Array.isArray(k)) malformed(`key ${i} is not an object`);
      const jwk = k as JsonWebKey & { use?: unknown; kid?: unknown; x5c?: unknown };
      if (jwk.kty !== 'EC' && jwk.kty !== 'RSA' && jwk.kty !== 'OKP') continue;
      if (jwk.use === 'x509-svid') {
        if (!Array.isArray(jwk.x5c) || jwk.x5c.length !== 1 || typeof jwk.x5c[0] !== 'string') {
          malformed(`x509-svid key ${i} must have exactly one x5c certificate`);
        }
        let cert: Certificate;
        let certKey: KeyObject;
        try {
          cert = Certificate.fromDer(Buffer.from(jwk.x5c[0], 'base64'));
          certKey = cert.publicKey;
        } catch (cause) {
          malformed(`x509-svid key ${i} has an invalid x5c certificate`, cause);
        }
        if (!samePublicKey(certKey, jwkPublicKey(jwk, i)))
          malformed(`x509-svid key ${i}: the JWK is not the key of its x5c certificate`);
        roots.push(cert);
      } else if (jwk.use === 'jwt-svid') {
        if (jwk.kty === 'OKP') continue; // JWT-SVIDs have no EdDSA; such a key can never validate one
        jwtKeys.push(importJwtAuthority(jwk.kid, jwk));
      }
    }
    return new SpiffeBundle(trustDomain, {
      x509: new X509Bundle(trustDomain, roots),
      jwt: new JwtBundle(trustDomain, jwtKeys),
      sequence: optionalCount(obj, 'spiffe_sequence'),
      refreshHint: optionalCount(obj, 'spiffe_refresh_hint'),
    });
  }

  /** The SPIFFE bundle JSON document. */
  toJson(): SpiffeBundleJson {
    const keys: SpiffeBundleJson['keys'] = [];
    for (const cert of this.x509.authorities()) {
      keys.push({
        use: 'x509-svid',
        ...cert.publicKey.export({ format: 'jwk' }),
        x5c: [cert.der.toString('base64')],
      });
    }
    for (const k of this.jwt.toJwks().keys) keys.push(k);
    const out: SpiffeBundleJson = { keys };
    if (this.sequence !== undefined) out.spiffe_sequence = this.sequence;
    if (this.refreshHint !== undefined) out.spiffe_refresh_hint = this.refreshHint;
    return out;
  }

  /** The JSON text of toJson. */
  marshal(): string {
    return JSON.stringify(this.toJson(), null, 2);
  }

  /** Source interface: the X.509 part when the trust domain matches. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this.x509 : undefined;
  }

  /** Source interface: the JWT part when the trust domain matches. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this.jwt : undefined;
  }
}

function jwkPublicKey(jwk: JsonWebKey, i: number): KeyObject {
  try {
    const pub: JsonWebKey =
      jwk.kty === 'RSA' ? { kty: 'RSA', n: jwk.n, e: jwk.e } : { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    return createPublicKey({ key: pub, format: 'jwk' });
  } catch (cause) {
    return malformed(`x509-svid key ${i} is not a valid public JWK`, cause);
  }
}

/** Bundles of several trust domains, one per trust domain. Immutable; never merges two domains' keys. */
export class BundleSet implements X509BundleSource, JwtBundleSource {
  readonly #bundles: ReadonlyMap<string, SpiffeBundle>;

  /** Builds a set; two bundles for the same trust domain are an error. */
  constructor(bundles: Iterable<SpiffeBundle | X509Bundle | JwtBundle> = []) {
    const map = new Map<string, SpiffeBundle>();
    for (const b of bundles) {
      const name = b.trustDomain.name;
      if (map.has(name))
        throw new SvidkitError('ERR_BUNDLE_DUPLICATE', `bundle: two bundles for trust domain "${name}"`);
      map.set(name, toSpiffeBundle(b));
    }
    if (map.size > MAX_TRUST_DOMAINS) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: more than ${MAX_TRUST_DOMAINS} trust domains`);
    }
    this.#bundles = map;
  }

  /** Parses `{"trust_domains": {"<td>": <SPIFFE bundle>, ...}}`; repeated trust domains are an error. */
  static parse(input: string | Uint8Array): BundleSet {
    return BundleSet.fromJson(parseJsonBounded(input, MAX_BUNDLE_BYTES * 4));
  }

  /** Like parse, from an already-decoded JSON value. */
  static fromJson(doc: unknown): BundleSet {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) malformed('a bundle set must be a JSON object');
    const tds = (doc as Record<string, unknown>)['trust_domains'];
    if (typeof tds !== 'object' || tds === null || Array.isArray(tds))
      malformed('a bundle set needs a "trust_domains" object');
    const entries = Object.entries(tds as Record<string, unknown>);
    if (entries.length > MAX_TRUST_DOMAINS) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: more than ${MAX_TRUST_DOMAINS} trust domains`);
    }
    return new BundleSet(
      entries.map(([name, b]) => {
        // The map is keyed by trust domain names; an ID form here means the document was built wrong.
        if (name.includes('://'))
          malformed(`trust_domains key "${name.slice(0, 64)}" must be a bare trust domain name`);
        return SpiffeBundle.fromJson(TrustDomain.parse(name), b);
      }),
    );
  }

  /** The bundle of a trust domain, if trusted. */
  get(trustDomain: TrustDomain): SpiffeBundle | undefined {
    return this.#bundles.get(trustDomain.name);
  }

  /** Every bundle. */
  bundles(): SpiffeBundle[] {
    return [...this.#bundles.values()];
  }

  /** Number of trust domains. */
  get size(): number {
    return this.#bundles.size;
  }

  /** A new set with this trust domain's bundle added or replaced. */
  with(bundle: SpiffeBundle | X509Bundle | JwtBundle): BundleSet {
    return new BundleSet([
      ...this.bundles().filter((b) => !b.trustDomain.equals(bundle.trustDomain)),
      toSpiffeBundle(bundle),
    ]);
  }

  /** The `trust_domains` document. */
  toJson(): { trust_domains: Record<string, SpiffeBundleJson> } {
    const out: Record<string, SpiffeBundleJson> = {};
    for (const b of this.#bundles.values()) out[b.trustDomain.name] = b.toJson();
    return { trust_domains: out };
  }

  /** Source interface. */
  getX509BundleForTrustDomain(trustDomain: TrustDomain): X509Bundle | undefined {
    return this.#bundles.get(trustDomain.name)?.x509;
  }

  /** Source interface. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined {
    return this.#bundles.get(trustDomain.name)?.jwt;
  }
}

function toSpiffeBundle(b: SpiffeBundle | X509Bundle | JwtBundle): SpiffeBundle {
  if (b instanceof SpiffeBundle) return b;
  return b instanceof X509Bundle
    ? new SpiffeBundle(b.trustDomain, { x509: b })
    : new SpiffeBundle(b.trustDomain, { jwt: b });
}
