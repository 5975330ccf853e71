/**
 * A minimal DER reader: just enough to slice the signed part out of a certificate or CSR exactly as
 * it was received. Re-encoding a parsed structure could change bytes and break the signature check.
 */
import { SvidkitError } from '../errors/index.js';
import { TAG } from './der-write.js';

/** One TLV element: where its header starts, where its content starts and where it ends. */
export interface DerElement {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

function malformed(what: string): never {
  throw new SvidkitError('ERR_DER_MALFORMED', `der: ${what}`);
}

/** Reads the element starting at `offset`; only single-byte tags and definite lengths (as DER requires). */
export function readElement(buf: Uint8Array, offset: number, limit = buf.length): DerElement {
  if (offset + 2 > limit) malformed('truncated element header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) malformed('multi-byte tags are not supported');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) malformed('indefinite length is not DER');
    if (n > 4) malformed('length too large');
    if (pos + n > limit) malformed('truncated length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || (n > 1 && buf[pos - n] === 0)) malformed('non-minimal length encoding');
  }
  const end = pos + length;
  if (end > limit) malformed('element runs past its container');
  return { tag, start: offset, contentStart: pos, end };
}

/** Deepest nesting checkStructure follows; real certificates and CSRs stay under a dozen levels. */
const MAX_DEPTH = 32;

/**
 * Checks that every constructed element in `[start, end)`, at any depth, holds exactly its children:
 * no child running past its parent, no gap or stray byte. Some BER readers let such overlaps through
 * and read fields out of the neighbouring element, where OpenSSL and Go refuse the whole structure.
 */
export function checkStructure(buf: Uint8Array, start = 0, end = buf.length): void {
  walk(buf, start, end, 0, false);
}

/**
 * checkStructure, and in the same walk the encoding of every universal primitive that is not inside
 * an OCTET STRING: BOOLEAN, INTEGER, BIT STRING, NULL, OBJECT IDENTIFIER, times and the fixed-width
 * strings, wherever they sit (also in fields such as algorithm parameters that no reader decodes).
 * The general ASN.1 readers refuse a structure with any malformed one, and so does this.
 */
export function checkStructureAndPrimitives(buf: Uint8Array): void {
  walk(buf, 0, buf.length, 0, true);
}

const UNIVERSAL_STRING = 0x1c;
const BMP_STRING = 0x1e;

function walk(buf: Uint8Array, start: number, end: number, depth: number, primitives: boolean): void {
  if (depth > MAX_DEPTH) malformed('nested too deeply');
  for (let pos = start; pos < end;) {
    const el = readElement(buf, pos, end);
    pos = el.end;
    if ((el.tag & 0x20) !== 0) walk(buf, el.contentStart, el.end, depth + 1, primitives);
    else if (primitives) checkPrimitive(buf, el);
  }
}

function checkPrimitive(buf: Uint8Array, el: DerElement): void {
  const len = el.end - el.contentStart;
  if (el.tag === 0x00) malformed('tag 0 (end of contents) is not DER');
  else if (el.tag === TAG.BOOLEAN && len !== 1) malformed('BOOLEAN must have one content octet');
  else if (el.tag === TAG.INTEGER && len === 0) malformed('INTEGER has no content');
  else if (el.tag === TAG.NULL && len !== 0) malformed('NULL must be empty');
  else if (el.tag === TAG.BIT_STRING) {
    const unused = buf[el.contentStart];
    if (len === 0 || unused! > 7 || (len === 1 && unused !== 0)) malformed('BIT STRING has a bad unused-bits count');
  } else if (el.tag === TAG.OID) readOid(buf, el);
  else if (el.tag === TAG.UTC_TIME || el.tag === TAG.GENERALIZED_TIME) readTime(buf, el);
  else if (el.tag === UNIVERSAL_STRING && len % 4 !== 0) malformed('UniversalString length is not a multiple of 4');
  else if (el.tag === BMP_STRING && len % 2 !== 0) malformed('BMPString length is not a multiple of 2');
}

/**
 * For a signed structure `SEQUENCE { tbs, algorithm, signature }` (a certificate or a CSR), returns the
 * exact bytes of the first element, the to-be-signed part, after checking the outer framing.
 */
export function signedPart(der: Uint8Array): Uint8Array {
  const outer = readElement(der, 0);
  if (outer.tag !== 0x30) malformed('expected a SEQUENCE');
  if (outer.end !== der.length) malformed('trailing data after the structure');
  const tbs = readElement(der, outer.contentStart, outer.end);
  if (tbs.tag !== 0x30) malformed('expected the signed part to be a SEQUENCE');
  return der.subarray(tbs.start, tbs.end);
}

/** The elements directly inside a constructed element, in order (the element must be well framed). */
export function childrenOf(buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  for (let pos = parent.contentStart; pos < parent.end;) {
    const el = readElement(buf, pos, parent.end);
    out.push(el);
    pos = el.end;
  }
  return out;
}

/** The content bytes of an element. */
export function contentOf(buf: Uint8Array, el: DerElement): Uint8Array {
  return buf.subarray(el.contentStart, el.end);
}

/** A DER BOOLEAN: one content octet, 0x00 or 0xff. */
export function readBoolean(buf: Uint8Array, el: DerElement): boolean {
  if (el.tag !== TAG.BOOLEAN || el.end - el.contentStart !== 1) malformed('expected a BOOLEAN');
  const v = buf[el.contentStart];
  if (v !== 0x00 && v !== 0xff) malformed('BOOLEAN is neither 0x00 nor 0xff');
  return v === 0xff;
}

/** A non-negative INTEGER small enough for a JavaScript number (minimal encoding, as DER requires). */
export function readSmallUnsigned(buf: Uint8Array, el: DerElement): number {
  const c = integerContent(buf, el);
  if ((c[0]! & 0x80) !== 0) malformed('INTEGER is negative');
  if (c.length > 7) malformed('INTEGER is too large');
  let v = 0;
  for (const b of c) v = v * 256 + b;
  if (!Number.isSafeInteger(v)) malformed('INTEGER is too large');
  return v;
}

/** The content octets of an INTEGER, checked to be minimally encoded. */
export function integerContent(buf: Uint8Array, el: DerElement): Uint8Array {
  if (el.tag !== TAG.INTEGER) malformed('expected an INTEGER');
  const c = contentOf(buf, el);
  if (c.length === 0) malformed('INTEGER has no content');
  if (c.length > 1 && ((c[0] === 0x00 && (c[1]! & 0x80) === 0) || (c[0] === 0xff && (c[1]! & 0x80) !== 0))) {
    malformed('INTEGER is not minimally encoded');
  }
  return c;
}

/** The bits of a BIT STRING whose unused-bits count is zero (signatures, keys). */
export function readOctetAlignedBits(buf: Uint8Array, el: DerElement): Uint8Array {
  if (el.tag !== TAG.BIT_STRING || el.end - el.contentStart < 1) malformed('expected a BIT STRING');
  if (buf[el.contentStart] !== 0) malformed('BIT STRING has unused bits');
  return buf.subarray(el.contentStart + 1, el.end);
}

/** A BIT STRING as a number: bit 0 (the first, most significant bit) is 1, bit 1 is 2, and so on. */
export function readBitsAsNumber(buf: Uint8Array, el: DerElement): number {
  if (el.tag !== TAG.BIT_STRING || el.end - el.contentStart < 1) malformed('expected a BIT STRING');
  const unused = buf[el.contentStart]!;
  const bytes = el.end - el.contentStart - 1;
  if (unused > 7 || (bytes === 0 && unused !== 0)) malformed('BIT STRING has a bad unused-bits count');
  let v = 0;
  for (let i = 0; i < bytes * 8 - unused; i++) {
    if ((buf[el.contentStart + 1 + (i >> 3)]! >> (7 - (i & 7))) & 1) v += 2 ** i;
  }
  return v;
}

/** Longest OBJECT IDENTIFIER content read; real ones are a few dozen octets. */
const MAX_OID_BYTES = 64;

/** An OBJECT IDENTIFIER in dotted form; arcs must be minimally encoded. */
export function readOid(buf: Uint8Array, el: DerElement): string {
  if (el.tag !== TAG.OID) malformed('expected an OBJECT IDENTIFIER');
  const c = contentOf(buf, el);
  if (c.length === 0 || c.length > MAX_OID_BYTES) malformed('OBJECT IDENTIFIER has a bad length');
  if ((c[c.length - 1]! & 0x80) !== 0) malformed('OBJECT IDENTIFIER is truncated');
  const arcs: string[] = [];
  let v = 0n;
  let start = true;
  for (const b of c) {
    if (start && b === 0x80) malformed('OBJECT IDENTIFIER arc is not minimally encoded');
    v = (v << 7n) | BigInt(b & 0x7f);
    start = (b & 0x80) === 0;
    if (!start) continue;
    if (arcs.length === 0) {
      const first = v < 40n ? 0n : v < 80n ? 1n : 2n;
      arcs.push(String(first), String(v - first * 40n));
    } else {
      arcs.push(String(v));
    }
    v = 0n;
  }
  return arcs.join('.');
}

const TIME_FORMS = {
  [TAG.UTC_TIME]: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/,
  [TAG.GENERALIZED_TIME]: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/,
} as const;

/**
 * A Time as RFC 5280 4.1.2.5 encodes it: UTCTime `YYMMDDHHMMSSZ` (years 50 to 99 are 19xx) or
 * GeneralizedTime `YYYYMMDDHHMMSSZ`, in UTC with seconds and no fraction.
 */
export function readTime(buf: Uint8Array, el: DerElement): Date {
  const form = el.tag === TAG.UTC_TIME || el.tag === TAG.GENERALIZED_TIME ? TIME_FORMS[el.tag] : undefined;
  if (!form) malformed('expected a UTCTime or GeneralizedTime');
  const text = Buffer.from(contentOf(buf, el)).toString('latin1');
  const m = form.exec(text);
  if (!m) malformed(`time "${text.slice(0, 20)}" is not in the RFC 5280 form`);
  let year = Number(m[1]);
  if (el.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  const [month, day, hour, minute, second] = m.slice(2).map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  // Date.UTC rolls 31 April over to 1 May: only a date that comes back unchanged is a real one.
  if (
    d.getUTCFullYear() !== year ||
    d.getUTCMonth() !== month - 1 ||
    d.getUTCDate() !== day ||
    d.getUTCHours() !== hour ||
    d.getUTCMinutes() !== minute ||
    d.getUTCSeconds() !== second
  ) {
    malformed(`time "${text}" is not a real date`);
  }
  return d;
}
