/**
 * The selector contract of registration entries (lib/ca-api/selectors): each spelling SPIRE's unix
 * attestor produces is accepted, each refusal has its code and reason, a list has one canonical
 * form, and an entry matches a workload only when all of its selectors are among the workload's.
 */
import { strict as assert } from 'node:assert';
import {
  canonicalSelectors,
  entryMatches,
  formatSelector,
  MAX_ENTRY_SELECTORS,
  MAX_SELECTOR_BYTES,
  parseSelector,
  type SelectorRefusal,
} from '../lib/ca-api/index.js';
import { assertCode } from './helpers/assert.js';

const HASH = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);

describe('selectors: parseSelector', () => {
  const accepted: { s: string; type: string; value: string }[] = [
    { s: 'unix:uid:1000', type: 'unix', value: 'uid:1000' },
    { s: 'unix:uid:0', type: 'unix', value: 'uid:0' },
    { s: 'unix:uid:4294967294', type: 'unix', value: 'uid:4294967294' },
    { s: 'unix:gid:50', type: 'unix', value: 'gid:50' },
    { s: 'unix:user:www', type: 'unix', value: 'user:www' },
    { s: 'unix:user:svc-web.2$', type: 'unix', value: 'user:svc-web.2$' },
    { s: 'unix:group:www', type: 'unix', value: 'group:www' },
    { s: 'unix:supplementary_gid:27', type: 'unix', value: 'supplementary_gid:27' },
    { s: 'unix:supplementary_group:wheel', type: 'unix', value: 'supplementary_group:wheel' },
    { s: 'unix:supplementary_group:domain users', type: 'unix', value: 'supplementary_group:domain users' },
    { s: 'unix:path:/usr/bin/node', type: 'unix', value: 'path:/usr/bin/node' },
    { s: 'unix:path:/opt/app v2/bin:x', type: 'unix', value: 'path:/opt/app v2/bin:x' },
    { s: `unix:sha256:${HASH}`, type: 'unix', value: `sha256:${HASH}` },
  ];
  for (const { s, type, value } of accepted) {
    it(`accepts ${s}`, () => {
      assert.deepEqual(parseSelector(s), { type, value });
      assert.equal(formatSelector({ type, value }), s);
    });
  }

  const refused: { name: string; s: unknown; reason: SelectorRefusal; message: RegExp }[] = [
    { name: 'a number', s: 1000, reason: 'not_a_string', message: /must be a string/ },
    { name: 'the empty string', s: '', reason: 'empty', message: /must not be empty/ },
    { name: 'no colon', s: 'unix', reason: 'no_type', message: /is not "type:value"/ },
    { name: 'no type', s: ':uid:1000', reason: 'no_type', message: /is not "type:value"/ },
    {
      name: 'an unknown type',
      s: 'k8s:ns:default',
      reason: 'unknown_type',
      message: /unknown selector type; expected one of unix/,
    },
    { name: 'a type in capitals', s: 'UNIX:uid:1000', reason: 'unknown_type', message: /unknown selector type/ },
    { name: 'a type with no value', s: 'unix:', reason: 'no_value', message: /unix selector needs a value/ },
    {
      name: 'an unknown unix key',
      s: 'unix:pid:1',
      reason: 'unknown_key',
      message: /unknown unix selector; expected one of uid, gid/,
    },
    { name: 'a unix key without a value', s: 'unix:uid', reason: 'no_value', message: /unix:uid needs a value/ },
    { name: 'a unix key with an empty value', s: 'unix:uid:', reason: 'no_value', message: /unix:uid needs a value/ },
    {
      name: 'a uid that is a name',
      s: 'unix:uid:www',
      reason: 'not_a_number',
      message: /uid must be a decimal number/,
    },
    { name: 'a negative uid', s: 'unix:uid:-1', reason: 'not_a_number', message: /without sign/ },
    { name: 'a uid with a plus sign', s: 'unix:uid:+1', reason: 'not_a_number', message: /without sign/ },
    { name: 'a uid with a leading zero', s: 'unix:uid:01000', reason: 'not_a_number', message: /leading zeros/ },
    { name: 'a uid in hexadecimal', s: 'unix:uid:0x10', reason: 'not_a_number', message: /decimal/ },
    { name: 'a uid with a space', s: 'unix:uid: 1000', reason: 'not_a_number', message: /decimal/ },
    {
      name: 'uid 4294967295 ((uid_t)-1)',
      s: 'unix:uid:4294967295',
      reason: 'out_of_range',
      message: /0 to 4294967294/,
    },
    { name: 'a gid of eleven digits', s: 'unix:gid:10000000000', reason: 'not_a_number', message: /decimal/ },
    {
      name: 'a supplementary gid too large',
      s: 'unix:supplementary_gid:9999999999',
      reason: 'out_of_range',
      message: /supplementary_gid must be 0 to/,
    },
    {
      name: 'a user name with a colon',
      s: 'unix:user:a:b',
      reason: 'bad_name',
      message: /user must be a user or group name/,
    },
    {
      name: 'a group name with a trailing space',
      s: 'unix:group:www ',
      reason: 'bad_name',
      message: /no surrounding spaces/,
    },
    { name: 'a relative path', s: 'unix:path:usr/bin/node', reason: 'not_absolute', message: /path must be absolute/ },
    {
      name: 'a path with ..',
      s: 'unix:path:/usr/../bin/sh',
      reason: 'not_canonical',
      message: /path must be canonical/,
    },
    { name: 'a path with .', s: 'unix:path:/usr/./bin/sh', reason: 'not_canonical', message: /canonical/ },
    { name: 'a path with //', s: 'unix:path:/usr//bin/sh', reason: 'not_canonical', message: /canonical/ },
    { name: 'a path with a trailing slash', s: 'unix:path:/usr/bin/', reason: 'not_canonical', message: /canonical/ },
    {
      name: 'a hash of 63 digits',
      s: `unix:sha256:${HASH.slice(1)}`,
      reason: 'not_a_hash',
      message: /64 lowercase hexadecimal/,
    },
    {
      name: 'a hash of 65 digits',
      s: `unix:sha256:${HASH}0`,
      reason: 'not_a_hash',
      message: /64 lowercase hexadecimal/,
    },
    { name: 'a hash in capitals', s: `unix:sha256:${HASH.toUpperCase()}`, reason: 'not_a_hash', message: /lowercase/ },
    {
      name: 'a hash with a non-hex digit',
      s: `unix:sha256:${HASH.slice(1)}g`,
      reason: 'not_a_hash',
      message: /hexadecimal/,
    },
    { name: 'a NUL byte', s: 'unix:path:/bin/sh\u0000x', reason: 'control_character', message: /control character/ },
    {
      name: 'a newline',
      s: 'unix:user:www\nunix:uid:0',
      reason: 'control_character',
      message: /"unix:user:www\\nunix:uid:0"/,
    },
    { name: 'a DEL', s: 'unix:user:w\u007fw', reason: 'control_character', message: /control character/ },
    { name: 'a C1 control', s: 'unix:user:w\u009bw', reason: 'control_character', message: /control character/ },
    {
      name: 'a Unicode line separator',
      s: 'unix:user:w\u2028w',
      reason: 'control_character',
      message: /control character/,
    },
    { name: 'a lone surrogate', s: 'unix:user:w\ud800w', reason: 'control_character', message: /invalid UTF-16/ },
    {
      name: `more than ${MAX_SELECTOR_BYTES} bytes`,
      s: `unix:path:/${'a'.repeat(MAX_SELECTOR_BYTES)}`,
      reason: 'too_long',
      message: /at most 256 bytes/,
    },
    {
      name: `more than ${MAX_SELECTOR_BYTES} bytes of UTF-8 in fewer characters`,
      s: `unix:user:${'é'.repeat(125)}`,
      reason: 'too_long',
      message: /at most 256 bytes/,
    },
  ];
  for (const { name, s, reason, message } of refused) {
    it(`refuses ${name} with ERR_SELECTOR_INVALID (${reason})`, () => {
      const err = assertCode(() => parseSelector(s), 'ERR_SELECTOR_INVALID', { message });
      assert.equal(err.detail.reason, reason);
    });
  }

  it('accepts exactly MAX_SELECTOR_BYTES bytes', () => {
    const s = `unix:path:/${'a'.repeat(MAX_SELECTOR_BYTES - 'unix:path:/'.length)}`;
    assert.equal(Buffer.byteLength(s), MAX_SELECTOR_BYTES);
    assert.equal(parseSelector(s).type, 'unix');
  });

  it('cuts a long selector in its message', () => {
    const err = assertCode(() => parseSelector(`unix:uid:${'9'.repeat(200)}`), 'ERR_SELECTOR_INVALID');
    assert.ok(err.message.length < 200, err.message);
  });

  it('formatSelector refuses what parseSelector refuses', () => {
    const err = assertCode(() => formatSelector({ type: 'unix', value: 'uid:x' }), 'ERR_SELECTOR_INVALID');
    assert.equal(err.detail.reason, 'not_a_number');
  });
});

describe('selectors: canonicalSelectors', () => {
  it('checks, de-duplicates and sorts by type then value', () => {
    assert.deepEqual(canonicalSelectors(['unix:uid:1000', 'unix:gid:50', 'unix:uid:1000', 'unix:gid:100']), [
      'unix:gid:100',
      'unix:gid:50',
      'unix:uid:1000',
    ]);
    assert.deepEqual(canonicalSelectors([]), []);
  });

  it('gives the same list for the same set in any order', () => {
    const a = ['unix:user:www', `unix:sha256:${HASH}`, 'unix:path:/usr/bin/node'];
    assert.deepEqual(canonicalSelectors(a), canonicalSelectors([...a].reverse()));
  });

  it('names the index of the first bad selector', () => {
    const err = assertCode(() => canonicalSelectors(['unix:uid:1', 'unix:gid:x', 'nope']), 'ERR_SELECTOR_INVALID', {
      message: /^selectors: \[1\]: "unix:gid:x": gid must be a decimal/,
    });
    assert.deepEqual(err.detail, { reason: 'not_a_number', index: 1 });
  });

  it(`refuses more than ${MAX_ENTRY_SELECTORS} selectors before parsing any`, () => {
    const many = Array.from({ length: MAX_ENTRY_SELECTORS + 1 }, () => 'not a selector');
    const err = assertCode(() => canonicalSelectors(many), 'ERR_SELECTOR_INVALID', { message: /at most 32 selectors/ });
    assert.equal(err.detail.reason, 'too_many');
    const most = Array.from({ length: MAX_ENTRY_SELECTORS }, (_, i) => `unix:uid:${i}`);
    assert.equal(canonicalSelectors(most).length, MAX_ENTRY_SELECTORS);
  });

  it('refuses a value that is not a list', () => {
    const err = assertCode(() => canonicalSelectors('unix:uid:1'), 'ERR_SELECTOR_INVALID');
    assert.equal(err.detail.reason, 'not_a_string');
  });
});

describe('selectors: entryMatches', () => {
  const workload = ['unix:uid:1000', 'unix:gid:1000', 'unix:user:www', 'unix:supplementary_gid:27'];
  const cases: { name: string; entry: string[]; workload: Iterable<string>; want: boolean }[] = [
    { name: 'one selector the workload has', entry: ['unix:uid:1000'], workload, want: true },
    { name: 'all of several', entry: ['unix:uid:1000', 'unix:supplementary_gid:27'], workload, want: true },
    { name: 'every selector of the workload', entry: [...workload], workload, want: true },
    { name: 'one of two missing', entry: ['unix:uid:1000', 'unix:gid:0'], workload, want: false },
    { name: 'a selector the workload lacks', entry: ['unix:uid:0'], workload, want: false },
    { name: 'a prefix of a workload selector', entry: ['unix:uid:100'], workload, want: false },
    { name: 'no selectors (a file workload entry)', entry: [], workload, want: false },
    { name: 'a workload with no selectors', entry: ['unix:uid:1000'], workload: [], want: false },
    { name: 'a workload given as a Set', entry: ['unix:user:www'], workload: new Set(workload), want: true },
  ];
  for (const c of cases) {
    it(`${c.want ? 'matches' : 'does not match'}: ${c.name}`, () => {
      assert.equal(entryMatches(c.entry, c.workload), c.want);
    });
  }
});
