/**
 * Fuzzing lib/ca-api/selectors: parseSelector and canonicalSelectors either return or throw
 * ERR_SELECTOR_INVALID, whatever they are given; what they accept is short, free of control
 * characters and round-trips; a canonical list is a fixed point, independent of order and repeats;
 * and entryMatches agrees with the subset rule.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  canonicalSelectors,
  entryMatches,
  formatSelector,
  MAX_ENTRY_SELECTORS,
  MAX_SELECTOR_BYTES,
  parseSelector,
} from '../lib/ca-api/index.js';
import { anyText, FuzzStats, mutatedText, runs, typed } from './helpers/fuzz.js';

const KEYS = ['uid', 'gid', 'supplementary_gid', 'user', 'group', 'supplementary_group', 'path', 'sha256'];
const valid = fc.oneof(
  fc.nat({ max: 4_294_967_294 }).chain((n) => fc.constantFrom(`unix:uid:${n}`, `unix:gid:${n}`)),
  fc.stringMatching(/^[a-z_][a-z0-9_.-]{0,30}$/).map((n) => `unix:user:${n}`),
  fc
    .array(
      fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..'),
      { minLength: 1, maxLength: 6 },
    )
    .map((s) => `unix:path:/${s.join('/')}`),
  fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `unix:sha256:${h}`),
);
// eslint-disable-next-line no-control-regex
const LINE_BREAKING = /[\u0000-\u001f\u2028\u2029]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const near = fc.oneof(
  mutatedText(valid),
  fc.tuple(fc.constantFrom(...KEYS), anyText).map(([k, v]) => `unix:${k}:${v}`),
  fc.tuple(anyText, anyText).map(([t, v]) => `${t}:${v}`),
  anyText,
);

describe('fuzz: registration entry selectors', function () {
  this.timeout(120_000);
  const stats = new FuzzStats('selectors');
  after(() => stats.report());

  it('parseSelector returns a round-tripping selector or throws ERR_SELECTOR_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(valid, near), (input) => {
        stats.count('parseSelector');
        const r = typed('parseSelector', Buffer.byteLength(input), () => parseSelector(input));
        if (!r.ok) {
          assert.equal(r.error.code, 'ERR_SELECTOR_INVALID');
          assert.equal(typeof r.error.detail.reason, 'string');
          assert.doesNotMatch(r.error.message, LINE_BREAKING, 'a message stays on one line');
          return;
        }
        assert.ok(Buffer.byteLength(input) <= MAX_SELECTOR_BYTES);
        assert.doesNotMatch(input, CONTROL);
        assert.equal(formatSelector(r.value), input);
      }),
      { numRuns: runs(4) },
    );
  });

  it('every generated well-formed selector is accepted', () => {
    fc.assert(
      fc.property(valid, (input) => {
        stats.count('parseSelector (valid)');
        parseSelector(input);
      }),
      { numRuns: runs(2) },
    );
  });

  it('canonicalSelectors is a fixed point, blind to order and repeats, or a typed refusal', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(valid, valid, near), { maxLength: MAX_ENTRY_SELECTORS + 4 }), (list) => {
        stats.count('canonicalSelectors');
        const r = typed('canonicalSelectors', Buffer.byteLength(list.join('')), () => canonicalSelectors(list));
        if (!r.ok) {
          assert.equal(r.error.code, 'ERR_SELECTOR_INVALID');
          return;
        }
        assert.ok(r.value.length <= MAX_ENTRY_SELECTORS);
        assert.deepEqual(canonicalSelectors(r.value), r.value);
        assert.deepEqual(canonicalSelectors([...list].reverse()), r.value);
        if (list.length <= MAX_ENTRY_SELECTORS / 2) assert.deepEqual(canonicalSelectors([...list, ...list]), r.value);
        assert.deepEqual(new Set(r.value), new Set(list));
      }),
      { numRuns: runs(2) },
    );
  });

  it('entryMatches is the subset rule, and never true for an entry with no selectors', () => {
    fc.assert(
      fc.property(fc.array(valid, { maxLength: 6 }), fc.array(valid, { maxLength: 12 }), (entry, workload) => {
        stats.count('entryMatches');
        const want = entry.length > 0 && entry.every((s) => workload.includes(s));
        assert.equal(entryMatches(entry, workload), want);
        assert.equal(entryMatches(entry, [...workload, ...entry]), entry.length > 0);
      }),
      { numRuns: runs(2) },
    );
  });
});
