/**
 * JWT-SVIDs: minting, validation and (insecure) parsing, as the SPIFFE JWT-SVID standard and
 * go-spiffe define them.
 *
 * Validation runs in one fixed order so that a token with several faults always reports the same
 * error code, and the cheap, unauthenticated checks run before any key lookup or signature math.
 * jose signs minted tokens; validation is ours from end to end (signature.ts does the signature with
 * node:crypto), because jose's own checks differ from the SPIFFE rules (its typ option demands a typ
 * header, and its time checks read the real clock instead of the injected one) and going through it
 * would parse every token twice.
 */
import { KeyObject } from 'node:crypto';
import { type InspectOptions, inspect } from 'node:util';
import { CompactSign } from 'jose';
import type { JwtBundleSource } from '../bundle/source.js';
import { MAX_KID_LENGTH } from '../bundle/jwt.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import {
  decodeCompactJwsAs,
  isJwsAlgorithm,
  isNumericDate,
  type JsonObject,
  JWS_ALGORITHMS,
  type JwsAlgorithm,
  type JwsFailure,
  keyMismatch,
  quote,
  verifyJwsSignature,
} from '../jws/index.js';

/** Signature algorithms a JWT-SVID may use (JWT-SVID standard, section 3); everything else is refused. */
export const ALLOWED_ALGORITHMS = JWS_ALGORITHMS;

/** One of the JWT-SVID signature algorithms. */
export type JwtAlgorithm = JwsAlgorithm;

/** Largest token accepted, in UTF-8 bytes; bounds the work an unauthenticated caller can cause. */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** Default clock-skew allowance for exp and nbf, in seconds. */
export const DEFAULT_LEEWAY_SECONDS = 30;

/** Largest leeway accepted; more would make expiry meaningless for short-lived SVIDs. */
const MAX_LEEWAY_SECONDS = 300;
const DEFAULT_TTL_SECONDS = 300;
const ALG_FOR_CURVE: Readonly<Record<string, JwtAlgorithm>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};
const ALLOWED_TYP: ReadonlySet<unknown> = new Set(['JWT', 'JOSE']);
const CONSTRUCT = Symbol('JwtSvid.construct');

function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new SvidkitError(code, `jwtsvid: ${message}`, cause === undefined ? undefined : { cause });
}

function readClock(clock: () => Date): number {
  const now = clock();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new TypeError('jwtsvid: clock must return a valid Date');
  }
  return now.getTime();
}

/** Freezes a freshly parsed JSON value throughout; iterative because nesting depth is attacker-chosen. */
function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const child of Object.values(v)) stack.push(child);
    }
  }
  return value;
}

/** The jwtsvid code of each step of the JWS reader. */
const JWS_CODES: Readonly<Record<JwsFailure, ErrorCode>> = {
  'too-large': 'ERR_JWTSVID_TOO_LARGE',
  malformed: 'ERR_JWTSVID_MALFORMED',
  algorithm: 'ERR_JWTSVID_ALGORITHM',
};

interface DecodedToken {
  readonly claims: JsonObject;
  /** What the signature covers: the header and payload parts with the dot between them. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

/** Steps shared by validation and insecure parsing, in the documented order: size to subject. */
function decodeAndCheckHeader(token: string): DecodedToken & { alg: JwtAlgorithm; kid: string; id: SpiffeId } {
  const decoded = decodeCompactJwsAs(token, MAX_TOKEN_BYTES, JWS_CODES, 'jwtsvid');
  const { header, claims, signingInput, signature, alg } = decoded;

  // Absent is fine; when present it must be exactly one of the two values the standard names.
  if (Object.hasOwn(header, 'typ') && !ALLOWED_TYP.has(header['typ'])) {
    fail('ERR_JWTSVID_TYP', 'header typ must be absent, "JWT" or "JOSE"');
  }
  // No extension is understood, and RFC 7515 says a critical one we do not understand must fail.
  if (Object.hasOwn(header, 'crit')) fail('ERR_JWTSVID_MALFORMED', 'header has a crit parameter');
  // jku, jwk, x5u and x5c headers are ignored on purpose: keys only ever come from the bundle.

  const kid = header['kid'];
  if (typeof kid !== 'string' || kid === '') fail('ERR_JWTSVID_MISSING_KID', 'header has no key ID (kid)');

  const sub = claims['sub'];
  if (typeof sub !== 'string') fail('ERR_JWTSVID_SUBJECT', 'token has no sub claim');
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(sub);
  } catch (cause) {
    fail('ERR_JWTSVID_SUBJECT', 'sub claim is not a valid SPIFFE ID', cause);
  }
  if (id.isTrustDomainId()) {
    fail('ERR_JWTSVID_SUBJECT', `sub claim "${id.toString()}" is a trust domain ID, not a workload ID`);
  }

  return { claims, signingInput, signature, alg, kid, id };
}

function readExpiry(claims: JsonObject): Date {
  const exp = claims['exp'];
  if (!isNumericDate(exp)) fail('ERR_JWTSVID_MISSING_EXP', 'token has no valid numeric exp claim');
  return new Date(exp * 1000);
}

function readIssuedAt(claims: JsonObject): Date | undefined {
  const iat = claims['iat'];
  if (iat === undefined) return undefined;
  if (!isNumericDate(iat)) fail('ERR_JWTSVID_MALFORMED', 'iat claim is not a NumericDate');
  return new Date(iat * 1000);
}

function readAudience(claims: JsonObject): string[] {
  const aud = claims['aud'];
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return [...aud];
  fail(
    'ERR_JWTSVID_AUDIENCE',
    aud === undefined ? 'token has no aud claim' : 'aud claim is not a string or array of strings',
  );
}

/** A parsed JWT-SVID. The token itself stays private so logging the object never leaks a credential. */
export class JwtSvid {
  /** The workload's SPIFFE ID, from the sub claim. */
  readonly id: SpiffeId;
  /** The audiences from the aud claim. */
  readonly audience: readonly string[];
  /** When the token expires (exp claim). */
  readonly expiry: Date;
  /** When the token was issued (iat claim), if it says. */
  readonly issuedAt?: Date;
  /** The key ID that signed the token. */
  readonly kid: string;
  /** The signature algorithm from the header. */
  readonly alg: string;
  /** Every claim of the payload, frozen. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly #token: string;

  /** Not public API: use parseAndValidate or parseInsecure; the guard stops forged instances. */
  constructor(
    guard: typeof CONSTRUCT,
    token: string,
    fields: {
      id: SpiffeId;
      audience: string[];
      expiry: Date;
      issuedAt: Date | undefined;
      kid: string;
      alg: string;
      claims: JsonObject;
    },
  ) {
    if (guard !== CONSTRUCT) throw new TypeError('jwtsvid: use parseAndValidate or parseInsecure');
    this.id = fields.id;
    this.audience = Object.freeze([...fields.audience]);
    this.expiry = fields.expiry;
    if (fields.issuedAt !== undefined) this.issuedAt = fields.issuedAt;
    this.kid = fields.kid;
    this.alg = fields.alg;
    this.claims = deepFreeze(fields.claims);
    this.#token = token;
    Object.freeze(this);
  }

  /** The token exactly as it was parsed, for sending as `Authorization: Bearer <token>`. */
  marshal(): string {
    return this.#token;
  }

  /** A description without the token. */
  toString(): string {
    return `JwtSvid(${this.id.toString()}, audience=${JSON.stringify(this.audience)}, expiry=${this.expiry.toISOString()})`;
  }

  /** JSON form without the token, so serialized objects and logs never carry the credential. */
  toJSON(): { id: string; audience: string[]; expiry: string; issuedAt?: string; kid: string; alg: string } {
    const out: ReturnType<JwtSvid['toJSON']> = {
      id: this.id.toString(),
      audience: [...this.audience],
      expiry: this.expiry.toISOString(),
      kid: this.kid,
      alg: this.alg,
    };
    if (this.issuedAt !== undefined) out.issuedAt = this.issuedAt.toISOString();
    return out;
  }

  /** util.inspect / console.log form without the token. */
  [Symbol.for('nodejs.util.inspect.custom')](_depth: number, options: InspectOptions): string {
    return `JwtSvid ${inspect(this.toJSON(), { ...options, customInspect: false })}`;
  }
}

/** Options of parseAndValidate. */
export interface ValidateOptions {
  /** Current time; injected so tests and replays do not depend on the wall clock. */
  clock?: () => Date;
  /** Clock-skew allowance for exp and nbf, 0 to 300 seconds; DEFAULT_LEEWAY_SECONDS when absent. */
  leewaySeconds?: number;
}

/**
 * Parses a JWT-SVID and validates it fully against the bundle of its subject's trust domain.
 *
 * Checks run in a fixed order (size, structure, alg, typ/crit, kid, sub, bundle, kid lookup,
 * signature, exp, nbf, aud) so a token with several faults always gets the same code. Rejections
 * are SvidkitErrors with ERR_JWTSVID_* codes; argument mistakes are TypeError or RangeError. Errors
 * thrown by the bundle source itself pass through unchanged: they are the caller's, not the token's.
 */
export async function parseAndValidate(
  token: string,
  bundles: JwtBundleSource,
  audience: string,
  options: ValidateOptions = {},
): Promise<JwtSvid> {
  if (typeof token !== 'string') throw new TypeError('jwtsvid: token must be a string');
  if (typeof bundles?.getJwtBundleForTrustDomain !== 'function') {
    throw new TypeError('jwtsvid: bundles must be a JwtBundleSource');
  }
  if (typeof audience !== 'string' || audience === '') {
    throw new TypeError('jwtsvid: expected audience must be a non-empty string');
  }
  const clock = options.clock ?? (() => new Date());
  if (typeof clock !== 'function') throw new TypeError('jwtsvid: clock must be a function');
  const leeway = options.leewaySeconds ?? DEFAULT_LEEWAY_SECONDS;
  if (typeof leeway !== 'number' || Number.isNaN(leeway)) {
    throw new TypeError('jwtsvid: leewaySeconds must be a number');
  }
  if (leeway < 0 || leeway > MAX_LEEWAY_SECONDS) {
    throw new RangeError(`jwtsvid: leewaySeconds must be between 0 and ${MAX_LEEWAY_SECONDS}`);
  }

  const decoded = decodeAndCheckHeader(token);
  const { alg, kid, id, claims } = decoded;
  const td = id.trustDomain;

  const bundle = bundles.getJwtBundleForTrustDomain(td);
  if (bundle === undefined) fail('ERR_JWTSVID_NO_BUNDLE', `no JWT bundle for trust domain "${td.name}"`);
  // Only the subject's own trust domain: a key trusted for another domain must never vouch for this one.
  const authority = bundle.findAuthority(kid);
  if (authority === undefined) {
    fail('ERR_JWTSVID_UNKNOWN_KID', `no JWT authority with key ID ${quote(kid)} for trust domain "${td.name}"`);
  }

  const mismatch = keyMismatch(authority.key, alg);
  if (mismatch !== undefined) {
    fail('ERR_JWTSVID_SIGNATURE', `key ${quote(kid)} cannot verify this token: ${mismatch}`);
  }
  let valid: boolean;
  try {
    // Only the signature, over the very bytes the claims were decoded from; no clock is involved.
    valid = verifyJwsSignature(decoded.signingInput, decoded.signature, authority.key, alg);
  } catch (cause) {
    fail('ERR_JWTSVID_SIGNATURE', `signature does not verify with key ${quote(kid)}`, cause);
  }
  if (!valid) fail('ERR_JWTSVID_SIGNATURE', `signature does not verify with key ${quote(kid)}`);

  const nowSeconds = readClock(clock) / 1000;
  const expiry = readExpiry(claims);
  if (nowSeconds > (claims['exp'] as number) + leeway) {
    fail('ERR_JWTSVID_EXPIRED', `token expired at ${expiry.toISOString()}`);
  }
  const nbf = claims['nbf'];
  if (nbf !== undefined) {
    if (!isNumericDate(nbf)) fail('ERR_JWTSVID_MALFORMED', 'nbf claim is not a NumericDate');
    if (nowSeconds < nbf - leeway) {
      fail('ERR_JWTSVID_NOT_YET_VALID', `token is not valid before ${new Date(nbf * 1000).toISOString()}`);
    }
  }
  // iat is only type-checked, never compared with the clock: the JWT-SVID standard gives it no
  // validation rule, and exp/nbf already bound the validity window, so an issuer whose clock runs
  // ahead does not cause outages. (go-jose's Claims.Validate, which newer go-spiffe relies on, does
  // reject iat more than the leeway in the future; this is a deliberate difference.)
  const issuedAt = readIssuedAt(claims);

  const audiences = readAudience(claims);
  if (!audiences.includes(audience)) {
    fail('ERR_JWTSVID_AUDIENCE', `token audience does not include ${JSON.stringify(audience)}`);
  }

  return new JwtSvid(CONSTRUCT, token, { id, audience: audiences, expiry, issuedAt, kid, alg, claims });
}

/**
 * DANGEROUS: decodes a JWT-SVID without verifying its signature, expiry or audience.
 *
 * Only for tokens you got from a trusted source, e.g. to read your own token's expiry; never use
 * the result to authenticate anyone. Structure, alg, typ, kid, sub and the presence of exp and aud
 * are still checked, so a token that could never validate is refused here too.
 */
export function parseInsecure(token: string): JwtSvid {
  if (typeof token !== 'string') throw new TypeError('jwtsvid: token must be a string');
  const { alg, kid, id, claims } = decodeAndCheckHeader(token);
  const expiry = readExpiry(claims);
  const issuedAt = readIssuedAt(claims);
  const audience = readAudience(claims);
  return new JwtSvid(CONSTRUCT, token, { id, audience, expiry, issuedAt, kid, alg, claims });
}

/** Parameters of mintJwtSvid. */
export interface MintParams {
  /** The workload ID for sub; must have a path. */
  id: SpiffeId;
  /** Who the token is for; at least one non-empty audience. */
  audience: string | string[];
  /** Private signing key (EC P-256/P-384/P-521 or RSA of 2048 bits or more). */
  key: KeyObject;
  /** Key ID under which validators find the public key in the JWT bundle. */
  kid: string;
  /** Signature algorithm; derived from the key when absent (EC by curve, RSA as RS256). */
  alg?: JwtAlgorithm;
  /** Absolute expiry; exclusive with ttlSeconds. */
  expiresAt?: Date;
  /** Lifetime in whole seconds from now; 300 when neither this nor expiresAt is set. */
  ttlSeconds?: number;
  /** Current time; injected so tests do not depend on the wall clock. */
  clock?: () => Date;
}

function defaultAlgorithm(key: KeyObject): JwtAlgorithm {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec') {
    const alg = ALG_FOR_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (alg !== undefined) return alg;
    fail('ERR_JWTSVID_MINT', 'EC key is not on curve P-256, P-384 or P-521');
  }
  fail('ERR_JWTSVID_MINT', `unsupported key type ${String(key.asymmetricKeyType)}`);
}

/** Signs a JWT-SVID for a workload; throws ERR_JWTSVID_MINT for values a validator would refuse. */
export async function mintJwtSvid(params: MintParams): Promise<string> {
  if (typeof params !== 'object' || params === null) {
    throw new TypeError('jwtsvid: mint parameters must be an object');
  }
  const { id, audience, key, kid, alg, expiresAt, ttlSeconds, clock = () => new Date() } = params;

  if (!(id instanceof SpiffeId)) throw new TypeError('jwtsvid: id must be a SpiffeId');
  if (id.isTrustDomainId()) {
    fail('ERR_JWTSVID_MINT', `"${id.toString()}" is a trust domain ID; a JWT-SVID needs a workload ID`);
  }

  const audiences = typeof audience === 'string' ? [audience] : audience;
  if (!Array.isArray(audiences)) {
    throw new TypeError('jwtsvid: audience must be a string or an array of strings');
  }
  if (audiences.length === 0) fail('ERR_JWTSVID_MINT', 'audience must not be empty');
  for (const a of audiences) {
    if (typeof a !== 'string') {
      throw new TypeError('jwtsvid: audience must be a string or an array of strings');
    }
    if (a === '') fail('ERR_JWTSVID_MINT', 'audience values must not be empty strings');
  }

  if (typeof kid !== 'string') throw new TypeError('jwtsvid: kid must be a string');
  if (kid === '') fail('ERR_JWTSVID_MINT', 'kid must not be empty');
  if (kid.length > MAX_KID_LENGTH) fail('ERR_JWTSVID_MINT', `kid is longer than ${MAX_KID_LENGTH} characters`);

  if (!(key instanceof KeyObject)) throw new TypeError('jwtsvid: key must be a KeyObject');
  if (key.type !== 'private') fail('ERR_JWTSVID_MINT', 'signing needs a private key');
  let algorithm: JwtAlgorithm;
  if (alg === undefined) {
    algorithm = defaultAlgorithm(key);
  } else {
    if (!isJwsAlgorithm(alg)) fail('ERR_JWTSVID_MINT', `algorithm ${quote(String(alg))} is not allowed`);
    algorithm = alg;
  }
  const mismatch = keyMismatch(key, algorithm);
  if (mismatch !== undefined) fail('ERR_JWTSVID_MINT', `key does not fit: ${mismatch}`);

  if (typeof clock !== 'function') throw new TypeError('jwtsvid: clock must be a function');
  const iat = Math.floor(readClock(clock) / 1000);
  let exp: number;
  if (expiresAt !== undefined) {
    if (ttlSeconds !== undefined) fail('ERR_JWTSVID_MINT', 'give expiresAt or ttlSeconds, not both');
    if (!(expiresAt instanceof Date)) throw new TypeError('jwtsvid: expiresAt must be a Date');
    if (Number.isNaN(expiresAt.getTime())) fail('ERR_JWTSVID_MINT', 'expiresAt is an invalid Date');
    exp = Math.floor(expiresAt.getTime() / 1000);
  } else {
    const ttl = ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (typeof ttl !== 'number') throw new TypeError('jwtsvid: ttlSeconds must be a number');
    if (!Number.isSafeInteger(ttl) || ttl <= 0) {
      fail('ERR_JWTSVID_MINT', 'ttlSeconds must be a positive integer');
    }
    exp = iat + ttl;
  }
  // A token that is already expired (in whole seconds) is a caller bug, not something to hand out.
  if (exp <= iat) fail('ERR_JWTSVID_MINT', 'expiry must be in the future');
  if (!isNumericDate(exp)) fail('ERR_JWTSVID_MINT', 'expiry is out of range');

  const claims = {
    sub: id.toString(),
    aud: audiences.length === 1 ? audiences[0] : [...audiences],
    exp,
    iat,
  };
  let token: string;
  try {
    token = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: algorithm, kid, typ: 'JWT' })
      .sign(key);
  } catch (cause) {
    fail('ERR_JWTSVID_MINT', `signing with ${algorithm} failed`, cause);
  }
  // Validators refuse anything larger, so refuse to produce it.
  if (Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES) {
    fail('ERR_JWTSVID_MINT', `token would be larger than ${MAX_TOKEN_BYTES} bytes`);
  }
  return token;
}
