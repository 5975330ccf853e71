/**
 * Shared pieces of the property-based fuzz tests (test/fuzz-*.test.ts): how many inputs to try, the
 * contract every target must keep (a value or a SvidkitError with a known code, within a time bound
 * that grows with the input), and generators that mutate valid inputs into almost-valid ones.
 *
 * FUZZ_RUNS sets the base number of inputs per property (default 200, small enough for CI);
 * `npm run fuzz` raises it. FUZZ_SEED replays a run that fast-check reported as failing. In CI
 * (CI=true, no FUZZ_RUNS) the seed is fixed, so a submission fails only for what it changed; new
 * inputs are explored by local runs and `npm run fuzz`, whose seeds are random.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { isErrorCode, SvidkitError } from '../../lib/errors/index.js';

const DEFAULT_RUNS = 200;
/** The seed of bounded CI runs. */
const CI_SEED = 20261123;
const ASYNC_RUN_LIMIT_MS = 30_000;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** The base number of inputs per property. */
export const BASE_RUNS = Math.max(1, envInt('FUZZ_RUNS') ?? DEFAULT_RUNS);
/** True when the run was asked for explicitly (npm run fuzz): then each file prints its figures. */
export const LONG_RUN = envInt('FUZZ_RUNS') !== undefined;

/** Inputs for one property: the base scaled by how cheap (weight > 1) or dear (< 1) the target is. */
export function runs(weight = 1): number {
  return Math.max(1, Math.round(BASE_RUNS * weight));
}

/** Counts inputs per target and prints a summary line per file on long runs. */
export class FuzzStats {
  readonly #counts = new Map<string, number>();
  readonly #outcomes = new Map<string, number>();
  #started: number | undefined;
  constructor(readonly file: string) {}

  /** Parameters for fc.assert, counting every input under `target`. */
  params(weight = 1, extra: Partial<fc.Parameters<unknown>> = {}): fc.Parameters<unknown> {
    const seed = envInt('FUZZ_SEED') ?? (process.env['CI'] === 'true' && !LONG_RUN ? CI_SEED : undefined);
    return { numRuns: runs(weight), ...(seed === undefined ? {} : { seed }), ...extra };
  }

  /**
   * params for an async property, with a per-run time limit: a promise that never settles fails the
   * property with its input instead of stalling the suite. Thirty seconds: a hang, not slowness.
   */
  asyncParams(weight = 1): fc.Parameters<unknown> {
    return this.params(weight, { timeout: ASYNC_RUN_LIMIT_MS });
  }

  /** Records one input tried for `target`. */
  count(target: string): void {
    this.#started ??= Date.now();
    this.#counts.set(target, (this.#counts.get(target) ?? 0) + 1);
  }

  /** Records how one input ended (printed apart from the input counts). */
  outcome(label: string): void {
    this.#outcomes.set(label, (this.#outcomes.get(label) ?? 0) + 1);
  }

  /** Total inputs so far. */
  get total(): number {
    let n = 0;
    for (const v of this.#counts.values()) n += v;
    return n;
  }

  /** One line per target (only printed on long runs, to keep CI output short). */
  report(): void {
    if (!LONG_RUN) return;
    const secs = ((Date.now() - (this.#started ?? Date.now())) / 1000).toFixed(1);
    const parts = [...this.#counts].map(([t, n]) => `${t} ${n}`).join(', ');
    console.log(`      fuzz ${this.file}: ${this.total} inputs in ${secs} s (${parts})`);
    if (this.#outcomes.size > 0) {
      console.log(`      outcomes: ${[...this.#outcomes].map(([t, n]) => `${t} ${n}`).join(', ')}`);
    }
  }
}

/**
 * Time bound for one call on an input of `size` bytes: deliberately generous (it catches runaway
 * work, not slowness): two seconds plus two milliseconds per KiB.
 */
export function budgetMs(size: number): number {
  return 2000 + Math.ceil(size / 1024) * 2;
}

/** Size of an input in bytes, for budgetMs. */
export function sizeOf(input: string | Uint8Array | unknown): number {
  if (typeof input === 'string') return Buffer.byteLength(input);
  if (input instanceof Uint8Array) return input.length;
  try {
    return Buffer.byteLength(JSON.stringify(input) ?? '');
  } catch {
    return 0;
  }
}

/** Fails unless `err` is a SvidkitError carrying one of svidkit's error codes. */
export function assertTypedError(err: unknown, what: string): asserts err is SvidkitError {
  if (!(err instanceof SvidkitError)) {
    const detail = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err);
    assert.fail(`${what}: threw something other than a SvidkitError: ${detail}`);
  }
  assert.ok(isErrorCode(err.code), `${what}: unknown error code ${String(err.code)}`);
}

/** The result of a call under the contract: its value, or the SvidkitError it threw. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: SvidkitError };

/**
 * Runs `fn` and checks the contract: it returns, or throws a SvidkitError with a known code, within
 * budgetMs(size). Anything else fails the property.
 */
export function typed<T>(what: string, size: number, fn: () => T): Outcome<T> {
  const started = performance.now();
  let out: Outcome<T>;
  try {
    out = { ok: true, value: fn() };
  } catch (err) {
    assertTypedError(err, what);
    out = { ok: false, error: err };
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed <= budgetMs(size), `${what}: took ${elapsed.toFixed(0)} ms on ${size} bytes`);
  return out;
}

/** typed for a promise-returning function: a synchronous throw counts as a contract failure too. */
export async function typedAsync<T>(what: string, size: number, fn: () => Promise<T>): Promise<Outcome<T>> {
  const started = performance.now();
  let promise: Promise<T>;
  try {
    promise = fn();
  } catch (err) {
    assert.fail(`${what}: threw synchronously instead of rejecting: ${String(err)}`);
  }
  let out: Outcome<T>;
  try {
    out = { ok: true, value: await promise };
  } catch (err) {
    assertTypedError(err, what);
    out = { ok: false, error: err };
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed <= budgetMs(size), `${what}: took ${elapsed.toFixed(0)} ms on ${size} bytes`);
  return out;
}

/**
 * Watches for unhandled promise rejections while a suite runs: call start() in before() and
 * assertNone() in after() (and wherever else it helps to check).
 */
export class RejectionWatch {
  readonly seen: unknown[] = [];
  readonly #listener = (reason: unknown) => {
    this.seen.push(reason);
  };
  start(): void {
    process.on('unhandledRejection', this.#listener);
  }
  stop(): void {
    process.off('unhandledRejection', this.#listener);
  }
  assertNone(): void {
    assert.deepEqual(
      this.seen.map((r) => (r instanceof Error ? `${r.name}: ${r.message}` : String(r))),
      [],
      'unhandled promise rejections',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Byte mutations

/** One edit of a byte string; positions are taken modulo the length when applied. */
export type ByteEdit =
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'set'; pos: number; value: number }
  | { kind: 'truncate'; pos: number }
  | { kind: 'delete'; pos: number; len: number }
  | { kind: 'insert'; pos: number; bytes: Uint8Array }
  | { kind: 'duplicate'; pos: number; len: number }
  | { kind: 'derLength'; element: number; length: number[] }
  | { kind: 'derTag'; element: number; tag: number };

/** Offsets of the TLV headers in `der`, walking into constructed elements and DER-looking OCTET/BIT STRINGs. */
export function derHeaders(der: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number): boolean => {
    let pos = start;
    while (pos < end) {
      if (pos + 2 > end) return false;
      const tag = der[pos]!;
      let len = der[pos + 1]!;
      let hdr = 2;
      if (len >= 0x80) {
        const n = len & 0x7f;
        if (n === 0 || n > 3 || pos + 2 + n > end) return false;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + der[pos + 2 + i]!;
        hdr += n;
      }
      const contentStart = pos + hdr;
      const next = contentStart + len;
      if (next > end) return false;
      out.push(pos);
      if (depth < 12) {
        const mark = out.length;
        let ok = true;
        if (tag & 0x20) ok = walk(contentStart, next, depth + 1);
        else if (tag === 0x04 && len > 1) ok = walk(contentStart, next, depth + 1);
        else if (tag === 0x03 && len > 2 && der[contentStart] === 0) ok = walk(contentStart + 1, next, depth + 1);
        if (!ok) out.length = mark; // not DER inside after all: forget what was found
      }
      pos = next;
    }
    return true;
  };
  walk(0, der.length, 0);
  return out;
}

/** Length encodings worth trying on a DER element: edges, non-minimal forms, indefinite, oversized. */
const INTERESTING_LENGTHS: readonly number[][] = [
  [0x00],
  [0x01],
  [0x7f],
  [0x80],
  [0x81, 0x00],
  [0x81, 0x05],
  [0x81, 0xff],
  [0x82, 0x00, 0x10],
  [0x82, 0xff, 0xff],
  [0x84, 0x7f, 0xff, 0xff, 0xff],
  [0x84, 0xff, 0xff, 0xff, 0xff],
  [0x85, 0x01, 0x00, 0x00, 0x00, 0x00],
  [0x89, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
  [0xff],
];

function replaceLength(der: Buffer, at: number, length: number[]): Buffer {
  const first = der[at + 1];
  if (first === undefined) return der;
  const oldLen = first < 0x80 ? 1 : 1 + (first & 0x7f);
  return Buffer.concat([
    der.subarray(0, at + 1),
    Buffer.from(length),
    der.subarray(Math.min(der.length, at + 1 + oldLen)),
  ]);
}

/** Applies one edit to a copy of `input`. */
export function applyByteEdit(input: Buffer, e: ByteEdit): Buffer {
  const n = input.length;
  switch (e.kind) {
    case 'flip': {
      if (n === 0) return input;
      const out = Buffer.from(input);
      out[e.pos % n] = out[e.pos % n]! ^ (1 << e.bit);
      return out;
    }
    case 'set': {
      if (n === 0) return input;
      const out = Buffer.from(input);
      out[e.pos % n] = e.value;
      return out;
    }
    case 'truncate':
      return input.subarray(0, n === 0 ? 0 : e.pos % n);
    case 'delete': {
      if (n === 0) return input;
      const at = e.pos % n;
      return Buffer.concat([input.subarray(0, at), input.subarray(Math.min(n, at + e.len))]);
    }
    case 'insert': {
      const at = n === 0 ? 0 : e.pos % (n + 1);
      return Buffer.concat([input.subarray(0, at), e.bytes, input.subarray(at)]);
    }
    case 'duplicate': {
      if (n === 0) return input;
      const at = e.pos % n;
      const piece = input.subarray(at, Math.min(n, at + e.len));
      return Buffer.concat([input.subarray(0, at), piece, piece, input.subarray(at + piece.length)]);
    }
    case 'derLength': {
      const headers = derHeaders(input);
      if (headers.length === 0) return input;
      return replaceLength(input, headers[e.element % headers.length]!, e.length);
    }
    case 'derTag': {
      const headers = derHeaders(input);
      if (headers.length === 0) return input;
      const out = Buffer.from(input);
      out[headers[e.element % headers.length]!] = e.tag;
      return out;
    }
  }
}

const INTERESTING_TAGS = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1f, 0x30, 0x31, 0x80, 0x82, 0x86, 0xa0,
  0xa3, 0xff,
];

/** One byte edit, DER-aware ones included. */
export const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('set' as const),
    pos: fc.nat(),
    value: fc.oneof(fc.constantFrom(0x00, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({ kind: fc.constant('truncate' as const), pos: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    pos: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant('duplicate' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 256 }) }),
  fc.record({
    kind: fc.constant('derLength' as const),
    element: fc.nat(),
    length: fc.constantFrom(...INTERESTING_LENGTHS),
  }),
  fc.record({
    kind: fc.constant('derLength' as const),
    element: fc.nat(),
    length: fc.integer({ min: 0, max: 0x7f }).map((l) => [l]),
  }),
  fc.record({ kind: fc.constant('derTag' as const), element: fc.nat(), tag: fc.constantFrom(...INTERESTING_TAGS) }),
);

/** `base` with one to `maxEdits` edits applied. */
export function mutatedBytes(base: Uint8Array | fc.Arbitrary<Uint8Array>, maxEdits = 4): fc.Arbitrary<Buffer> {
  const bases = base instanceof Uint8Array ? fc.constant(base) : base;
  return fc
    .tuple(bases, fc.array(byteEdit, { minLength: 1, maxLength: maxEdits }))
    .map(([b, edits]) => edits.reduce<Buffer>((acc, e) => applyByteEdit(acc, e), Buffer.from(b)));
}

// ---------------------------------------------------------------------------------------------
// Text mutations

/** Pieces of text that tend to sit on an edge of a parser: separators, escapes, odd characters. */
export const NASTY_PIECES: readonly string[] = [
  '',
  '/',
  '//',
  '.',
  '..',
  '/./',
  '/../',
  '%2F',
  '%2e',
  '%00',
  '%',
  ':',
  '://',
  '@',
  '?',
  '#',
  '\\',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '\0',
  '"',
  "'",
  '=',
  '==',
  '+',
  '-',
  '_',
  'A',
  'Z',
  'é',
  'ı',
  'K', // KELVIN SIGN, lowercases to "k"
  'ß',
  '\u200b',
  '\u202e',
  '\ufeff',
  '\ud800', // a lone surrogate
  '😀',
  '\uffff',
  '{',
  '}',
  '[',
  ']',
  ',',
  '-----BEGIN CERTIFICATE-----',
  '-----END CERTIFICATE-----',
];

/** One edit of a text. */
export type TextEdit =
  | { kind: 'insert'; pos: number; text: string }
  | { kind: 'delete'; pos: number; len: number }
  | { kind: 'replace'; pos: number; text: string }
  | { kind: 'truncate'; pos: number }
  | { kind: 'duplicate'; pos: number; len: number }
  | { kind: 'case'; pos: number; len: number }
  | { kind: 'repeat'; pos: number; text: string; times: number };

/** Applies one edit to `s`. */
export function applyTextEdit(s: string, e: TextEdit): string {
  const n = s.length;
  const at = (p: number) => (n === 0 ? 0 : p % (n + 1));
  switch (e.kind) {
    case 'insert':
      return s.slice(0, at(e.pos)) + e.text + s.slice(at(e.pos));
    case 'delete':
      return s.slice(0, at(e.pos)) + s.slice(at(e.pos) + e.len);
    case 'replace':
      return s.slice(0, at(e.pos)) + e.text + s.slice(at(e.pos) + e.text.length);
    case 'truncate':
      return s.slice(0, at(e.pos));
    case 'duplicate': {
      const piece = s.slice(at(e.pos), at(e.pos) + e.len);
      return s.slice(0, at(e.pos)) + piece + piece + s.slice(at(e.pos) + piece.length);
    }
    case 'case': {
      const piece = s.slice(at(e.pos), at(e.pos) + e.len);
      const flipped = piece === piece.toUpperCase() ? piece.toLowerCase() : piece.toUpperCase();
      return s.slice(0, at(e.pos)) + flipped + s.slice(at(e.pos) + e.len);
    }
    case 'repeat':
      return s.slice(0, at(e.pos)) + e.text.repeat(e.times) + s.slice(at(e.pos));
  }
}

const piece = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_PIECES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** One text edit. */
export const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(), text: piece }),
  fc.record({ kind: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('replace' as const), pos: fc.nat(), text: piece }),
  fc.record({ kind: fc.constant('truncate' as const), pos: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('case' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    kind: fc.constant('repeat' as const),
    pos: fc.nat(),
    text: piece,
    times: fc.oneof(fc.integer({ min: 2, max: 16 }), fc.constantFrom(255, 256, 1024, 2049, 4096)),
  }),
);

/** `base` with one to `maxEdits` text edits applied. */
export function mutatedText(base: string | fc.Arbitrary<string>, maxEdits = 3): fc.Arbitrary<string> {
  const bases = typeof base === 'string' ? fc.constant(base) : base;
  return fc
    .tuple(bases, fc.array(textEdit, { minLength: 1, maxLength: maxEdits }))
    .map(([b, edits]) => edits.reduce(applyTextEdit, b));
}

/** Random text of every kind: printable, full Unicode (lone surrogates included) and binary-ish. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.string({ maxLength: 256, unit: 'binary' }),
  fc.string({ maxLength: 64, unit: 'grapheme' }),
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b).toString('latin1')),
);
