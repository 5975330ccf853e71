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
  if (size > maxBytes) throw new SvidkitError('ERR_BUNDLE_TOO_LARGE', `bundle: document is larger than ${maxBytes} bytes`);
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new SvidkitError('ERR_BUNDLE_MALFORMED', 'bundle: not valid JSON', { cause });
  }
}
