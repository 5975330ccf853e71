/**
 * JwtValidator throughput against bare jose jwtVerify on the same tokens, measured in the same run:
 * first-seen tokens (every validation is a cache miss, so the cost is the full check plus hashing and
 * cache upkeep) and a repeated token (a cache hit). Rounds alternate and the median of each is kept,
 * as in bench/run.ts.
 *
 * The first-seen row uses the default cache size with more tokens than it holds, cycled in order: a
 * least-recently-used cache then never holds the next token, so every validation misses while the
 * cache stays full and evicts on every insert, as a busy service's would.
 */
import { jwtVerify } from 'jose';
import { BundleSet, importJwtAuthority, JwtBundle } from '../lib/bundle/index.js';
import { bearer, DEFAULT_MAX_CACHE_ENTRIES, JwtValidator } from '../lib/jwtauth/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/static.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { type BenchResult, compare } from './support.js';

const TOKENS = Number(process.env.BENCH_JWTAUTH_TOKENS ?? DEFAULT_MAX_CACHE_ENTRIES + 2000);
const T0 = new Date('2030-06-01T12:00:00Z');

/** Two rows: first-seen tokens and a repeated token, each against jose jwtVerify. */
export async function jwtAuthBench(): Promise<BenchResult[]> {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const id = SpiffeId.parse('spiffe://example.org/bench/client');
  const audience = 'spiffe://example.org/bench/server';
  const clock = (): Date => T0;
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i++) {
    tokens.push(await mintJwtSvid({ id, audience, key: privateKey, kid: 'k1', clock }));
  }
  const headers = tokens.map(bearer);
  const jwt = new JwtBundle(id.trustDomain, [importJwtAuthority('k1', publicKey.export({ format: 'jwk' }))]);
  const source = new StaticSource({ bundles: new BundleSet([jwt]) });
  const joseOptions = { audience, algorithms: ['ES256'], currentDate: T0 };

  if (TOKENS <= DEFAULT_MAX_CACHE_ENTRIES) throw new Error('bench: need more tokens than the cache holds');
  const missing = new JwtValidator({ source, audience, clock });
  let i = 0;
  let j = 0;
  const firstSeen = await compare(
    'jwtauth JwtValidator.validate, first-seen tokens (ES256, full cache)',
    'tokens/s',
    () => missing.validate(headers[i++ % TOKENS]!),
    'jose jwtVerify (same tokens, audience check)',
    () => jwtVerify(tokens[j++ % TOKENS]!, publicKey, joseOptions),
  );
  if (missing.cacheStats().hits !== 0) throw new Error('bench: a first-seen validation hit the cache');
  missing.close();

  const repeated = new JwtValidator({ source, audience, clock });
  const header = headers[0]!;
  const token = tokens[0]!;
  const hit = await compare(
    'jwtauth JwtValidator.validate, repeated token (cache hit)',
    'tokens/s',
    () => repeated.validate(header),
    'jose jwtVerify (same token, audience check)',
    () => jwtVerify(token, publicKey, joseOptions),
  );
  if (repeated.cacheStats().misses !== 1) throw new Error('bench: the repeated token missed the cache');
  repeated.close();

  return [firstSeen, hit];
}
