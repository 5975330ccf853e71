/**
 * The agent's in-memory identities for Workload API entries (lib/agent/api-identities.ts): which
 * entries are due, which SVIDs a caller's selectors get and in what order, what a change tells the
 * listeners, and that removing an entry or letting its SVID expire takes the identity away.
 */
import { strict as assert } from 'node:assert';
import { type ApiEntry, ApiIdentities, MAX_API_ENTRIES } from '../lib/agent/api-identities.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { T0, TestCa } from './helpers/ca.js';

const ca = TestCa.root();
const NOW = T0.getTime();

function entry(id: string, path: string, selectors: string[], createdAt = 1): ApiEntry {
  return { id, spiffeId: SpiffeId.parse(`spiffe://example.org${path}`), selectors, createdAt };
}

function svidFor(path: string, notAfter = new Date(NOW + 3600_000)) {
  return ca.svid(path, { notBefore: new Date(NOW - 60_000), notAfter });
}

describe('agent: Workload API identities', function () {
  it('makes every new entry due at once, and an adopted one due again at its renewal time', function () {
    const ids = new ApiIdentities();
    ids.setEntries([entry('a', '/a', ['unix:uid:1000']), entry('b', '/b', ['unix:uid:1001'])]);
    assert.deepEqual(
      ids.due(NOW).map((e) => e.id),
      ['a', 'b'],
    );
    ids.adopt('a', svidFor('/a'), NOW + 1800_000);
    assert.deepEqual(
      ids.due(NOW).map((e) => e.id),
      ['b'],
    );
    assert.equal(ids.nextRenewal(), 0);
    ids.adopt('b', svidFor('/b'), NOW + 900_000);
    assert.deepEqual(ids.due(NOW), []);
    assert.equal(ids.nextRenewal(), NOW + 900_000);
    assert.deepEqual(
      ids.due(NOW + 1800_000).map((e) => e.id),
      ['a', 'b'],
    );
  });

  it('gives a caller the SVIDs of every entry whose selectors it all has, oldest entry first', function () {
    const ids = new ApiIdentities();
    ids.setEntries([
      entry('new', '/db', ['unix:uid:1000'], 30),
      entry('old', '/web', ['unix:gid:50', 'unix:uid:1000'], 10),
      entry('other', '/other', ['unix:uid:2000'], 5),
      entry('stricter', '/admin', ['unix:gid:0', 'unix:uid:1000'], 1),
    ]);
    for (const id of ['new', 'old', 'other', 'stricter']) ids.adopt(id, svidFor(`/${id}`), NOW + 1000);
    const caller = new Set(['unix:uid:1000', 'unix:gid:50', 'unix:supplementary_gid:27']);
    assert.deepEqual(
      ids.svidsFor(caller).map((s) => s.entry.id),
      ['old', 'new'],
    );
    assert.deepEqual(ids.svidsFor(new Set(['unix:uid:3000'])), []);
  });

  it('never matches an entry without selectors (those serve the file workloads)', function () {
    const ids = new ApiIdentities();
    ids.setEntries([entry('files', '/files', [])]);
    ids.adopt('files', svidFor('/files'), NOW + 1000);
    assert.deepEqual(ids.entriesFor(new Set(['unix:uid:0'])), []);
    assert.deepEqual(ids.entriesFor(new Set()), []);
  });

  it('tells listeners of each SVID, of a removed entry and of a bundle change, and stops when asked', function () {
    const ids = new ApiIdentities();
    let calls = 0;
    const stop = ids.subscribe(() => calls++);
    ids.setEntries([entry('a', '/a', ['unix:uid:1'])]);
    assert.equal(calls, 0, 'an entry without an SVID yet changes nothing a caller sees');
    ids.adopt('a', svidFor('/a'), NOW + 1000);
    assert.equal(calls, 1);
    ids.notify();
    assert.equal(calls, 2);
    ids.setEntries([]);
    assert.equal(calls, 3);
    assert.deepEqual(ids.svidsFor(new Set(['unix:uid:1'])), []);
    const before = ids.version;
    stop();
    ids.notify();
    assert.equal(calls, 3);
    assert.equal(ids.version, before + 1);
  });

  it('a listener that throws does not keep the change from the others', function () {
    const ids = new ApiIdentities();
    let seen = 0;
    ids.subscribe(() => {
      throw new Error('broken stream');
    });
    ids.subscribe(() => seen++);
    ids.notify();
    assert.equal(seen, 1);
  });

  it('mints again when an entry’s selectors or SPIFFE ID change under the same ID', function () {
    const ids = new ApiIdentities();
    ids.setEntries([entry('a', '/a', ['unix:uid:1'])]);
    ids.adopt('a', svidFor('/a'), NOW + 1000);
    ids.setEntries([entry('a', '/a', ['unix:uid:1'])]);
    assert.deepEqual(ids.due(NOW), [], 'the same entry listed again is not due');
    ids.setEntries([entry('a', '/a', ['unix:uid:2'])]);
    assert.deepEqual(
      ids.due(NOW).map((e) => e.id),
      ['a'],
    );
    assert.deepEqual(ids.svidsFor(new Set(['unix:uid:1'])), [], 'the old selectors lost the identity');
    assert.deepEqual(ids.svidsFor(new Set(['unix:uid:2'])), [], 'the new ones have none until it is minted');
  });

  it('keeps the SVID it had through a failed renewal, and retries at the given time', function () {
    const ids = new ApiIdentities();
    ids.setEntries([entry('a', '/a', ['unix:uid:1'])]);
    assert.equal(ids.settled(['a']), false);
    ids.failed('a', 'CA unavailable', NOW + 5000);
    assert.equal(ids.settled(['a']), true, 'a caller waiting for a first SVID is answered after one failure');
    assert.deepEqual(ids.due(NOW), []);
    ids.adopt('a', svidFor('/a'), NOW + 1000);
    ids.failed('a', 'CA unavailable', NOW + 7000);
    assert.equal(ids.svidsFor(new Set(['unix:uid:1'])).length, 1);
    assert.deepEqual(
      ids.due(NOW + 7000).map((e) => e.id),
      ['a'],
    );
    const [st] = ids.status();
    assert.equal(st!.failures, 2);
    assert.equal(st!.lastError, 'CA unavailable');
    assert.deepEqual(st!.selectors, ['unix:uid:1']);
  });

  it('drops an SVID once it has expired', function () {
    const ids = new ApiIdentities();
    ids.setEntries([entry('a', '/a', ['unix:uid:1'])]);
    ids.adopt('a', svidFor('/a', new Date(NOW + 10_000)), NOW + 5000);
    ids.dropExpired(NOW + 9999);
    assert.equal(ids.svidsFor(new Set(['unix:uid:1'])).length, 1);
    ids.dropExpired(NOW + 10_000);
    assert.deepEqual(ids.svidsFor(new Set(['unix:uid:1'])), []);
  });

  it(`holds at most ${MAX_API_ENTRIES} entries, keeping the oldest`, function () {
    const ids = new ApiIdentities();
    const many = Array.from({ length: MAX_API_ENTRIES + 3 }, (_, i) =>
      entry(`e${i}`, `/w/${i}`, ['unix:uid:1'], MAX_API_ENTRIES + 3 - i),
    );
    assert.equal(ids.setEntries(many), 3);
    assert.equal(ids.size, MAX_API_ENTRIES);
    assert.equal(ids.entriesFor(new Set(['unix:uid:1']))[0]!.id, `e${MAX_API_ENTRIES + 2}`);
  });
});
