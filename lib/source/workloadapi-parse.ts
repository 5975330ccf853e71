/**
 * The checking half of WorkloadApiSource: turns Workload API messages into the SVIDs, bundles and
 * claims the source serves, or refuses them with ERR_WORKLOADAPI_BAD_RESPONSE saying which part is
 * wrong. Every SVID must pass the same rules as one read from files (X509Svid: leaf rules, key matches
 * the leaf, chain verifies against its own trust domain's bundle at the source's clock), because the
 * endpoint is another process and its messages are input like any other.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import {
  BundleSet,
  JwtBundle,
  MAX_KEYS_PER_BUNDLE,
  MAX_TRUST_DOMAINS,
  SpiffeBundle,
  X509Bundle,
} from '../bundle/index.js';
import { SvidkitError } from '../errors/index.js';
import type { JWTBundlesResponse__Output } from '../generated/workload/JWTBundlesResponse.js';
import type { JWTSVIDResponse__Output } from '../generated/workload/JWTSVIDResponse.js';
import type { ValidateJWTSVIDResponse__Output } from '../generated/workload/ValidateJWTSVIDResponse.js';
import type { X509BundlesResponse__Output } from '../generated/workload/X509BundlesResponse.js';
import type { X509SVIDResponse__Output } from '../generated/workload/X509SVIDResponse.js';
import type { Struct__Output } from '../generated/workload/google/protobuf/Struct.js';
import type { Value__Output } from '../generated/workload/google/protobuf/Value.js';
import { readElement } from '../internal/der.js';
import { type JwtSvid, MAX_TOKEN_BYTES, parseInsecure } from '../jwtsvid/index.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { Certificate, MAX_CHAIN_LENGTH } from '../x509/certificate.js';
import { verify, X509Svid } from '../x509svid/index.js';
import {
  MAX_CLAIMS_DEPTH,
  MAX_CRLS_PER_RESPONSE,
  MAX_HINT_BYTES,
  MAX_SVIDS_PER_RESPONSE,
} from '../workloadapi/limits.js';

/** One served X.509-SVID and the hint the operator gave it ('' when none). */
export interface ServedX509Svid {
  readonly svid: X509Svid;
  readonly hint: string;
}

/** What one X509SVIDResponse says: the SVIDs (first is the default) and the X.509 bundles. */
export interface X509Context {
  readonly svids: readonly ServedX509Svid[];
  /** Own trust domains' and federated bundles, by trust domain name. */
  readonly bundles: ReadonlyMap<string, X509Bundle>;
  /** Equal for equal content: lets the source skip telling listeners about a resent state. */
  readonly fingerprint: string;
}

function bad(what: string, cause?: unknown, index?: number): never {
  const why = cause instanceof SvidkitError ? `: ${cause.plainMessage}` : '';
  throw new SvidkitError('ERR_WORKLOADAPI_BAD_RESPONSE', `workloadapi: the endpoint sent ${what}${why}`, {
    ...(cause instanceof SvidkitError ? { cause: new SvidkitError(cause.code, cause.message) } : {}),
    ...(index === undefined ? {} : { detail: { index } }),
  });
}

/** Splits concatenated DER certificates, each a SEQUENCE, at most `max` of them. */
function splitDer(buf: Buffer, max: number, what: string, index?: number): Certificate[] {
  const out: Certificate[] = [];
  let offset = 0;
  try {
    while (offset < buf.length) {
      if (out.length >= max) bad(`${what} with more than ${max} certificates`, undefined, index);
      const el = readElement(buf, offset);
      if (el.tag !== 0x30) bad(`${what} that is not DER certificates`, undefined, index);
      out.push(Certificate.fromDer(buf.subarray(offset, el.end)));
      offset = el.end;
    }
  } catch (err) {
    if (err instanceof SvidkitError && err.code === 'ERR_WORKLOADAPI_BAD_RESPONSE') throw err;
    bad(`${what} that is not valid DER certificates`, err, index);
  }
  return out;
}

function trustDomainKey(key: string, what: string): TrustDomain {
  try {
    return TrustDomain.parse(key);
  } catch (err) {
    return bad(`a ${what} keyed by something that is not a trust domain ID`, err);
  }
}

function parseKey(der: Buffer, index: number): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    // Node's message may quote key bytes: none of it goes into ours.
    return bad(`an X.509-SVID whose key is not unencrypted PKCS#8 DER`, undefined, index);
  } finally {
    der.fill(0);
  }
}

function checkHint(hint: string, index: number): string {
  if (Buffer.byteLength(hint) > MAX_HINT_BYTES) bad(`a hint longer than ${MAX_HINT_BYTES} bytes`, undefined, index);
  return hint;
}

/** Adds `bundle` to `map`, refusing a second, different bundle for the same trust domain. */
function addBundle(map: Map<string, X509Bundle>, bundle: X509Bundle, what: string): void {
  const have = map.get(bundle.trustDomain.name);
  if (have === undefined) {
    map.set(bundle.trustDomain.name, bundle);
    return;
  }
  const fp = (b: X509Bundle) =>
    b
      .authorities()
      .map((c) => c.fingerprint256())
      .sort()
      .join();
  if (fp(have) !== fp(bundle)) bad(`${what} that differs from another bundle for "${bundle.trustDomain.name}"`);
}

/** Checks one X509SVIDResponse at `at`; throws ERR_WORKLOADAPI_BAD_RESPONSE. */
export function parseX509SvidResponse(msg: X509SVIDResponse__Output, at: Date): X509Context {
  const svids = msg.svids ?? [];
  if (svids.length === 0) bad('an X.509-SVID response without any SVID');
  if (svids.length > MAX_SVIDS_PER_RESPONSE) bad(`more than ${MAX_SVIDS_PER_RESPONSE} X.509-SVIDs`);
  if ((msg.crl ?? []).length > MAX_CRLS_PER_RESPONSE) bad(`more than ${MAX_CRLS_PER_RESPONSE} CRLs`);
  const bundles = new Map<string, X509Bundle>();
  const served: ServedX509Svid[] = [];
  const hints = new Set<string>();
  const hash = createHash('sha256');
  svids.forEach((s, index) => {
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(s.spiffeId);
    } catch (err) {
      bad(`an X.509-SVID with an invalid spiffe_id`, err, index);
    }
    const chain = splitDer(s.x509Svid, MAX_CHAIN_LENGTH, 'an X.509-SVID chain', index);
    if (chain.length === 0) bad('an X.509-SVID without certificates', undefined, index);
    const key = parseKey(s.x509SvidKey, index);
    let svid: X509Svid;
    try {
      svid = X509Svid.fromParts(chain, key);
    } catch (err) {
      bad(`an X.509-SVID that is not valid`, err, index);
    }
    if (!svid.id.equals(id)) bad(`an X.509-SVID whose certificate is not for its spiffe_id`, undefined, index);
    const roots = splitDer(s.bundle, MAX_KEYS_PER_BUNDLE, 'a bundle', index);
    if (roots.length === 0) bad(`an X.509-SVID without its trust domain's bundle`, undefined, index);
    let own: X509Bundle;
    try {
      own = new X509Bundle(id.trustDomain, roots);
      verify(svid.certificates, own, { at });
    } catch (err) {
      bad(`an X.509-SVID that its own bundle does not verify`, err, index);
    }
    addBundle(bundles, own, 'a bundle');
    const hint = checkHint(s.hint ?? '', index);
    if (hint !== '') {
      if (hints.has(hint)) bad(`two X.509-SVIDs with the hint ${JSON.stringify(hint)}`, undefined, index);
      hints.add(hint);
    }
    served.push({ svid, hint });
    hash.update(`${id.toString()}\0${hint}\0`).update(s.x509Svid).update('\0');
  });
  const federated = Object.entries(msg.federatedBundles ?? {});
  if (federated.length > MAX_TRUST_DOMAINS) bad(`more than ${MAX_TRUST_DOMAINS} federated bundles`);
  for (const [key, der] of federated.sort(([a], [b]) => (a < b ? -1 : 1))) {
    const td = trustDomainKey(key, 'federated bundle');
    if (served.some((s) => s.svid.id.trustDomain.equals(td))) {
      bad(`a federated bundle for its own trust domain "${td.name}"`);
    }
    let bundle: X509Bundle;
    try {
      bundle = new X509Bundle(td, splitDer(der, MAX_KEYS_PER_BUNDLE, 'a federated bundle'));
    } catch (err) {
      if (err instanceof SvidkitError && err.code === 'ERR_WORKLOADAPI_BAD_RESPONSE') throw err;
      bad(`a federated bundle for "${td.name}" that is not valid`, err);
    }
    addBundle(bundles, bundle, 'a federated bundle');
  }
  for (const b of [...bundles.values()].sort((x, y) => (x.trustDomain.name < y.trustDomain.name ? -1 : 1))) {
    hash.update(`${b.trustDomain.name}\0`);
    for (const c of b.authorities()) hash.update(c.fingerprint256());
  }
  return { svids: served, bundles, fingerprint: hash.digest('hex') };
}

/** Checks one X509BundlesResponse: concatenated DER roots keyed by trust domain ID, at least one. */
export function parseX509BundlesResponse(msg: X509BundlesResponse__Output): Map<string, X509Bundle> {
  const entries = Object.entries(msg.bundles ?? {});
  if (entries.length === 0) bad('an X.509 bundle response without any bundle');
  if (entries.length > MAX_TRUST_DOMAINS) bad(`more than ${MAX_TRUST_DOMAINS} X.509 bundles`);
  if ((msg.crl ?? []).length > MAX_CRLS_PER_RESPONSE) bad(`more than ${MAX_CRLS_PER_RESPONSE} CRLs`);
  const out = new Map<string, X509Bundle>();
  for (const [key, der] of entries) {
    const td = trustDomainKey(key, 'X.509 bundle');
    if (out.has(td.name)) bad(`two X.509 bundles for "${td.name}"`);
    try {
      out.set(td.name, new X509Bundle(td, splitDer(der, MAX_KEYS_PER_BUNDLE, 'an X.509 bundle')));
    } catch (err) {
      if (err instanceof SvidkitError && err.code === 'ERR_WORKLOADAPI_BAD_RESPONSE') throw err;
      bad(`an X.509 bundle for "${td.name}" that is not valid`, err);
    }
  }
  return out;
}

/** Checks one JWTBundlesResponse: JWKS documents keyed by trust domain ID. */
export function parseJwtBundlesResponse(msg: JWTBundlesResponse__Output): Map<string, JwtBundle> {
  const entries = Object.entries(msg.bundles ?? {});
  if (entries.length > MAX_TRUST_DOMAINS) bad(`more than ${MAX_TRUST_DOMAINS} JWT bundles`);
  const out = new Map<string, JwtBundle>();
  for (const [key, jwks] of entries) {
    const td = trustDomainKey(key, 'JWT bundle');
    if (out.has(td.name)) bad(`two JWT bundles for "${td.name}"`);
    try {
      out.set(td.name, JwtBundle.parse(td, jwks));
    } catch (err) {
      bad(`a JWT bundle for "${td.name}" that is not valid`, err);
    }
  }
  return out;
}

/** The fingerprint of a set of JWT bundles: equal for equal keys. */
export function jwtBundlesFingerprint(bundles: ReadonlyMap<string, JwtBundle>): string {
  const hash = createHash('sha256');
  for (const name of [...bundles.keys()].sort()) {
    hash.update(`${name}\0${JSON.stringify(bundles.get(name)!.toJwks())}\0`);
  }
  return hash.digest('hex');
}

/** Joins X.509 and JWT bundles into one set, one SPIFFE bundle per trust domain. */
export function joinBundles(x509: ReadonlyMap<string, X509Bundle>, jwt: ReadonlyMap<string, JwtBundle>): BundleSet {
  const names = new Set([...x509.keys(), ...jwt.keys()]);
  return new BundleSet(
    [...names].map((n) => {
      const x = x509.get(n);
      const j = jwt.get(n);
      const td = (x ?? j)!.trustDomain;
      return new SpiffeBundle(td, { ...(x ? { x509: x } : {}), ...(j ? { jwt: j } : {}) });
    }),
  );
}

/** One served JWT-SVID. */
export interface ServedJwtSvid {
  readonly svid: JwtSvid;
  readonly hint: string;
}

/** Checks one JWTSVIDResponse for a request of `audience` (and `spiffeId`, when asked for). */
export function parseJwtSvidResponse(
  msg: JWTSVIDResponse__Output,
  audience: readonly string[],
  spiffeId: SpiffeId | undefined,
): ServedJwtSvid[] {
  const svids = msg.svids ?? [];
  if (svids.length === 0) bad('a JWT-SVID response without any SVID');
  if (svids.length > MAX_SVIDS_PER_RESPONSE) bad(`more than ${MAX_SVIDS_PER_RESPONSE} JWT-SVIDs`);
  const hints = new Set<string>();
  return svids.map((s, index) => {
    let id: SpiffeId;
    let svid: JwtSvid;
    try {
      id = SpiffeId.parse(s.spiffeId);
    } catch (err) {
      bad('a JWT-SVID with an invalid spiffe_id', err, index);
    }
    if (typeof s.svid !== 'string' || s.svid.length > MAX_TOKEN_BYTES)
      bad('a JWT-SVID that is too large', undefined, index);
    try {
      svid = parseInsecure(s.svid);
    } catch (err) {
      bad('a JWT-SVID that is not valid', err, index);
    }
    if (!svid.id.equals(id)) bad('a JWT-SVID whose sub is not its spiffe_id', undefined, index);
    if (spiffeId && !id.equals(spiffeId))
      bad('a JWT-SVID for another SPIFFE ID than the one asked for', undefined, index);
    for (const a of audience) {
      if (!svid.audience.includes(a)) bad('a JWT-SVID without the requested audience', undefined, index);
    }
    const hint = checkHint(s.hint ?? '', index);
    if (hint !== '') {
      if (hints.has(hint)) bad(`two JWT-SVIDs with the hint ${JSON.stringify(hint)}`, undefined, index);
      hints.add(hint);
    }
    return { svid, hint };
  });
}

function valueToJson(v: Value__Output | null | undefined, depth: number): unknown {
  if (depth > MAX_CLAIMS_DEPTH) bad(`claims nested deeper than ${MAX_CLAIMS_DEPTH} levels`);
  if (v === null || v === undefined) return null;
  switch (v.kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return v.numberValue;
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return structToJson(v.structValue, depth + 1);
    case 'listValue':
      return (v.listValue?.values ?? []).map((x) => valueToJson(x, depth + 1));
    default:
      return null;
  }
}

function structToJson(s: Struct__Output | null | undefined, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) {
    // A __proto__ key must become a plain property, never the object's prototype.
    Object.defineProperty(out, k, {
      value: valueToJson(v, depth),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** What ValidateJWTSVID says about a token. */
export interface ValidatedJwt {
  /** The token's SPIFFE ID. */
  readonly spiffeId: SpiffeId;
  /** Every claim of the token, as JSON values. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Checks one ValidateJWTSVIDResponse: a valid SPIFFE ID and claims whose sub (if any) is that ID. */
export function parseValidateResponse(msg: ValidateJWTSVIDResponse__Output): ValidatedJwt {
  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(msg.spiffeId);
  } catch (err) {
    bad('a validation result with an invalid spiffe_id', err);
  }
  const claims = structToJson(msg.claims, 0);
  if (claims['sub'] !== undefined && claims['sub'] !== spiffeId.toString()) {
    bad('a validation result whose sub claim is not its spiffe_id');
  }
  return { spiffeId, claims: Object.freeze(claims) };
}
