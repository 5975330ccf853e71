import { strict as assert } from 'node:assert';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { authorizeId, authorizeMatching, type Authorizer } from '../lib/authorize/index.js';
import { BundleSet, importJwtAuthority, JwtBundle } from '../lib/bundle/index.js';
import { SvidkitError } from '../lib/errors/index.js';
import {
  bearer,
  getJwtSvidOf,
  grpcStatusOf,
  httpStatusOf,
  JwtAuthError,
  jwtHeaderFromSource,
  JwtValidator,
  type JwtValidatorOptions,
  requireJwtSvid,
} from '../lib/jwtauth/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair, type KeyPair } from '../lib/keys/index.js';
import { StaticSource } from '../lib/source/static.js';
import type { JwtSource } from '../lib/source/types.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';

const T0 = new Date('2030-06-01T12:00:00.000Z');
const TD = TrustDomain.parse('example.org');
const CLIENT = SpiffeId.parse('spiffe://example.org/ns/prod/sa/client');
const OTHER = SpiffeId.parse('spiffe://example.org/ns/prod/sa/other');
const AUD = 'spiffe://example.org/ns/prod/sa/server';
const TTL = 300;
const LEEWAY = 30;

let signer: KeyPair;
let stranger: KeyPair;
// Every token minted here, to check that none of them ever shows up in an error or a response.
const minted: string[] = [];

function bundleOf(...keys: [string, KeyPair][]): BundleSet {
  const jwt = new JwtBundle(
    TD,
    keys.map(([kid, k]) => importJwtAuthority(kid, k.publicKey.export({ format: 'jwk' }))),
  );
  return new BundleSet([jwt]);
}

async function mint(
  opts: { id?: SpiffeId; audience?: string | string[]; kid?: string; key?: KeyPair; at?: Date } = {},
): Promise<string> {
  const at = opts.at ?? T0;
  const token = await mintJwtSvid({
    id: opts.id ?? CLIENT,
    audience: opts.audience ?? AUD,
    key: (opts.key ?? signer).privateKey,
    kid: opts.kid ?? 'k1',
    ttlSeconds: TTL,
    clock: () => at,
  });
  minted.push(token);
  return token;
}

/** A mutable clock for the validator. */
function testClock(start = T0): { now: () => Date; set(d: Date): void; advance(seconds: number): void } {
  let t = start;
  return {
    now: () => t,
    set(d) {
      t = d;
    },
    advance(seconds) {
      t = new Date(t.getTime() + seconds * 1000);
    },
  };
}

/** A JwtSource that counts bundle lookups: one per full verification, none on a cache hit. */
function counting(inner: StaticSource, onLookup?: () => void): JwtSource & { lookups: number } {
  const wrapper = {
    lookups: 0,
    getJwtBundleForTrustDomain(td: TrustDomain) {
      wrapper.lookups++;
      onLookup?.();
      return inner.getJwtBundleForTrustDomain(td);
    },
    onUpdate: (listener: () => void) => inner.onUpdate(listener),
  };
  return wrapper;
}

function setup(options: Partial<JwtValidatorOptions> = {}): {
  static: StaticSource;
  source: ReturnType<typeof counting>;
  clock: ReturnType<typeof testClock>;
  validator: JwtValidator;
} {
  const inner = new StaticSource({ bundles: bundleOf(['k1', signer]) });
  const source = counting(inner);
  const clock = testClock();
  const validator = new JwtValidator({ source, audience: AUD, clock: clock.now, ...options });
  return { static: inner, source, clock, validator };
}

/** Every error seen by `rejects`, checked at the end for leaked tokens. */
const errorsSeen: unknown[] = [];

async function rejects(
  p: Promise<unknown>,
  code: 'ERR_JWTAUTH_UNAUTHENTICATED' | 'ERR_JWTAUTH_FORBIDDEN',
  reason?: string,
): Promise<JwtAuthError> {
  try {
    await p;
  } catch (err) {
    errorsSeen.push(err);
    assert.ok(err instanceof JwtAuthError, `expected a JwtAuthError, got ${inspect(err)}`);
    assert.ok(err instanceof SvidkitError);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, code === 'ERR_JWTAUTH_UNAUTHENTICATED' ? 401 : 403);
    if (reason !== undefined) assert.equal(err.reason, reason, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

function assertNoToken(text: string): void {
  for (const t of minted) {
    assert.ok(!text.includes(t), 'a token leaked');
    // The signature part alone is the secret-most piece; the header part is shared by many tokens.
    assert.ok(!text.includes(t.split('.')[2]!), 'a token signature leaked');
  }
}

describe('jwtauth', () => {
  before(() => {
    signer = generateKeyPair('ec-p256');
    stranger = generateKeyPair('ec-p256');
  });

  after(() => {
    assert.ok(errorsSeen.length > 10);
    for (const err of errorsSeen) {
      assertNoToken(String((err as Error).message));
      assertNoToken(inspect(err, { depth: 10 }));
    }
  });

  describe('JwtValidator options', () => {
    it('requires a non-empty audience', () => {
      const source = new StaticSource();
      assert.throws(() => new JwtValidator({ source } as unknown as JwtValidatorOptions), TypeError);
      assert.throws(() => new JwtValidator({ source, audience: '' }), TypeError);
      assert.throws(() => new JwtValidator({ source, audience: 42 as unknown as string }), TypeError);
    });

    it('refuses a source without onUpdate, a bad cache bound, clock or leeway', () => {
      const source = new StaticSource();
      const bundlesOnly = { getJwtBundleForTrustDomain: () => undefined } as unknown as JwtSource;
      assert.throws(() => new JwtValidator({ source: bundlesOnly, audience: AUD }), TypeError);
      assert.throws(() => new JwtValidator({ source, audience: AUD, cache: { maxEntries: -1 } }), RangeError);
      assert.throws(() => new JwtValidator({ source, audience: AUD, cache: { maxEntries: 1.5 } }), RangeError);
      assert.throws(() => new JwtValidator({ source, audience: AUD, clock: 'now' as never }), TypeError);
      assert.throws(() => new JwtValidator({ source, audience: AUD, leewaySeconds: 301 }), RangeError);
      assert.throws(() => new JwtValidator({ source, audience: AUD, leewaySeconds: NaN }), TypeError);
      assert.throws(() => new JwtValidator({ source, audience: AUD, authorizer: 'x' as never }), TypeError);
    });
  });

  describe('validate: 401 and 403 matrix', () => {
    it('accepts a valid token, as a Bearer header (any case of the scheme) or bare', async () => {
      const { validator } = setup();
      const token = await mint();
      for (const input of [`Bearer ${token}`, `bearer ${token}`, `BEARER ${token}`, token]) {
        const { id, svid } = await validator.validate(input);
        assert.ok(id.equals(CLIENT));
        assert.ok(svid.id.equals(CLIENT));
        assert.deepEqual(svid.audience, [AUD]);
      }
    });

    it('401 for a missing or empty header', async () => {
      const { validator } = setup();
      await rejects(validator.validate(undefined), 'ERR_JWTAUTH_UNAUTHENTICATED');
      await rejects(validator.validate(''), 'ERR_JWTAUTH_UNAUTHENTICATED');
    });

    it('401 for another scheme, "Bearer" alone, or not exactly one space', async () => {
      const { validator } = setup();
      const token = await mint();
      for (const input of [
        'Basic x',
        `Basic ${token}`,
        `Token ${token}`,
        'Bearer',
        'bearer',
        'Bearer ',
        `Bearer  ${token}`,
        `Bearer\t${token}`,
        ` Bearer ${token}`,
        `Bearer ${token} `,
        `Bearer ${token} extra`,
      ]) {
        await rejects(validator.validate(input), 'ERR_JWTAUTH_UNAUTHENTICATED');
      }
    });

    it('401 for a malformed token', async () => {
      const { validator } = setup();
      const token = await mint();
      const [h, p] = token.split('.') as [string, string, string];
      for (const input of [
        'Bearer abc',
        'Bearer a.b.c',
        `Bearer ${h}.${p}`,
        `Bearer ${h}.${p}.!!`,
        'x'.repeat(20000),
      ]) {
        await rejects(validator.validate(input), 'ERR_JWTAUTH_UNAUTHENTICATED');
      }
    });

    it('401 for an expired token, honouring the leeway', async () => {
      const { validator, clock } = setup({ cache: { maxEntries: 0 } });
      const token = await mint();
      clock.advance(TTL + LEEWAY);
      await validator.validate(bearer(token));
      clock.advance(1);
      await rejects(validator.validate(bearer(token)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_EXPIRED');
    });

    it('401 for a wrong audience', async () => {
      const { validator } = setup();
      const token = await mint({ audience: 'spiffe://example.org/ns/prod/sa/elsewhere' });
      await rejects(validator.validate(bearer(token)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_AUDIENCE');
      // Several audiences are fine as long as ours is among them.
      const multi = await mint({ audience: ['spiffe://example.org/x', AUD] });
      await validator.validate(bearer(multi));
    });

    it('401 for an unknown kid, a forged signature, or an untrusted trust domain', async () => {
      const { validator } = setup();
      const unknownKid = await mint({ kid: 'k2' });
      await rejects(validator.validate(bearer(unknownKid)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_UNKNOWN_KID');
      const forged = await mint({ key: stranger });
      await rejects(validator.validate(bearer(forged)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_SIGNATURE');
      const foreign = await mint({ id: SpiffeId.parse('spiffe://other.org/workload') });
      await rejects(validator.validate(bearer(foreign)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_NO_BUNDLE');
    });

    it('403 when the authorizer refuses the subject, including an async authorizer', async () => {
      const token = await mint();
      const refused = setup({ authorizer: authorizeId(OTHER) }).validator;
      const err = await rejects(refused.validate(bearer(token)), 'ERR_JWTAUTH_FORBIDDEN', 'ERR_AUTHZ_DENIED');
      assert.ok(err.message.includes(CLIENT.toString()));

      const allowed = setup({ authorizer: authorizeId(CLIENT) }).validator;
      assert.ok((await allowed.validate(bearer(token))).id.equals(CLIENT));

      // An async function is assignable to Authorizer; its rejection must not be ignored.
      const asyncRefusal = (async () => {
        throw new Error('nope');
      }) as unknown as Authorizer;
      const asyncRefused = setup({ authorizer: asyncRefusal }).validator;
      await rejects(asyncRefused.validate(bearer(token)), 'ERR_JWTAUTH_FORBIDDEN');
    });

    it('401 wins over 403: an invalid token never reaches the authorizer', async () => {
      let calls = 0;
      const { validator } = setup({
        authorizer: () => {
          calls++;
          throw new Error('refused');
        },
      });
      await rejects(validator.validate(bearer(await mint({ kid: 'k9' }))), 'ERR_JWTAUTH_UNAUTHENTICATED');
      assert.equal(calls, 0);
    });

    it('requireSubjectEquals: 403 when sub is not the peer ID or no peer ID is given, OK when equal', async () => {
      const { validator } = setup({ requireSubjectEquals: true });
      assert.equal(validator.requiresPeerId, true);
      const token = await mint();
      await rejects(validator.validate(bearer(token), OTHER), 'ERR_JWTAUTH_FORBIDDEN', 'ERR_SPIFFEID_MISMATCH');
      await rejects(validator.validate(bearer(token)), 'ERR_JWTAUTH_FORBIDDEN', 'ERR_SPIFFEID_MISMATCH');
      const ok = await validator.validate(bearer(token), SpiffeId.parse(CLIENT.toString()));
      assert.ok(ok.id.equals(CLIENT));
      await assert.rejects(validator.validate(bearer(token), CLIENT.toString() as never), TypeError);
    });

    it('without requireSubjectEquals the peer ID is not compared', async () => {
      const { validator } = setup();
      assert.ok((await validator.validate(bearer(await mint()), OTHER)).id.equals(CLIENT));
    });

    it('source and clock failures pass through and map to 500 / INTERNAL', async () => {
      const broken: JwtSource = {
        getJwtBundleForTrustDomain: () => {
          throw new Error('bundle store down');
        },
        onUpdate: () => () => {},
      };
      const v = new JwtValidator({ source: broken, audience: AUD, clock: () => T0 });
      const err = await v.validate(bearer(await mint())).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Error && err.message === 'bundle store down');
      assert.equal(httpStatusOf(err), 500);
      assert.equal(grpcStatusOf(err), 13);

      // A clock that stops returning Dates is a server fault too, on a cache hit as on a miss.
      let good = true;
      const clocked = setup({ clock: () => (good ? T0 : new Date(NaN)) }).validator;
      const token = await mint();
      await clocked.validate(bearer(token));
      good = false;
      await assert.rejects(clocked.validate(bearer(token)), TypeError);
      await assert.rejects(clocked.validate(bearer(await mint())), TypeError);
    });
  });

  describe('status mapping', () => {
    it('httpStatusOf and grpcStatusOf', () => {
      const unauth = new JwtAuthError(401, 'x');
      const forbidden = new JwtAuthError(403, 'x');
      assert.equal(unauth.code, 'ERR_JWTAUTH_UNAUTHENTICATED');
      assert.equal(forbidden.code, 'ERR_JWTAUTH_FORBIDDEN');
      assert.equal(httpStatusOf(unauth), 401);
      assert.equal(httpStatusOf(forbidden), 403);
      assert.equal(grpcStatusOf(unauth), 16);
      assert.equal(grpcStatusOf(forbidden), 7);
      // Plain SvidkitErrors with these codes map the same way.
      assert.equal(httpStatusOf(new SvidkitError('ERR_JWTAUTH_FORBIDDEN', 'x')), 403);
      assert.equal(httpStatusOf(new Error('x')), 500);
      assert.equal(httpStatusOf(undefined), 500);
      assert.equal(grpcStatusOf(new SvidkitError('ERR_JWTSVID_EXPIRED', 'x')), 13);
    });
  });

  describe('cache', () => {
    it('a second validation of the same token skips signature verification', async () => {
      const { validator, source } = setup();
      const token = await mint();
      await validator.validate(bearer(token));
      assert.equal(source.lookups, 1);
      const second = await validator.validate(bearer(token));
      assert.equal(source.lookups, 1);
      assert.ok(second.id.equals(CLIENT));
      // The bare token and the header are the same token: same entry.
      await validator.validate(token);
      assert.equal(source.lookups, 1);
      assert.deepEqual(validator.cacheStats(), { entries: 1, maxEntries: 10_000, hits: 2, misses: 1 });
    });

    it('a cache hit still fails once the clock passes exp (plus leeway), and drops the entry', async () => {
      const { validator, source, clock } = setup();
      const token = await mint();
      await validator.validate(bearer(token));
      clock.advance(TTL + LEEWAY);
      await validator.validate(bearer(token));
      assert.equal(source.lookups, 1);
      clock.advance(1);
      await rejects(validator.validate(bearer(token)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_EXPIRED');
      assert.equal(validator.cacheStats().entries, 0);
      // Without the entry it is verified again, and still refused.
      await rejects(validator.validate(bearer(token)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_EXPIRED');
      assert.equal(source.lookups, 2);
    });

    it('a cache hit still runs the authorizer and the peer check', async () => {
      let allow = true;
      const { validator, source } = setup({
        requireSubjectEquals: true,
        authorizer: authorizeMatching(() => allow, 'allowed by the test'),
      });
      const token = await mint();
      await validator.validate(bearer(token), CLIENT);
      await rejects(validator.validate(bearer(token), OTHER), 'ERR_JWTAUTH_FORBIDDEN', 'ERR_SPIFFEID_MISMATCH');
      allow = false;
      await rejects(validator.validate(bearer(token), CLIENT), 'ERR_JWTAUTH_FORBIDDEN', 'ERR_AUTHZ_DENIED');
      allow = true;
      await validator.validate(bearer(token), CLIENT);
      assert.equal(source.lookups, 1);
    });

    it('is cleared when the source reports an update: the next validation verifies again', async () => {
      const { validator, source, static: inner } = setup();
      const token = await mint();
      await validator.validate(bearer(token));
      await validator.validate(bearer(token));
      assert.equal(source.lookups, 1);
      inner.set({ bundles: bundleOf(['k1', signer]) });
      assert.equal(validator.cacheStats().entries, 0);
      await validator.validate(bearer(token));
      assert.equal(source.lookups, 2);
      // A bundle update that drops the key revokes tokens that were cached before it.
      inner.set({ bundles: bundleOf(['k2', stranger]) });
      await rejects(validator.validate(bearer(token)), 'ERR_JWTAUTH_UNAUTHENTICATED', 'ERR_JWTSVID_UNKNOWN_KID');
    });

    it('does not cache a verification that overlapped a source update', async () => {
      const inner = new StaticSource({ bundles: bundleOf(['k1', signer]) });
      let updateDuringLookup = true;
      const source = counting(inner, () => {
        if (updateDuringLookup) {
          updateDuringLookup = false;
          inner.set({ bundles: bundleOf(['k1', signer]) });
        }
      });
      const validator = new JwtValidator({ source, audience: AUD, clock: () => T0 });
      const token = await mint();
      await validator.validate(bearer(token));
      assert.equal(validator.cacheStats().entries, 0);
      await validator.validate(bearer(token));
      await validator.validate(bearer(token));
      assert.equal(source.lookups, 2);
    });

    it('never grows past maxEntries and evicts the least recently used token', async () => {
      const { validator, source } = setup({ cache: { maxEntries: 3 } });
      const tokens: string[] = [];
      for (let i = 0; i < 8; i++) tokens.push(await mint());
      for (const t of tokens) {
        await validator.validate(bearer(t));
        assert.ok(validator.cacheStats().entries <= 3);
      }
      assert.equal(validator.cacheStats().entries, 3);
      assert.equal(source.lookups, 8);
      // The last three are cached; touching tokens[5] makes tokens[6] the oldest.
      await validator.validate(bearer(tokens[5]!));
      assert.equal(source.lookups, 8);
      await validator.validate(bearer(tokens[0]!)); // miss, evicts tokens[6]
      assert.equal(source.lookups, 9);
      await validator.validate(bearer(tokens[5]!));
      await validator.validate(bearer(tokens[7]!));
      assert.equal(source.lookups, 9);
      await validator.validate(bearer(tokens[6]!));
      assert.equal(source.lookups, 10);
      assert.equal(validator.cacheStats().entries, 3);
    });

    it('maxEntries 0 disables the cache; close() stops listening and empties it', async () => {
      const off = setup({ cache: { maxEntries: 0 } });
      const token = await mint();
      await off.validator.validate(bearer(token));
      await off.validator.validate(bearer(token));
      assert.equal(off.source.lookups, 2);
      assert.equal(off.validator.cacheStats().entries, 0);

      const on = setup();
      await on.validator.validate(bearer(token));
      on.validator.close();
      assert.equal(on.validator.cacheStats().entries, 0);
      await on.validator.validate(bearer(token));
      await on.validator.validate(bearer(token));
      assert.equal(on.source.lookups, 3);
    });

    it('inspecting the validator or its stats shows no token', async () => {
      const { validator } = setup();
      const token = await mint();
      await validator.validate(bearer(token));
      assertNoToken(inspect(validator, { depth: 10, showHidden: true }));
      assertNoToken(JSON.stringify(validator.cacheStats()));
    });
  });

  describe('helpers', () => {
    it('bearer() and jwtHeaderFromSource() reading the current token on each call', async () => {
      const t1 = await mint();
      const t2 = await mint({ at: new Date(T0.getTime() + 60_000) });
      assert.equal(bearer(t1), `Bearer ${t1}`);
      assert.throws(() => bearer(''), TypeError);
      const source = new StaticSource({ jwtSvids: new Map([[AUD, t1]]) });
      assert.equal(jwtHeaderFromSource(source, AUD), `Bearer ${t1}`);
      source.set({ jwtSvids: new Map([[AUD, t2]]) });
      assert.equal(jwtHeaderFromSource(source, AUD), `Bearer ${t2}`);
      assert.throws(() => jwtHeaderFromSource(source, ''), TypeError);
      assert.throws(
        () => jwtHeaderFromSource(source, 'spiffe://example.org/unknown'),
        (e: unknown) => e instanceof SvidkitError && e.code === 'ERR_SOURCE_NO_SVID',
      );
    });
  });

  describe('requireJwtSvid over HTTP', () => {
    let server: Server;
    let base: string;
    const failures: unknown[] = [];
    const PEER_HEADER = 'x-test-peer-id';

    before(async () => {
      const inner = new StaticSource({ bundles: bundleOf(['k1', signer]) });
      const validator = new JwtValidator({
        source: inner,
        audience: AUD,
        clock: () => T0,
        requireSubjectEquals: true,
        authorizer: authorizeMatching((id) => !id.path.endsWith('/denied'), 'not denied'),
      });
      const middleware = requireJwtSvid(validator, {
        onError: (err) => failures.push(err),
        // Stands in for the TLS peer certificate's ID; a real server reads req.socket's certificate.
        peerIdOf: (req) => {
          const h = req.headers[PEER_HEADER];
          if (h === 'throw') throw new Error('peer lookup failed');
          return typeof h === 'string' ? SpiffeId.parse(h) : undefined;
        },
      });
      server = createServer((req: IncomingMessage, res: ServerResponse) => {
        void middleware(req, res, () => {
          const result = getJwtSvidOf(req);
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ id: result?.id.toString(), svid: result?.svid }));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });

    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const err of failures) assertNoToken(inspect(err, { depth: 10 }));
    });

    async function call(
      headers: Record<string, string>,
    ): Promise<{ status: number; body: string; wwwAuthenticate: string | null }> {
      const res = await fetch(base, { headers });
      const body = await res.text();
      assertNoToken(body);
      for (const [, v] of res.headers) assertNoToken(v);
      return { status: res.status, body, wwwAuthenticate: res.headers.get('www-authenticate') };
    }

    it('401 with WWW-Authenticate: Bearer without a header or with another scheme', async () => {
      const cases: Record<string, string>[] = [{}, { authorization: 'Basic x' }];
      for (const headers of cases) {
        const r = await call(headers);
        assert.equal(r.status, 401);
        assert.equal(r.wwwAuthenticate, 'Bearer');
        assert.equal(r.body, 'unauthorized\n');
      }
    });

    it('401 with error="invalid_token" for a bad or expired token', async () => {
      const expired = await mint({ at: new Date(T0.getTime() - 3600_000) });
      const wrongAudience = await mint({ audience: 'spiffe://example.org/elsewhere' });
      for (const token of ['not.a.token', expired, wrongAudience]) {
        const r = await call({ authorization: bearer(token), [PEER_HEADER]: CLIENT.toString() });
        assert.equal(r.status, 401);
        assert.equal(r.wwwAuthenticate, 'Bearer error="invalid_token"');
      }
    });

    it('403 when the subject is refused or is not the peer', async () => {
      const denied = SpiffeId.parse('spiffe://example.org/ns/prod/sa/denied');
      const deniedToken = await mint({ id: denied });
      let r = await call({ authorization: bearer(deniedToken), [PEER_HEADER]: denied.toString() });
      assert.equal(r.status, 403);
      assert.equal(r.body, 'forbidden\n');
      assert.equal(r.wwwAuthenticate, null);
      const token = await mint();
      r = await call({ authorization: bearer(token), [PEER_HEADER]: OTHER.toString() });
      assert.equal(r.status, 403);
      r = await call({ authorization: bearer(token) });
      assert.equal(r.status, 403);
    });

    it('200 with the result stored on the request', async () => {
      const token = await mint();
      for (let i = 0; i < 2; i++) {
        const r = await call({ authorization: bearer(token), [PEER_HEADER]: CLIENT.toString() });
        assert.equal(r.status, 200);
        const body = JSON.parse(r.body) as { id: string; svid: { id: string; audience: string[] } };
        assert.equal(body.id, CLIENT.toString());
        assert.deepEqual(body.svid.audience, [AUD]);
      }
    });

    it('500 with a fixed body when the server side fails, and onError saw every failure', async () => {
      const before = failures.length;
      const r = await call({ authorization: bearer(await mint()), [PEER_HEADER]: 'throw' });
      assert.equal(r.status, 500);
      assert.equal(r.body, 'internal error\n');
      assert.equal(failures.length, before + 1);
      assert.ok(failures.length >= 8);
    });

    it('refuses a validator that needs peer IDs when peerIdOf is missing', () => {
      const v = new JwtValidator({ source: new StaticSource(), audience: AUD, requireSubjectEquals: true });
      assert.throws(() => requireJwtSvid(v), TypeError);
      v.close();
    });

    it('onError may answer itself', async () => {
      const v = new JwtValidator({ source: new StaticSource(), audience: AUD, clock: () => T0 });
      const mw = requireJwtSvid(v, {
        onError: (err, _req, res) => {
          res.statusCode = httpStatusOf(err) === 401 ? 418 : 500;
          res.end('custom\n');
        },
      });
      const custom = createServer((req, res) => void mw(req, res, () => res.end('ok')));
      await new Promise<void>((resolve) => custom.listen(0, '127.0.0.1', resolve));
      try {
        const res = await fetch(`http://127.0.0.1:${(custom.address() as AddressInfo).port}/`);
        assert.equal(res.status, 418);
        assert.equal(await res.text(), 'custom\n');
      } finally {
        custom.closeAllConnections();
        await new Promise<void>((resolve) => custom.close(() => resolve()));
      }
    });
  });
});
