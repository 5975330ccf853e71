import { strict as assert } from 'node:assert';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { inspect } from 'node:util';
import { compactVerify } from 'jose';
import { importJwtAuthority, JwtBundle, MAX_KID_LENGTH } from '../lib/bundle/jwt.js';
import type { JwtBundleSource } from '../lib/bundle/source.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import {
  ALLOWED_ALGORITHMS,
  DEFAULT_LEEWAY_SECONDS,
  type JwtAlgorithm,
  JwtSvid,
  MAX_TOKEN_BYTES,
  type MintParams,
  mintJwtSvid,
  parseAndValidate,
  parseInsecure,
  type ValidateOptions,
} from '../lib/jwtsvid/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { b64, bundleSource, craft, edit, prng, rawSign } from './helpers/jwt.js';
import { checkError } from './helpers/assert.js';

const NOW = new Date('2030-06-01T12:00:00.000Z');
const NOW_S = NOW.getTime() / 1000;
const clock = (): Date => NOW;
const TD = TrustDomain.parse('example.org');
const OTHER_TD = TrustDomain.parse('other.org');
const ID = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
const OTHER_ID = SpiffeId.parse('spiffe://other.org/batch');
const AUD = 'spiffe://example.org/backend';

interface Pair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

// Filled in by before(): keys are generated at test time, never checked in.
const K = {} as {
  ec256: Pair;
  ec384: Pair;
  ec521: Pair;
  rsa: Pair;
  rogue: Pair;
  other: Pair;
  ed: Pair;
  rsa1024: Pair;
};
let source: JwtBundleSource;

function authority(kid: string, pair: Pair) {
  return importJwtAuthority(kid, pair.publicKey.export({ format: 'jwk' }));
}

const KEY_FOR_ALG: Record<JwtAlgorithm, () => [Pair, string]> = {
  ES256: () => [K.ec256, 'k256'],
  ES384: () => [K.ec384, 'k384'],
  ES512: () => [K.ec521, 'k521'],
  RS256: () => [K.rsa, 'krsa'],
  RS384: () => [K.rsa, 'krsa'],
  RS512: () => [K.rsa, 'krsa'],
  PS256: () => [K.rsa, 'krsa'],
  PS384: () => [K.rsa, 'krsa'],
  PS512: () => [K.rsa, 'krsa'],
};

/** The default header, with changes (undefined removes). */
const H = (changes: Record<string, unknown> = {}) => edit({ alg: 'ES256', kid: 'k256', typ: 'JWT' }, changes);
/** The default claims, with changes (undefined removes). */
const C = (changes: Record<string, unknown> = {}) =>
  edit({ sub: ID.toString(), aud: [AUD], exp: NOW_S + 300, iat: NOW_S }, changes);
/** A token signed with the P-256 key registered as k256, independently of jose. */
const es256 = (h: Record<string, unknown> = {}, c: Record<string, unknown> = {}) =>
  craft(H(h), C(c), K.ec256.privateKey, 'ES256');

function mint(changes: Partial<MintParams> = {}): Promise<string> {
  return mintJwtSvid({ id: ID, audience: AUD, key: K.ec256.privateKey, kid: 'k256', clock, ...changes });
}

function decodePart(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8'));
}

interface ValidateCase {
  name: string;
  token: () => string | Promise<string>;
  /** Expected error code; a passing case when absent. */
  code?: ErrorCode;
  audience?: string;
  options?: ValidateOptions;
  check?: (svid: JwtSvid, token: string) => void;
}

/** Finds header/claim padding that makes an ES256 token exactly `size` bytes long. */
function tokenOfSize(size: number): string {
  const build = (h: number, n: number) => es256({ 'x-pad': 'h'.repeat(h) }, { pad: 'p'.repeat(n) });
  for (let h = 0; h < 4; h++) {
    // Length grows monotonically with n: binary-search the smallest n that reaches `size`.
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (build(h, mid).length < size) lo = mid + 1;
      else hi = mid;
    }
    const t = build(h, lo);
    if (t.length === size) return t;
  }
  throw new Error(`no token of size ${size}`);
}

const validateCases: ValidateCase[] = [
  // --- round trips: every allowed algorithm, minted by us and signed by jose ---
  ...ALLOWED_ALGORITHMS.map((alg): ValidateCase => ({
    name: `${alg} minted token round-trips`,
    token: () => {
      const [pair, kid] = KEY_FOR_ALG[alg]();
      return mint({ alg, key: pair.privateKey, kid });
    },
    check: (svid, token) => {
      assert.equal(svid.alg, alg);
      assert.ok(svid.id.equals(ID));
      assert.deepEqual(svid.audience, [AUD]);
      assert.equal(svid.expiry.getTime(), NOW.getTime() + 300_000);
      assert.equal(svid.issuedAt?.getTime(), NOW.getTime());
      assert.equal(svid.marshal(), token);
    },
  })),
  // --- interop: tokens signed by node:crypto directly, not by jose ---
  ...(['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'PS512'] as const).map((alg): ValidateCase => ({
    name: `${alg} token signed outside jose validates`,
    token: () => {
      const [pair, kid] = KEY_FOR_ALG[alg]();
      return craft(H({ alg, kid }), C(), pair.privateKey);
    },
    check: (svid) => assert.equal(svid.alg, alg),
  })),

  // --- size (before any parsing) ---
  { name: 'token of exactly MAX_TOKEN_BYTES passes', token: () => tokenOfSize(MAX_TOKEN_BYTES) },
  {
    name: 'signed token one byte over the limit',
    token: () => tokenOfSize(MAX_TOKEN_BYTES + 1),
    code: 'ERR_JWTSVID_TOO_LARGE',
  },
  {
    name: 'garbage over the limit',
    token: () => 'a'.repeat(MAX_TOKEN_BYTES + 1),
    code: 'ERR_JWTSVID_TOO_LARGE',
  },
  {
    name: 'multi-byte string under the limit in characters but over it in bytes',
    token: () => 'é'.repeat(MAX_TOKEN_BYTES / 2 + 1),
    code: 'ERR_JWTSVID_TOO_LARGE',
  },
  {
    name: 'oversized token with every other fault still reports size',
    token: () => `${'.'.repeat(MAX_TOKEN_BYTES)}x`,
    code: 'ERR_JWTSVID_TOO_LARGE',
  },

  // --- structure ---
  { name: 'empty string', token: () => '', code: 'ERR_JWTSVID_MALFORMED' },
  { name: 'random word', token: () => 'garbage', code: 'ERR_JWTSVID_MALFORMED' },
  { name: 'two parts', token: () => es256().split('.').slice(0, 2).join('.'), code: 'ERR_JWTSVID_MALFORMED' },
  { name: 'four parts', token: () => `${es256()}.AAAA`, code: 'ERR_JWTSVID_MALFORMED' },
  {
    name: 'five-part JWE',
    token: () =>
      `${b64({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'k256' })}.AAAA.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA`,
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'JWS JSON serialization (flattened)',
    token: () => {
      const [p, q, s] = es256().split('.');
      return JSON.stringify({ protected: p, payload: q, signature: s });
    },
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'JWS JSON serialization (general)',
    token: () => {
      const [p, q, s] = es256().split('.');
      return JSON.stringify({ payload: q, signatures: [{ protected: p, signature: s }] });
    },
    code: 'ERR_JWTSVID_MALFORMED',
  },
  { name: 'only dots', token: () => '..', code: 'ERR_JWTSVID_MALFORMED' },
  {
    name: 'Authorization header value, not the token',
    token: () => `Bearer ${es256()}`,
    code: 'ERR_JWTSVID_MALFORMED',
  },
  { name: 'surrounding whitespace', token: () => ` ${es256()}\n`, code: 'ERR_JWTSVID_MALFORMED' },
  { name: 'standard base64 characters', token: () => `${es256()}+/`, code: 'ERR_JWTSVID_MALFORMED' },
  {
    name: 'padded base64url header',
    token: () => {
      const [, q, s] = es256().split('.');
      return `${Buffer.from(JSON.stringify(H())).toString('base64')}==.${q}.${s}`;
    },
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'non-canonical base64url (stray trailing bits)',
    token: () => {
      // 'e30' is '{}'; 'e31' decodes to the same bytes with non-zero padding bits.
      const [, q, s] = es256().split('.');
      return `e31.${q}.${s}`;
    },
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'base64url of impossible length',
    token: () => {
      const [, q, s] = es256().split('.');
      return `e30AA.${q}.${s}`;
    },
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'header is not JSON',
    token: () => `${b64(Buffer.from('hello'))}.${b64(C())}.`,
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'header is a JSON array',
    token: () => `${b64(['ES256'])}.${b64(C())}.`,
    code: 'ERR_JWTSVID_MALFORMED',
  },
  { name: 'header is JSON null', token: () => `${b64(null)}.${b64(C())}.`, code: 'ERR_JWTSVID_MALFORMED' },
  {
    name: 'payload is a JSON string',
    token: () => `${b64(H())}.${b64('claims')}.`,
    code: 'ERR_JWTSVID_MALFORMED',
  },
  {
    name: 'payload is not UTF-8',
    token: () => `${b64(H())}.${b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))}.`,
    code: 'ERR_JWTSVID_MALFORMED',
  },
  { name: 'empty header part', token: () => `.${b64(C())}.AAAA`, code: 'ERR_JWTSVID_MALFORMED' },
  { name: 'empty payload part', token: () => `${b64(H())}..AAAA`, code: 'ERR_JWTSVID_MALFORMED' },
  { name: 'crit header', token: () => es256({ crit: ['exp'], exp: 1 }), code: 'ERR_JWTSVID_MALFORMED' },
  {
    name: 'crit b64=false header',
    token: () => es256({ crit: ['b64'], b64: false }),
    code: 'ERR_JWTSVID_MALFORMED',
  },

  // --- algorithm ---
  { name: 'alg none (unsigned)', token: () => craft(H({ alg: 'none' }), C()), code: 'ERR_JWTSVID_ALGORITHM' },
  { name: 'alg None (unsigned)', token: () => craft(H({ alg: 'None' }), C()), code: 'ERR_JWTSVID_ALGORITHM' },
  { name: 'alg missing', token: () => es256({ alg: undefined }), code: 'ERR_JWTSVID_ALGORITHM' },
  { name: 'alg not a string', token: () => es256({ alg: 256 }), code: 'ERR_JWTSVID_ALGORITHM' },
  { name: 'alg in lower case', token: () => es256({ alg: 'es256' }), code: 'ERR_JWTSVID_ALGORITHM' },
  {
    name: 'HS256 keyed with the public key PEM (alg confusion)',
    token: () => craft(H({ alg: 'HS256' }), C(), K.ec256.publicKey.export({ type: 'spki', format: 'pem' })),
    code: 'ERR_JWTSVID_ALGORITHM',
  },
  {
    name: 'HS256 keyed with the public JWK JSON (alg confusion)',
    token: () => craft(H({ alg: 'HS256' }), C(), JSON.stringify(K.ec256.publicKey.export({ format: 'jwk' }))),
    code: 'ERR_JWTSVID_ALGORITHM',
  },
  {
    name: 'HS384 keyed with the RSA public key PEM',
    token: () => craft(H({ alg: 'HS384', kid: 'krsa' }), C(), K.rsa.publicKey.export({ type: 'spki', format: 'pem' })),
    code: 'ERR_JWTSVID_ALGORITHM',
  },
  {
    name: 'HS512 keyed with the RSA public key DER',
    token: () => craft(H({ alg: 'HS512', kid: 'krsa' }), C(), K.rsa.publicKey.export({ type: 'spki', format: 'der' })),
    code: 'ERR_JWTSVID_ALGORITHM',
  },
  {
    name: 'EdDSA',
    token: () => craft(H({ alg: 'EdDSA' }), C(), K.ed.privateKey),
    code: 'ERR_JWTSVID_ALGORITHM',
  },
  {
    name: 'Ed25519 (fully specified name)',
    token: () => craft(H({ alg: 'Ed25519' }), C(), K.ed.privateKey, 'EdDSA'),
    code: 'ERR_JWTSVID_ALGORITHM',
  },
  {
    name: 'alg none also missing kid and typ: algorithm is reported first',
    token: () => craft({ alg: 'none', typ: 'at+jwt' }, C()),
    code: 'ERR_JWTSVID_ALGORITHM',
  },

  // --- typ ---
  { name: 'typ JWT', token: () => es256({ typ: 'JWT' }) },
  { name: 'typ JOSE', token: () => es256({ typ: 'JOSE' }) },
  { name: 'typ absent', token: () => es256({ typ: undefined }) },
  { name: 'typ at+jwt', token: () => es256({ typ: 'at+jwt' }), code: 'ERR_JWTSVID_TYP' },
  { name: 'typ jwt (exact match required)', token: () => es256({ typ: 'jwt' }), code: 'ERR_JWTSVID_TYP' },
  { name: 'typ empty string', token: () => es256({ typ: '' }), code: 'ERR_JWTSVID_TYP' },
  { name: 'typ null', token: () => es256({ typ: null }), code: 'ERR_JWTSVID_TYP' },
  {
    name: 'bad typ and missing kid: typ first',
    token: () => es256({ typ: 'x', kid: undefined }),
    code: 'ERR_JWTSVID_TYP',
  },

  // --- kid ---
  { name: 'kid missing', token: () => es256({ kid: undefined }), code: 'ERR_JWTSVID_MISSING_KID' },
  { name: 'kid empty', token: () => es256({ kid: '' }), code: 'ERR_JWTSVID_MISSING_KID' },
  { name: 'kid not a string', token: () => es256({ kid: 7 }), code: 'ERR_JWTSVID_MISSING_KID' },
  {
    name: 'missing kid and bad subject: kid first',
    token: () => es256({ kid: undefined }, { sub: 'nope' }),
    code: 'ERR_JWTSVID_MISSING_KID',
  },

  // --- subject ---
  { name: 'sub missing', token: () => es256({}, { sub: undefined }), code: 'ERR_JWTSVID_SUBJECT' },
  { name: 'sub not a SPIFFE ID', token: () => es256({}, { sub: 'web' }), code: 'ERR_JWTSVID_SUBJECT' },
  {
    name: 'sub https URL',
    token: () => es256({}, { sub: 'https://example.org/web' }),
    code: 'ERR_JWTSVID_SUBJECT',
  },
  {
    name: 'sub is a trust domain ID (no path)',
    token: () => es256({}, { sub: TD.idString() }),
    code: 'ERR_JWTSVID_SUBJECT',
  },
  {
    name: 'sub with trailing slash',
    token: () => es256({}, { sub: 'spiffe://example.org/' }),
    code: 'ERR_JWTSVID_SUBJECT',
  },
  {
    name: 'sub with upper-case trust domain',
    token: () => es256({}, { sub: 'spiffe://Example.org/web' }),
    code: 'ERR_JWTSVID_SUBJECT',
  },
  { name: 'sub not a string', token: () => es256({}, { sub: 42 }), code: 'ERR_JWTSVID_SUBJECT' },
  {
    name: 'bad subject and expired: subject first',
    token: () => es256({}, { sub: 'x', exp: NOW_S - 3600 }),
    code: 'ERR_JWTSVID_SUBJECT',
  },

  // --- bundle and key lookup ---
  {
    name: 'no bundle for the subject trust domain',
    token: () => es256({}, { sub: 'spiffe://unknown.org/web' }),
    code: 'ERR_JWTSVID_NO_BUNDLE',
  },
  { name: 'kid unknown everywhere', token: () => es256({ kid: 'nope' }), code: 'ERR_JWTSVID_UNKNOWN_KID' },
  {
    name: "kid known only in another trust domain's bundle",
    token: () => craft(H({ kid: 'kother' }), C(), K.other.privateKey),
    code: 'ERR_JWTSVID_UNKNOWN_KID',
  },
  {
    name: 'the same kid validates for its own trust domain',
    token: () => craft(H({ kid: 'kother' }), C({ sub: OTHER_ID.toString() }), K.other.privateKey),
    check: (svid) => assert.ok(svid.id.equals(OTHER_ID)),
  },
  {
    name: 'unknown kid and expired: kid first',
    token: () => es256({ kid: 'nope' }, { exp: NOW_S - 3600 }),
    code: 'ERR_JWTSVID_UNKNOWN_KID',
  },

  // --- signature ---
  {
    name: 'wrong key under the right kid',
    token: () => craft(H(), C(), K.rogue.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'tampered payload',
    token: async () => {
      const [p, , s] = (await mint()).split('.');
      return `${p}.${b64(C({ aud: [AUD, 'spiffe://example.org/admin'] }))}.${s}`;
    },
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'tampered header (kid swapped to another key of the bundle)',
    token: async () => {
      const [, q, s] = (await mint()).split('.');
      return `${b64(H({ alg: 'ES384', kid: 'k384' }))}.${q}.${s}`;
    },
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'tampered signature',
    token: async () => {
      const [p, q, s = ''] = (await mint()).split('.');
      const bytes = Buffer.from(s, 'base64url');
      bytes[10] = (bytes[10] ?? 0) ^ 0x01;
      return `${p}.${q}.${bytes.toString('base64url')}`;
    },
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  { name: 'empty signature', token: () => craft(H(), C()), code: 'ERR_JWTSVID_SIGNATURE' },
  {
    name: 'ECDSA signature in DER instead of raw r||s',
    token: () => {
      const input = `${b64(H())}.${b64(C())}`;
      return `${input}.${sign('sha256', Buffer.from(input), K.ec256.privateKey).toString('base64url')}`;
    },
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'ES256 token naming an RSA key',
    token: () => craft(H({ kid: 'krsa' }), C(), K.ec256.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'ES384 token naming a P-256 key',
    token: () => craft(H({ alg: 'ES384' }), C(), K.ec384.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'RS256 token naming an EC key',
    token: () => craft(H({ alg: 'RS256' }), C(), K.rsa.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'PS256 signature presented as RS256',
    token: () => craft(H({ alg: 'RS256', kid: 'krsa' }), C(), K.rsa.privateKey, 'PS256'),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'RSA key under 2048 bits in the bundle',
    token: () => craft(H({ alg: 'RS256', kid: 'kweak' }), C(), K.rsa1024.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
  {
    name: 'bad signature on an expired token: signature first (no expiry oracle)',
    token: () => craft(H(), C({ exp: NOW_S - 3600 }), K.rogue.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },

  // --- exp ---
  { name: 'exp missing', token: () => es256({}, { exp: undefined }), code: 'ERR_JWTSVID_MISSING_EXP' },
  {
    name: 'exp a string',
    token: () => es256({}, { exp: String(NOW_S + 300) }),
    code: 'ERR_JWTSVID_MISSING_EXP',
  },
  { name: 'exp null', token: () => es256({}, { exp: null }), code: 'ERR_JWTSVID_MISSING_EXP' },
  { name: 'exp beyond Date range', token: () => es256({}, { exp: 1e300 }), code: 'ERR_JWTSVID_MISSING_EXP' },
  { name: 'expired beyond leeway', token: () => es256({}, { exp: NOW_S - 31 }), code: 'ERR_JWTSVID_EXPIRED' },
  { name: 'expired exactly at the leeway edge passes', token: () => es256({}, { exp: NOW_S - 30 }) },
  { name: 'expired within leeway passes', token: () => es256({}, { exp: NOW_S - 10 }) },
  {
    name: 'leeway 0: one second past exp fails',
    token: () => es256({}, { exp: NOW_S - 1 }),
    options: { leewaySeconds: 0 },
    code: 'ERR_JWTSVID_EXPIRED',
  },
  {
    name: 'leeway 0: exp equal to now passes',
    token: () => es256({}, { exp: NOW_S }),
    options: { leewaySeconds: 0 },
  },
  {
    name: 'leeway 300: 299 s past exp passes',
    token: () => es256({}, { exp: NOW_S - 299 }),
    options: { leewaySeconds: 300 },
  },
  {
    name: 'minted token validated after its ttl',
    token: () => mint({ ttlSeconds: 60 }),
    options: { clock: () => new Date(NOW.getTime() + 91_000) },
    code: 'ERR_JWTSVID_EXPIRED',
  },
  {
    name: 'expired and wrong audience: expiry first',
    token: () => es256({}, { exp: NOW_S - 3600, aud: 'x' }),
    code: 'ERR_JWTSVID_EXPIRED',
  },

  // --- nbf and iat ---
  {
    name: 'nbf in the future beyond leeway',
    token: () => es256({}, { nbf: NOW_S + 31 }),
    code: 'ERR_JWTSVID_NOT_YET_VALID',
  },
  { name: 'nbf in the future within leeway passes', token: () => es256({}, { nbf: NOW_S + 30 }) },
  { name: 'nbf in the past passes', token: () => es256({}, { nbf: NOW_S - 100 }) },
  { name: 'nbf not a number', token: () => es256({}, { nbf: 'soon' }), code: 'ERR_JWTSVID_MALFORMED' },
  {
    name: 'nbf in the future and wrong audience: nbf first',
    token: () => es256({}, { nbf: NOW_S + 3600, aud: 'x' }),
    code: 'ERR_JWTSVID_NOT_YET_VALID',
  },
  {
    name: 'iat in the future is tolerated',
    token: () => es256({}, { iat: NOW_S + 3600 }),
    check: (svid) => assert.equal(svid.issuedAt?.getTime(), (NOW_S + 3600) * 1000),
  },
  {
    name: 'iat absent passes',
    token: () => es256({}, { iat: undefined }),
    check: (svid) => assert.equal(svid.issuedAt, undefined),
  },
  { name: 'iat not a number', token: () => es256({}, { iat: 'yesterday' }), code: 'ERR_JWTSVID_MALFORMED' },

  // --- audience ---
  { name: 'aud missing', token: () => es256({}, { aud: undefined }), code: 'ERR_JWTSVID_AUDIENCE' },
  {
    name: 'aud another audience',
    token: () => es256({}, { aud: 'spiffe://example.org/other' }),
    code: 'ERR_JWTSVID_AUDIENCE',
  },
  {
    name: 'aud array without ours',
    token: () => es256({}, { aud: ['a', 'b'] }),
    code: 'ERR_JWTSVID_AUDIENCE',
  },
  { name: 'aud empty array', token: () => es256({}, { aud: [] }), code: 'ERR_JWTSVID_AUDIENCE' },
  {
    name: 'aud differs in case',
    token: () => es256({}, { aud: AUD.toUpperCase() }),
    code: 'ERR_JWTSVID_AUDIENCE',
  },
  {
    name: 'aud array with a non-string',
    token: () => es256({}, { aud: [1, AUD] }),
    code: 'ERR_JWTSVID_AUDIENCE',
  },
  { name: 'aud an object', token: () => es256({}, { aud: { AUD } }), code: 'ERR_JWTSVID_AUDIENCE' },
  {
    name: 'aud as a single string',
    token: () => es256({}, { aud: AUD }),
    check: (svid) => assert.deepEqual(svid.audience, [AUD]),
  },
  {
    name: 'audience among several in an array',
    token: () => es256({}, { aud: ['spiffe://example.org/a', AUD, 'b'] }),
    check: (svid) => assert.deepEqual(svid.audience, ['spiffe://example.org/a', AUD, 'b']),
  },
  {
    name: 'validator expects another audience',
    token: () => es256(),
    audience: 'spiffe://example.org/elsewhere',
    code: 'ERR_JWTSVID_AUDIENCE',
  },

  // --- extra claims and headers ---
  {
    name: 'extra claims are kept and frozen',
    token: () => es256({}, { jti: 'abc', nested: { deep: [1, { x: true }] } }),
    check: (svid) => {
      assert.equal(svid.claims['jti'], 'abc');
      assert.ok(Object.isFrozen(svid.claims));
      const nested = svid.claims['nested'] as { deep: [number, { x: boolean }] };
      assert.ok(Object.isFrozen(nested) && Object.isFrozen(nested.deep) && Object.isFrozen(nested.deep[1]));
    },
  },
  {
    name: 'deeply nested claims do not overflow the stack',
    token: () => {
      // Built as text: JSON.stringify itself would overflow on this nesting.
      const claims = JSON.stringify(C()).replace(/}$/, `,"deep":${'['.repeat(5000)}${']'.repeat(5000)}}`);
      const input = `${b64(H())}.${b64(Buffer.from(claims))}`;
      return `${input}.${rawSign('ES256', input, K.ec256.privateKey).toString('base64url')}`;
    },
    check: (svid) => assert.ok(Object.isFrozen(svid.claims['deep'])),
  },
  {
    name: 'jwk header pointing at an attacker key is ignored, not trusted',
    token: () => craft(H({ jwk: K.rogue.publicKey.export({ format: 'jwk' }) }), C(), K.rogue.privateKey),
    code: 'ERR_JWTSVID_SIGNATURE',
  },
];

describe('jwtsvid', () => {
  before(() => {
    K.ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    K.ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    K.ec521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    K.rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    K.rogue = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    K.other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    K.ed = generateKeyPairSync('ed25519');
    K.rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
    source = bundleSource(
      new JwtBundle(TD, [
        authority('k256', K.ec256),
        authority('k384', K.ec384),
        authority('k521', K.ec521),
        authority('krsa', K.rsa),
        authority('kweak', K.rsa1024),
      ]),
      new JwtBundle(OTHER_TD, [authority('kother', K.other)]),
    );
  });

  it('exports the documented constants', () => {
    assert.deepEqual(
      [...ALLOWED_ALGORITHMS],
      ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'],
    );
    assert.ok(Object.isFrozen(ALLOWED_ALGORITHMS));
    assert.equal(MAX_TOKEN_BYTES, 16384);
    assert.equal(DEFAULT_LEEWAY_SECONDS, 30);
  });

  describe('parseAndValidate', () => {
    for (const c of validateCases) {
      it(`${c.code === undefined ? 'accepts' : `rejects (${c.code})`}: ${c.name}`, async () => {
        const token = await c.token();
        const result = parseAndValidate(token, source, c.audience ?? AUD, { clock, ...c.options });
        if (c.code === undefined) {
          const svid = await result;
          assert.ok(svid instanceof JwtSvid);
          assert.equal(svid.marshal(), token);
          c.check?.(svid, token);
        } else {
          await assert.rejects(
            result,
            (err) => !!checkError(err, c.code as ErrorCode, { prefix: 'jwtsvid: ', secret: token }),
          );
        }
      });
    }

    it('refuses a signature by another key, as jose does', async () => {
      const token = craft(H(), C(), K.rogue.privateKey);
      await assert.rejects(
        parseAndValidate(token, source, AUD, { clock }),
        (err) => !!checkError(err, 'ERR_JWTSVID_SIGNATURE', { prefix: 'jwtsvid: ', secret: token }),
      );
      await assert.rejects(compactVerify(token, K.ec256.publicKey, { algorithms: ['ES256'] }), {
        code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      });
    });

    it('refuses an ES256 signature in DER form (only the fixed-size r||s form is JWS)', async () => {
      const input = `${b64(H())}.${b64(C())}`;
      const der = sign('sha256', Buffer.from(input), { key: K.ec256.privateKey, dsaEncoding: 'der' });
      const token = `${input}.${der.toString('base64url')}`;
      await assert.rejects(
        parseAndValidate(token, source, AUD, { clock }),
        (err) => !!checkError(err, 'ERR_JWTSVID_SIGNATURE', { prefix: 'jwtsvid: ', secret: token }),
      );
    });

    it('refuses a token whose payload was changed after signing, and one with a truncated signature', async () => {
      const good = es256();
      const [h, , sig] = good.split('.') as [string, string, string];
      const swapped = `${h}.${b64(C({ sub: 'spiffe://example.org/ns/prod/sa/admin' }))}.${sig}`;
      await assert.rejects(
        parseAndValidate(swapped, source, AUD, { clock }),
        (err) => !!checkError(err, 'ERR_JWTSVID_SIGNATURE', { prefix: 'jwtsvid: ', secret: swapped }),
      );
      const short = `${good.slice(0, good.lastIndexOf('.'))}.${Buffer.from(sig, 'base64url').subarray(0, 63).toString('base64url')}`;
      await assert.rejects(
        parseAndValidate(short, source, AUD, { clock }),
        (err) => !!checkError(err, 'ERR_JWTSVID_SIGNATURE', { prefix: 'jwtsvid: ', secret: short }),
      );
    });

    it('treats a bundle with no authorities as knowing no kid', async () => {
      const empty = bundleSource(new JwtBundle(TD));
      await assert.rejects(
        parseAndValidate(es256(), empty, AUD, { clock }),
        (err) => !!checkError(err, 'ERR_JWTSVID_UNKNOWN_KID', { prefix: 'jwtsvid: ' }),
      );
    });

    it('asks the bundle source only for the subject trust domain', async () => {
      const asked: string[] = [];
      const spy: JwtBundleSource = {
        getJwtBundleForTrustDomain: (td) => {
          asked.push(td.name);
          return source.getJwtBundleForTrustDomain(td);
        },
      };
      await parseAndValidate(
        craft(H({ kid: 'kother' }), C({ sub: OTHER_ID.toString() }), K.other.privateKey),
        spy,
        AUD,
        {
          clock,
        },
      );
      assert.deepEqual(asked, ['other.org']);
    });

    it('uses the injected clock, not the wall clock', async () => {
      // Valid in 2030 by the injected clock; jose would call it not yet valid by the real clock.
      const token = es256({}, { nbf: NOW_S - 60 });
      await parseAndValidate(token, source, AUD, { clock });
      const past = () => new Date('2020-01-01T00:00:00Z');
      await assert.rejects(
        parseAndValidate(token, source, AUD, { clock: past }),
        (err) => !!checkError(err, 'ERR_JWTSVID_NOT_YET_VALID', { prefix: 'jwtsvid: ' }),
      );
    });

    it('refuses caller mistakes with TypeError or RangeError', async () => {
      const token = es256();
      await assert.rejects(parseAndValidate(token, source, ''), TypeError);
      await assert.rejects(parseAndValidate(token, source, undefined as unknown as string), TypeError);
      await assert.rejects(parseAndValidate(42 as unknown as string, source, AUD), TypeError);
      await assert.rejects(parseAndValidate(token, null as unknown as JwtBundleSource, AUD), TypeError);
      await assert.rejects(parseAndValidate(token, source, AUD, { leewaySeconds: 301 }), RangeError);
      await assert.rejects(parseAndValidate(token, source, AUD, { leewaySeconds: -1 }), RangeError);
      await assert.rejects(parseAndValidate(token, source, AUD, { leewaySeconds: Number.NaN }), TypeError);
      await assert.rejects(parseAndValidate(token, source, AUD, { clock: () => new Date(Number.NaN) }), TypeError);
    });

    it('rejects random strings with a jwtsvid SvidkitError only', async () => {
      const rand = prng(0x5eed);
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ {}"\u00e9\u0000';
      for (let i = 0; i < 400; i++) {
        let s = '';
        const len = Math.floor(rand() * 120);
        for (let j = 0; j < len; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
        await assert.rejects(parseAndValidate(s, source, AUD, { clock }), (err) => {
          assert.ok(err instanceof SvidkitError && err.code.startsWith('ERR_JWTSVID_'), `input #${i}: ${String(err)}`);
          assert.ok(err.message.startsWith('jwtsvid: '));
          return true;
        });
      }
    });

    it('rejects every single-character mutation of a valid token', async () => {
      const token = await mint();
      const rand = prng(42);
      const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
      for (let i = 0; i < 300; i++) {
        const at = Math.floor(rand() * token.length);
        const c = chars[Math.floor(rand() * chars.length)] ?? 'A';
        if (token[at] === c) continue;
        const mutated = token.slice(0, at) + c + token.slice(at + 1);
        await assert.rejects(parseAndValidate(mutated, source, AUD, { clock }), (err) => {
          assert.ok(err instanceof SvidkitError && err.code.startsWith('ERR_JWTSVID_'), String(err));
          return true;
        });
      }
    });

    it('rejects random structured headers and claims with a jwtsvid SvidkitError only', async () => {
      const rand = prng(7);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      const values = [undefined, null, 0, -1, 1e300, '', 'x', [], {}, [AUD], true, 'none', 'ES256', 'k256'];
      for (let i = 0; i < 300; i++) {
        const h = H({
          alg: pick([...values, 'ES256', 'ES256']),
          kid: pick([...values, 'k256']),
          typ: pick(values),
        });
        const c = C({
          sub: pick([...values, ID.toString()]),
          exp: pick([...values, NOW_S]),
          aud: pick(values),
        });
        const token = craft(h, c, K.ec256.privateKey, 'ES256');
        try {
          await parseAndValidate(token, source, AUD, { clock });
        } catch (err) {
          assert.ok(err instanceof SvidkitError && err.code.startsWith('ERR_JWTSVID_'), `case #${i}: ${String(err)}`);
        }
      }
    });
  });

  describe('parseInsecure', () => {
    it('decodes without checking signature, time or audience', async () => {
      const token = craft(H(), C({ exp: NOW_S - 86_400, aud: 'someone-else' }), K.rogue.privateKey);
      const svid = parseInsecure(token);
      assert.ok(svid.id.equals(ID));
      assert.equal(svid.expiry.getTime(), (NOW_S - 86_400) * 1000);
      assert.deepEqual(svid.audience, ['someone-else']);
      assert.equal(svid.kid, 'k256');
      assert.equal(svid.marshal(), token);
    });

    it('reads the expiry of a minted token', async () => {
      const svid = parseInsecure(await mint({ ttlSeconds: 120 }));
      assert.equal(svid.expiry.getTime(), NOW.getTime() + 120_000);
    });

    const insecureCases: { name: string; token: () => string; code: ErrorCode }[] = [
      { name: 'too large', token: () => 'a'.repeat(MAX_TOKEN_BYTES + 1), code: 'ERR_JWTSVID_TOO_LARGE' },
      { name: 'five parts', token: () => 'a.b.c.d.e', code: 'ERR_JWTSVID_MALFORMED' },
      { name: 'alg none', token: () => craft(H({ alg: 'none' }), C()), code: 'ERR_JWTSVID_ALGORITHM' },
      {
        name: 'HS256',
        token: () => craft(H({ alg: 'HS256' }), C(), 'secret'),
        code: 'ERR_JWTSVID_ALGORITHM',
      },
      { name: 'typ at+jwt', token: () => es256({ typ: 'at+jwt' }), code: 'ERR_JWTSVID_TYP' },
      { name: 'crit', token: () => es256({ crit: ['x'] }), code: 'ERR_JWTSVID_MALFORMED' },
      { name: 'kid missing', token: () => es256({ kid: undefined }), code: 'ERR_JWTSVID_MISSING_KID' },
      {
        name: 'sub without path',
        token: () => es256({}, { sub: TD.idString() }),
        code: 'ERR_JWTSVID_SUBJECT',
      },
      { name: 'exp missing', token: () => es256({}, { exp: undefined }), code: 'ERR_JWTSVID_MISSING_EXP' },
      { name: 'aud missing', token: () => es256({}, { aud: undefined }), code: 'ERR_JWTSVID_AUDIENCE' },
    ];
    for (const c of insecureCases) {
      it(`rejects (${c.code}): ${c.name}`, () => {
        const token = c.token();
        assert.throws(
          () => parseInsecure(token),
          (err) => !!checkError(err, c.code, { prefix: 'jwtsvid: ', secret: token }),
        );
      });
    }

    it('refuses a non-string with TypeError', () => {
      assert.throws(() => parseInsecure(undefined as unknown as string), TypeError);
    });
  });

  describe('JwtSvid', () => {
    it('never shows the token in String, JSON or inspect', async () => {
      const token = await mint({ audience: [AUD, 'spiffe://example.org/b'] });
      const svid = await parseAndValidate(token, source, AUD, { clock });
      const [, payload, signature] = token.split('.') as [string, string, string];
      const views = [
        String(svid),
        `${svid}`,
        JSON.stringify(svid),
        JSON.stringify({ wrapped: svid }),
        inspect(svid),
        inspect(svid, { depth: 10, showHidden: true }),
        inspect({ nested: [svid] }),
      ];
      for (const v of views) {
        assert.ok(!v.includes(token), v);
        assert.ok(!v.includes(payload), v);
        assert.ok(!v.includes(signature), v);
        assert.ok(v.includes(ID.toString()), `view lacks the ID: ${v}`);
      }
      assert.ok(String(svid).includes(AUD) && String(svid).includes(svid.expiry.toISOString()));
      const json = JSON.parse(JSON.stringify(svid));
      assert.deepEqual(json, {
        id: ID.toString(),
        audience: [AUD, 'spiffe://example.org/b'],
        expiry: new Date(NOW.getTime() + 300_000).toISOString(),
        issuedAt: NOW.toISOString(),
        kid: 'k256',
        alg: 'ES256',
      });
      assert.ok(inspect(svid).startsWith('JwtSvid '));
    });

    it('is immutable', async () => {
      const svid = await parseAndValidate(await mint(), source, AUD, { clock });
      assert.ok(Object.isFrozen(svid));
      assert.ok(Object.isFrozen(svid.audience));
      assert.ok(Object.isFrozen(svid.claims));
    });

    it('cannot be constructed from outside the module', () => {
      const Ctor = JwtSvid as unknown as new (...args: unknown[]) => JwtSvid;
      assert.throws(() => new Ctor(Symbol('JwtSvid.construct'), 'x.y.z', {}), TypeError);
    });
  });

  describe('mintJwtSvid', () => {
    const defaults: [string, () => KeyObject, JwtAlgorithm][] = [
      ['EC P-256', () => K.ec256.privateKey, 'ES256'],
      ['EC P-384', () => K.ec384.privateKey, 'ES384'],
      ['EC P-521', () => K.ec521.privateKey, 'ES512'],
      ['RSA', () => K.rsa.privateKey, 'RS256'],
    ];
    for (const [name, key, alg] of defaults) {
      it(`derives ${alg} from an ${name} key`, async () => {
        const token = await mint({ key: key(), kid: 'any' });
        assert.deepEqual(decodePart(token, 0), { alg, kid: 'any', typ: 'JWT' });
      });
    }

    it('writes sub, aud, exp and iat in seconds, 300 s by default', async () => {
      const token = await mint({ clock: () => new Date(NOW.getTime() + 999) });
      assert.deepEqual(decodePart(token, 1), { sub: ID.toString(), aud: AUD, exp: NOW_S + 300, iat: NOW_S });
    });

    it('writes several audiences as an array', async () => {
      const token = await mint({ audience: ['a', 'b'] });
      assert.deepEqual(decodePart(token, 1)['aud'], ['a', 'b']);
    });

    it('honours ttlSeconds and expiresAt', async () => {
      assert.equal(decodePart(await mint({ ttlSeconds: 60 }), 1)['exp'], NOW_S + 60);
      const expiresAt = new Date(NOW.getTime() + 3_600_000);
      assert.equal(decodePart(await mint({ expiresAt }), 1)['exp'], NOW_S + 3600);
    });

    const mintErrors: {
      name: string;
      params: () => Partial<MintParams>;
      error: ErrorCode | typeof TypeError;
    }[] = [
      { name: 'empty audience string', params: () => ({ audience: '' }), error: 'ERR_JWTSVID_MINT' },
      { name: 'empty audience array', params: () => ({ audience: [] }), error: 'ERR_JWTSVID_MINT' },
      {
        name: 'an empty audience in the array',
        params: () => ({ audience: [AUD, ''] }),
        error: 'ERR_JWTSVID_MINT',
      },
      {
        name: 'audience not a string',
        params: () => ({ audience: 5 as unknown as string }),
        error: TypeError,
      },
      {
        name: 'audience array with a number',
        params: () => ({ audience: [5] as unknown as string[] }),
        error: TypeError,
      },
      { name: 'empty kid', params: () => ({ kid: '' }), error: 'ERR_JWTSVID_MINT' },
      { name: 'kid not a string', params: () => ({ kid: 7 as unknown as string }), error: TypeError },
      {
        name: 'ES256 with an RSA key',
        params: () => ({ alg: 'ES256', key: K.rsa.privateKey }),
        error: 'ERR_JWTSVID_MINT',
      },
      { name: 'ES384 with a P-256 key', params: () => ({ alg: 'ES384' }), error: 'ERR_JWTSVID_MINT' },
      { name: 'RS256 with an EC key', params: () => ({ alg: 'RS256' }), error: 'ERR_JWTSVID_MINT' },
      { name: 'alg HS256', params: () => ({ alg: 'HS256' as JwtAlgorithm }), error: 'ERR_JWTSVID_MINT' },
      { name: 'alg none', params: () => ({ alg: 'none' as JwtAlgorithm }), error: 'ERR_JWTSVID_MINT' },
      { name: 'Ed25519 key', params: () => ({ key: K.ed.privateKey }), error: 'ERR_JWTSVID_MINT' },
      {
        name: 'RSA key under 2048 bits',
        params: () => ({ key: K.rsa1024.privateKey }),
        error: 'ERR_JWTSVID_MINT',
      },
      { name: 'public key', params: () => ({ key: K.ec256.publicKey }), error: 'ERR_JWTSVID_MINT' },
      {
        name: 'key not a KeyObject',
        params: () => ({ key: 'pem' as unknown as KeyObject }),
        error: TypeError,
      },
      { name: 'trust-domain ID as subject', params: () => ({ id: TD.id() }), error: 'ERR_JWTSVID_MINT' },
      {
        name: 'id not a SpiffeId',
        params: () => ({ id: ID.toString() as unknown as SpiffeId }),
        error: TypeError,
      },
      { name: 'ttlSeconds 0', params: () => ({ ttlSeconds: 0 }), error: 'ERR_JWTSVID_MINT' },
      { name: 'ttlSeconds negative', params: () => ({ ttlSeconds: -5 }), error: 'ERR_JWTSVID_MINT' },
      { name: 'ttlSeconds fractional', params: () => ({ ttlSeconds: 1.5 }), error: 'ERR_JWTSVID_MINT' },
      { name: 'ttlSeconds NaN', params: () => ({ ttlSeconds: Number.NaN }), error: 'ERR_JWTSVID_MINT' },
      {
        name: 'expiresAt in the past',
        params: () => ({ expiresAt: new Date(NOW.getTime() - 1000) }),
        error: 'ERR_JWTSVID_MINT',
      },
      { name: 'expiresAt now', params: () => ({ expiresAt: NOW }), error: 'ERR_JWTSVID_MINT' },
      {
        name: 'expiresAt invalid',
        params: () => ({ expiresAt: new Date(Number.NaN) }),
        error: 'ERR_JWTSVID_MINT',
      },
      {
        name: 'both expiresAt and ttlSeconds',
        params: () => ({ expiresAt: new Date(NOW.getTime() + 60_000), ttlSeconds: 60 }),
        error: 'ERR_JWTSVID_MINT',
      },
      {
        name: 'token that would exceed MAX_TOKEN_BYTES',
        params: () => ({
          audience: Array.from({ length: 400 }, (_, i) => `spiffe://example.org/audience/${i}`),
        }),
        error: 'ERR_JWTSVID_MINT',
      },
      {
        name: 'clock returning garbage',
        params: () => ({ clock: () => new Date('nope') }),
        error: TypeError,
      },
    ];
    for (const c of mintErrors) {
      const label = typeof c.error === 'string' ? c.error : 'TypeError';
      it(`refuses (${label}): ${c.name}`, async () => {
        const result = mint(c.params());
        if (typeof c.error === 'string') {
          await assert.rejects(result, (err) => !!checkError(err, c.error as ErrorCode, { prefix: 'jwtsvid: ' }));
        } else {
          await assert.rejects(result, TypeError);
        }
      });
    }
  });
});

describe('jwtsvid mint: kid bound', () => {
  it('refuses a kid no bundle could hold', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await assert.rejects(
      mintJwtSvid({
        id: SpiffeId.parse('spiffe://example.org/w'),
        audience: 'a',
        key: privateKey,
        kid: 'k'.repeat(MAX_KID_LENGTH + 1),
      }),
      { code: 'ERR_JWTSVID_MINT' },
    );
  });
});
