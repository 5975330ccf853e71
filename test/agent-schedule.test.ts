/**
 * Tests of lib/agent/schedule: renewal times and retry backoff. Everything is computed from fixed
 * random values or a seeded generator, so the results are exact and nothing here measures time.
 */
import { strict as assert } from 'node:assert';
import {
  tokenRenewalTime,
  Backoff,
  backoffDelay,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_BACKOFF_MIN_MS,
  nextWakeup,
  renewalTime,
  shouldRenew,
} from '../lib/agent/schedule.js';

/** xorshift32: a small deterministic generator of numbers in (0, 1); any non-zero seed. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x / 2 ** 32;
  };
}

const fixed = (r: number) => () => r;
const T0 = new Date('2025-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;

/** Counts values per `width`-wide bucket; returns the largest count. */
function fullestBucket(values: readonly number[], width: number): number {
  const buckets = new Map<number, number>();
  for (const v of values) {
    const b = Math.floor(v / width);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  return Math.max(...buckets.values());
}

describe('agent schedule', () => {
  describe('renewalTime', () => {
    // [lifetime ms, rand, expected ISO time] with the defaults: half-life ±10%.
    const table: Array<[string, number, number, string]> = [
      ['1 h', HOUR, 0, '2025-01-01T00:27:00.000Z'],
      ['1 h', HOUR, 0.5, '2025-01-01T00:30:00.000Z'],
      ['1 h', HOUR, 0.999, '2025-01-01T00:32:59.640Z'],
      ['2 min', 2 * MIN, 0, '2025-01-01T00:00:54.000Z'],
      ['2 min', 2 * MIN, 0.5, '2025-01-01T00:01:00.000Z'],
      ['2 min', 2 * MIN, 0.999, '2025-01-01T00:01:05.988Z'],
      ['10 s', 10 * SEC, 0, '2025-01-01T00:00:04.500Z'],
      ['10 s', 10 * SEC, 0.5, '2025-01-01T00:00:05.000Z'],
      ['10 s', 10 * SEC, 0.999, '2025-01-01T00:00:05.499Z'],
      ['0', 0, 0, '2025-01-01T00:00:00.000Z'],
      ['0', 0, 0.5, '2025-01-01T00:00:00.000Z'],
      ['0', 0, 0.999, '2025-01-01T00:00:00.000Z'],
      ['-1 h', -HOUR, 0.5, '2025-01-01T00:00:00.000Z'],
      ['1 ms', 1, 0.999, '2025-01-01T00:00:00.000Z'],
      ['7 ms', 7, 0.5, '2025-01-01T00:00:00.004Z'],
      ['24 h', 24 * HOUR, 0.999, '2025-01-01T13:11:51.360Z'],
    ];
    for (const [name, lifetime, r, expected] of table) {
      it(`lifetime ${name}, rand ${r} -> ${expected}`, () => {
        assert.equal(renewalTime(T0, at(lifetime), fixed(r)).toISOString(), expected);
      });
    }

    // [fraction, jitter, rand, expected] for a 1 h lifetime: the clamps at both ends.
    const clamps: Array<[number, number, number, string]> = [
      [0.9, 0.1, 0, '2025-01-01T00:48:36.000Z'],
      [0.9, 0.1, 0.5, '2025-01-01T00:54:00.000Z'],
      [0.9, 0.1, 0.999, '2025-01-01T00:57:00.000Z'], // 0.989 of the lifetime, clamped to 0.95
      [1, 0, 0.5, '2025-01-01T00:57:00.000Z'],
      [0.5, 1, 0, '2025-01-01T00:00:00.000Z'], // jitter 1 at rand 0: renew at once, never before notBefore
      [2 / 3, 0, 0.5, '2025-01-01T00:40:00.000Z'],
    ];
    for (const [fraction, jitter, r, expected] of clamps) {
      it(`fraction ${fraction.toFixed(3)}, jitter ${jitter}, rand ${r} -> ${expected}`, () => {
        assert.equal(renewalTime(T0, at(HOUR), fixed(r), fraction, jitter).toISOString(), expected);
      });
    }

    it('does not call rand for an empty lifetime', () => {
      assert.equal(
        renewalTime(T0, T0, () => {
          throw new Error('called');
        }).getTime(),
        T0.getTime(),
      );
    });

    it('always lands in [notBefore, notAfter - 5%] and inside the jitter band (10,000 seeded cases)', () => {
      const rand = seeded(7);
      for (let n = 0; n < 10_000; n++) {
        const lifetime = Math.floor(rand() * 10 * 24 * HOUR);
        const fraction = 0.05 + rand() * 0.95;
        const jitter = rand();
        const r = rand();
        const t = renewalTime(T0, at(lifetime), fixed(r), fraction, jitter).getTime() - T0.getTime();
        const context = JSON.stringify({ lifetime, fraction, jitter, r, t });
        assert.ok(t >= 0, context);
        assert.ok(t <= lifetime * 0.95, context);
        assert.ok(Number.isInteger(t), context);
        const nominal = lifetime * fraction * (1 + jitter * (2 * r - 1));
        if (nominal <= lifetime * 0.95 - 1) assert.ok(Math.abs(t - nominal) <= 0.5, context);
        else assert.ok(t >= lifetime * 0.95 - 1.5, context);
      }
    });

    it('spreads 1,000 SVIDs issued at the same moment over the ±10% window', () => {
      const rand = seeded(2025);
      const times = Array.from({ length: 1000 }, () => renewalTime(T0, at(HOUR), rand).getTime() - T0.getTime());
      assert.ok(Math.min(...times) >= 27 * MIN && Math.max(...times) < 33 * MIN);
      // 360 one-second buckets in the window; without jitter all 1,000 would share one of them.
      assert.ok(fullestBucket(times, SEC) <= 20, `fullest 1 s bucket: ${fullestBucket(times, SEC)}`);
      const withoutJitter = Array.from({ length: 1000 }, () => renewalTime(T0, at(HOUR), rand, 0.5, 0).getTime());
      assert.equal(fullestBucket(withoutJitter, SEC), 1000);
    });

    it('refuses arguments that are programming errors', () => {
      assert.throws(() => renewalTime(new Date(Number.NaN), T0, fixed(0)), RangeError);
      assert.throws(() => renewalTime(T0, new Date('nope'), fixed(0)), RangeError);
      assert.throws(() => renewalTime(T0, at(HOUR), fixed(0), 0), RangeError);
      assert.throws(() => renewalTime(T0, at(HOUR), fixed(0), 1.5), RangeError);
      assert.throws(() => renewalTime(T0, at(HOUR), fixed(0), 0.5, -0.1), RangeError);
      assert.throws(() => renewalTime(T0, at(HOUR), fixed(0), 0.5, Number.NaN), RangeError);
      for (const r of [1, -0.1, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(() => renewalTime(T0, at(HOUR), fixed(r)), RangeError, `rand ${r}`);
      }
    });
  });

  describe('shouldRenew and nextWakeup', () => {
    it('shouldRenew is due at and after the renewal time', () => {
      assert.equal(shouldRenew(at(999), at(1000)), false);
      assert.equal(shouldRenew(at(1000), at(1000)), true);
      assert.equal(shouldRenew(at(1001), at(1000)), true);
    });

    const table: Array<[string, number[], number, number]> = [
      ['no times: now + max', [], 60_000, 60_000],
      ['the earliest future time', [5000, 3000, 9000], 60_000, 3000],
      ['past and present times are ignored', [-5000, 0, 4000], 60_000, 4000],
      ['only past times: now + max', [-1, -2], 30_000, 30_000],
      ['capped at now + max', [90_000, 120_000], 60_000, 60_000],
      ['a time exactly at the cap', [60_000], 60_000, 60_000],
      ['max 0 gives now', [5000], 0, 0],
    ];
    for (const [name, offsets, max, expected] of table) {
      it(`nextWakeup: ${name}`, () => {
        assert.equal(nextWakeup(offsets.map(at), T0, max).getTime(), at(expected).getTime());
      });
    }

    it('nextWakeup refuses a negative or infinite cap and invalid dates', () => {
      assert.throws(() => nextWakeup([], T0, -1), RangeError);
      assert.throws(() => nextWakeup([], T0, Number.POSITIVE_INFINITY), RangeError);
      assert.throws(() => nextWakeup([new Date(Number.NaN)], T0, 1000), /times\[0\]/);
    });
  });

  describe('backoffDelay', () => {
    // [attempt, rand, minMs, maxMs, expected ms]
    const table: Array<[number, number, number, number, number]> = [
      [0, 0, 1000, 60_000, 1000],
      [0, 0.5, 1000, 60_000, 1500],
      [0, 0.999, 1000, 60_000, 1999],
      [1, 0, 1000, 60_000, 1000],
      [1, 0.5, 1000, 60_000, 2500],
      [1, 0.999, 1000, 60_000, 3997],
      [4, 0.5, 1000, 60_000, 16_500],
      [5, 0.5, 1000, 60_000, 30_500], // 2^6 s would be 64 s: capped at 60 s
      [5, 0.999, 1000, 60_000, 59_941],
      [30, 0.999, 1000, 60_000, 59_941],
      [31, 0.5, 1000, 60_000, 30_500],
      [1e6, 0.5, 1000, 60_000, 30_500],
      [Number.MAX_SAFE_INTEGER, 0.999, 1000, 60_000, 59_941],
      [3, 0.5, 250, 10_000, 2125],
      [7, 0.999, 100, 100, 100],
      [40, 0.999, 1, Number.MAX_SAFE_INTEGER, 1 + Math.floor(0.999 * (2 ** 41 - 1))],
    ];
    for (const [attempt, r, min, max, expected] of table) {
      it(`attempt ${attempt}, rand ${r}, [${min}, ${max}] -> ${expected} ms`, () => {
        assert.equal(backoffDelay(attempt, fixed(r), min, max), expected);
      });
    }

    it('defaults to 1 s .. 60 s', () => {
      assert.equal(DEFAULT_BACKOFF_MIN_MS, 1000);
      assert.equal(DEFAULT_BACKOFF_MAX_MS, 60_000);
      assert.equal(backoffDelay(0, fixed(0)), 1000);
      assert.equal(backoffDelay(50, fixed(0.999)), 59_941);
    });

    it('stays within [min, min(max, min * 2^(attempt+1))) for 20,000 seeded cases', () => {
      const rand = seeded(99);
      for (let n = 0; n < 20_000; n++) {
        const attempt = Math.floor(rand() * 80);
        const min = 1 + Math.floor(rand() * 5000);
        const max = min + Math.floor(rand() * 600_000);
        const d = backoffDelay(attempt, rand, min, max);
        const ceiling = Math.min(max, min * 2 ** (attempt + 1));
        const context = JSON.stringify({ attempt, min, max, d });
        assert.ok(Number.isInteger(d), context);
        assert.ok(d >= min && d <= max, context);
        assert.ok(d < ceiling || (d === min && ceiling === min), context);
      }
    });

    it('refuses arguments that are programming errors', () => {
      for (const attempt of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(() => backoffDelay(attempt, fixed(0)), RangeError, `attempt ${attempt}`);
      }
      assert.throws(() => backoffDelay(0, fixed(0), 0, 1000), RangeError);
      assert.throws(() => backoffDelay(0, fixed(0), 2000, 1000), RangeError);
      assert.throws(() => backoffDelay(0, fixed(0), 1.5, 1000), RangeError);
      assert.throws(() => backoffDelay(0, fixed(1)), RangeError);
    });
  });

  describe('Backoff', () => {
    it('hands out backoffDelay(0), backoffDelay(1), ... and starts over after reset', () => {
      const b = new Backoff(fixed(0.999));
      assert.equal(b.attempts, 0);
      assert.deepEqual(
        Array.from({ length: 8 }, () => b.next()),
        [1999, 3997, 7993, 15_985, 31_969, 59_941, 59_941, 59_941],
      );
      assert.equal(b.attempts, 8);
      b.reset();
      assert.equal(b.attempts, 0);
      assert.equal(b.next(), 1999);
    });

    it('uses its own bounds', () => {
      const b = new Backoff(fixed(0.5), 200, 1000);
      assert.deepEqual(
        Array.from({ length: 5 }, () => b.next()),
        [300, 500, 600, 600, 600],
      );
    });

    it('works with Math.random by default and stays within the default bounds', () => {
      const b = new Backoff();
      for (let i = 0; i < 100; i++) {
        const d = b.next();
        assert.ok(d >= 1000 && d < 60_000);
      }
    });

    it('refuses bad bounds at construction', () => {
      assert.throws(() => new Backoff(Math.random, 0, 10), RangeError);
      assert.throws(() => new Backoff(Math.random, 10, 5), RangeError);
    });

    it('spreads 1,000 agents that lost the CA at the same moment when it comes back', () => {
      // Every agent fails at t = 0 and retries on its own Backoff until the CA is back after 5 minutes;
      // its first retry from then on is when it reconnects.
      const outageMs = 5 * MIN;
      const reconnects = (rand: () => number) =>
        Array.from({ length: 1000 }, () => {
          const b = new Backoff(rand);
          let t = 0;
          while (t < outageMs) t += b.next();
          return t;
        });
      const jittered = reconnects(seeded(12345));
      const fullest = fullestBucket(jittered, SEC);
      assert.ok(fullest <= 100, `fullest 1 s bucket holds ${fullest} of 1,000 reconnects`);
      // The returns are spread over most of the 60 s cap, not bunched right after the outage.
      assert.ok(Math.max(...jittered) - Math.min(...jittered) > 45 * SEC);
      assert.ok(Math.max(...jittered) < outageMs + 60 * SEC);

      // The same agents without randomness all return in the same second: the herd jitter prevents.
      assert.equal(fullestBucket(reconnects(fixed(0.5)), SEC), 1000);
    });

    it('also spreads the first retries across their [1 s, 2 s) window', () => {
      const rand = seeded(4242);
      const first = Array.from({ length: 1000 }, () => new Backoff(rand).next());
      assert.ok(first.every((d) => d >= 1000 && d < 2000));
      const fullest = fullestBucket(first, 100);
      assert.ok(fullest <= 150, `fullest 100 ms bucket holds ${fullest} of 1,000 first retries`);
    });
  });

  describe('tokenRenewalTime', () => {
    const policy = { rand: () => 0.5, fraction: 0.5, jitter: 0.1, minRetryMs: 1000 };
    const at = (s: number) => new Date(Date.UTC(2026, 5, 1, 12, 0, s));
    const ms = (s: number) => at(s).getTime();

    it('counts the lifetime from receipt, clamped to [iat, exp]', () => {
      // Received at iat: half of 600 s.
      assert.equal(tokenRenewalTime(at(0), at(600), ms(0), policy), ms(300));
      // The issuer's clock is 200 s behind ours: counted from iat the token would be due at once.
      assert.equal(tokenRenewalTime(at(0), at(600), ms(200), policy), ms(400));
      // The issuer's clock is ahead: the lifetime starts at iat, never before.
      assert.equal(tokenRenewalTime(at(100), at(600), ms(0), policy), ms(350));
      // No iat: from receipt.
      assert.equal(tokenRenewalTime(undefined, at(600), ms(0), policy), ms(300));
    });

    it('asks again after one to two minRetryMs for a token already expired by our clock, never at once', () => {
      assert.equal(tokenRenewalTime(at(0), at(600), ms(700), policy), ms(700) + 1500);
      assert.equal(tokenRenewalTime(at(0), at(600), ms(600), { ...policy, rand: () => 0 }), ms(600) + 1000);
    });
  });
});
