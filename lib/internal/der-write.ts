/**
 * A minimal DER writer for the CA's hot path: definite lengths, single-byte tags and byte pieces
 * concatenated once. It writes only what the caller hands it; structure and DER rules (minimal
 * integers, DEFAULT values left out, sorted SET OF) are the caller's business.
 */

/** Universal DER tags the writer's callers and the reader (der.ts) use. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The number of octets a length field takes for a content of `length` octets. */
export function lengthSize(length: number): number {
  if (length < 0x80) return 1;
  if (length < 0x100) return 2;
  if (length < 0x10000) return 3;
  if (length < 0x1000000) return 4;
  return 5;
}

/** Writes the header (tag and length) of an element with `length` content octets at `offset`; returns the next offset. */
export function writeHeader(out: Uint8Array, offset: number, tag: number, length: number): number {
  out[offset++] = tag;
  const n = lengthSize(length) - 1;
  if (n === 0) {
    out[offset++] = length;
    return offset;
  }
  out[offset++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[offset++] = Math.floor(length / 2 ** (8 * i)) & 0xff;
  return offset;
}

/** The header (tag and length) of an element with `length` content octets. */
export function header(tag: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthSize(length));
  writeHeader(out, 0, tag, length);
  return out;
}

/** One element whose content is the concatenation of `parts`. */
export function tlv(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(1 + lengthSize(length) + length);
  let offset = writeHeader(out, 0, tag, length);
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A SEQUENCE of the concatenated `parts`. */
export function sequence(...parts: readonly Uint8Array[]): Buffer {
  return tlv(TAG.SEQUENCE, ...parts);
}

/** An OBJECT IDENTIFIER from its dotted form, e.g. '2.5.29.17'. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^(0|[1-9][0-9]*)$/.test(a)) throw new RangeError(`der-write: bad OID arc in "${dotted}"`);
    return BigInt(a);
  });
  const [a0, a1] = arcs;
  if (a0 === undefined || a1 === undefined || a0 > 2n || (a0 < 2n && a1 > 39n)) {
    throw new RangeError(`der-write: bad OID "${dotted}"`);
  }
  const bytes: number[] = [];
  for (const arc of [a0 * 40n + a1, ...arcs.slice(2)]) {
    const groups: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    bytes.push(...groups);
  }
  return tlv(TAG.OID, Uint8Array.from(bytes));
}

/** BOOLEAN TRUE (DER writes 0xff). FALSE is usually a DEFAULT and then left out. */
export const DER_TRUE: Buffer = Buffer.from([TAG.BOOLEAN, 0x01, 0xff]);

/** NULL. */
export const DER_NULL: Buffer = Buffer.from([TAG.NULL, 0x00]);

/** An INTEGER from unsigned big-endian magnitude octets, made minimal and positive. */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const body = magnitude.subarray(start);
  if (body.length === 0) return Buffer.from([TAG.INTEGER, 0x01, 0x00]);
  return body[0]! & 0x80 ? tlv(TAG.INTEGER, Uint8Array.of(0), body) : tlv(TAG.INTEGER, body);
}

/**
 * A named BIT STRING (such as keyUsage) from bit flags where flag 1 << n is bit n of the ASN.1
 * definition; DER drops trailing zero bits and counts them as unused.
 */
export function namedBits(flags: number): Buffer {
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff) throw new RangeError('der-write: bad bit flags');
  if (flags === 0) return Buffer.from([TAG.BIT_STRING, 0x01, 0x00]);
  let highest = 0;
  for (let n = 0; n < 16; n++) if (flags & (1 << n)) highest = n;
  const octets = Buffer.alloc((highest >> 3) + 1);
  for (let n = 0; n <= highest; n++) if (flags & (1 << n)) octets[n >> 3]! |= 0x80 >> (n & 7);
  const unused = 7 - (highest & 7);
  return tlv(TAG.BIT_STRING, Uint8Array.of(unused), octets);
}

/** An IA5String (ASCII only); a string outside 0x00-0x7f is refused with a RangeError. */
export function ia5String(value: string, tag: number = TAG.IA5_STRING): Buffer {
  if (!isIa5(value)) throw new RangeError('der-write: not an IA5String');
  const body = Buffer.from(value, 'latin1');
  return tlv(tag, body);
}

/** True when every character of `value` fits IA5String (7-bit ASCII). */
export function isIa5(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * An X.509 Time (RFC 5280 4.1.2.5): UTCTime YYMMDDHHMMSSZ for years 1950 through 2049, GeneralizedTime
 * YYYYMMDDHHMMSSZ otherwise; always UTC, seconds always present, no fraction (milliseconds are dropped).
 */
export function x509Time(date: Date): Buffer {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('der-write: invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError('der-write: year outside 0000-9999');
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    'Z';
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(two(year % 100) + rest, 'latin1'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + rest, 'latin1'));
}
