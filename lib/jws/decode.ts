/**
 * The one JWS compact-serialization reader (RFC 7515) behind JWT-SVID validation and the Kubernetes
 * token attestor: size bound, three strict base64url parts, JSON object header and payload, and the
 * algorithm allow-list, checked in that order before any key is touched. Each caller keeps its own
 * header rules (typ, crit, kid, in its documented order) and claim rules, and words the failures under its own codes (JwsError.kind says which).
 */
import type { KeyObject } from 'node:crypto';
import { type ErrorCode, SvidkitError } from '../errors/index.js';

/** Signature algorithms svidkit verifies (the JWT-SVID standard's list); symmetric, none and EdDSA are refused. */
export const JWS_ALGORITHMS = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
] as const);

/** One of JWS_ALGORITHMS. */
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

/** True when `alg` is one of JWS_ALGORITHMS. */
export function isJwsAlgorithm(alg: unknown): alg is JwsAlgorithm {
  return typeof alg === 'string' && (JWS_ALGORITHMS as readonly string[]).includes(alg);
}

/** The curve each ES algorithm signs on, as Node names it. */
export const CURVE_FOR_ALG: Readonly<Record<string, string>> = {
  ES256: 'prime256v1',
  ES384: 'secp384r1',
  ES512: 'secp521r1',
};
/** Shortest RSA key accepted (jose refuses shorter ones too). */
export const MIN_RSA_BITS = 2048;

/** Why `key` cannot be used with `alg`, or undefined when it can. */
export function keyMismatch(key: KeyObject, alg: JwsAlgorithm): string | undefined {
  const type = key.asymmetricKeyType;
  if (alg.startsWith('ES')) {
    if (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== CURVE_FOR_ALG[alg]) {
      return `${alg} needs an EC key on curve ${CURVE_FOR_ALG[alg]}`;
    }
    return undefined;
  }
  // PS* also takes a plain 'rsa' key; 'rsa-pss' keys carry their own hash restrictions, so they are
  // left out rather than half-supported.
  if (type !== 'rsa') return `${alg} needs an RSA key`;
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
    return `${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits`;
  }
  return undefined;
}

/** Which step refused a token. */
export type JwsFailure = 'too-large' | 'malformed' | 'algorithm';

/** A token refused by the reader, as data: the step and a message that never quotes the token. */
export class JwsError extends Error {
  /** Which step refused it. */
  readonly kind: JwsFailure;

  constructor(kind: JwsFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JwsError';
    this.kind = kind;
  }
}

/** A JSON object as decoded. */
export type JsonObject = Record<string, unknown>;

/** A decoded compact JWS whose algorithm is allowed; nothing about its signature is known yet. */
export interface DecodedJws {
  readonly header: JsonObject;
  readonly alg: JwsAlgorithm;
  readonly claims: JsonObject;
  /** The payload's bytes, as signed. */
  readonly payloadBytes: Buffer;
  /** What the signature covers: the header and payload parts with the dot between them. */
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// Date can represent +-8.64e15 ms; a NumericDate outside that cannot become a Date.
const MAX_NUMERIC_DATE = 8.64e12;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** True when `token` has the shape of a compact JWS (three non-empty base64url parts); nothing is decoded. */
export function looksLikeCompactJws(token: string): boolean {
  return COMPACT_JWS.test(token);
}

/** True for a JWT NumericDate a Date can hold. */
export function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_NUMERIC_DATE;
}

/** Quotes an outside value for a message: JSON-escaped (no log injection) and short. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

/** Strict base64url: unpadded, canonical, so that one token has exactly one meaning. */
function decodeBase64url(part: string, what: string): Buffer {
  if (!BASE64URL.test(part) || part.length % 4 === 1) throw new JwsError('malformed', `${what} is not base64url`);
  const bytes = Buffer.from(part, 'base64url');
  if (bytes.toString('base64url') !== part) throw new JwsError('malformed', `${what} is not canonical base64url`);
  return bytes;
}

function decodeJsonObject(bytes: Buffer, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch (cause) {
    throw new JwsError('malformed', `${what} is not UTF-8 JSON`, { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new JwsError('malformed', `${what} is not a JSON object`);
  }
  return value as JsonObject;
}

/**
 * Decodes a compact JWS of at most `maxBytes` UTF-8 bytes and checks its algorithm; throws JwsError.
 * An empty signature is well-formed here, so that alg "none" is reported as an algorithm problem.
 */
export function decodeCompactJws(token: string, maxBytes: number): DecodedJws {
  // UTF-8 never takes fewer bytes than UTF-16 code units, so the length test avoids scanning huge input.
  if (token.length > maxBytes || Buffer.byteLength(token, 'utf8') > maxBytes) {
    throw new JwsError('too-large', `token is larger than ${maxBytes} bytes`);
  }
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw new JwsError('malformed', `token is not a JWS compact serialization (${parts.length} parts, want 3)`);
  }
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  if (headerPart === '' || payloadPart === '') throw new JwsError('malformed', 'token has an empty header or payload');
  const header = decodeJsonObject(decodeBase64url(headerPart, 'header'), 'header');
  const payloadBytes = decodeBase64url(payloadPart, 'payload');
  const claims = decodeJsonObject(payloadBytes, 'payload');
  const signature = decodeBase64url(signaturePart, 'signature');
  // Every part is base64url (ASCII) by now, so latin1 gives exactly the token's bytes.
  const signingInput = Buffer.from(token.slice(0, headerPart.length + 1 + payloadPart.length), 'latin1');
  // Before any key is looked up: an HS256 token "signed" with a public key must never reach a key.
  const alg = header['alg'];
  if (!isJwsAlgorithm(alg)) {
    throw new JwsError(
      'algorithm',
      alg === undefined
        ? 'header has no alg'
        : `algorithm ${typeof alg === 'string' ? quote(alg) : 'value'} is not allowed`,
    );
  }
  return { header, alg, claims, payloadBytes, signingInput, signature };
}

/**
 * decodeCompactJws for a caller with its own codes: a refusal becomes SvidkitError(codes[step]), its
 * message prefixed with the caller's module name, and the reader's own cause kept.
 */
export function decodeCompactJwsAs(
  token: string,
  maxBytes: number,
  codes: Readonly<Record<JwsFailure, ErrorCode>>,
  module: string,
): DecodedJws {
  try {
    return decodeCompactJws(token, maxBytes);
  } catch (err) {
    if (!(err instanceof JwsError)) throw err;
    throw new SvidkitError(
      codes[err.kind],
      `${module}: ${err.message}`,
      err.cause === undefined ? undefined : { cause: err.cause },
    );
  }
}
