/**
 * A minimal DER reader: just enough to slice the signed part out of a certificate or CSR exactly as
 * it was received. Re-encoding a parsed structure could change bytes and break the signature check.
 */
import { SvidkitError } from '../errors/index.js';

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
export function checkStructure(buf: Uint8Array, start = 0, end = buf.length, depth = 0): void {
  if (depth > MAX_DEPTH) malformed('nested too deeply');
  let pos = start;
  while (pos < end) {
    const el = readElement(buf, pos, end);
    if ((el.tag & 0x20) !== 0) checkStructure(buf, el.contentStart, el.end, depth + 1);
    pos = el.end;
  }
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
