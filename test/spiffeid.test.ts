/**
 * Table-driven tests of lib/spiffeid against the SPIFFE ID standard (see docs/SPIFFE-RULES.md):
 * every rule has at least one accepted and one refused input, and every refusal is checked for its
 * exact error code and for a message that starts with "spiffeid: ".
 */
import { strict as assert } from 'node:assert';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import {
  MAX_ID_LENGTH,
  MAX_TRUST_DOMAIN_LENGTH,
  type Matcher,
  matchAny,
  matchId,
  matchMemberOf,
  matchOneOf,
  matchWith,
  SpiffeId,
  TrustDomain,
  validatePath,
  validatePathSegment,
} from '../lib/spiffeid/index.js';
import { assertCode } from './helpers/assert.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const TD_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789.-_';
const PATH_CHARS = TD_CHARS + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Title for a test row: the label if given, else the input quoted (shortened when long). */
function title(input: string, label?: string): string {
  if (label !== undefined) return label;
  const quoted = JSON.stringify(input);
  return quoted.length > 80 ? `${quoted.slice(0, 60)}... (${input.length} chars)` : quoted;
}

/** A valid SPIFFE ID of exactly n characters (n >= 22), in trust domain example.org. */
function idOfLength(n: number): string {
  const base = 'spiffe://example.org/';
  return base + 'x'.repeat(n - base.length);
}

/** A valid SPIFFE ID of exactly n characters whose trust domain is the longest allowed. */
function idOfLengthWithMaxTrustDomain(n: number): string {
  const base = `spiffe://${'t'.repeat(MAX_TRUST_DOMAIN_LENGTH)}/`;
  return base + 'p'.repeat(n - base.length);
}

const id = (s: string): SpiffeId => SpiffeId.parse(s);
const td = (s: string): TrustDomain => TrustDomain.parse(s);

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

interface ValidCase {
  input: string;
  trustDomain: string;
  path: string;
  label?: string;
}

interface InvalidCase {
  input: string;
  code: ErrorCode;
  label?: string;
}

const validIds: ValidCase[] = [
  // form and trust domain only
  { input: 'spiffe://example.org', trustDomain: 'example.org', path: '' },
  { input: 'spiffe://td', trustDomain: 'td', path: '' },
  { input: 'spiffe://a', trustDomain: 'a', path: '', label: 'one-character trust domain' },
  { input: 'spiffe://1.2.3.4', trustDomain: '1.2.3.4', path: '' },
  { input: 'spiffe://xn--exmple-cua.org', trustDomain: 'xn--exmple-cua.org', path: '' },
  { input: 'spiffe://my_trust-domain.example', trustDomain: 'my_trust-domain.example', path: '' },
  { input: `spiffe://${TD_CHARS}`, trustDomain: TD_CHARS, path: '', label: 'every trust-domain character' },
  // with paths
  { input: 'spiffe://example.org/workload', trustDomain: 'example.org', path: '/workload' },
  {
    input: 'spiffe://example.org/ns/prod/sa/web',
    trustDomain: 'example.org',
    path: '/ns/prod/sa/web',
  },
  { input: 'spiffe://td/Path/UPPER/MiXeD', trustDomain: 'td', path: '/Path/UPPER/MiXeD' },
  {
    input: `spiffe://td/${PATH_CHARS}`,
    trustDomain: 'td',
    path: `/${PATH_CHARS}`,
    label: 'every path character in one segment',
  },
  {
    input: `spiffe://${TD_CHARS}/${PATH_CHARS}/${PATH_CHARS}`,
    trustDomain: TD_CHARS,
    path: `/${PATH_CHARS}/${PATH_CHARS}`,
    label: 'every trust-domain and path character together',
  },
  // dots that are not dot segments
  { input: 'spiffe://td/.path', trustDomain: 'td', path: '/.path' },
  { input: 'spiffe://td/..path', trustDomain: 'td', path: '/..path' },
  { input: 'spiffe://td/...', trustDomain: 'td', path: '/...' },
  { input: 'spiffe://td/path.', trustDomain: 'td', path: '/path.' },
  { input: 'spiffe://td/path..', trustDomain: 'td', path: '/path..' },
  { input: 'spiffe://td/a/.b./c', trustDomain: 'td', path: '/a/.b./c' },
  { input: 'spiffe://td/-/_', trustDomain: 'td', path: '/-/_' },
  // length limits, exactly at the limit
  {
    input: `spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_LENGTH)}`,
    trustDomain: 'a'.repeat(MAX_TRUST_DOMAIN_LENGTH),
    path: '',
    label: 'trust domain of exactly 255 bytes',
  },
  {
    input: `spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_LENGTH)}/p`,
    trustDomain: 'a'.repeat(MAX_TRUST_DOMAIN_LENGTH),
    path: '/p',
    label: 'trust domain of exactly 255 bytes, with a path',
  },
  {
    input: idOfLength(MAX_ID_LENGTH),
    trustDomain: 'example.org',
    path: idOfLength(MAX_ID_LENGTH).slice('spiffe://example.org'.length),
    label: 'whole ID of exactly 2048 bytes',
  },
  {
    input: idOfLengthWithMaxTrustDomain(MAX_ID_LENGTH),
    trustDomain: 't'.repeat(MAX_TRUST_DOMAIN_LENGTH),
    path: idOfLengthWithMaxTrustDomain(MAX_ID_LENGTH).slice(`spiffe://${'t'.repeat(255)}`.length),
    label: 'whole ID of exactly 2048 bytes with a 255-byte trust domain',
  },
];

const invalidIds: InvalidCase[] = [
  // empty and too long
  { input: '', code: 'ERR_SPIFFEID_EMPTY', label: 'empty string' },
  { input: idOfLength(MAX_ID_LENGTH + 1), code: 'ERR_SPIFFEID_TOO_LONG', label: 'whole ID of 2049 bytes' },
  {
    input: idOfLengthWithMaxTrustDomain(MAX_ID_LENGTH + 1),
    code: 'ERR_SPIFFEID_TOO_LONG',
    label: 'whole ID of 2049 bytes with a 255-byte trust domain',
  },
  {
    input: idOfLength(MAX_ID_LENGTH * 4),
    code: 'ERR_SPIFFEID_TOO_LONG',
    label: 'whole ID of 8192 bytes',
  },
  // scheme
  { input: 'SPIFFE://example.org', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'Spiffe://example.org/p', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'example.org', code: 'ERR_SPIFFEID_SCHEME', label: 'missing scheme, bare trust domain' },
  { input: 'example.org/path', code: 'ERR_SPIFFEID_SCHEME', label: 'missing scheme, with path' },
  { input: '//example.org/path', code: 'ERR_SPIFFEID_SCHEME' },
  { input: '://example.org', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'http://example.org', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'https://example.org/path', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'spiffe:/x', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'spiffe:example.org', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'spiffe:', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'spiffe', code: 'ERR_SPIFFEID_SCHEME' },
  { input: 'spiffe//example.org', code: 'ERR_SPIFFEID_SCHEME' },
  { input: ' spiffe://example.org', code: 'ERR_SPIFFEID_SCHEME', label: 'leading space' },
  { input: 'urn:spiffe://example.org', code: 'ERR_SPIFFEID_SCHEME' },
  // missing trust domain
  { input: 'spiffe://', code: 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING' },
  { input: 'spiffe:///path', code: 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING' },
  { input: 'spiffe:///', code: 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING' },
  // trust domain characters
  { input: 'spiffe://Example.org', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'uppercase trust domain' },
  { input: 'spiffe://EXAMPLE.ORG/path', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://user@example.org', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'userinfo' },
  { input: 'spiffe://user:pass@example.org/p', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://example.org:8080', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'port' },
  { input: 'spiffe://example.org:8080/path', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://example.org:', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'empty port' },
  { input: 'spiffe://%41', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'percent-encoded trust domain' },
  { input: 'spiffe://ex%61mple.org', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://example.org?x', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'query after td' },
  { input: 'spiffe://example.org?', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://example.org#x', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'fragment after td' },
  { input: 'spiffe://example.org#', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://[::1]', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'IPv6 literal' },
  { input: 'spiffe://example org', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR' },
  { input: 'spiffe://example.org ', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'trailing space' },
  { input: 'spiffe://example.org\\path', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'backslash' },
  { input: 'spiffe://exämple.org', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'non-ASCII ä in td' },
  {
    input: 'spiffe://\uff45xample.org',
    code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR',
    label: 'non-ASCII fullwidth e in td',
  },
  {
    input: 'spiffe://\u212aelvin.org',
    code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR',
    label: 'non-ASCII Kelvin sign (lowercases to k) in td',
  },
  { input: 'spiffe://例え.jp', code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', label: 'non-ASCII CJK in td' },
  // trust domain length
  {
    input: `spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_LENGTH + 1)}`,
    code: 'ERR_SPIFFEID_TRUST_DOMAIN_TOO_LONG',
    label: 'trust domain of 256 bytes',
  },
  {
    input: `spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_LENGTH + 1)}/path`,
    code: 'ERR_SPIFFEID_TRUST_DOMAIN_TOO_LONG',
    label: 'trust domain of 256 bytes, with a path',
  },
  // path characters
  { input: 'spiffe://example.org/%41', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'percent-encoding in path' },
  { input: 'spiffe://example.org/a%2Fb', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/path?x', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'query after path' },
  { input: 'spiffe://example.org/path?', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/?x', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/path#x', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'fragment after path' },
  { input: 'spiffe://example.org/path#', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/a b', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/a\nb', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'newline in path' },
  { input: 'spiffe://example.org/a\u0000b', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'NUL in path' },
  { input: 'spiffe://example.org/a\\b', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'backslash in path' },
  { input: 'spiffe://example.org/a:b', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/a@b', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/a~b', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/a+b', code: 'ERR_SPIFFEID_PATH_CHAR' },
  { input: 'spiffe://example.org/päth', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'non-ASCII ä in path' },
  { input: 'spiffe://example.org/\u0131d', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'non-ASCII dotless i' },
  { input: 'spiffe://example.org/a\u00a0b', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'non-ASCII NBSP' },
  { input: 'spiffe://example.org/\u{1f600}', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'non-ASCII emoji' },
  { input: 'spiffe://example.org/\ud800', code: 'ERR_SPIFFEID_PATH_CHAR', label: 'lone surrogate' },
  // empty segments
  { input: 'spiffe://example.org//', code: 'ERR_SPIFFEID_PATH_TRAILING_SLASH' },
  { input: 'spiffe://example.org//path', code: 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT' },
  { input: 'spiffe://example.org/a//b', code: 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT' },
  { input: 'spiffe://example.org/a///b', code: 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT' },
  // dot segments
  { input: 'spiffe://example.org/.', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/..', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/./path', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/../path', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/a/./b', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/a/../b', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/a/.', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  { input: 'spiffe://example.org/a/..', code: 'ERR_SPIFFEID_PATH_DOT_SEGMENT' },
  // trailing slash
  { input: 'spiffe://example.org/', code: 'ERR_SPIFFEID_PATH_TRAILING_SLASH' },
  { input: 'spiffe://td/', code: 'ERR_SPIFFEID_PATH_TRAILING_SLASH' },
  { input: 'spiffe://example.org/path/', code: 'ERR_SPIFFEID_PATH_TRAILING_SLASH' },
  { input: 'spiffe://example.org/a/b/', code: 'ERR_SPIFFEID_PATH_TRAILING_SLASH' },
];

// ---------------------------------------------------------------------------------------------
// SpiffeId.parse
// ---------------------------------------------------------------------------------------------

describe('spiffeid', () => {
  it('exports the limits of the standard', () => {
    assert.equal(MAX_ID_LENGTH, 2048);
    assert.equal(MAX_TRUST_DOMAIN_LENGTH, 255);
  });

  describe('SpiffeId.parse accepts', () => {
    for (const c of validIds) {
      it(title(c.input, c.label), () => {
        const parsed = SpiffeId.parse(c.input);
        assert.ok(parsed instanceof SpiffeId);
        assert.equal(parsed.trustDomain.name, c.trustDomain);
        assert.equal(parsed.path, c.path);
        assert.equal(parsed.toString(), c.input);
      });
    }
  });

  describe('SpiffeId.parse refuses', () => {
    for (const c of invalidIds) {
      it(`${title(c.input, c.label)} with ${c.code}`, () => {
        assertCode(() => SpiffeId.parse(c.input), c.code, { prefix: 'spiffeid: ' });
      });
    }

    it('length fixtures are exactly the sizes they claim', () => {
      assert.equal(idOfLength(2048).length, 2048);
      assert.equal(idOfLength(2049).length, 2049);
      assert.equal(idOfLengthWithMaxTrustDomain(2048).length, 2048);
      assert.equal(idOfLengthWithMaxTrustDomain(2049).length, 2049);
      assert.equal(Buffer.byteLength(idOfLength(2048)), 2048);
    });

    const nonStrings: [string, unknown][] = [
      ['undefined', undefined],
      ['null', null],
      ['a number', 42],
      ['a boolean', true],
      ['an object', { toString: () => 'spiffe://example.org' }],
      ['a String object', new String('spiffe://example.org')],
      ['a URL', new URL('spiffe://example.org/path')],
      ['an array', ['spiffe://example.org']],
    ];
    for (const [name, value] of nonStrings) {
      it(`${name} with a TypeError`, () => {
        assert.throws(() => SpiffeId.parse(value as string), TypeError);
      });
    }
  });

  describe('every allowed trust-domain character', () => {
    for (const ch of TD_CHARS) {
      it(`accepts ${JSON.stringify(ch)} in a trust domain`, () => {
        const input = `spiffe://a${ch}b/path`;
        assert.equal(SpiffeId.parse(input).trustDomain.name, `a${ch}b`);
        assert.equal(SpiffeId.parse(`spiffe://${ch}`).trustDomain.name, ch);
        assert.equal(TrustDomain.parse(`a${ch}b`).name, `a${ch}b`);
      });
    }

    it('refuses every other ASCII character in a trust domain', () => {
      for (let code = 0; code < 0x80; code++) {
        const ch = String.fromCharCode(code);
        if (TD_CHARS.includes(ch) || ch === '/') continue; // '/' starts the path
        assertCode(() => SpiffeId.parse(`spiffe://a${ch}b`), 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR');
        assertCode(() => SpiffeId.parse(`spiffe://a${ch}b/p`), 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR');
      }
    });
  });

  describe('every allowed path character', () => {
    for (const ch of PATH_CHARS) {
      it(`accepts ${JSON.stringify(ch)} in a path segment`, () => {
        const parsed = SpiffeId.parse(`spiffe://example.org/x${ch}y/${ch}${ch}${ch}`);
        assert.deepEqual(parsed.segments(), [`x${ch}y`, `${ch}${ch}${ch}`]);
        assert.doesNotThrow(() => validatePathSegment(`x${ch}`));
      });
    }

    it('refuses every other ASCII character in a path segment', () => {
      for (let code = 0; code < 0x80; code++) {
        const ch = String.fromCharCode(code);
        if (PATH_CHARS.includes(ch) || ch === '/') continue;
        assertCode(() => SpiffeId.parse(`spiffe://example.org/a${ch}b`), 'ERR_SPIFFEID_PATH_CHAR');
        assertCode(() => SpiffeId.parse(`spiffe://example.org/${ch}`), 'ERR_SPIFFEID_PATH_CHAR');
        assertCode(() => validatePathSegment(ch), 'ERR_SPIFFEID_PATH_CHAR');
      }
    });

    it('treats the path as case-sensitive', () => {
      const lower = id('spiffe://example.org/path');
      const upper = id('spiffe://example.org/PATH');
      assert.equal(upper.path, '/PATH');
      assert.equal(lower.equals(upper), false);
    });
  });

  // -------------------------------------------------------------------------------------------
  // validatePath / validatePathSegment
  // -------------------------------------------------------------------------------------------

  describe('validatePath', () => {
    const ok = ['', '/a', '/a/b/c', '/.a', '/..a', '/...', '/A-Z_0.9'];
    for (const p of ok) {
      it(`accepts ${JSON.stringify(p)}`, () => {
        assert.doesNotThrow(() => validatePath(p));
      });
    }
    const bad: [string, ErrorCode][] = [
      ['a', 'ERR_SPIFFEID_PATH_LEADING_SLASH'],
      ['a/b', 'ERR_SPIFFEID_PATH_LEADING_SLASH'],
      ['/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['/a/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['//a', 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['/a//b', 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['/.', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['/a/..', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['/%41', 'ERR_SPIFFEID_PATH_CHAR'],
      ['/a?b', 'ERR_SPIFFEID_PATH_CHAR'],
    ];
    for (const [p, code] of bad) {
      it(`refuses ${JSON.stringify(p)} with ${code}`, () => {
        assertCode(() => validatePath(p), code, { prefix: 'spiffeid: ' });
      });
    }
  });

  describe('validatePathSegment', () => {
    const bad: [string, ErrorCode][] = [
      ['', 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['.', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['..', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['a/b', 'ERR_SPIFFEID_PATH_CHAR'],
      ['/', 'ERR_SPIFFEID_PATH_CHAR'],
      ['%41', 'ERR_SPIFFEID_PATH_CHAR'],
    ];
    for (const [s, code] of bad) {
      it(`refuses ${JSON.stringify(s)} with ${code}`, () => {
        assertCode(() => validatePathSegment(s), code, { prefix: 'spiffeid: ' });
      });
    }
    for (const s of ['a', '...', '.a', '..a', 'a.', 'Z_-9']) {
      it(`accepts ${JSON.stringify(s)}`, () => {
        assert.doesNotThrow(() => validatePathSegment(s));
      });
    }
  });

  // -------------------------------------------------------------------------------------------
  // TrustDomain
  // -------------------------------------------------------------------------------------------

  describe('TrustDomain.parse', () => {
    const ok: [string, string][] = [
      ['example.org', 'example.org'],
      ['td', 'td'],
      [TD_CHARS, TD_CHARS],
      ['spiffe://example.org', 'example.org'],
      ['spiffe://td', 'td'],
      ['a'.repeat(MAX_TRUST_DOMAIN_LENGTH), 'a'.repeat(MAX_TRUST_DOMAIN_LENGTH)],
      [`spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_LENGTH)}`, 'a'.repeat(MAX_TRUST_DOMAIN_LENGTH)],
    ];
    for (const [input, name] of ok) {
      it(`accepts ${title(input)}`, () => {
        const parsed = TrustDomain.parse(input);
        assert.ok(parsed instanceof TrustDomain);
        assert.equal(parsed.name, name);
      });
    }

    const bad: [string, ErrorCode][] = [
      ['', 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING'],
      ['spiffe://example.org/path', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['spiffe://example.org/a/b', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['spiffe://example.org/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['spiffe://', 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING'],
      ['spiffe:///path', 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING'],
      ['SPIFFE://example.org', 'ERR_SPIFFEID_SCHEME'],
      ['http://example.org', 'ERR_SPIFFEID_SCHEME'],
      ['Example.org', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['spiffe://Example.org', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['user@example.org', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['spiffe://example.org:8080', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['ex%61mple.org', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['example.org?x', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['example.org#x', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['exämple.org', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['a'.repeat(MAX_TRUST_DOMAIN_LENGTH + 1), 'ERR_SPIFFEID_TRUST_DOMAIN_TOO_LONG'],
      [`spiffe://${'a'.repeat(MAX_TRUST_DOMAIN_LENGTH + 1)}`, 'ERR_SPIFFEID_TRUST_DOMAIN_TOO_LONG'],
    ];
    for (const [input, code] of bad) {
      it(`refuses ${title(input)} with ${code}`, () => {
        assertCode(() => TrustDomain.parse(input), code, { prefix: 'spiffeid: ' });
      });
    }

    it('refuses non-strings with a TypeError', () => {
      for (const v of [undefined, null, 1, {}, new String('example.org')]) {
        assert.throws(() => TrustDomain.parse(v as string), TypeError);
      }
    });
  });

  describe('TrustDomain', () => {
    it('id() and idString() give the trust domain ID, with no path', () => {
      const t = td('example.org');
      const tdId = t.id();
      assert.ok(tdId instanceof SpiffeId);
      assert.equal(tdId.toString(), 'spiffe://example.org');
      assert.equal(tdId.path, '');
      assert.ok(tdId.isTrustDomainId());
      assert.ok(tdId.trustDomain.equals(t));
      assert.equal(t.idString(), 'spiffe://example.org');
    });

    it('equals compares names', () => {
      assert.ok(td('example.org').equals(td('spiffe://example.org')));
      assert.equal(td('example.org').equals(td('example.com')), false);
      assert.equal(td('example.org').equals(td('example.org.')), false);
      assert.equal(td('a').equals({ name: 'a' } as unknown as TrustDomain), false);
    });

    it('toString and toJSON give the name', () => {
      const t = td('example.org');
      assert.equal(t.toString(), 'example.org');
      assert.equal(`${t}`, 'example.org');
      assert.equal(t.toJSON(), 'example.org');
      assert.equal(JSON.stringify({ t }), '{"t":"example.org"}');
      assert.ok(td(JSON.parse(JSON.stringify(t)) as string).equals(t));
    });

    it('is frozen and refuses assignment', () => {
      const t = td('example.org');
      assert.ok(Object.isFrozen(t));
      assert.throws(() => {
        (t as unknown as { name: string }).name = 'evil.org';
      }, TypeError);
      assert.throws(() => {
        (t as unknown as { extra: string }).extra = 'x';
      }, TypeError);
      assert.equal(t.name, 'example.org');
    });
  });

  // -------------------------------------------------------------------------------------------
  // Building IDs
  // -------------------------------------------------------------------------------------------

  describe('SpiffeId.fromSegments', () => {
    it('builds from a trust domain string and segments', () => {
      const built = SpiffeId.fromSegments('example.org', 'ns', 'prod', 'sa', 'Web-1_.x');
      assert.equal(built.toString(), 'spiffe://example.org/ns/prod/sa/Web-1_.x');
      assert.deepEqual(built.segments(), ['ns', 'prod', 'sa', 'Web-1_.x']);
    });

    it('builds from a TrustDomain object', () => {
      assert.equal(SpiffeId.fromSegments(td('example.org'), 'a').toString(), 'spiffe://example.org/a');
    });

    it('builds the trust domain ID from no segments', () => {
      const built = SpiffeId.fromSegments('example.org');
      assert.equal(built.toString(), 'spiffe://example.org');
      assert.ok(built.isTrustDomainId());
    });

    it('accepts segments that only look like dot segments', () => {
      assert.equal(SpiffeId.fromSegments('td', '.path', '..path', '...').toString(), 'spiffe://td/.path/..path/...');
    });

    const bad: [string, string[], ErrorCode][] = [
      ['a segment containing "/"', ['a/b'], 'ERR_SPIFFEID_PATH_CHAR'],
      ['a segment that is "/"', ['/'], 'ERR_SPIFFEID_PATH_CHAR'],
      ['an empty segment', ['a', ''], 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['a "." segment', ['.'], 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['a ".." segment', ['a', '..'], 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['a percent-encoded segment', ['%41'], 'ERR_SPIFFEID_PATH_CHAR'],
      ['a segment with a query', ['a?x'], 'ERR_SPIFFEID_PATH_CHAR'],
      ['a non-ASCII segment', ['päth'], 'ERR_SPIFFEID_PATH_CHAR'],
      ['an ID over 2048 bytes', ['x'.repeat(MAX_ID_LENGTH)], 'ERR_SPIFFEID_TOO_LONG'],
    ];
    for (const [name, segs, code] of bad) {
      it(`refuses ${name} with ${code}`, () => {
        assertCode(() => SpiffeId.fromSegments('example.org', ...segs), code, { prefix: 'spiffeid: ' });
      });
    }

    it('refuses an invalid trust domain string', () => {
      assertCode(() => SpiffeId.fromSegments('Example.org', 'a'), 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR');
      assertCode(() => SpiffeId.fromSegments('', 'a'), 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING');
    });
  });

  describe('SpiffeId.fromPath', () => {
    const ok: [string, string, string][] = [
      ['example.org', '', 'spiffe://example.org'],
      ['example.org', '/a', 'spiffe://example.org/a'],
      ['example.org', '/a/B/c', 'spiffe://example.org/a/B/c'],
      ['spiffe://example.org', '/a', 'spiffe://example.org/a'],
      ['example.org', '/.a/..a/...', 'spiffe://example.org/.a/..a/...'],
    ];
    for (const [t, p, want] of ok) {
      it(`builds ${want} from ${JSON.stringify(t)} and ${JSON.stringify(p)}`, () => {
        assert.equal(SpiffeId.fromPath(t, p).toString(), want);
        assert.ok(SpiffeId.fromPath(td(t), p).equals(id(want)));
      });
    }

    it('builds an ID of exactly 2048 bytes', () => {
      const p = '/' + 'x'.repeat(MAX_ID_LENGTH - 'spiffe://example.org/'.length);
      assert.equal(SpiffeId.fromPath('example.org', p).toString().length, MAX_ID_LENGTH);
    });

    const bad: [string, ErrorCode][] = [
      ['a', 'ERR_SPIFFEID_PATH_LEADING_SLASH'],
      ['a/b', 'ERR_SPIFFEID_PATH_LEADING_SLASH'],
      ['/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['/a/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['/a//b', 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['/./a', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['/a/..', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['/%41', 'ERR_SPIFFEID_PATH_CHAR'],
      ['/a#x', 'ERR_SPIFFEID_PATH_CHAR'],
      ['/' + 'x'.repeat(MAX_ID_LENGTH - 'spiffe://example.org/'.length + 1), 'ERR_SPIFFEID_TOO_LONG'],
    ];
    for (const [p, code] of bad) {
      it(`refuses path ${title(p)} with ${code}`, () => {
        assertCode(() => SpiffeId.fromPath('example.org', p), code, { prefix: 'spiffeid: ' });
      });
    }
  });

  // -------------------------------------------------------------------------------------------
  // Methods on SpiffeId
  // -------------------------------------------------------------------------------------------

  describe('segments()', () => {
    const table: [string, string[]][] = [
      ['spiffe://example.org', []],
      ['spiffe://example.org/a', ['a']],
      ['spiffe://example.org/ns/prod/sa/web', ['ns', 'prod', 'sa', 'web']],
      ['spiffe://example.org/.a/..b/...', ['.a', '..b', '...']],
    ];
    for (const [input, want] of table) {
      it(`splits ${input}`, () => {
        assert.deepEqual(id(input).segments(), want);
      });
    }

    it('returns a copy that does not change the ID', () => {
      const parsed = id('spiffe://example.org/a/b');
      const segs = parsed.segments();
      segs.push('evil');
      segs[0] = 'x';
      assert.deepEqual(parsed.segments(), ['a', 'b']);
      assert.equal(parsed.path, '/a/b');
    });
  });

  describe('memberOf', () => {
    const table: [string, string, boolean][] = [
      ['spiffe://example.org/a', 'example.org', true],
      ['spiffe://example.org', 'example.org', true],
      ['spiffe://example.org/a', 'example.com', false],
      ['spiffe://example.org/a', 'a.example.org', false],
      ['spiffe://a.example.org/a', 'example.org', false],
      ['spiffe://example.org/a', 'example.org.', false],
    ];
    for (const [input, t, want] of table) {
      it(`${input} member of ${t} is ${want}`, () => {
        assert.equal(id(input).memberOf(td(t)), want);
      });
    }
  });

  describe('isTrustDomainId', () => {
    const table: [string, boolean][] = [
      ['spiffe://example.org', true],
      ['spiffe://example.org/a', false],
      ['spiffe://example.org/a/b', false],
    ];
    for (const [input, want] of table) {
      it(`${input} is ${want ? '' : 'not '}a trust domain ID`, () => {
        assert.equal(id(input).isTrustDomainId(), want);
      });
    }
  });

  describe('replacePath', () => {
    it('returns a new ID in the same trust domain and leaves the original alone', () => {
      const orig = id('spiffe://example.org/old');
      const next = orig.replacePath('/new/path');
      assert.equal(next.toString(), 'spiffe://example.org/new/path');
      assert.ok(next.trustDomain.equals(orig.trustDomain));
      assert.equal(orig.toString(), 'spiffe://example.org/old');
    });

    it('replaces with the empty path', () => {
      const next = id('spiffe://example.org/old').replacePath('');
      assert.equal(next.toString(), 'spiffe://example.org');
      assert.ok(next.isTrustDomainId());
    });

    const bad: [string, ErrorCode][] = [
      ['new', 'ERR_SPIFFEID_PATH_LEADING_SLASH'],
      ['/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['/a/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['//a', 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['/..', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['/%41', 'ERR_SPIFFEID_PATH_CHAR'],
      ['/' + 'x'.repeat(MAX_ID_LENGTH), 'ERR_SPIFFEID_TOO_LONG'],
    ];
    for (const [p, code] of bad) {
      it(`refuses ${title(p)} with ${code}`, () => {
        assertCode(() => id('spiffe://example.org/old').replacePath(p), code, { prefix: 'spiffeid: ' });
      });
    }
  });

  describe('appendSegments', () => {
    it('appends to a path and leaves the original alone', () => {
      const orig = id('spiffe://example.org/a/b');
      const next = orig.appendSegments('c', 'D');
      assert.equal(next.toString(), 'spiffe://example.org/a/b/c/D');
      assert.equal(orig.toString(), 'spiffe://example.org/a/b');
    });

    it('appends to a trust domain ID', () => {
      assert.equal(id('spiffe://example.org').appendSegments('a').toString(), 'spiffe://example.org/a');
    });

    it('appends nothing', () => {
      assert.ok(id('spiffe://example.org/a').appendSegments().equals(id('spiffe://example.org/a')));
    });

    it('appends up to exactly 2048 bytes', () => {
      const base = id(idOfLength(MAX_ID_LENGTH - 2));
      assert.equal(base.appendSegments('y').toString().length, MAX_ID_LENGTH);
    });

    const bad: [string, string[], ErrorCode][] = [
      ['a segment containing "/"', ['c/d'], 'ERR_SPIFFEID_PATH_CHAR'],
      ['an empty segment', ['c', ''], 'ERR_SPIFFEID_PATH_EMPTY_SEGMENT'],
      ['a "." segment', ['.'], 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['a ".." segment', ['..'], 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['a percent-encoded segment', ['%41'], 'ERR_SPIFFEID_PATH_CHAR'],
    ];
    for (const [name, segs, code] of bad) {
      it(`refuses ${name} with ${code}`, () => {
        assertCode(() => id('spiffe://example.org/a').appendSegments(...segs), code, { prefix: 'spiffeid: ' });
      });
    }

    it('refuses going over 2048 bytes with ERR_SPIFFEID_TOO_LONG', () => {
      const base = id(idOfLength(MAX_ID_LENGTH - 2));
      assertCode(() => base.appendSegments('yz'), 'ERR_SPIFFEID_TOO_LONG');
    });
  });

  describe('equals', () => {
    const table: [string, string, boolean][] = [
      ['spiffe://example.org/a', 'spiffe://example.org/a', true],
      ['spiffe://example.org', 'spiffe://example.org', true],
      ['spiffe://example.org/a', 'spiffe://example.org/A', false],
      ['spiffe://example.org/a', 'spiffe://example.com/a', false],
      ['spiffe://example.org/a', 'spiffe://example.org/a/b', false],
      ['spiffe://example.org/a', 'spiffe://example.org', false],
    ];
    for (const [a, b, want] of table) {
      it(`${a} ${want ? '==' : '!='} ${b}`, () => {
        assert.equal(id(a).equals(id(b)), want);
        assert.equal(id(b).equals(id(a)), want);
      });
    }

    it('is false for look-alike objects', () => {
      const fake = { trustDomain: td('example.org'), path: '/a', toString: () => 'spiffe://example.org/a' };
      assert.equal(id('spiffe://example.org/a').equals(fake as unknown as SpiffeId), false);
    });
  });

  describe('toString / toJSON', () => {
    for (const c of validIds) {
      it(`round-trips ${title(c.input, c.label)}`, () => {
        const parsed = id(c.input);
        assert.equal(parsed.toString(), c.input);
        assert.equal(`${parsed}`, c.input);
        assert.equal(parsed.toJSON(), c.input);
        assert.ok(id(parsed.toString()).equals(parsed));
        const json = JSON.stringify({ id: parsed });
        assert.equal(json, JSON.stringify({ id: c.input }));
        const back = JSON.parse(json) as { id: string };
        assert.ok(id(back.id).equals(parsed));
      });
    }
  });

  describe('immutability', () => {
    it('SpiffeId and its trust domain are frozen', () => {
      const parsed = id('spiffe://example.org/a');
      assert.ok(Object.isFrozen(parsed));
      assert.ok(Object.isFrozen(parsed.trustDomain));
      assert.ok(Object.isFrozen(SpiffeId.fromSegments('example.org', 'a')));
      assert.ok(Object.isFrozen(SpiffeId.fromPath('example.org', '/a')));
      assert.ok(Object.isFrozen(parsed.replacePath('/b')));
      assert.ok(Object.isFrozen(parsed.appendSegments('b')));
      assert.ok(Object.isFrozen(td('example.org').id()));
    });

    it('assignment throws in strict mode and changes nothing', () => {
      const parsed = id('spiffe://example.org/a');
      assert.throws(() => {
        (parsed as unknown as { path: string }).path = '/evil';
      }, TypeError);
      assert.throws(() => {
        (parsed as unknown as { trustDomain: TrustDomain }).trustDomain = td('evil.org');
      }, TypeError);
      assert.throws(() => {
        (parsed.trustDomain as unknown as { name: string }).name = 'evil.org';
      }, TypeError);
      assert.throws(() => {
        (parsed as unknown as { extra: number }).extra = 1;
      }, TypeError);
      assert.throws(() => {
        delete (parsed as unknown as { path?: string }).path;
      }, TypeError);
      assert.equal(parsed.toString(), 'spiffe://example.org/a');
    });
  });

  // -------------------------------------------------------------------------------------------
  // Matchers
  // -------------------------------------------------------------------------------------------

  describe('matchers', () => {
    interface MatcherCase {
      name: string;
      matcher: () => Matcher;
      pass: string[];
      fail: string[];
    }

    const table: MatcherCase[] = [
      {
        name: 'matchAny()',
        matcher: () => matchAny(),
        pass: ['spiffe://example.org', 'spiffe://example.org/a', 'spiffe://other.org/x/y'],
        fail: [],
      },
      {
        name: 'matchId(string)',
        matcher: () => matchId('spiffe://example.org/web'),
        pass: ['spiffe://example.org/web'],
        fail: ['spiffe://example.org/Web', 'spiffe://example.org/web/x', 'spiffe://other.org/web'],
      },
      {
        name: 'matchId(SpiffeId)',
        matcher: () => matchId(id('spiffe://example.org')),
        pass: ['spiffe://example.org'],
        fail: ['spiffe://example.org/a', 'spiffe://example.com'],
      },
      {
        name: 'matchOneOf(string, SpiffeId)',
        matcher: () => matchOneOf('spiffe://example.org/a', id('spiffe://other.org/b')),
        pass: ['spiffe://example.org/a', 'spiffe://other.org/b'],
        fail: ['spiffe://example.org/b', 'spiffe://other.org/a', 'spiffe://example.org'],
      },
      {
        name: 'matchOneOf() with nothing',
        matcher: () => matchOneOf(),
        pass: [],
        fail: ['spiffe://example.org', 'spiffe://example.org/a'],
      },
      {
        name: 'matchMemberOf(string)',
        matcher: () => matchMemberOf('example.org'),
        pass: ['spiffe://example.org', 'spiffe://example.org/a/b'],
        fail: ['spiffe://example.com/a', 'spiffe://sub.example.org/a', 'spiffe://example.org.evil/a'],
      },
      {
        name: 'matchMemberOf(TrustDomain)',
        matcher: () => matchMemberOf(td('spiffe://example.org')),
        pass: ['spiffe://example.org/x'],
        fail: ['spiffe://other.org/x'],
      },
      {
        name: 'matchWith(predicate)',
        matcher: () => matchWith((x) => x.segments()[0] === 'ns', 'an ID under /ns'),
        pass: ['spiffe://example.org/ns', 'spiffe://other.org/ns/a'],
        fail: ['spiffe://example.org', 'spiffe://example.org/sa/ns'],
      },
    ];

    for (const c of table) {
      for (const input of c.pass) {
        it(`${c.name} accepts ${input}`, () => {
          assert.doesNotThrow(() => c.matcher()(id(input)));
        });
      }
      for (const input of c.fail) {
        it(`${c.name} refuses ${input} with ERR_SPIFFEID_MISMATCH`, () => {
          assertCode(() => c.matcher()(id(input)), 'ERR_SPIFFEID_MISMATCH');
        });
      }
    }

    it('mismatch messages name the ID that was refused', () => {
      assert.throws(
        () => matchId('spiffe://example.org/a')(id('spiffe://example.org/b')),
        (err: unknown) => err instanceof SvidkitError && err.message.includes('spiffe://example.org/b'),
      );
    });

    it('matchWith uses its description, and a default one', () => {
      assert.throws(
        () => matchWith(() => false, 'a very special ID')(id('spiffe://example.org/a')),
        (err: unknown) => err instanceof SvidkitError && err.message.includes('a very special ID'),
      );
      assertCode(() => matchWith(() => false)(id('spiffe://example.org/a')), 'ERR_SPIFFEID_MISMATCH');
    });

    it('matchWith passes the ID to the predicate', () => {
      const seen: string[] = [];
      matchWith((x) => {
        seen.push(x.toString());
        return true;
      })(id('spiffe://example.org/p'));
      assert.deepEqual(seen, ['spiffe://example.org/p']);
    });

    it('matcher factories refuse invalid IDs and trust domains when built', () => {
      assertCode(() => matchId('spiffe://example.org/'), 'ERR_SPIFFEID_PATH_TRAILING_SLASH');
      assertCode(() => matchId('http://example.org'), 'ERR_SPIFFEID_SCHEME');
      assertCode(() => matchOneOf('spiffe://a.org', 'spiffe://B.org'), 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR');
      assertCode(() => matchMemberOf('Example.org'), 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR');
      assertCode(() => matchMemberOf(''), 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING');
    });
  });

  // -------------------------------------------------------------------------------------------
  // tryParse
  // -------------------------------------------------------------------------------------------

  describe('SpiffeId.tryParse', () => {
    for (const c of validIds) {
      it(`returns an ID for ${title(c.input, c.label)}`, () => {
        const parsed = SpiffeId.tryParse(c.input);
        assert.ok(parsed instanceof SpiffeId);
        assert.equal(parsed.toString(), c.input);
      });
    }
    for (const c of invalidIds) {
      it(`returns undefined for ${title(c.input, c.label)}`, () => {
        assert.equal(SpiffeId.tryParse(c.input), undefined);
      });
    }
    it('returns undefined for non-strings', () => {
      for (const v of [undefined, null, 1, {}, new String('spiffe://example.org')]) {
        assert.equal(SpiffeId.tryParse(v as string), undefined);
      }
    });
  });
});
