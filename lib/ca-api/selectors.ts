/**
 * Registration entry selectors, in SPIRE's spelling `type:value` (`unix:uid:1000`): the contract the
 * CA stores, the CLI sends and the agent matches callers against. Every selector is parsed here, so
 * the CA, the store, the CLI and the agent refuse the same strings with the same reasons.
 *
 * A selector is kept in one canonical form so that two entries that mean the same thing are the
 * same bytes (the store's uniqueness rests on it): a list is validated, de-duplicated and sorted,
 * and values that would never equal what the agent reads from the kernel (`01000`, `/usr/../bin`,
 * an upper-case hash) are refused rather than rewritten, so the operator sees the mistake.
 */
import { type ErrorDetail, SvidkitError } from '../errors/index.js';

/** Longest selector accepted, in UTF-8 bytes; SPIRE's longest real ones (a path, a hash) are far shorter. */
export const MAX_SELECTOR_BYTES = 256;
/** Most selectors one entry may carry; every one must hold for a caller, so more is never useful. */
export const MAX_ENTRY_SELECTORS = 32;

/** Why a selector was refused; `detail.reason` of an ERR_SELECTOR_INVALID error. */
export type SelectorRefusal =
  | 'not_a_string'
  | 'empty'
  | 'too_long'
  | 'control_character'
  | 'no_type'
  | 'unknown_type'
  | 'no_value'
  | 'unknown_key'
  | 'not_a_number'
  | 'out_of_range'
  | 'not_a_hash'
  | 'not_absolute'
  | 'not_canonical'
  | 'bad_name'
  | 'too_many';

/** A parsed selector: `type` is the attestor (`unix`), `value` the rest (`uid:1000`), as SPIRE splits it. */
export interface Selector {
  readonly type: string;
  readonly value: string;
}

function refuse(reason: SelectorRefusal, message: string, extra: ErrorDetail = {}): SvidkitError {
  return new SvidkitError('ERR_SELECTOR_INVALID', `selectors: ${message}`, { detail: { reason, ...extra } });
}

// A selector is quoted in messages, so an attacker's bytes must not reach a log line unescaped;
// JSON quoting turns control characters into escapes. Long input is cut before quoting.
function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

// C0, DEL, C1 and the two Unicode line breaks: none appears in a name, path or number, and each can
// split or rewrite a log line or a table row.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// A lone surrogate has no UTF-8 form: it would be stored as one string and sent as another.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Decimal without sign, spaces or leading zeros: the kernel's ids printed the way /proc prints them.
const DECIMAL = /^(?:0|[1-9][0-9]{0,9})$/;
// uid_t and gid_t are 32 bits; 4294967295 is (uid_t)-1, which means "no id" to the kernel.
const MAX_ID = 4_294_967_294;
const SHA256_HEX = /^[0-9a-f]{64}$/;

function checkId(key: string, id: string, sel: string): void {
  if (!DECIMAL.test(id)) {
    throw refuse('not_a_number', `${quote(sel)}: ${key} must be a decimal number without sign or leading zeros`);
  }
  if (Number(id) > MAX_ID) throw refuse('out_of_range', `${quote(sel)}: ${key} must be 0 to ${MAX_ID}`);
}

function checkName(key: string, name: string, sel: string): void {
  // Names come from passwd and group databases (local files, LDAP, sssd), which allow much; a colon
  // is the one byte none of them can hold, and surrounding spaces are a copy-paste mistake.
  if (name.includes(':') || name.trim() !== name) {
    throw refuse('bad_name', `${quote(sel)}: ${key} must be a user or group name (no ":", no surrounding spaces)`);
  }
}

function checkPath(path: string, sel: string): void {
  if (!path.startsWith('/')) throw refuse('not_absolute', `${quote(sel)}: path must be absolute`);
  // The agent compares with the kernel's resolved /proc/<pid>/exe, which never has these.
  const segments = path.slice(1).split('/');
  if (path !== '/' && segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw refuse('not_canonical', `${quote(sel)}: path must be canonical (no "//", ".", ".." or trailing "/")`);
  }
}

function checkSha256(hash: string, sel: string): void {
  if (!SHA256_HEX.test(hash)) {
    throw refuse('not_a_hash', `${quote(sel)}: sha256 must be 64 lowercase hexadecimal digits`);
  }
}

// The keys of the unix attestor, as SPIRE names them.
const UNIX_KEYS: ReadonlyMap<string, (key: string, v: string, sel: string) => void> = new Map([
  ['uid', checkId],
  ['gid', checkId],
  ['supplementary_gid', checkId],
  ['user', checkName],
  ['group', checkName],
  ['supplementary_group', checkName],
  ['path', (_key: string, v: string, sel: string) => checkPath(v, sel)],
  ['sha256', (_key: string, v: string, sel: string) => checkSha256(v, sel)],
]);

function checkUnix(value: string, sel: string): void {
  const colon = value.indexOf(':');
  const key = colon < 0 ? value : value.slice(0, colon);
  const check = UNIX_KEYS.get(key);
  if (check === undefined) {
    throw refuse(
      'unknown_key',
      `${quote(sel)}: unknown unix selector; expected one of ${[...UNIX_KEYS.keys()].join(', ')}`,
      {
        key: key.slice(0, 64),
      },
    );
  }
  const v = colon < 0 ? '' : value.slice(colon + 1);
  if (v === '') throw refuse('no_value', `${quote(sel)}: unix:${key} needs a value`);
  check(key, v, sel);
}

// One checker per selector type. Another attestor (k8s) adds its row here and nothing else changes.
const TYPES: ReadonlyMap<string, (value: string, sel: string) => void> = new Map([['unix', checkUnix]]);

/** The selector types this svidkit knows. */
export const SELECTOR_TYPES: readonly string[] = [...TYPES.keys()];

/**
 * Parses one selector, `type:value`. Throws ERR_SELECTOR_INVALID with `detail.reason` (a
 * SelectorRefusal) for anything the agent could never match or should never be shown.
 */
export function parseSelector(s: unknown): Selector {
  if (typeof s !== 'string') throw refuse('not_a_string', 'a selector must be a string');
  if (s === '') throw refuse('empty', 'a selector must not be empty');
  // Measured before anything else looks at it: every later step is then bounded too.
  if (s.length > MAX_SELECTOR_BYTES || Buffer.byteLength(s, 'utf8') > MAX_SELECTOR_BYTES) {
    throw refuse('too_long', `a selector must be at most ${MAX_SELECTOR_BYTES} bytes (${quote(s)})`);
  }
  if (CONTROL.test(s) || LONE_SURROGATE.test(s)) {
    throw refuse('control_character', `${quote(s)} contains a control character or invalid UTF-16`);
  }
  const colon = s.indexOf(':');
  if (colon <= 0) throw refuse('no_type', `${quote(s)} is not "type:value" (for example unix:uid:1000)`);
  const type = s.slice(0, colon);
  const value = s.slice(colon + 1);
  const check = TYPES.get(type);
  if (check === undefined) {
    throw refuse('unknown_type', `${quote(s)}: unknown selector type; expected one of ${SELECTOR_TYPES.join(', ')}`, {
      type: type.slice(0, 64),
    });
  }
  if (value === '') throw refuse('no_value', `${quote(s)}: ${type} selector needs a value`);
  check(value, s);
  return { type, value };
}

/** The `type:value` string of a selector, after checking it as parseSelector would. */
export function formatSelector(selector: Selector): string {
  const s = `${selector.type}:${selector.value}`;
  parseSelector(s);
  return s;
}

function compareSelectors(a: Selector, b: Selector): number {
  // Code-unit order, type first: the same everywhere, independent of locale.
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return 0;
}

/**
 * The canonical form of an entry's selectors: each one checked, duplicates dropped, sorted by type
 * then value. Throws ERR_SELECTOR_INVALID (reason `too_many` past MAX_ENTRY_SELECTORS, checked
 * before any parsing) naming the index of the first bad one in `detail.index`.
 */
export function canonicalSelectors(list: unknown): string[] {
  if (!Array.isArray(list)) throw refuse('not_a_string', 'selectors must be a list of strings');
  if (list.length > MAX_ENTRY_SELECTORS) {
    throw refuse('too_many', `at most ${MAX_ENTRY_SELECTORS} selectors per entry (got ${list.length})`);
  }
  const parsed = new Map<string, Selector>();
  list.forEach((s: unknown, index) => {
    let sel: Selector;
    try {
      sel = parseSelector(s);
    } catch (err) {
      if (!(err instanceof SvidkitError)) throw err;
      throw new SvidkitError(err.code, `selectors: [${index}]: ${err.plainMessage}`, {
        detail: { ...err.detail, index },
      });
    }
    parsed.set(`${sel.type}:${sel.value}`, sel);
  });
  return [...parsed.values()].sort(compareSelectors).map((s) => `${s.type}:${s.value}`);
}

/**
 * True when every selector of the entry is among the workload's. An entry with no selectors never
 * matches: it is for the agent's configured file workloads, never for a Workload API caller.
 * Both lists are compared as exact strings, so give canonical ones (canonicalSelectors, formatSelector).
 */
export function entryMatches(entrySelectors: readonly string[], workloadSelectors: Iterable<string>): boolean {
  if (entrySelectors.length === 0) return false;
  const have =
    workloadSelectors instanceof Set ? (workloadSelectors as ReadonlySet<string>) : new Set(workloadSelectors);
  return entrySelectors.every((s) => have.has(s));
}
