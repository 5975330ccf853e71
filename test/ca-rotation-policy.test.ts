/**
 * Table tests of the CA key rotation policy (lib/ca/rotation-policy.ts): pure decisions from keys,
 * times and settings, with no store, disk or clock. The reference key lives from 0 to 600 ms, so its
 * half-life is 300 and its activation point 500; every boundary is tested on both sides.
 */
import { strict as assert } from 'node:assert';
import { refreshHintSeconds } from '../lib/ca/bundle-publication.js';
import {
  activationDue,
  activationPoint,
  dropDue,
  dropsDue,
  halfLife,
  nextPrepared,
  type PolicyKey,
  type PolicySettings,
  prepareDue,
  rotatable,
  unusableAtStart,
  usablePrepared,
} from '../lib/ca/rotation-policy.js';

const EMBEDDED: PolicySettings = { upstream: false, maxJwtSvidTtlMs: 100 };
const UPSTREAM: PolicySettings = { upstream: true, maxJwtSvidTtlMs: 100 };

function key(over: Partial<PolicyKey> = {}): PolicyKey {
  return {
    id: 'k',
    kind: 'x509',
    state: 'active',
    tainted: false,
    start: 0,
    end: 600,
    selfSigned: true,
    loaded: true,
    ...over,
  };
}

describe('CA rotation policy', () => {
  it('prepares at half the lifetime and activates at 5/6, never after the end', () => {
    const cases: [string, Pick<PolicyKey, 'start' | 'end'>, number, number][] = [
      ['0 to 600', { start: 0, end: 600 }, 300, 500],
      ['1000 to 1600', { start: 1000, end: 1600 }, 1300, 1500],
      ['a one-day key', { start: 0, end: 86_400_000 }, 43_200_000, 72_000_000],
      ['an empty lifetime', { start: 50, end: 50 }, 50, 50],
    ];
    for (const [name, k, half, activation] of cases) {
      assert.equal(halfLife(k), half, `${name}: half-life`);
      assert.equal(activationPoint(k), activation, `${name}: activation point`);
      assert.ok(activationPoint(k) <= k.end, `${name}: activation no later than the end`);
    }
  });

  it('rotates the X.509 CA only in embedded mode, JWT keys always', () => {
    const cases: [string, 'x509' | 'jwt', PolicySettings, boolean][] = [
      ['x509 embedded', 'x509', EMBEDDED, true],
      ['x509 upstream', 'x509', UPSTREAM, false],
      ['jwt embedded', 'jwt', EMBEDDED, true],
      ['jwt upstream', 'jwt', UPSTREAM, true],
    ];
    for (const [name, kind, settings, want] of cases) assert.equal(rotatable(kind, settings), want, name);
  });

  it('decides when a key must be prepared', () => {
    const active = key();
    const prepared = key({ id: 'p', state: 'prepared', start: 290, end: 890 });
    const cases: [string, PolicyKey, PolicyKey | undefined, boolean, number, boolean][] = [
      ['before the half-life', active, undefined, false, 299, false],
      ['at the half-life', active, undefined, false, 300, true],
      ['after the half-life', active, undefined, false, 450, true],
      ['forced at the start', active, undefined, true, 0, true],
      ['tainted at the start', key({ tainted: true }), undefined, false, 0, true],
      ['one is prepared already', active, prepared, false, 300, false],
      ['one is prepared already, forced', active, prepared, true, 300, false],
      ['one is prepared already, tainted', key({ tainted: true }), prepared, false, 300, false],
    ];
    for (const [name, a, next, forced, now, want] of cases) assert.equal(prepareDue(a, next, forced, now), want, name);
  });

  it('decides when a prepared key is activated, and whether the previous one is dropped at once', () => {
    const next = key({ id: 'n', state: 'prepared', start: 300, end: 900 });
    const jwt = key({ kind: 'jwt', selfSigned: false });
    const jwtNext = key({ id: 'n', kind: 'jwt', state: 'prepared', selfSigned: false, start: 300, end: 900 });
    type Want = undefined | { dropPrevious: boolean };
    const cases: [string, PolicyKey, PolicyKey | undefined, boolean, number, Want][] = [
      ['nothing prepared', key(), undefined, true, 550, undefined],
      ['before the activation point', key(), next, false, 499, undefined],
      ['at the activation point', key(), next, false, 500, { dropPrevious: false }],
      ['at the end of the active key', key(), next, false, 600, { dropPrevious: false }],
      ['an X.509 CA past its end', key(), next, false, 601, { dropPrevious: true }],
      ['a JWT key past its end stays old', jwt, jwtNext, false, 601, { dropPrevious: false }],
      ['forced early', key(), next, true, 100, { dropPrevious: false }],
      ['tainted early', key({ tainted: true }), next, false, 100, { dropPrevious: true }],
      ['a tainted JWT key', key({ kind: 'jwt', tainted: true }), jwtNext, false, 100, { dropPrevious: true }],
    ];
    for (const [name, active, n, forced, now, want] of cases) {
      const got = activationDue(active, n, forced, now);
      if (want === undefined) {
        assert.equal(got, undefined, name);
      } else {
        assert.ok(got, name);
        assert.equal(got.next, n, `${name}: next`);
        assert.equal(got.previous, active, `${name}: previous`);
        assert.equal(got.dropPrevious, want.dropPrevious, `${name}: dropPrevious`);
      }
    }
  });

  it('activates only prepared keys that are untainted, loaded, of the right mode and before their half-life', () => {
    const p = (over: Partial<PolicyKey>) => key({ state: 'prepared', start: 100, end: 700, ...over });
    const cases: [string, PolicyKey, PolicySettings, number, boolean][] = [
      ['embedded root before its half-life', p({}), EMBEDDED, 399, true],
      ['embedded root at its half-life', p({}), EMBEDDED, 400, false],
      ['tainted', p({ tainted: true }), EMBEDDED, 100, false],
      ['private key not loaded', p({ loaded: false }), EMBEDDED, 100, false],
      ['an intermediate in embedded mode', p({ selfSigned: false }), EMBEDDED, 100, false],
      ['an X.509 key in upstream mode', p({}), UPSTREAM, 100, false],
      ['a JWT key in upstream mode', p({ kind: 'jwt', selfSigned: false }), UPSTREAM, 100, true],
      ['a JWT key at its half-life', p({ kind: 'jwt', selfSigned: false }), UPSTREAM, 400, false],
    ];
    for (const [name, k, settings, now, want] of cases) assert.equal(usablePrepared(k, settings, now), want, name);
  });

  it('picks the newest usable prepared key of the kind', () => {
    const keys = [
      key({ id: 'active' }),
      key({ id: 'p1', state: 'prepared', start: 100, end: 700 }),
      key({ id: 'p2', state: 'prepared', start: 200, end: 800 }),
      key({ id: 'p3-tainted', state: 'prepared', start: 200, end: 800, tainted: true }),
      key({ id: 'j1', kind: 'jwt', state: 'prepared', selfSigned: false, start: 200, end: 800 }),
      key({ id: 'old', state: 'old', start: 250, end: 850 }),
    ];
    const cases: [string, 'x509' | 'jwt', PolicySettings, number, string | undefined][] = [
      ['both usable: the newer', 'x509', EMBEDDED, 350, 'p2'],
      ['the older past its half-life', 'x509', EMBEDDED, 400, 'p2'],
      ['both past their half-life', 'x509', EMBEDDED, 500, undefined],
      ['no X.509 key upstream', 'x509', UPSTREAM, 350, undefined],
      ['the JWT key', 'jwt', EMBEDDED, 350, 'j1'],
    ];
    for (const [name, kind, settings, now, want] of cases) {
      assert.equal(nextPrepared(keys, kind, settings, now)?.id, want, name);
    }
  });

  it('drops an old X.509 CA after its end and an old JWT key once its longest JWT-SVID has expired', () => {
    const jwt = key({ kind: 'jwt', state: 'old', selfSigned: false });
    const cases: [string, PolicyKey, number, number, boolean][] = [
      ['X.509 at its end', key({ state: 'old' }), 600, 0, false],
      ['X.509 after its end', key({ state: 'old' }), 601, 0, true],
      ['X.509 ignores when it stopped signing', key({ state: 'old' }), 601, 590, true],
      ['JWT at stop + max JWT-SVID lifetime', jwt, 300, 200, false],
      ['JWT after stop + max JWT-SVID lifetime', jwt, 301, 200, true],
      ['JWT past its own end but recently stopped', jwt, 650, 600, false],
    ];
    for (const [name, k, now, stopped, want] of cases) assert.equal(dropDue(k, now, stopped, EMBEDDED), want, name);
  });

  it('lists the keys a pass drops, with the reason logged', () => {
    const keys = [
      key({ id: 'active-expired-tainted', tainted: true }),
      key({ id: 'old-x509', state: 'old' }),
      key({ id: 'old-tainted', state: 'old', start: 500, end: 1100, tainted: true }),
      key({ id: 'old-jwt', kind: 'jwt', state: 'old', selfSigned: false, start: 500, end: 1100 }),
      key({ id: 'prepared-ok', state: 'prepared', start: 600, end: 1200 }),
      key({ id: 'prepared-late', state: 'prepared', start: 0, end: 600 }),
      key({ id: 'prepared-tainted', state: 'prepared', start: 600, end: 1200, tainted: true }),
    ];
    const stopped = (k: PolicyKey) => (k.id === 'old-jwt' ? 550 : 0);
    const cases: [string, number, [string, string][]][] = [
      [
        'at 600',
        600,
        [
          ['old-tainted', 'tainted'],
          ['prepared-late', 'prepared key no longer usable'],
          ['prepared-tainted', 'tainted'],
        ],
      ],
      [
        'at 651: the old JWT key and the expired X.509 CA too',
        651,
        [
          ['old-x509', 'everything it signed has expired'],
          ['old-tainted', 'tainted'],
          ['old-jwt', 'everything it signed has expired'],
          ['prepared-late', 'prepared key no longer usable'],
          ['prepared-tainted', 'tainted'],
        ],
      ],
    ];
    for (const [name, now, want] of cases) {
      const got = dropsDue(keys, EMBEDDED, now, stopped).map((d) => [d.key.id, d.reason]);
      assert.deepEqual(got, want, name);
    }
  });

  it('drops at start the prepared keys that are unloadable or of the wrong mode', () => {
    const keys = [
      key({ id: 'active-unloaded', loaded: false }),
      key({ id: 'root', state: 'prepared' }),
      key({ id: 'unloaded', state: 'prepared', loaded: false }),
      key({ id: 'intermediate', state: 'prepared', selfSigned: false }),
      key({ id: 'jwt', kind: 'jwt', state: 'prepared', selfSigned: false }),
      key({ id: 'old-unloaded', state: 'old', loaded: false }),
    ];
    const cases: [string, PolicySettings, string[]][] = [
      ['embedded', EMBEDDED, ['unloaded', 'intermediate']],
      ['upstream', UPSTREAM, ['root', 'unloaded', 'intermediate']],
    ];
    for (const [name, settings, want] of cases) {
      assert.deepEqual(
        unusableAtStart(keys, settings).map((k) => k.id),
        want,
        name,
      );
    }
  });

  it('gives the bundle a refresh hint of caTtl / 24, at most 300 s and at least 1 s', () => {
    const cases: [string, number, number][] = [
      ['the shortest CA lifetime', 60_000, 2],
      ['one hour', 3_600_000, 150],
      ['two hours', 7_200_000, 300],
      ['one day', 86_400_000, 300],
      ['under 24 s', 23_000, 1],
    ];
    for (const [name, ttl, want] of cases) assert.equal(refreshHintSeconds(ttl), want, name);
  });
});
