/**
 * Fuzzing lib/bundle: SpiffeBundle.parse, JwtBundle.parse, BundleSet.parse and parseBundleDocument
 * with random JSON, mutated real bundles (wrong types, duplicate members, private key members, x5c
 * variants, huge numbers, deep nesting, huge documents) and text mutations. Each returns a bundle
 * within the limits, holding public keys only and round-tripping, or throws a SvidkitError.
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  BundleSet,
  JwtBundle,
  MAX_BUNDLE_BYTES,
  MAX_KEYS_PER_BUNDLE,
  MAX_TRUST_DOMAINS,
  parseBundleDocument,
  SpiffeBundle,
  X509Bundle,
} from '../lib/bundle/index.js';
import { importJwtAuthority } from '../lib/bundle/jwt.js';
import { encodePem } from '../lib/internal/pem.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { TestCa } from './helpers/ca.js';
import { anyText, FuzzStats, mutatedBytes, mutatedText, typed } from './helpers/fuzz.js';

const TD = TrustDomain.parse('example.org');
const root = TestCa.root();
const rsaRoot = TestCa.root({ keyType: 'rsa-2048' });
const edRoot = TestCa.root({ keyType: 'ed25519' });
const foreignRoot = TestCa.root({ trustDomain: 'other.org' });
const ecJwt = generateKeyPair('ec-p256').publicKey;
const rsaJwt = generateKeyPair('rsa-2048').publicKey;

const BUNDLE = new SpiffeBundle(TD, {
  x509: new X509Bundle(TD, [root.cert, rsaRoot.cert, edRoot.cert]),
  jwt: new JwtBundle(TD, [
    importJwtAuthority('ec-1', ecJwt.export({ format: 'jwk' })),
    importJwtAuthority('rsa-1', rsaJwt.export({ format: 'jwk' })),
  ]),
  sequence: 7,
  refreshHint: 300,
});
const BUNDLE_JSON = BUNDLE.marshal();
const SET = new BundleSet([BUNDLE, new SpiffeBundle(foreignRoot.trustDomain, { x509: foreignRoot.bundle() })]);
const SET_JSON = JSON.stringify(SET.toJson());
const JWKS_JSON = JSON.stringify(BUNDLE.jwt.toJwks());
const PEM_ROOTS = BUNDLE.x509.toPem();
const CERT_DERS = [root.cert.der, rsaRoot.cert.der, edRoot.cert.der, foreignRoot.cert.der];

// ---------------------------------------------------------------------------------------------
// JSON mutations: edits of the decoded document at a random place, then of its text

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const MEMBER_NAMES = [
  'keys',
  'trust_domains',
  'use',
  'kty',
  'kid',
  'crv',
  'x',
  'y',
  'n',
  'e',
  'x5c',
  'd',
  'p',
  'q',
  'dp',
  'dq',
  'qi',
  'oth',
  'k',
  'alg',
  'spiffe_sequence',
  'spiffe_refresh_hint',
  '__proto__',
  'constructor',
  'toString',
  '',
];

const x5cValue: fc.Arbitrary<Json> = fc.oneof<fc.Arbitrary<Json>[]>(
  fc.constantFrom(...CERT_DERS).map((d) => [d.toString('base64')]),
  mutatedBytes(fc.constantFrom(...CERT_DERS)).map((d) => [d.toString('base64')]),
  fc.constantFrom(...CERT_DERS).map((d) => [d.toString('base64url')]),
  fc.constantFrom(...CERT_DERS).map((d) => [d.toString('base64').replace(/(.{64})/g, '$1\n')]),
  fc.constant([CERT_DERS[0]!.toString('base64'), CERT_DERS[1]!.toString('base64')]),
  fc.constant([]),
  fc.constant([42]),
  fc.constant(CERT_DERS[0]!.toString('base64')),
);

const oddValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    -0,
    1e308,
    -1e308,
    2 ** 53,
    2 ** 53 + 2,
    '',
    '1',
    'x509-svid',
    'jwt-svid',
    'EC',
    'RSA',
    'OKP',
    'oct',
    'P-256',
    'P-521',
    'Ed25519',
    [],
    {},
    'x'.repeat(257),
    'AQAB',
  ),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  x5cValue,
);

interface JsonEdit {
  op: 'delete' | 'set' | 'add' | 'wrap' | 'nest' | 'repeat';
  at: number;
  name: string;
  value: Json;
  count: number;
}

const jsonEdit: fc.Arbitrary<JsonEdit> = fc.record({
  op: fc.constantFrom('delete', 'set', 'add', 'wrap', 'nest', 'repeat'),
  at: fc.nat(),
  name: fc.oneof(fc.constantFrom(...MEMBER_NAMES), fc.string({ maxLength: 8 })),
  value: oddValue,
  count: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(257, 513, 1025)),
});

/** Every object and array of a document, with a setter to replace it in its parent. */
function places(doc: Json): { node: Json; replace: (v: Json) => void }[] {
  const out: { node: Json; replace: (v: Json) => void }[] = [];
  const visit = (node: Json, replace: (v: Json) => void) => {
    if (node === null || typeof node !== 'object') return;
    out.push({ node, replace });
    if (Array.isArray(node)) node.forEach((v, i) => visit(v, (nv) => (node[i] = nv)));
    else for (const k of Object.keys(node)) visit(node[k]!, (nv) => (node[k] = nv));
  };
  visit(doc, () => {});
  return out;
}

function applyJsonEdit(doc: Json, e: JsonEdit): Json {
  const copy = structuredClone(doc);
  const all = places(copy);
  if (all.length === 0) return copy;
  const { node, replace } = all[e.at % all.length]!;
  if (Array.isArray(node)) {
    const i = node.length === 0 ? 0 : e.at % node.length;
    if (e.op === 'delete') node.splice(i, 1);
    else if (e.op === 'repeat') node.push(...repeated(node[i] ?? e.value, e.count));
    else if (e.op === 'wrap') replace([node]);
    else if (e.op === 'nest') replace(nestIn(node, Math.min(e.count, 40)));
    else node[i] = e.value;
    return copy;
  }
  const obj = node as { [k: string]: Json };
  const keys = Object.keys(obj);
  const k = keys.length === 0 ? e.name : keys[e.at % keys.length]!;
  const current = Object.hasOwn(obj, k) ? obj[k] : undefined;
  if (e.op === 'delete') delete obj[k];
  else if (e.op === 'add') put(obj, e.name, e.value);
  else if (e.op === 'wrap') replace([obj]);
  else if (e.op === 'nest') put(obj, k, nestIn(current ?? null, Math.min(e.count, 40)));
  else if (e.op === 'repeat') put(obj, k, repeated(current ?? e.value, e.count));
  else put(obj, k, e.value);
  return copy;
}

/** Serialized size of a document, or Infinity when it is too large to serialize at all. */
function sizeOfJson(doc: Json): number {
  try {
    return JSON.stringify(doc).length;
  } catch {
    return Infinity;
  }
}

/** `count` copies of `value`, fewer when that would pass a few MiB (size has its own tests). */
function repeated(value: Json, count: number): Json[] {
  const n = Math.min(count, Math.max(1, Math.floor((2 * MAX_BUNDLE_BYTES) / Math.max(1, sizeOfJson(value)))));
  return Array.from({ length: n }, () => structuredClone(value));
}

/** Sets an own member, "__proto__" included (plain assignment would change the prototype instead). */
function put(obj: { [k: string]: Json }, name: string, value: Json): void {
  Object.defineProperty(obj, name, { value, enumerable: true, writable: true, configurable: true });
}

function nestIn(v: Json, depth: number): Json {
  let out = v;
  for (let i = 0; i < depth; i++) out = i % 2 === 0 ? [out] : { v: out };
  return out;
}

/** Text tweaks no JSON value can express: duplicate members, escapes, padding, nesting, size. */
const textTweak = fc.constantFrom<(t: string) => string>(
  (t) => t.replace('{', '{"keys":[],'),
  (t) => t.replace('{', '{"trust_domains":{},'),
  (t) => t.replace('"use":', '"use":"x","use":'),
  (t) => t.replace('"kid":', '"k\\u0069d":"dup","kid":'),
  (t) => t.replace('"keys"', '"k\\u0065ys"'),
  (t) => t.replace(/"example\.org"/, '"example.org":{"keys":[]},"example.org"'),
  (t) => '\ufeff' + t,
  (t) => ' \n\t' + t + '\n',
  (t) => t + ' garbage',
  (t) => t.replace(/:/g, ' : '),
  (t) => t.slice(0, t.length >> 1),
  (t) => t.replace('{', '{"pad":"' + 'a'.repeat(MAX_BUNDLE_BYTES) + '",'),
  (t) => t.replace('{', '{"pad":"' + 'a'.repeat(4 * MAX_BUNDLE_BYTES) + '",'),
  (t) => t.replace('{', '{"deep":' + '['.repeat(100_000) + ']'.repeat(100_000) + ','),
  (t) => t.replace('{', '{"deep":' + '{"a":'.repeat(33) + '1' + '}'.repeat(33) + ','),
  (t) => t.replace('{', '{"deep":' + '['.repeat(31) + ']'.repeat(31) + ','),
  (t) => t.replace(/\d+/, '1' + '0'.repeat(400)),
  (t) => t.replace('"spiffe_sequence":7', '"spiffe_sequence":7.0'),
  (t) => t.replace('"spiffe_sequence":7', '"spiffe_sequence":-0'),
  (t) => t.replace('"spiffe_sequence":7', '"spiffe_sequence":9007199254740993'),
);

function jsonDocs(base: string): fc.Arbitrary<string> {
  const parsed = JSON.parse(base) as Json;
  const edited = fc.array(jsonEdit, { minLength: 1, maxLength: 4 }).map((edits) =>
    JSON.stringify(
      // An edit that would blow the document up past a few MiB is skipped: size has its own tests.
      edits.reduce((doc, e) => {
        const next = applyJsonEdit(doc, e);
        return sizeOfJson(next) > 2 * MAX_BUNDLE_BYTES ? doc : next;
      }, parsed),
    ),
  );
  return fc.oneof(
    { weight: 4, arbitrary: edited },
    { weight: 2, arbitrary: fc.tuple(fc.oneof(fc.constant(base), edited), textTweak).map(([t, f]) => f(t)) },
    { weight: 2, arbitrary: mutatedText(base) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: anyText },
  );
}

// ---------------------------------------------------------------------------------------------
// What a parsed bundle must satisfy

function checkSpiffeBundle(b: SpiffeBundle): void {
  assert.ok(b.x509.size <= MAX_KEYS_PER_BUNDLE && b.jwt.size <= MAX_KEYS_PER_BUNDLE);
  if (b.sequence !== undefined) assert.ok(Number.isSafeInteger(b.sequence) && b.sequence >= 0);
  if (b.refreshHint !== undefined) assert.ok(Number.isSafeInteger(b.refreshHint) && b.refreshHint >= 0);
  for (const a of b.jwt.authorities()) {
    assert.equal(a.key.type, 'public');
    for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) assert.ok(!(m in a.jwk), `private member ${m} kept`);
  }
  // Whatever parsed marshals to a document that parses to the same bundle.
  const again = SpiffeBundle.parse(b.trustDomain, b.marshal());
  assert.equal(again.marshal(), b.marshal());
}

describe('fuzz: trust bundles', function () {
  this.timeout(120_000);
  const stats = new FuzzStats('bundle');
  after(() => stats.report());

  it('SpiffeBundle.parse: mutated bundles, random JSON and text', () => {
    fc.assert(
      fc.property(jsonDocs(BUNDLE_JSON), (text) => {
        stats.count('SpiffeBundle.parse');
        const r = typed('SpiffeBundle.parse', Buffer.byteLength(text), () => SpiffeBundle.parse(TD, text));
        if (r.ok) checkSpiffeBundle(r.value);
        else assert.match(r.error.code, /^ERR_BUNDLE_/);
      }),
      stats.params(1),
    );
  });

  it('JwtBundle.parse: mutated JWKS', () => {
    fc.assert(
      fc.property(jsonDocs(JWKS_JSON), (text) => {
        stats.count('JwtBundle.parse');
        const r = typed('JwtBundle.parse', Buffer.byteLength(text), () => JwtBundle.parse(TD, text));
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_BUNDLE_/);
          return;
        }
        assert.ok(r.value.size <= MAX_KEYS_PER_BUNDLE);
        const again = JwtBundle.parse(TD, JSON.stringify(r.value.toJwks()));
        assert.deepEqual(again.toJwks(), r.value.toJwks());
      }),
      stats.params(1),
    );
  });

  it('BundleSet.parse: mutated trust_domains documents', () => {
    fc.assert(
      fc.property(jsonDocs(SET_JSON), (text) => {
        stats.count('BundleSet.parse');
        const r = typed('BundleSet.parse', Buffer.byteLength(text), () => BundleSet.parse(text));
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_(BUNDLE|SPIFFEID)_/);
          return;
        }
        assert.ok(r.value.size <= MAX_TRUST_DOMAINS);
        r.value.bundles().forEach(checkSpiffeBundle);
        const text2 = JSON.stringify(r.value.toJson());
        assert.equal(JSON.stringify(BundleSet.parse(text2).toJson()), text2);
      }),
      stats.params(1),
    );
  });

  it('parseBundleDocument: JSON, bundle sets and PEM, with and without a trust domain', () => {
    const text = fc.oneof(
      jsonDocs(BUNDLE_JSON),
      jsonDocs(SET_JSON),
      mutatedText(PEM_ROOTS),
      fc.constantFrom(PEM_ROOTS, foreignRoot.cert.toPem(), PEM_ROOTS + foreignRoot.cert.toPem()),
      mutatedBytes(Buffer.from(PEM_ROOTS)).map((b) => b.toString('latin1')),
    );
    fc.assert(
      fc.property(text, fc.boolean(), fc.boolean(), (doc, withTd, asBytes) => {
        stats.count('parseBundleDocument');
        const input = asBytes ? Buffer.from(doc) : doc;
        const r = typed('parseBundleDocument', Buffer.byteLength(doc), () =>
          parseBundleDocument(input, withTd ? TD : undefined),
        );
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_(BUNDLE|SPIFFEID|PEM|X509|DER)_/);
          return;
        }
        r.value.bundles().forEach(checkSpiffeBundle);
        // A root that names another trust domain is never filed under this one.
        for (const b of r.value.bundles()) {
          for (const c of b.x509.authorities()) {
            for (const uri of c.subjectAltName?.uris ?? []) {
              const id = SpiffeId.tryParse(uri);
              if (id)
                assert.ok(id.memberOf(b.trustDomain), `a root of ${id.trustDomain.name} under ${b.trustDomain.name}`);
            }
          }
        }
      }),
      stats.params(1),
    );
  });

  it('documents past the size limit are refused as ERR_BUNDLE_TOO_LARGE', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('spiffe', 'jwks', 'set', 'pem'), (extra, kind) => {
        stats.count('size limits');
        const limit = kind === 'set' || kind === 'pem' ? MAX_BUNDLE_BYTES * (kind === 'set' ? 4 : 1) : MAX_BUNDLE_BYTES;
        const base = kind === 'pem' ? PEM_ROOTS : BUNDLE_JSON;
        const text = kind === 'pem' ? base + ' '.repeat(limit + extra) : ' '.repeat(limit + extra) + base;
        const parse: Record<string, () => unknown> = {
          spiffe: () => SpiffeBundle.parse(TD, text),
          jwks: () => JwtBundle.parse(TD, text),
          set: () => BundleSet.parse(text),
          pem: () => X509Bundle.parsePem(TD, text),
        };
        const r = typed(kind, text.length, parse[kind]!);
        assert.ok(!r.ok && r.error.code === 'ERR_BUNDLE_TOO_LARGE', r.ok ? 'accepted' : r.error.code);
      }),
      stats.params(0.05),
    );
  });

  it('valid bundles round-trip', () => {
    fc.assert(
      fc.property(
        fc.subarray([root.cert, rsaRoot.cert, edRoot.cert]),
        fc.subarray(['ec', 'rsa']),
        fc.option(fc.nat()),
        fc.option(fc.nat()),
        (certs, jwts, sequence, hint) => {
          stats.count('round trip');
          const b = new SpiffeBundle(TD, {
            x509: new X509Bundle(TD, certs),
            jwt: new JwtBundle(
              TD,
              jwts.map((k) => importJwtAuthority(`${k}-1`, (k === 'ec' ? ecJwt : rsaJwt).export({ format: 'jwk' }))),
            ),
            sequence: sequence ?? undefined,
            refreshHint: hint ?? undefined,
          });
          checkSpiffeBundle(b);
          const set = new BundleSet([b]);
          assert.deepEqual(BundleSet.parse(JSON.stringify(set.toJson())).toJson(), set.toJson());
          assert.deepEqual(parseBundleDocument(b.marshal(), TD).toJson(), set.toJson());
        },
      ),
      stats.params(0.25),
    );
  });

  describe('regressions found by fuzzing', () => {
    /** The root with the id-ecPublicKey OID of its key changed: the certificate parses, its key does not import. */
    const brokenKeyRoot = (() => {
      const der = Buffer.from(root.cert.der);
      const at = der.indexOf(Buffer.from([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]));
      der[at + 2] = 0x10;
      return der;
    })();

    it('refuses PEM roots whose public key cannot be imported', () => {
      const pem = encodePem('CERTIFICATE', brokenKeyRoot);
      assert.ok(Certificate.fromDer(brokenKeyRoot));
      const parsers: (() => unknown)[] = [() => X509Bundle.parsePem(TD, pem), () => parseBundleDocument(pem, TD)];
      for (const parse of parsers) {
        const r = typed('parse', pem.length, parse);
        assert.ok(!r.ok && r.error.code === 'ERR_BUNDLE_MALFORMED', r.ok ? 'accepted' : r.error.code);
      }
    });

    it('reports an x5c certificate whose public key cannot be imported as ERR_BUNDLE_MALFORMED', () => {
      const doc = JSON.parse(BUNDLE_JSON) as { keys: { x5c?: string[] }[] };
      doc.keys[0]!.x5c = [brokenKeyRoot.toString('base64')];
      const r = typed('SpiffeBundle.parse', 0, () => SpiffeBundle.parse(TD, JSON.stringify(doc)));
      assert.ok(!r.ok && r.error.code === 'ERR_BUNDLE_MALFORMED', r.ok ? 'accepted' : r.error.code);
    });
  });
});
