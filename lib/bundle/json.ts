/** Bounded JSON parsing shared by the bundle formats. */
import { SvidkitError } from '../errors/index.js';

/** Largest bundle document accepted (JSON or PEM). */
export const MAX_BUNDLE_BYTES = 1024 * 1024;
/** Most keys accepted in one trust domain's bundle. */
export const MAX_KEYS_PER_BUNDLE = 256;
/** Most trust domains accepted in one `trust_domains` document. */
export const MAX_TRUST_DOMAINS = 1024;

/** Parses JSON after checking its size; every failure is ERR_BUNDLE_MALFORMED or ERR_BUNDLE_TOO_LARGE. */
export function parseJsonBounded(input: string | Uint8Array, maxBytes: number): unknown {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes)
    throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: document is larger than ${maxBytes} bytes`);
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: not valid JSON', { cause });
  }
  assertNoDuplicateKeys(text);
  return doc;
}

const MAX_JSON_DEPTH = 32;

/**
 * Refuses objects with a repeated member name (the SPIFFE bundle format makes duplicates an error, and
 * JSON.parse would silently keep the last one) and nesting deeper than 32. Expects valid JSON text.
 */
export function assertNoDuplicateKeys(text: string): void {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const members = stack[stack.length - 1]!;
        if (members.has(key))
          throw new SvidkitError('ERR_BUNDLE_DUPLICATE', `bundle: duplicate member "${key.slice(0, 64)}"`);
        members.add(key);
        expectKey = false;
      }
      i = j;
    } else if (ch === 0x7b || ch === 0x5b) {
      stack.push(ch === 0x7b ? new Set() : null);
      if (stack.length > MAX_JSON_DEPTH)
        throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: JSON nested too deeply');
      expectKey = ch === 0x7b;
    } else if (ch === 0x7d || ch === 0x5d) {
      stack.pop();
    } else if (ch === 0x2c) {
      expectKey = stack[stack.length - 1] instanceof Set;
    }
  }
}
