/**
 * SPIFFE IDs and trust domains, parsed and produced exactly as the SPIFFE ID standard says.
 *
 * Parsing is strict in the way go-spiffe is: the scheme must be the lowercase `spiffe://`, the
 * trust domain lowercase, and nothing is percent-decoded, so that one identity has one spelling.
 */
import { SvidkitError } from '../errors/index.js';

/** Maximum length of a whole SPIFFE ID in bytes (SPIFFE ID standard, section 2.3). */
export const MAX_ID_LENGTH = 2048;
/** Maximum length of a trust domain name in bytes (SPIFFE ID standard, section 2.1). */
export const MAX_TRUST_DOMAIN_LENGTH = 255;

const SCHEME_PREFIX = 'spiffe://';

function tdCharOk(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

function pathCharOk(c: number): boolean {
  return tdCharOk(c) || (c >= 0x41 && c <= 0x5a); // the path also allows A-Z
}

function fail(code: ConstructorParameters<typeof SvidkitError>[0], message: string): never {
  throw new SvidkitError(code, `spiffeid: ${message}`);
}

// Limits are in bytes; every allowed character is ASCII, so the UTF-8 length only matters for the error code.
function byteLength(s: string): number {
  return Buffer.byteLength(s);
}

function checkTrustDomainName(name: string): void {
  if (name.length === 0) fail('ERR_SPIFFEID_TRUST_DOMAIN_MISSING', 'trust domain is missing');
  if (byteLength(name) > MAX_TRUST_DOMAIN_LENGTH) {
    fail('ERR_SPIFFEID_TRUST_DOMAIN_TOO_LONG', `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`);
  }
  for (let i = 0; i < name.length; i++) {
    if (!tdCharOk(name.charCodeAt(i))) {
      fail(
        'ERR_SPIFFEID_TRUST_DOMAIN_CHAR',
        'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
      );
    }
  }
}

/** Checks one path segment (without slashes); throws a SvidkitError when it is not allowed. */
export function validatePathSegment(segment: string): void {
  if (segment.length === 0) fail('ERR_SPIFFEID_PATH_EMPTY_SEGMENT', 'path cannot contain empty segments');
  if (segment === '.' || segment === '..') fail('ERR_SPIFFEID_PATH_DOT_SEGMENT', 'path cannot contain dot segments');
  for (let i = 0; i < segment.length; i++) {
    if (!pathCharOk(segment.charCodeAt(i))) {
      fail(
        'ERR_SPIFFEID_PATH_CHAR',
        'path segment characters are limited to letters, numbers, dots, dashes, and underscores',
      );
    }
  }
}

/** Checks a path ("" or "/a/b"); throws a SvidkitError when it is not a valid SPIFFE ID path. */
export function validatePath(path: string): void {
  if (path === '') return;
  if (path.charCodeAt(0) !== 0x2f) fail('ERR_SPIFFEID_PATH_LEADING_SLASH', 'path must have a leading slash');
  if (path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f) {
    fail('ERR_SPIFFEID_PATH_TRAILING_SLASH', 'path cannot have a trailing slash');
  }
  if (path === '/') fail('ERR_SPIFFEID_PATH_TRAILING_SLASH', 'path cannot have a trailing slash');
  let start = 1;
  for (;;) {
    const end = path.indexOf('/', start);
    validatePathSegment(path.slice(start, end === -1 ? undefined : end));
    if (end === -1) return;
    start = end + 1;
  }
}

// Builds a TrustDomain from a name this module already checked; not reachable from outside.
let trustedTrustDomain: (name: string) => TrustDomain;

/** A SPIFFE trust domain: an immutable, validated, lowercase name. */
export class TrustDomain {
  /** The trust domain name, e.g. `example.org`. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
    Object.freeze(this);
  }

  /** Parses `example.org` or `spiffe://example.org` (an ID with a path is refused). */
  static parse(input: string): TrustDomain {
    if (typeof input !== 'string') throw new TypeError('spiffeid: trust domain must be a string');
    if (input.length === 0) fail('ERR_SPIFFEID_TRUST_DOMAIN_MISSING', 'trust domain is missing');
    if (input.includes('://')) {
      const id = SpiffeId.parse(input);
      if (id.path !== '') fail('ERR_SPIFFEID_TRUST_DOMAIN_CHAR', 'a trust domain cannot have a path');
      return id.trustDomain;
    }
    checkTrustDomainName(input);
    return new TrustDomain(input);
  }

  static {
    trustedTrustDomain = (name) => new TrustDomain(name);
  }

  /** The trust domain's own ID, `spiffe://<name>` (the ID of its signing authority). */
  id(): SpiffeId {
    return SpiffeId.fromPath(this, '');
  }

  /** `spiffe://<name>` as a string. */
  idString(): string {
    return SCHEME_PREFIX + this.name;
  }

  /** True when both name the same trust domain. */
  equals(other: TrustDomain): boolean {
    return other instanceof TrustDomain && other.name === this.name;
  }

  /** The trust domain name. */
  toString(): string {
    return this.name;
  }

  /** JSON form: the name. */
  toJSON(): string {
    return this.name;
  }
}

/** A SPIFFE ID: an immutable, validated `spiffe://<trust domain><path>`. */
export class SpiffeId {
  /** The trust domain part. */
  readonly trustDomain: TrustDomain;
  /** The path, "" or "/seg/seg"; case-sensitive. */
  readonly path: string;

  private constructor(trustDomain: TrustDomain, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    Object.freeze(this);
  }

  /** Parses a SPIFFE ID string; throws a SvidkitError with an ERR_SPIFFEID_* code when it is invalid. */
  static parse(input: string): SpiffeId {
    if (typeof input !== 'string') throw new TypeError('spiffeid: ID must be a string');
    if (input.length === 0) fail('ERR_SPIFFEID_EMPTY', 'cannot be empty');
    if (input.length > MAX_ID_LENGTH || byteLength(input) > MAX_ID_LENGTH)
      fail('ERR_SPIFFEID_TOO_LONG', `ID is longer than ${MAX_ID_LENGTH} bytes`);
    if (!input.startsWith(SCHEME_PREFIX)) fail('ERR_SPIFFEID_SCHEME', 'scheme is missing or invalid');
    const rest = input.slice(SCHEME_PREFIX.length);
    const slash = rest.indexOf('/');
    const tdName = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    checkTrustDomainName(tdName);
    validatePath(path);
    return new SpiffeId(trustedTrustDomain(tdName), path);
  }

  /** Like parse, but returns undefined instead of throwing. */
  static tryParse(input: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(input);
    } catch {
      return undefined;
    }
  }

  /** Builds an ID from a trust domain and a path ("" or "/a/b"). */
  static fromPath(trustDomain: TrustDomain | string, path: string): SpiffeId {
    const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
    if (!(td instanceof TrustDomain)) throw new TypeError('spiffeid: trustDomain must be a TrustDomain or a string');
    validatePath(path);
    const id = new SpiffeId(td, path);
    if (id.toString().length > MAX_ID_LENGTH) fail('ERR_SPIFFEID_TOO_LONG', `ID is longer than ${MAX_ID_LENGTH} bytes`);
    return id;
  }

  /** Builds an ID from a trust domain and path segments, each checked on its own (no slashes inside). */
  static fromSegments(trustDomain: TrustDomain | string, ...segments: string[]): SpiffeId {
    for (const s of segments) validatePathSegment(s);
    return SpiffeId.fromPath(trustDomain, segments.length === 0 ? '' : '/' + segments.join('/'));
  }

  /** The path segments, e.g. ["ns", "prod", "sa", "web"]. */
  segments(): string[] {
    return this.path === '' ? [] : this.path.slice(1).split('/');
  }

  /** True when this ID belongs to the trust domain. */
  memberOf(trustDomain: TrustDomain): boolean {
    return this.trustDomain.equals(trustDomain);
  }

  /** True when the path is empty: the ID of a trust domain's signing authority, never a workload. */
  isTrustDomainId(): boolean {
    return this.path === '';
  }

  /** A new ID in the same trust domain with the given path. */
  replacePath(path: string): SpiffeId {
    return SpiffeId.fromPath(this.trustDomain, path);
  }

  /** A new ID with segments appended to the path. */
  appendSegments(...segments: string[]): SpiffeId {
    for (const s of segments) validatePathSegment(s);
    return SpiffeId.fromPath(this.trustDomain, this.path + segments.map((s) => '/' + s).join(''));
  }

  /** True when both are the same ID. */
  equals(other: SpiffeId): boolean {
    return other instanceof SpiffeId && other.path === this.path && other.trustDomain.equals(this.trustDomain);
  }

  /** The canonical string form `spiffe://<td><path>`. */
  toString(): string {
    return SCHEME_PREFIX + this.trustDomain.name + this.path;
  }

  /** JSON form: the string. */
  toJSON(): string {
    return this.toString();
  }
}

/** A check on a SPIFFE ID that throws ERR_SPIFFEID_MISMATCH when the ID does not match. */
export type Matcher = (id: SpiffeId) => void;

function mismatch(id: SpiffeId, expected: string): never {
  fail('ERR_SPIFFEID_MISMATCH', `unexpected ID "${id.toString()}": expected ${expected}`);
}

/** Matches any ID. */
export function matchAny(): Matcher {
  return () => {};
}

/** Matches exactly one ID. */
export function matchId(expected: SpiffeId | string): Matcher {
  const want = typeof expected === 'string' ? SpiffeId.parse(expected) : expected;
  return (id) => {
    if (!id.equals(want)) mismatch(id, `"${want.toString()}"`);
  };
}

/** Matches any of the given IDs. */
export function matchOneOf(...expected: (SpiffeId | string)[]): Matcher {
  const want = new Set(expected.map((e) => (typeof e === 'string' ? SpiffeId.parse(e) : e).toString()));
  return (id) => {
    if (!want.has(id.toString())) mismatch(id, `one of ${[...want].map((s) => `"${s}"`).join(', ')}`);
  };
}

/** Matches any ID of the trust domain. */
export function matchMemberOf(trustDomain: TrustDomain | string): Matcher {
  const td = typeof trustDomain === 'string' ? TrustDomain.parse(trustDomain) : trustDomain;
  return (id) => {
    if (!id.memberOf(td)) mismatch(id, `a member of trust domain "${td.name}"`);
  };
}

/** Matches IDs for which the predicate returns true. */
export function matchWith(predicate: (id: SpiffeId) => boolean, description = 'a matching ID'): Matcher {
  return (id) => {
    if (!predicate(id)) mismatch(id, description);
  };
}
