/**
 * The Workload API's JWT-SVID cache (lib/agent/api-jwt.ts), with real tokens minted by jwtsvid and a
 * manual clock: one CA call per entry and audience set until the renewal time, concurrent requests
 * sharing that call, failures not remembered, and removed entries forgotten.
 */
import { strict as assert } from 'node:assert';
import { ApiJwtCache } from '../lib/agent/api-jwt.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { SvidkitError } from '../lib/errors/index.js';

const T0 = Date.parse('2026-06-01T12:00:00Z');
const key = generateKeyPair('ec-p256').privateKey;

/** The CA's NewJwtSvid as the cache sees it: a real signer that mints a token per call, counting the calls. */
function signer(clock: () => number, ttlSeconds = 600) {
  const calls: { entryId: string; audience: readonly string[] }[] = [];
  let failWith: Error | undefined;
  const mint = async (entryId: string, audience: readonly string[]): Promise<string> => {
    calls.push({ entryId, audience });
    if (failWith) throw failWith;
    return mintJwtSvid({
      id: SpiffeId.parse(`spiffe://example.org/${entryId}`),
      audience: [...audience],
      key,
      kid: 'k1',
      ttlSeconds,
      clock: () => new Date(clock()),
    });
  };
  return { calls, mint, fail: (e: Error | undefined) => (failWith = e) };
}

describe('agent: Workload API JWT-SVID cache', function () {
  let now: number;
  const clock = () => now;
  const policy = { rand: () => 0.5, fraction: 0.5, jitter: 0.1, minRetryMs: 1000 };
  beforeEach(function () {
    now = T0;
  });

  it('asks the CA once per entry and audience set until half-life, whatever the audience order', async function () {
    const ca = signer(clock);
    const cache = new ApiJwtCache(ca.mint, clock, policy);
    const a = await cache.get('web', ['b', 'a']);
    assert.equal(await cache.get('web', ['a', 'b', 'a']), a);
    assert.equal(ca.calls.length, 1);
    assert.deepEqual(ca.calls[0]!.audience, ['a', 'b']);
    now = T0 + 299_999;
    assert.equal(await cache.get('web', ['a', 'b']), a);
    now = T0 + 300_000;
    const b = await cache.get('web', ['a', 'b']);
    assert.notEqual(b, a);
    assert.equal(ca.calls.length, 2);
    await cache.get('web', ['a']);
    await cache.get('db', ['a', 'b']);
    assert.equal(ca.calls.length, 4, 'another audience set or entry is another token');
  });

  it('shares one CA call between concurrent requests', async function () {
    const ca = signer(clock);
    const cache = new ApiJwtCache(ca.mint, clock, policy);
    const tokens = await Promise.all([cache.get('web', ['x']), cache.get('web', ['x']), cache.get('web', ['x'])]);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(ca.calls.length, 1);
  });

  it('does not remember a failure: the next request asks again', async function () {
    const ca = signer(clock);
    const cache = new ApiJwtCache(ca.mint, clock, policy);
    ca.fail(new SvidkitError('ERR_AGENT_CA', 'agent: CA unavailable'));
    await assert.rejects(cache.get('web', ['x']), /CA unavailable/);
    ca.fail(undefined);
    assert.ok(await cache.get('web', ['x']));
    assert.equal(ca.calls.length, 2);
  });

  it('forgets the tokens of entries that went away, and keeps at most its bound', async function () {
    const ca = signer(clock);
    const cache = new ApiJwtCache(ca.mint, clock, policy, 2);
    await cache.get('a', ['x']);
    await cache.get('b', ['x']);
    cache.retain(new Set(['b']));
    assert.equal(cache.size, 1);
    await cache.get('b', ['x']);
    assert.equal(ca.calls.length, 2, 'the kept one is still cached');
    await cache.get('c', ['x']);
    await cache.get('d', ['x']);
    assert.equal(cache.size, 2);
  });
});
