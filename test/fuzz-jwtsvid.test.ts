/**
 * Fuzzing JWT-SVID validation: lib/jwtsvid parseAndValidate and parseInsecure, and lib/jwtauth
 * JwtValidator.validate. Tokens are random, text-mutated, or rebuilt from mutated headers, payloads
 * and signatures (alg, kid, typ, crit, exp/nbf/iat/aud/sub of every type, base64 instead of base64url,
 * padding, oversized tokens), some of them properly re-signed so that they reach the later checks.
 * parseAndValidate always settles, never rejects with anything but a SvidkitError and never lets an
 * unhandled rejection out; JwtValidator answers a value or a JwtAuthError with status 401 or 403.
 */
import { strict as assert } from 'node:assert';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { BundleSet, importJwtAuthority, JwtBundle } from '../lib/bundle/index.js';
import { JwtAuthError, JwtValidator } from '../lib/jwtauth/index.js';
import {
  ALLOWED_ALGORITHMS,
  type JwtAlgorithm,
  MAX_TOKEN_BYTES,
  mintJwtSvid,
  parseAndValidate,
  parseInsecure,
} from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/static.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { T0 } from './helpers/ca.js';
import { anyText, FuzzStats, mutatedText, RejectionWatch, typed, typedAsync } from './helpers/fuzz.js';
import { bundleSource, rawSign } from './helpers/jwt.js';

const TD = TrustDomain.parse('example.org');
const AUD = 'spiffe://example.org/service';
const NOW_S = Math.floor(T0.getTime() / 1000);
const clock = () => T0;

interface Signer {
  kid: string;
  alg: JwtAlgorithm;
  key: KeyObject;
}
const ec256 = generateKeyPair('ec-p256');
const ec384 = generateKeyPair('ec-p384');
const p521 = generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
const rsa = generateKeyPair('rsa-2048');
const SIGNERS: Signer[] = [
  { kid: 'es256', alg: 'ES256', key: ec256.privateKey },
  { kid: 'es384', alg: 'ES384', key: ec384.privateKey },
  { kid: 'es512', alg: 'ES512', key: p521.privateKey },
  { kid: 'rs256', alg: 'RS256', key: rsa.privateKey },
  { kid: 'ps384', alg: 'PS384', key: rsa.privateKey },
];
const JWT_BUNDLE = new JwtBundle(TD, [
  importJwtAuthority('es256', ec256.publicKey.export({ format: 'jwk' })),
  importJwtAuthority('es384', ec384.publicKey.export({ format: 'jwk' })),
  importJwtAuthority('es512', p521.publicKey.export({ format: 'jwk' })),
  importJwtAuthority('rs256', rsa.publicKey.export({ format: 'jwk' })),
  importJwtAuthority('ps384', rsa.publicKey.export({ format: 'jwk' })),
]);
const BUNDLES = bundleSource(JWT_BUNDLE);

/** Well-formed tokens minted by the library itself, one per signer and a few shapes of claims. */
const MINTED: string[] = [];
for (const s of SIGNERS) {
  for (const [path, audience] of [
    ['/ns/prod/sa/web', AUD],
    ['/a', [AUD, 'other']],
    ['/deny/me', AUD],
  ] as const) {
    MINTED.push(
      await mintJwtSvid({
        id: SpiffeId.parse(`spiffe://example.org${path}`),
        audience: typeof audience === 'string' ? audience : [...audience],
        key: s.key,
        kid: s.kid,
        alg: s.alg,
        ttlSeconds: 600,
        clock,
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Token generators

/** Signs with the header's alg when it is one of ours (whatever the key), else with the signer's own. */
function resignWith(signer: Signer, alg: unknown, input: string): Buffer {
  const wanted = typeof alg === 'string' && (ALLOWED_ALGORITHMS as readonly string[]).includes(alg) ? alg : signer.alg;
  try {
    return rawSign(wanted, input, signer.key);
  } catch {
    return rawSign(signer.alg, input, signer.key);
  }
}

type Obj = Record<string, unknown>;
const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function decodeParts(token: string): { header: Obj; payload: Obj; signature: string } {
  const [h, p, sig] = token.split('.') as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Obj,
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()) as Obj,
    signature: sig,
  };
}

const oddClaimValue = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    null,
    true,
    0,
    -1,
    1.5,
    -0,
    1e20,
    -1e20,
    8.64e12,
    8.64e12 + 1,
    2 ** 53,
    Number.MAX_VALUE,
    '',
    '1',
    String(NOW_S + 600),
    [],
    [AUD],
    [AUD, 7],
    {},
    { exp: NOW_S },
    'x'.repeat(3000),
    AUD,
    'spiffe://example.org',
    'spiffe://example.org/a/../b',
    'spiffe://EXAMPLE.org/a',
    'spiffe://other.org/a',
    'spiffe://example.org/%61',
  ),
  fc.integer({ min: NOW_S - 3600, max: NOW_S + 3600 }),
  fc.jsonValue({ maxDepth: 2 }),
);
const headerValue = fc.oneof(
  fc.constantFrom<unknown>(
    undefined,
    'none',
    'None',
    'HS256',
    'ES256K',
    'EdDSA',
    'es256',
    'RS1',
    '',
    null,
    42,
    ['ES256'],
    'JWT',
    'JOSE',
    'jwt',
    'application/jwt',
    'k'.repeat(300),
    'unknown',
    '\u0000',
    ...ALLOWED_ALGORITHMS,
    ...SIGNERS.map((s) => s.kid),
  ),
  fc.jsonValue({ maxDepth: 2 }),
);
const CLAIMS = ['sub', 'aud', 'exp', 'nbf', 'iat', 'iss', 'jti'];
const HEADERS = ['alg', 'kid', 'typ', 'crit', 'jku', 'x5c', 'cty'];

/** Edits of a decoded token, then how to put it back together. */
const rebuilt = fc
  .record({
    base: fc.constantFrom(...MINTED),
    headerEdits: fc.array(fc.tuple(fc.constantFrom(...HEADERS), headerValue), { maxLength: 3 }),
    claimEdits: fc.array(fc.tuple(fc.constantFrom(...CLAIMS), oddClaimValue), { maxLength: 3 }),
    resign: fc.oneof(
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 3, arbitrary: fc.constantFrom(...SIGNERS) },
    ),
    encoding: fc.constantFrom('base64url', 'base64url', 'base64url', 'base64', 'padded'),
    signatureEdit: fc.constantFrom(
      'keep',
      'keep',
      'keep',
      'keep',
      'keep',
      'empty',
      'truncate',
      'extend',
      'flip',
      'der',
    ),
  })
  .map(({ base, headerEdits, claimEdits, resign, encoding, signatureEdit }) => {
    const { header, payload, signature } = decodeParts(base);
    for (const [k, v] of headerEdits) header[k] = v;
    for (const [k, v] of claimEdits) payload[k] = v;
    const enc = (v: unknown) => {
      const bytes = Buffer.from(JSON.stringify(v) ?? 'null');
      if (encoding === 'base64') return bytes.toString('base64').replace(/=+$/, '');
      const u = bytes.toString('base64url');
      return encoding === 'padded' ? u + '='.repeat((4 - (u.length % 4)) % 4 || 1) : u;
    };
    const input = `${enc(header)}.${enc(payload)}`;
    let sig = resign ? resignWith(resign, header['alg'], input) : Buffer.from(signature, 'base64url');
    if (signatureEdit === 'empty') sig = Buffer.alloc(0);
    else if (signatureEdit === 'truncate') sig = sig.subarray(0, sig.length >> 1);
    else if (signatureEdit === 'extend') sig = Buffer.concat([sig, Buffer.from([0])]);
    else if (signatureEdit === 'flip' && sig.length > 0) {
      sig = Buffer.from(sig);
      sig[sig.length >> 1] = sig[sig.length >> 1]! ^ 0x01;
    } else if (signatureEdit === 'der') sig = Buffer.concat([Buffer.from([0x30, sig.length]), sig]);
    return `${input}.${sig.toString('base64url')}`;
  });

/** Properly signed tokens whose time and audience claims vary around the validation instant. */
const timeClaim = fc.oneof(
  fc.integer({ min: NOW_S - 700, max: NOW_S + 700 }),
  fc.double({ min: NOW_S - 700, max: NOW_S + 700, noNaN: true }),
  fc.constantFrom<unknown>(undefined, null, '1', -1, 0, 8.64e12, 8.64e12 + 1, 1e300),
);
const resigned = fc
  .record({
    base: fc.constantFrom(...MINTED),
    signer: fc.constantFrom(...SIGNERS),
    exp: timeClaim,
    nbf: timeClaim,
    iat: timeClaim,
    aud: fc.constantFrom<unknown>(AUD, [AUD], ['x', AUD], ['x'], [], 'x', undefined, [AUD, null]),
  })
  .map(({ base, signer, exp, nbf, iat, aud }) => {
    const { payload } = decodeParts(base);
    Object.assign(payload, { exp, nbf, iat, aud });
    const input = `${b64url({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })}.${b64url(payload)}`;
    return `${input}.${rawSign(signer.alg, input, signer.key).toString('base64url')}`;
  });

/** Tokens past the 16 KiB bound: by characters, or by UTF-8 bytes with fewer characters. */
const oversized = fc.oneof(
  fc.integer({ min: MAX_TOKEN_BYTES - 64, max: MAX_TOKEN_BYTES + 64 }).map((n) => {
    const t = MINTED[0]!;
    return t + 'A'.repeat(Math.max(0, n - t.length));
  }),
  fc.integer({ min: 5462, max: 6000 }).map((n) => MINTED[0]!.replace('.', '.' + '€'.repeat(n))),
  fc.integer({ min: 1, max: 1024 }).map((n) => {
    const { header, payload } = decodeParts(MINTED[0]!);
    payload['pad'] = 'p'.repeat(MAX_TOKEN_BYTES + n);
    return `${b64url(header)}.${b64url(payload)}.`;
  }),
);

const tokenText = fc.oneof(
  { weight: 5, arbitrary: rebuilt },
  { weight: 2, arbitrary: resigned },
  { weight: 3, arbitrary: mutatedText(fc.constantFrom(...MINTED)) },
  { weight: 1, arbitrary: fc.constantFrom(...MINTED) },
  { weight: 1, arbitrary: oversized },
  { weight: 1, arbitrary: anyText },
  { weight: 1, arbitrary: fc.array(anyText, { minLength: 1, maxLength: 5 }).map((ps) => ps.join('.')) },
);

// ---------------------------------------------------------------------------------------------

describe('fuzz: JWT-SVID validation', function () {
  this.timeout(120_000);
  const stats = new FuzzStats('jwtsvid');
  const watch = new RejectionWatch();
  before(() => watch.start());
  after(() => {
    watch.stop();
    stats.report();
    watch.assertNone();
  });

  it('parseAndValidate: typed rejections only; what validates is one of our tokens, for us, not expired', async () => {
    await fc.assert(
      fc.asyncProperty(tokenText, fc.integer({ min: -900, max: 900 }), async (token, skew) => {
        stats.count('parseAndValidate');
        const at = new Date(T0.getTime() + skew * 1000);
        const r = await typedAsync('parseAndValidate', Buffer.byteLength(token), () =>
          parseAndValidate(token, BUNDLES, AUD, { clock: () => at }),
        );
        const insecure = typed('parseInsecure', Buffer.byteLength(token), () => parseInsecure(token));
        stats.outcome(r.ok ? 'valid' : r.error.code);
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_JWTSVID_/);
          return;
        }
        const svid = r.value;
        assert.ok(insecure.ok, 'parseInsecure refuses a token that validates');
        assert.equal(svid.marshal(), token);
        assert.ok(Buffer.byteLength(token) <= MAX_TOKEN_BYTES);
        assert.ok(svid.audience.includes(AUD));
        assert.ok(svid.expiry.getTime() + 30_000 >= at.getTime());
        assert.ok(ALLOWED_ALGORITHMS.includes(svid.alg as JwtAlgorithm));
        assert.equal(svid.id.toString(), svid.claims['sub']);
        assert.ok(svid.id.memberOf(TD) && !svid.id.isTrustDomainId());
        JSON.stringify(svid);
        String(svid);
      }),
      stats.asyncParams(2),
    );
  });

  it('parseAndValidate: oversized tokens are ERR_JWTSVID_TOO_LARGE', async () => {
    await fc.assert(
      fc.asyncProperty(oversized, async (token) => {
        stats.count('parseAndValidate');
        const r = await typedAsync('parseAndValidate', Buffer.byteLength(token), () =>
          parseAndValidate(token, BUNDLES, AUD, { clock }),
        );
        if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) assert.ok(!r.ok && r.error.code === 'ERR_JWTSVID_TOO_LARGE');
      }),
      stats.asyncParams(0.25),
    );
  });

  it('minted tokens validate (round trip)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...SIGNERS),
        fc.array(segmentText(), { minLength: 1, maxLength: 4 }),
        fc.array(fc.string({ minLength: 1, maxLength: 40 }), { maxLength: 3 }),
        fc.integer({ min: 1, max: 86_400 }),
        async (s, segs, extraAud, ttl) => {
          stats.count('mint round trip');
          const id = SpiffeId.fromSegments(TD, ...segs);
          const token = await mintJwtSvid({
            id,
            audience: [AUD, ...extraAud],
            key: s.key,
            kid: s.kid,
            alg: s.alg,
            ttlSeconds: ttl,
            clock,
          });
          const svid = await parseAndValidate(token, BUNDLES, AUD, { clock });
          assert.ok(svid.id.equals(id));
          assert.equal(svid.kid, s.kid);
          assert.deepEqual([...svid.audience], [AUD, ...extraAud]);
          assert.equal(parseInsecure(token).id.toString(), id.toString());
        },
      ),
      stats.asyncParams(0.25),
    );
  });

  it('JwtValidator.validate: 401 or 403 JwtAuthErrors only, the same answer twice', async () => {
    const source = new StaticSource({ bundles: new BundleSet([JWT_BUNDLE]) });
    const validators = [
      new JwtValidator({ source, audience: AUD, clock }),
      new JwtValidator({
        source,
        audience: AUD,
        clock,
        authorizer: (id) => {
          if (id.path.startsWith('/deny')) throw new Error('denied');
        },
      }),
      new JwtValidator({ source, audience: AUD, clock, requireSubjectEquals: true }),
      new JwtValidator({
        source,
        audience: AUD,
        clock,
        cache: { maxEntries: 0 },
        authorizer: async (id) => {
          await Promise.resolve();
          if (id.path === '/a') throw new Error('denied');
        },
      }),
    ];
    const header = fc.oneof(
      tokenText.map((t) => `Bearer ${t}`),
      tokenText,
      fc
        .tuple(
          fc.constantFrom('bearer ', 'BEARER ', 'Bearer  ', 'Bearer\t', 'Basic ', 'Bearer', '', ' Bearer ', 'Bearer:'),
          tokenText,
        )
        .map(([p, t]) => p + t),
      fc.constantFrom(undefined, '', 'Bearer', 'Bearer ', 'bearer'),
    );
    const peer = fc.option(fc.constantFrom(...MINTED.map((t) => parseInsecure(t).id)), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...validators.keys()), header, peer, async (vi, value, peerId) => {
        stats.count('JwtValidator.validate');
        const v = validators[vi]!;
        const answers: string[] = [];
        for (let i = 0; i < 2; i++) {
          const r = await typedAsync('JwtValidator.validate', Buffer.byteLength(value ?? ''), () =>
            v.validate(value, peerId),
          );
          if (r.ok) {
            assert.ok(r.value.id.equals(r.value.svid.id));
            answers.push('ok');
          } else {
            assert.ok(r.error instanceof JwtAuthError, `not a JwtAuthError: ${r.error.code}`);
            assert.ok(r.error.status === 401 || r.error.status === 403);
            assert.equal(
              r.error.code,
              r.error.status === 401 ? 'ERR_JWTAUTH_UNAUTHENTICATED' : 'ERR_JWTAUTH_FORBIDDEN',
            );
            if (value && value.length > 20)
              assert.ok(!r.error.message.includes(value.slice(-20)), 'the token is quoted');
            answers.push(String(r.error.status));
          }
        }
        assert.equal(answers[0], answers[1], 'a cached answer differs from the first');
      }),
      stats.asyncParams(1),
    );
    for (const v of validators) v.close();
  });
});

/** A SPIFFE ID path segment. */
function segmentText(): fc.Arbitrary<string> {
  return fc
    .string({ unit: fc.constantFrom(...'abcXYZ019.-_'), minLength: 1, maxLength: 12 })
    .filter((s) => s !== '.' && s !== '..');
}
