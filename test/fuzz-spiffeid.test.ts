/**
 * Fuzzing lib/spiffeid: SpiffeId.parse, TrustDomain.parse, fromPath/fromSegments and the matchers
 * either return a valid value or throw a SvidkitError, agree with an independent model of the SPIFFE
 * ID grammar, enforce the byte limits (255 for the trust domain, 2048 for the ID) and round-trip.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  matchAny,
  matchId,
  matchMemberOf,
  matchOneOf,
  MAX_ID_LENGTH,
  MAX_TRUST_DOMAIN_LENGTH,
  SpiffeId,
  TrustDomain,
} from '../lib/spiffeid/index.js';
import { anyText, FuzzStats, mutatedText, typed } from './helpers/fuzz.js';

const TD_NAME = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** The grammar of the SPIFFE ID standard, written independently of the parser under test. */
function modelId(input: string): boolean {
  if (Buffer.byteLength(input) > MAX_ID_LENGTH || !input.startsWith('spiffe://')) return false;
  const [td, ...segments] = input.slice('spiffe://'.length).split('/');
  return modelTrustDomain(td!) && segments.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..');
}

function modelTrustDomain(name: string): boolean {
  return name.length > 0 && name.length <= MAX_TRUST_DOMAIN_LENGTH && TD_NAME.test(name);
}

const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_');
const segChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_');
const tdName = fc.string({ unit: tdChar, minLength: 1, maxLength: 40 });
const segment = fc.string({ unit: segChar, minLength: 1, maxLength: 24 }).filter((s) => s !== '.' && s !== '..');
const segments = fc.array(segment, { maxLength: 8 });
const validId = fc.tuple(tdName, segments).map(([td, segs]) => `spiffe://${td}${segs.map((s) => '/' + s).join('')}`);

/** IDs and names right around the limits: a trust domain of 250-260 bytes, IDs of 2040-2060 bytes. */
const nearLimitTd = fc.integer({ min: 250, max: 260 }).map((n) => 'a'.repeat(n));
const nearLimitId = fc
  .tuple(tdName, fc.integer({ min: 2040, max: 2060 }), fc.integer({ min: 1, max: 200 }))
  .map(([td, total, segLen]) => {
    let id = `spiffe://${td}`;
    while (id.length < total) id += '/' + 'x'.repeat(Math.min(segLen, Math.max(1, total - id.length - 1)));
    return id;
  });

describe('fuzz: SPIFFE IDs and trust domains', function () {
  this.timeout(120_000);
  const stats = new FuzzStats('spiffeid');
  after(() => stats.report());

  /** The whole contract for one SpiffeId.parse input. */
  function checkParse(input: string): void {
    stats.count('SpiffeId.parse');
    const r = typed('SpiffeId.parse', Buffer.byteLength(input), () => SpiffeId.parse(input));
    assert.equal(r.ok, modelId(input), `parse and the model disagree on ${JSON.stringify(input)}`);
    if (!r.ok) {
      assert.match(r.error.code, /^ERR_SPIFFEID_/);
      assert.equal(SpiffeId.tryParse(input), undefined);
      return;
    }
    const id = r.value;
    assert.equal(id.toString(), input, 'nothing is normalized: one identity, one spelling');
    assert.ok(Buffer.byteLength(id.toString()) <= MAX_ID_LENGTH);
    assert.ok(Buffer.byteLength(id.trustDomain.name) <= MAX_TRUST_DOMAIN_LENGTH);
    assert.ok(SpiffeId.parse(id.toString()).equals(id));
    assert.ok(SpiffeId.fromPath(id.trustDomain, id.path).equals(id));
    assert.ok(SpiffeId.fromSegments(id.trustDomain.name, ...id.segments()).equals(id));
    assert.ok(TrustDomain.parse(id.trustDomain.idString()).equals(id.trustDomain));
    assert.equal(JSON.parse(JSON.stringify(id)), input);
  }

  function checkTrustDomain(input: string): void {
    stats.count('TrustDomain.parse');
    const r = typed('TrustDomain.parse', Buffer.byteLength(input), () => TrustDomain.parse(input));
    const expected = input.includes('://')
      ? modelId(input) && !input.slice('spiffe://'.length).includes('/')
      : modelTrustDomain(input);
    assert.equal(r.ok, expected, `TrustDomain.parse and the model disagree on ${JSON.stringify(input)}`);
    if (r.ok) {
      assert.ok(TrustDomain.parse(r.value.name).equals(r.value));
      assert.ok(Buffer.byteLength(r.value.name) <= MAX_TRUST_DOMAIN_LENGTH);
    } else {
      assert.match(r.error.code, /^ERR_SPIFFEID_/);
    }
  }

  it('SpiffeId.parse on random text matches the model', () => {
    fc.assert(fc.property(anyText, checkParse), stats.params(5));
  });

  it('SpiffeId.parse on mutated valid IDs (dot segments, percent-encoding, case, unicode, slashes)', () => {
    fc.assert(fc.property(mutatedText(validId), checkParse), stats.params(10));
  });

  it('valid IDs round-trip through parse, fromPath and fromSegments', () => {
    fc.assert(fc.property(validId, checkParse), stats.params(5));
  });

  it('enforces 255 bytes for the trust domain and 2048 for the whole ID', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nearLimitId,
          nearLimitTd.map((td) => `spiffe://${td}/w`),
        ),
        (input) => {
          checkParse(input);
          const r = typed('SpiffeId.parse', input.length, () => SpiffeId.parse(input));
          if (!r.ok && input.length > MAX_ID_LENGTH) assert.equal(r.error.code, 'ERR_SPIFFEID_TOO_LONG');
        },
      ),
      stats.params(1),
    );
    fc.assert(fc.property(fc.oneof(nearLimitTd, mutatedText(nearLimitTd)), checkTrustDomain), stats.params(1));
  });

  it('TrustDomain.parse on random, mutated and ID-form input matches the model', () => {
    const inputs = fc.oneof(
      anyText,
      mutatedText(tdName),
      tdName.map((td) => `spiffe://${td}`),
      mutatedText(tdName.map((td) => `spiffe://${td}`)),
    );
    fc.assert(fc.property(inputs, checkTrustDomain), stats.params(5));
  });

  it('fromPath and fromSegments: a value that re-parses equal, or a SvidkitError', () => {
    const pathText = fc.oneof(
      anyText,
      mutatedText(segments.map((s) => s.map((x) => '/' + x).join(''))),
      fc.integer({ min: 2000, max: 2100 }).map((n) => '/' + 'p'.repeat(n)),
    );
    const tdText = fc.oneof(tdName, mutatedText(tdName), nearLimitTd);
    fc.assert(
      fc.property(tdText, pathText, fc.array(fc.oneof(segment, anyText), { maxLength: 6 }), (td, path, segs) => {
        stats.count('fromPath/fromSegments');
        const size = Buffer.byteLength(td + path + segs.join(''));
        for (const r of [
          typed('SpiffeId.fromPath', size, () => SpiffeId.fromPath(td, path)),
          typed('SpiffeId.fromSegments', size, () => SpiffeId.fromSegments(td, ...segs)),
        ]) {
          if (!r.ok) {
            assert.match(r.error.code, /^ERR_SPIFFEID_/);
            continue;
          }
          const s = r.value.toString();
          assert.ok(modelId(s), `built an ID the grammar refuses: ${JSON.stringify(s)}`);
          assert.ok(SpiffeId.parse(s).equals(r.value));
        }
        const fromPath = SpiffeId.tryParse(`spiffe://${td}${path}`);
        const built = typed('SpiffeId.fromPath', size, () => SpiffeId.fromPath(td, path));
        // Both spell the same string, so they must agree (when td is a bare name and path a path).
        if (!td.includes('/') && (path === '' || path.startsWith('/'))) assert.equal(built.ok, fromPath !== undefined);
      }),
      stats.params(3),
    );
  });

  it('matchers: building them is typed, applying one throws only ERR_SPIFFEID_MISMATCH', () => {
    const idText = fc.oneof(validId, mutatedText(validId), anyText);
    fc.assert(
      fc.property(
        idText,
        fc.array(idText, { maxLength: 4 }),
        fc.oneof(tdName, anyText),
        validId,
        (one, many, td, probe) => {
          stats.count('matchers');
          const target = SpiffeId.parse(probe);
          const size = Buffer.byteLength(one + many.join('') + td);
          const built = [
            typed('matchId', size, () => matchId(one)),
            typed('matchOneOf', size, () => matchOneOf(...many)),
            typed('matchMemberOf', size, () => matchMemberOf(td)),
            typed('matchAny', 0, () => matchAny()),
          ];
          for (const [i, b] of built.entries()) {
            if (!b.ok) {
              assert.match(b.error.code, /^ERR_SPIFFEID_/);
              continue;
            }
            const applied = typed('matcher', size, () => b.value(target));
            if (!applied.ok) assert.equal(applied.error.code, 'ERR_SPIFFEID_MISMATCH');
            if (i === 0) assert.equal(applied.ok, one === probe);
            if (i === 1) assert.equal(applied.ok, many.includes(probe));
            if (i === 2) assert.equal(applied.ok, target.trustDomain.name === TrustDomain.parse(td).name);
            if (i === 3) assert.ok(applied.ok);
          }
        },
      ),
      stats.params(3),
    );
  });
});
