/** JWT bundles: the public keys (by key ID) that validate a trust domain's JWT-SVIDs. */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SvidkitError } from '../errors/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import { MAX_BUNDLE_BYTES, MAX_KEYS_PER_BUNDLE, parseJsonBounded } from './json.js';

/** A public key of a JWT bundle: its JWK (public members only) and the imported key. */
export interface JwtAuthority {
  readonly kid: string;
  readonly jwk: Readonly<JsonWebKey>;
  readonly key: KeyObject;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
/** Longest key ID a JWT bundle accepts. */
export const MAX_KID_LENGTH = 256;

/** Checks and imports one public JWK for JWT-SVID validation; refuses private or symmetric keys. */
export function importJwtAuthority(kid: unknown, jwk: JsonWebKey): JwtAuthority {
  if (typeof kid !== 'string' || kid.length === 0) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: a JWT authority has no key ID (kid)');
  }
  if (kid.length > MAX_KID_LENGTH) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', `bundle: key ID longer than ${MAX_KID_LENGTH} characters`);
  }
  if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', `bundle: JWT authority "${kid}" has unsupported kty`);
  }
  for (const m of PRIVATE_MEMBERS) {
    if ((jwk as Record<string, unknown>)[m] !== undefined) {
      // Never silently keep a private key that someone pasted into a bundle.
      throw new SvidkitError('ERR_BUNDLE_MALFORMED', `bundle: JWT authority "${kid}" contains private key material`);
    }
  }
  const pub: JsonWebKey =
    jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y } : { kty: 'RSA', n: jwk.n, e: jwk.e };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub, format: 'jwk' });
  } catch (cause) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', `bundle: JWT authority "${kid}" is not a valid public key`, {
      cause,
    });
  }
  return Object.freeze({ kid, jwk: Object.freeze(pub), key });
}

/** The JWT authorities of one trust domain, keyed by key ID. Immutable. */
export class JwtBundle {
  /** The trust domain these keys belong to. */
  readonly trustDomain: TrustDomain;
  readonly #authorities: ReadonlyMap<string, JwtAuthority>;

  /** Builds a bundle; throws ERR_BUNDLE_DUPLICATE when two authorities share a key ID. */
  constructor(trustDomain: TrustDomain, authorities: Iterable<JwtAuthority> = []) {
    const map = new Map<string, JwtAuthority>();
    for (const a of authorities) {
      if (map.has(a.kid)) throw new SvidkitError('ERR_BUNDLE_DUPLICATE', `bundle: duplicate key ID "${a.kid}"`);
      map.set(a.kid, a);
    }
    if (map.size > MAX_KEYS_PER_BUNDLE) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: more than ${MAX_KEYS_PER_BUNDLE} JWT authorities`);
    }
    this.trustDomain = trustDomain;
    this.#authorities = map;
  }

  /**
   * Parses a JWKS document (`{"keys": [...]}`). Keys whose `use` is neither absent nor `jwt-svid` are
   * ignored, as the SPIFFE bundle format says; every kept key must have a kid.
   */
  static parse(trustDomain: TrustDomain, input: string | Uint8Array): JwtBundle {
    const doc = parseJsonBounded(input, MAX_BUNDLE_BYTES);
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
      throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: JWKS must be an object with a "keys" array');
    }
    const keys = (doc as { keys: unknown[] }).keys;
    if (keys.length > MAX_KEYS_PER_BUNDLE) {
      throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: more than ${MAX_KEYS_PER_BUNDLE} keys`);
    }
    const out: JwtAuthority[] = [];
    for (const k of keys) {
      if (typeof k !== 'object' || k === null)
        throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: a key is not an object');
      const jwk = k as JsonWebKey & { use?: unknown; kid?: unknown };
      if (jwk.use !== undefined && jwk.use !== 'jwt-svid') continue;
      if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') continue;
      out.push(importJwtAuthority(jwk.kid, jwk));
    }
    return new JwtBundle(trustDomain, out);
  }

  /** The authority with this key ID, if any. */
  findAuthority(kid: string): JwtAuthority | undefined {
    return this.#authorities.get(kid);
  }

  /** Every authority, in insertion order. */
  authorities(): JwtAuthority[] {
    return [...this.#authorities.values()];
  }

  /** Number of authorities. */
  get size(): number {
    return this.#authorities.size;
  }

  /** A new bundle with this authority added or replaced. */
  withAuthority(authority: JwtAuthority): JwtBundle {
    const rest = this.authorities().filter((a) => a.kid !== authority.kid);
    return new JwtBundle(this.trustDomain, [...rest, authority]);
  }

  /** A new bundle without the authority of this key ID. */
  withoutAuthority(kid: string): JwtBundle {
    return new JwtBundle(
      this.trustDomain,
      this.authorities().filter((a) => a.kid !== kid),
    );
  }

  /** The bundle for the source interface: itself when the trust domain matches. */
  getJwtBundleForTrustDomain(trustDomain: TrustDomain): JwtBundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this : undefined;
  }

  /** The JWKS form, each key marked `use: "jwt-svid"`. */
  toJwks(): { keys: (JsonWebKey & { kid: string; use: string })[] } {
    return { keys: this.authorities().map((a) => ({ ...a.jwk, kid: a.kid, use: 'jwt-svid' })) };
  }
}
