/**
 * What the agent takes from a ListAuthorizedEntries answer (lib/agent/ca-client's
 * readAuthorizedEntries): every entry with its selectors in canonical form, and an entry whose
 * SPIFFE ID or selectors it cannot read skipped on its own, with the reason, never failing the rest.
 */
import { strict as assert } from 'node:assert';
import { readAuthorizedEntries } from '../lib/agent/index.js';
import type { ListAuthorizedEntriesResponse__Output } from '../lib/ca-api/index.js';

type EntryMessage = ListAuthorizedEntriesResponse__Output['entries'][number];

function message(id: string, fields: Partial<EntryMessage> = {}): EntryMessage {
  return {
    id,
    spiffeId: `spiffe://example.org/w/${id}`,
    parentId: 'spiffe://example.org/svidkit/agent/join_token/aa',
    x509SvidTtlSeconds: 3600,
    jwtSvidTtlSeconds: 300,
    dnsNames: [],
    createdAt: 1_700_000_000,
    selectors: [],
    spiffeIdTemplate: '',
    ...fields,
  };
}

describe('agent: entries from the CA', () => {
  it('keeps every field and the selectors, canonical', () => {
    const { entries, refused } = readAuthorizedEntries({
      entries: [
        message('a', { dnsNames: ['a.example.org'], selectors: ['unix:uid:1000', 'unix:gid:50', 'unix:gid:50'] }),
        message('b'),
      ],
    });
    assert.deepEqual(refused, []);
    assert.deepEqual(entries, [
      {
        id: 'a',
        spiffeId: 'spiffe://example.org/w/a',
        parentId: 'spiffe://example.org/svidkit/agent/join_token/aa',
        x509SvidTtlSeconds: 3600,
        jwtSvidTtlSeconds: 300,
        dnsNames: ['a.example.org'],
        selectors: ['unix:gid:50', 'unix:uid:1000'],
        createdAt: 1_700_000_000,
      },
      {
        id: 'b',
        spiffeId: 'spiffe://example.org/w/b',
        parentId: 'spiffe://example.org/svidkit/agent/join_token/aa',
        x509SvidTtlSeconds: 3600,
        jwtSvidTtlSeconds: 300,
        dnsNames: [],
        selectors: [],
        createdAt: 1_700_000_000,
      },
    ]);
  });

  const bad: { name: string; entry: EntryMessage; reason: RegExp }[] = [
    {
      name: 'a selector type of a newer CA',
      entry: message('k', { selectors: ['k8s:ns:default'] }),
      reason: /unknown selector type/,
    },
    {
      name: 'a uid that is no number',
      entry: message('u', { selectors: ['unix:uid:root'] }),
      reason: /uid must be a decimal/,
    },
    {
      name: 'a selector with a newline',
      entry: message('n', { selectors: ['unix:user:a\nb'] }),
      reason: /control character/,
    },
    {
      name: 'too many selectors',
      entry: message('m', { selectors: Array.from({ length: 33 }, (_, i) => `unix:uid:${i}`) }),
      reason: /at most 32 selectors/,
    },
    {
      name: 'an invalid SPIFFE ID',
      entry: message('s', { spiffeId: 'spiffe://Example.org/x' }),
      reason: /^spiffeid: /,
    },
  ];
  for (const c of bad) {
    it(`skips an entry with ${c.name}, with the reason, and keeps the others`, () => {
      const { entries, refused } = readAuthorizedEntries({ entries: [message('ok1'), c.entry, message('ok2')] });
      assert.deepEqual(
        entries.map((e) => e.id),
        ['ok1', 'ok2'],
      );
      assert.equal(refused.length, 1);
      assert.equal(refused[0]?.id, c.entry.id);
      assert.match(refused[0]!.reason, c.reason);
    });
  }

  it('cuts a huge id or SPIFFE ID in what it reports', () => {
    const { refused } = readAuthorizedEntries({
      entries: [
        message('x'.repeat(10_000), { spiffeId: `spiffe://example.org/${'y'.repeat(10_000)}`, selectors: ['?'] }),
      ],
    });
    assert.ok(refused[0]!.id.length <= 131);
    assert.ok(refused[0]!.spiffeId.length <= 131);
  });
});
