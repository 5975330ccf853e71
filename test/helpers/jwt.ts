/** Test helpers for JWT-SVIDs: key fixtures, bundle sources and hand-built tokens. */
import { constants, createHmac, type KeyObject, sign } from 'node:crypto';
import type { JwtBundle } from '../../lib/bundle/jwt.js';
import type { JwtBundleSource } from '../../lib/bundle/source.js';
import type { TrustDomain } from '../../lib/spiffeid/index.js';

/** A bundle source backed by a Map of trust-domain name to bundle. */
export function bundleSource(...bundles: JwtBundle[]): JwtBundleSource & { readonly map: Map<string, JwtBundle> } {
  const map = new Map(bundles.map((b) => [b.trustDomain.name, b]));
  return {
    map,
    getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle | undefined {
      return map.get(td.name);
    },
  };
}

/** Base64url of a JSON value or of raw bytes. */
export function b64(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Signs `input` with node:crypto for the JWS algorithm, independently of jose (an interop check). */
export function rawSign(alg: string, input: string, key: KeyObject | Uint8Array | string): Buffer {
  const data = Buffer.from(input, 'ascii');
  const bits = alg.slice(2);
  if (alg.startsWith('HS')) {
    return createHmac(`sha${bits}`, key as Uint8Array | string)
      .update(data)
      .digest();
  }
  const k = key as KeyObject;
  if (alg === 'EdDSA') return sign(null, data, k);
  if (alg.startsWith('ES')) return sign(`sha${bits}`, data, { key: k, dsaEncoding: 'ieee-p1363' });
  if (alg.startsWith('PS')) {
    return sign(`sha${bits}`, data, {
      key: k,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: Number(bits) / 8,
    });
  }
  if (alg.startsWith('RS')) return sign(`sha${bits}`, data, k);
  throw new Error(`rawSign: unsupported alg ${alg}`);
}

/**
 * Builds a compact JWS from a header and claims of any shape. With `signAs` it is signed using that
 * algorithm (defaulting to header.alg); without a key the signature part is empty.
 */
export function craft(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key?: KeyObject | Uint8Array | string,
  signAs?: string,
): string {
  const input = `${b64(header)}.${b64(claims)}`;
  if (key === undefined) return `${input}.`;
  const alg = signAs ?? String(header['alg']);
  return `${input}.${rawSign(alg, input, key).toString('base64url')}`;
}

/** A copy of `base` with `changes` applied; a change to undefined removes the member. */
export function edit(base: Record<string, unknown>, changes: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** A small deterministic PRNG (mulberry32), so fuzz cases are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
