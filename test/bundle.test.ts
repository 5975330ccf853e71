/**
 * Tests of lib/bundle against the Bundles section of docs/SPIFFE-RULES.md: PEM roots, JWKS, SPIFFE
 * bundles (x509-svid and jwt-svid keys, spiffe_sequence, spiffe_refresh_hint), bundle sets keyed by
 * trust domain and parseBundleDocument. Every refusal is checked for its exact code and module prefix.
 */
import { strict as assert } from 'node:assert';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  BundleSet,
  importJwtAuthority,
  JwtBundle,
  MAX_BUNDLE_BYTES,
  MAX_KEYS_PER_BUNDLE,
  parseBundleDocument,
  SpiffeBundle,
  X509Bundle,
} from '../lib/bundle/index.js';
import type { ErrorCode } from '../lib/errors/index.js';
import { generateKeyPair, type KeyPair, type KeyType, privateKeyToPem } from '../lib/keys/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import type { Certificate } from '../lib/x509/index.js';
import { verify } from '../lib/x509svid/index.js';
import { assertCode } from './helpers/assert.js';
import { T0, TestCa } from './helpers/ca.js';

const TD = TrustDomain.parse('example.org');
const OTHER = TrustDomain.parse('other.org');

/** Reads a deliberately broken fixture from test/testdata (tests run from dist/test). */
function fixture(name: string): string {
  return readFileSync(new URL(`../../test/testdata/${name}`, import.meta.url), 'utf8');
}

type Jwk = JsonWebKey & Record<string, unknown>;

/** An x509-svid JWK for `cert`: its public key plus x5c with the certificate. */
function x509Key(cert: Certificate, extra: Record<string, unknown> = {}): Jwk {
  return {
    use: 'x509-svid',
    ...cert.publicKey.export({ format: 'jwk' }),
    x5c: [cert.der.toString('base64')],
    ...extra,
  };
}

/** A jwt-svid JWK for a public key; `kid` undefined leaves the member out. */
function jwtKey(pub: KeyObject, kid: string | undefined, extra: Record<string, unknown> = {}): Jwk {
  return { use: 'jwt-svid', ...pub.export({ format: 'jwk' }), ...(kid === undefined ? {} : { kid }), ...extra };
}

/** A copy of a JWK without one member. */
function without(jwk: Jwk, member: string): Jwk {
  const out = { ...jwk };
  delete out[member];
  return out;
}

/** A SPIFFE bundle / JWKS document as JSON text. */
function doc(keys: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ keys, ...extra });
}

/** `text` padded with trailing spaces (valid JSON whitespace) to exactly `size` bytes. */
function padTo(text: string, size: number): string {
  return text + ' '.repeat(size - Buffer.byteLength(text));
}

interface Keys {
  rootA: TestCa;
  rootB: TestCa;
  rootOther: TestCa;
  ec: KeyPair;
  ec2: KeyPair;
  rsa: KeyPair;
  ed: KeyPair;
}

// Generated at test time by before(); nothing is checked in.
const K = {} as Keys;

describe('bundle', () => {
  before(() => {
    K.rootA = TestCa.root();
    K.rootB = TestCa.root({ subject: [['CN', 'second root example.org']] });
    K.rootOther = TestCa.root({ trustDomain: 'other.org' });
    K.ec = generateKeyPair('ec-p256');
    K.ec2 = generateKeyPair('ec-p384');
    K.rsa = generateKeyPair('rsa-2048');
    K.ed = generateKeyPair('ed25519');
  });

  // -------------------------------------------------------------------------------------------
  // X509Bundle
  // -------------------------------------------------------------------------------------------

  describe('X509Bundle.parsePem', () => {
    interface PemCase {
      name: string;
      pem: () => string;
      /** Expected roots, by index into [rootA, rootB]; a refusal when `code` is set. */
      roots?: ('A' | 'B')[];
      code?: ErrorCode;
      bug?: string;
    }
    const pemOf = (...which: ('A' | 'B')[]) => which.map((w) => (w === 'A' ? K.rootA : K.rootB).cert.toPem()).join('');

    const CASES: PemCase[] = [
      { name: 'an empty file (an empty bundle)', pem: () => '', roots: [] },
      // go-spiffe's x509bundle.Parse: no PEM block in non-empty input is an error, not an empty bundle.
      {
        name: 'text without PEM blocks',
        pem: () => fixture('no-pem-blocks.txt'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      { name: 'DER instead of PEM', pem: () => K.rootA.cert.der.toString('latin1'), code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'one root', pem: () => pemOf('A'), roots: ['A'] },
      { name: 'two roots, in order', pem: () => pemOf('B', 'A'), roots: ['B', 'A'] },
      { name: 'a duplicate root is kept once', pem: () => pemOf('A', 'B', 'A', 'A'), roots: ['A', 'B'] },
      {
        name: 'a PRIVATE KEY block',
        pem: () => privateKeyToPem(K.ec.privateKey),
        code: 'ERR_PEM_UNEXPECTED_TYPE',
      },
      {
        name: 'a root followed by a PRIVATE KEY block',
        pem: () => pemOf('A') + privateKeyToPem(K.ec.privateKey),
        code: 'ERR_PEM_UNEXPECTED_TYPE',
      },
      {
        name: 'a CERTIFICATE block holding garbage',
        pem: () => fixture('certificate-block-garbage-der.pem'),
        code: 'ERR_X509_MALFORMED',
      },
      {
        name: 'a CERTIFICATE block with invalid base64',
        pem: () => fixture('certificate-block-invalid-base64.pem'),
        code: 'ERR_PEM_MALFORMED',
      },
      {
        name: 'more than 1 MiB',
        pem: () => pemOf('A') + '#'.repeat(MAX_BUNDLE_BYTES),
        code: 'ERR_BUNDLE_TOO_LARGE',
      },
    ];

    for (const c of CASES) {
      it(`${c.name} -> ${c.code ?? `${c.roots!.length} root(s)`}`, () => {
        if (c.code) {
          assertCode(() => X509Bundle.parsePem(TD, c.pem()), c.code);
          return;
        }
        const b = X509Bundle.parsePem(TD, c.pem());
        assert.ok(b.trustDomain.equals(TD));
        const want = c.roots!.map((w) => (w === 'A' ? K.rootA : K.rootB).cert.der.toString('hex'));
        assert.deepEqual(
          b.authorities().map((a) => a.der.toString('hex')),
          want,
        );
        assert.equal(b.size, want.length);
      });
    }

    it('150 distinct roots (about 100 KB, over the 64 KiB chain bound, under the bundle bounds) are accepted', () => {
      // Regression: bundles once inherited the 64 KiB bound of a certificate chain.
      const roots = Array.from({ length: 150 }, (_, i) => TestCa.root({ subject: [['CN', `root ${i}`]] }).cert);
      const pem = roots.map((r) => r.toPem()).join('');
      assert.ok(Buffer.byteLength(pem) > 64 * 1024 && Buffer.byteLength(pem) < MAX_BUNDLE_BYTES);
      const b = X509Bundle.parsePem(TD, pem);
      assert.equal(b.size, 150);
    });

    it('toPem() round-trips, and withAuthority / withoutAuthority return new bundles', () => {
      const b = new X509Bundle(TD, [K.rootA.cert]);
      const again = X509Bundle.parsePem(TD, b.toPem());
      assert.ok(again.hasAuthority(K.rootA.cert));
      const two = again.withAuthority(K.rootB.cert);
      assert.equal(two.size, 2);
      assert.equal(again.size, 1, 'the original is unchanged');
      assert.equal(two.withAuthority(K.rootB.cert).size, 2, 'adding a root twice keeps it once');
      const one = two.withoutAuthority(K.rootA.cert);
      assert.deepEqual(one.authorities(), [K.rootB.cert]);
    });

    it('is a bundle source for its own trust domain only', () => {
      const b = new X509Bundle(TD, [K.rootA.cert]);
      assert.equal(b.getX509BundleForTrustDomain(TrustDomain.parse('example.org')), b);
      assert.equal(b.getX509BundleForTrustDomain(OTHER), undefined);
    });
  });

  // -------------------------------------------------------------------------------------------
  // JwtBundle
  // -------------------------------------------------------------------------------------------

  describe('JwtBundle.parse', () => {
    interface JwksCase {
      name: string;
      text: () => string;
      /** Expected key IDs when accepted. */
      kids?: string[];
      code?: ErrorCode;
    }

    const CASES: JwksCase[] = [
      { name: 'an empty key list', text: () => doc([]), kids: [] },
      {
        name: 'EC and RSA keys with kid and use jwt-svid',
        text: () => doc([jwtKey(K.ec.publicKey, 'k-ec'), jwtKey(K.rsa.publicKey, 'k-rsa')]),
        kids: ['k-ec', 'k-rsa'],
      },
      {
        name: 'a key without use (a plain JWKS) is kept',
        text: () => doc([without(jwtKey(K.ec.publicKey, 'k-ec'), 'use')]),
        kids: ['k-ec'],
      },
      {
        name: 'keys with another use are ignored',
        text: () =>
          doc([
            jwtKey(K.ec.publicKey, 'k-sig', { use: 'sig' }),
            jwtKey(K.ec2.publicKey, 'k-x509', { use: 'x509-svid' }),
            jwtKey(K.rsa.publicKey, 'k-upper', { use: 'JWT-SVID' }),
            jwtKey(K.ec.publicKey, 'k-ok'),
          ]),
        kids: ['k-ok'],
      },
      {
        name: 'keys of an unsupported kty are ignored (OKP, oct)',
        text: () =>
          doc([
            jwtKey(K.ed.publicKey, 'k-ed'),
            { kty: 'oct', k: 'c2VjcmV0', kid: 'k-oct', use: 'jwt-svid' },
            jwtKey(K.ec.publicKey, 'k-ok'),
          ]),
        kids: ['k-ok'],
      },
      { name: 'a key without kid', text: () => doc([jwtKey(K.ec.publicKey, undefined)]), code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'a key with an empty kid', text: () => doc([jwtKey(K.ec.publicKey, '')]), code: 'ERR_BUNDLE_MALFORMED' },
      {
        name: 'a key with a numeric kid',
        text: () => doc([jwtKey(K.ec.publicKey, undefined, { kid: 7 })]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a key ID longer than 256 characters',
        text: () => doc([jwtKey(K.ec.publicKey, 'k'.repeat(257))]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a key ID of exactly 256 characters',
        text: () => doc([jwtKey(K.ec.publicKey, 'k'.repeat(256))]),
        kids: ['k'.repeat(256)],
      },
      {
        name: 'a private EC key (member d)',
        text: () => doc([jwtKey(K.ec.privateKey, 'k-ec')]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a private RSA key (d, p, q, dp, dq, qi)',
        text: () => doc([jwtKey(K.rsa.privateKey, 'k-rsa')]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a public RSA key carrying only the private member qi',
        text: () => doc([jwtKey(K.rsa.publicKey, 'k-rsa', { qi: 'AQAB' })]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'two keys with the same kid',
        text: () => doc([jwtKey(K.ec.publicKey, 'same'), jwtKey(K.rsa.publicKey, 'same')]),
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'an EC key whose point is not on the curve',
        text: () => doc([jwtKey(K.ec.publicKey, 'k-ec', { x: Buffer.alloc(32, 1).toString('base64url') })]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      { name: 'a key that is not an object', text: () => doc(['k']), code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'no keys member', text: () => JSON.stringify({ kes: [] }), code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'a JSON array', text: () => '[]', code: 'ERR_BUNDLE_MALFORMED' },
      {
        name: 'invalid JSON',
        text: () => fixture('bundle-invalid-json-trailing-comma.json.txt'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a duplicate member inside a key',
        text: () => '{"keys":[{"kty":"EC","kty":"RSA"}]}',
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'more than 1 MiB',
        text: () => padTo(doc([]), MAX_BUNDLE_BYTES + 1),
        code: 'ERR_BUNDLE_TOO_LARGE',
      },
    ];

    for (const c of CASES) {
      it(`${c.name} -> ${c.code ?? `kids [${c.kids!.map((k) => k.slice(0, 12)).join(', ')}]`}`, () => {
        if (c.code) {
          assertCode(() => JwtBundle.parse(TD, c.text()), c.code);
          return;
        }
        const b = JwtBundle.parse(TD, c.text());
        assert.deepEqual(
          b.authorities().map((a) => a.kid),
          c.kids,
        );
        for (const a of b.authorities()) {
          assert.equal(a.key.type, 'public');
          assert.equal((a.jwk as Jwk)['d'], undefined);
        }
      });
    }

    it('toJwks() round-trips through parse, keys included', () => {
      const b = new JwtBundle(TD, [
        importJwtAuthority('k-ec', K.ec.publicKey.export({ format: 'jwk' })),
        importJwtAuthority('k-rsa', K.rsa.publicKey.export({ format: 'jwk' })),
      ]);
      const again = JwtBundle.parse(TD, JSON.stringify(b.toJwks()));
      assert.ok(again.findAuthority('k-ec')!.key.equals(K.ec.publicKey));
      assert.ok(again.findAuthority('k-rsa')!.key.equals(K.rsa.publicKey));
      assert.equal(again.findAuthority('nope'), undefined);
      assert.ok(b.toJwks().keys.every((k) => k.use === 'jwt-svid'));
    });

    it('withAuthority replaces a key of the same kid; withoutAuthority removes it', () => {
      const b = new JwtBundle(TD, [importJwtAuthority('k', K.ec.publicKey.export({ format: 'jwk' }))]);
      const replaced = b.withAuthority(importJwtAuthority('k', K.rsa.publicKey.export({ format: 'jwk' })));
      assert.equal(replaced.size, 1);
      assert.ok(replaced.findAuthority('k')!.key.equals(K.rsa.publicKey));
      assert.ok(b.findAuthority('k')!.key.equals(K.ec.publicKey), 'the original is unchanged');
      assert.equal(replaced.withoutAuthority('k').size, 0);
    });
  });

  // -------------------------------------------------------------------------------------------
  // SpiffeBundle
  // -------------------------------------------------------------------------------------------

  describe('SpiffeBundle.parse', () => {
    it('toJson -> parse keeps the roots, the JWT keys, spiffe_sequence and spiffe_refresh_hint', () => {
      const b = new SpiffeBundle(TD, {
        x509: new X509Bundle(TD, [K.rootA.cert, K.rootB.cert]),
        jwt: new JwtBundle(TD, [
          importJwtAuthority('k-ec', K.ec.publicKey.export({ format: 'jwk' })),
          importJwtAuthority('k-rsa', K.rsa.publicKey.export({ format: 'jwk' })),
        ]),
        sequence: 42,
        refreshHint: 300,
      });
      for (const text of [JSON.stringify(b.toJson()), b.marshal()]) {
        const again = SpiffeBundle.parse(TD, text);
        assert.ok(again.trustDomain.equals(TD));
        assert.deepEqual(
          again.x509.authorities().map((c) => c.fingerprint256()),
          [K.rootA.cert.fingerprint256(), K.rootB.cert.fingerprint256()],
        );
        assert.deepEqual(
          again.jwt.authorities().map((a) => a.kid),
          ['k-ec', 'k-rsa'],
        );
        assert.ok(again.jwt.findAuthority('k-ec')!.key.equals(K.ec.publicKey));
        assert.ok(again.jwt.findAuthority('k-rsa')!.key.equals(K.rsa.publicKey));
        assert.equal(again.sequence, 42);
        assert.equal(again.refreshHint, 300);
        assert.deepEqual(again.toJson(), b.toJson());
      }
    });

    it('the JSON form follows the SPIFFE bundle format', () => {
      const json = new SpiffeBundle(TD, {
        x509: new X509Bundle(TD, [K.rootA.cert]),
        jwt: new JwtBundle(TD, [importJwtAuthority('k-ec', K.ec.publicKey.export({ format: 'jwk' }))]),
      }).toJson();
      assert.equal(json.spiffe_sequence, undefined);
      assert.equal(json.spiffe_refresh_hint, undefined);
      const [x, j] = json.keys;
      assert.equal(x!.use, 'x509-svid');
      assert.deepEqual(x!.x5c, [K.rootA.cert.der.toString('base64')]);
      assert.equal(x!.kid, undefined);
      assert.equal(j!.use, 'jwt-svid');
      assert.equal(j!.kid, 'k-ec');
    });

    for (const kt of ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as KeyType[]) {
      it(`an ${kt} root round-trips and still verifies SVIDs`, () => {
        const ca = TestCa.root({ keyType: kt });
        const text = new SpiffeBundle(TD, { x509: ca.bundle() }).marshal();
        const again = SpiffeBundle.parse(TD, text);
        assert.ok(again.x509.hasAuthority(ca.cert));
        assert.equal(verify(ca.svid('/workload').certificates, again, { at: T0 }).chain.length, 2);
      });
    }

    interface DocCase {
      name: string;
      text: () => string;
      code?: ErrorCode;
      /** For accepted documents: number of roots and of JWT keys. */
      counts?: [number, number];
      sequence?: number;
      refreshHint?: number;
    }

    const rootA = () => x509Key(K.rootA.cert);

    const CASES: DocCase[] = [
      { name: '"keys": [] (a valid empty bundle)', text: () => doc([]), counts: [0, 0] },
      {
        name: 'an empty bundle with spiffe_sequence 0 and refresh hint 0',
        text: () => doc([], { spiffe_sequence: 0, spiffe_refresh_hint: 0 }),
        counts: [0, 0],
        sequence: 0,
        refreshHint: 0,
      },
      {
        name: 'spiffe_sequence 2^53 - 1',
        text: () => doc([], { spiffe_sequence: Number.MAX_SAFE_INTEGER }),
        counts: [0, 0],
        sequence: Number.MAX_SAFE_INTEGER,
      },
      {
        name: 'one x509-svid and one jwt-svid key',
        text: () => doc([rootA(), jwtKey(K.ec.publicKey, 'k')], { spiffe_sequence: 3 }),
        counts: [1, 1],
        sequence: 3,
      },
      { name: '"keys" missing', text: () => fixture('bundle-keys-missing.json.txt'), code: 'ERR_BUNDLE_MALFORMED' },
      { name: '"keys" is an object', text: () => JSON.stringify({ keys: {} }), code: 'ERR_BUNDLE_MALFORMED' },
      { name: '"keys": null', text: () => JSON.stringify({ keys: null }), code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'the document is an array', text: () => JSON.stringify([rootA()]), code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'the document is a string', text: () => '"keys"', code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'a key that is an array', text: () => doc([[rootA()]]), code: 'ERR_BUNDLE_MALFORMED' },
      // x509-svid keys
      {
        name: 'an x509-svid key with two x5c certificates',
        text: () =>
          doc([x509Key(K.rootA.cert, { x5c: [K.rootA.cert, K.rootB.cert].map((c) => c.der.toString('base64')) })]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'an x509-svid key without x5c',
        text: () => doc([without(rootA(), 'x5c')]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'an x509-svid key with an empty x5c',
        text: () => doc([{ ...rootA(), x5c: [] }]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'an x509-svid key whose x5c is a string',
        text: () => doc([{ ...rootA(), x5c: K.rootA.cert.der.toString('base64') }]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'an x509-svid key whose x5c holds garbage',
        text: () => doc([{ ...rootA(), x5c: [Buffer.from('not a certificate').toString('base64')] }]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: "an x509-svid key whose x5c certificate is not the JWK's key",
        text: () => doc([x509Key(K.rootA.cert, { x: K.rootB.cert.publicKey.export({ format: 'jwk' }).x })]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'an x509-svid key whose JWK is another key of another kty',
        text: () => doc([{ ...K.rsa.publicKey.export({ format: 'jwk' }), use: 'x509-svid', x5c: rootA().x5c }]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'an x509-svid key whose JWK members are missing',
        text: () => doc([without(rootA(), 'y')]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      // jwt-svid keys
      {
        name: 'a jwt-svid key without kid',
        text: () => doc([jwtKey(K.ec.publicKey, undefined)]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a jwt-svid key with private material',
        text: () => doc([jwtKey(K.ec.privateKey, 'k')]),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'two jwt-svid keys with the same kid',
        text: () => doc([jwtKey(K.ec.publicKey, 'k'), jwtKey(K.ec2.publicKey, 'k')]),
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'an Ed25519 jwt-svid key is ignored (JWT-SVIDs have no EdDSA)',
        text: () => doc([jwtKey(K.ed.publicKey, 'k-ed')]),
        counts: [0, 0],
      },
      // ignored keys, which are not even checked
      {
        name: 'keys with an unknown use, no use, or an unknown kty are ignored',
        text: () =>
          doc([
            { ...rootA(), use: 'enc' },
            without(rootA(), 'use'),
            without(jwtKey(K.ec.publicKey, 'k-nouse'), 'use'),
            { kty: 'oct', k: 'c2VjcmV0', use: 'x509-svid', x5c: ['garbage'] },
            { kty: 'unknown', use: 'jwt-svid' },
            { use: 'jwt-svid' },
            jwtKey(K.ec.publicKey, 'k-ok'),
          ]),
        counts: [0, 1],
      },
      {
        name: 'use is case-sensitive: X509-SVID and JWT-SVID keys are ignored, however broken',
        text: () =>
          doc([
            { ...rootA(), use: 'X509-SVID', x5c: ['a', 'b'] },
            jwtKey(K.ec.publicKey, undefined, { use: 'JWT-SVID' }),
          ]),
        counts: [0, 0],
      },
      // metadata
      {
        name: 'a negative spiffe_sequence',
        text: () => fixture('bundle-negative-spiffe-sequence.json.txt'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a fractional spiffe_sequence',
        text: () => fixture('bundle-fractional-spiffe-sequence.json.txt'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'spiffe_sequence 2^53 (not a safe integer)',
        text: () => '{"keys":[],"spiffe_sequence":9007199254740992}',
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a string spiffe_refresh_hint',
        text: () => fixture('bundle-refresh-hint-is-a-string.json.txt'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a negative spiffe_refresh_hint',
        text: () => doc([], { spiffe_refresh_hint: -300 }),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a fractional spiffe_refresh_hint',
        text: () => doc([], { spiffe_refresh_hint: 0.5 }),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      // duplicate members anywhere, size, syntax
      {
        name: 'spiffe_sequence given twice',
        text: () => fixture('bundle-duplicate-spiffe-sequence.json.txt'),
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'spiffe_sequence given twice, once with an escaped name',
        text: () => '{"keys":[],"spiffe_sequence":1,"spiffe\\u005fsequence":2}',
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      { name: '"keys" given twice', text: () => '{"keys":[],"keys":[]}', code: 'ERR_BUNDLE_DUPLICATE' },
      {
        name: 'a member repeated inside a key',
        text: () => {
          const json = doc([rootA()]);
          return json.replace('"use":"x509-svid"', '"use":"x509-svid","use":"jwt-svid"');
        },
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'the same name in two different keys is not a duplicate',
        text: () => doc([rootA(), jwtKey(K.ec.publicKey, 'k')]),
        counts: [1, 1],
      },
      {
        name: 'a string value holding quotes and braces',
        text: () => doc([{ kty: 'oct', use: 'note', note: '"keys": {"a": "b", "a": "b"} \\"' }]),
        counts: [0, 0],
      },
      {
        name: 'invalid JSON',
        text: () => fixture('bundle-invalid-json-trailing-comma.json.txt'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      { name: 'an empty document', text: () => '', code: 'ERR_BUNDLE_MALFORMED' },
      {
        name: 'JSON nested 40 levels deep',
        text: () => `{"keys":[],"x":${'['.repeat(40)}${']'.repeat(40)}}`,
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'exactly 1 MiB',
        text: () => padTo(doc([], { spiffe_sequence: 1 }), MAX_BUNDLE_BYTES),
        counts: [0, 0],
        sequence: 1,
      },
      { name: '1 MiB + 1 byte', text: () => padTo(doc([]), MAX_BUNDLE_BYTES + 1), code: 'ERR_BUNDLE_TOO_LARGE' },
      {
        name: 'more than 512 keys',
        text: () => doc(Array.from({ length: 2 * MAX_KEYS_PER_BUNDLE + 1 }, () => ({}))),
        code: 'ERR_BUNDLE_TOO_LARGE',
      },
    ];

    for (const c of CASES) {
      it(`${c.name} -> ${c.code ?? `${c.counts![0]} root(s), ${c.counts![1]} JWT key(s)`}`, () => {
        if (c.code) {
          assertCode(() => SpiffeBundle.parse(TD, c.text()), c.code);
          return;
        }
        const b = SpiffeBundle.parse(TD, c.text());
        assert.deepEqual([b.x509.size, b.jwt.size], c.counts);
        assert.equal(b.sequence, c.sequence);
        assert.equal(b.refreshHint, c.refreshHint);
      });
    }

    it('a part of another trust domain is refused by the constructor', () => {
      assertCode(
        () => new SpiffeBundle(TD, { x509: new X509Bundle(OTHER, [K.rootOther.cert]) }),
        'ERR_BUNDLE_TRUST_DOMAIN',
      );
      assertCode(() => new SpiffeBundle(TD, { jwt: new JwtBundle(OTHER) }), 'ERR_BUNDLE_TRUST_DOMAIN');
    });

    it('is a bundle source for its own trust domain only', () => {
      const b = new SpiffeBundle(TD, { x509: new X509Bundle(TD, [K.rootA.cert]) });
      assert.equal(b.getX509BundleForTrustDomain(TD), b.x509);
      assert.equal(b.getJwtBundleForTrustDomain(TD), b.jwt);
      assert.equal(b.getX509BundleForTrustDomain(OTHER), undefined);
      assert.equal(b.getJwtBundleForTrustDomain(OTHER), undefined);
    });
  });

  // -------------------------------------------------------------------------------------------
  // BundleSet
  // -------------------------------------------------------------------------------------------

  describe('BundleSet', () => {
    const bundleA = () =>
      new SpiffeBundle(TD, {
        x509: new X509Bundle(TD, [K.rootA.cert]),
        jwt: new JwtBundle(TD, [importJwtAuthority('k-a', K.ec.publicKey.export({ format: 'jwk' }))]),
        sequence: 1,
        refreshHint: 60,
      });
    const bundleOther = () => new SpiffeBundle(OTHER, { x509: new X509Bundle(OTHER, [K.rootOther.cert]), sequence: 9 });

    it('holds two trust domains and hands out each one its own bundle', () => {
      const set = new BundleSet([bundleA(), bundleOther()]);
      assert.equal(set.size, 2);
      assert.deepEqual(
        set
          .bundles()
          .map((b) => b.trustDomain.name)
          .sort(),
        ['example.org', 'other.org'],
      );
      assert.equal(set.get(TD)!.sequence, 1);
      assert.equal(set.get(OTHER)!.sequence, 9);
      assert.ok(set.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootA.cert));
      assert.ok(!set.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootOther.cert));
      assert.ok(set.getX509BundleForTrustDomain(OTHER)!.hasAuthority(K.rootOther.cert));
      assert.ok(set.getJwtBundleForTrustDomain(TD)!.findAuthority('k-a'));
      assert.equal(set.getJwtBundleForTrustDomain(OTHER)!.size, 0);
      const absent = TrustDomain.parse('absent.example');
      assert.equal(set.get(absent), undefined);
      assert.equal(set.getX509BundleForTrustDomain(absent), undefined);
      assert.equal(set.getJwtBundleForTrustDomain(absent), undefined);
    });

    it('accepts X509Bundle and JwtBundle parts, each as its trust domain', () => {
      const set = new BundleSet([new X509Bundle(TD, [K.rootA.cert]), new JwtBundle(OTHER)]);
      assert.equal(set.get(TD)!.x509.size, 1);
      assert.equal(set.get(OTHER)!.jwt.size, 0);
    });

    interface SetCase {
      name: string;
      make: () => unknown;
      code: ErrorCode;
    }

    const REFUSALS: SetCase[] = [
      {
        name: 'two bundles for one trust domain',
        make: () => new BundleSet([bundleA(), new X509Bundle(TrustDomain.parse('example.org'), [K.rootB.cert])]),
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'a trust_domains document repeating a trust-domain name',
        make: () => BundleSet.parse(fixture('bundle-set-repeated-trust-domain.json.txt')),
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'a trust_domains document with an uppercase trust-domain name',
        make: () => BundleSet.parse(fixture('bundle-set-uppercase-trust-domain-name.json.txt')),
        code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR',
      },
      {
        name: 'a trust_domains document with a port in a trust-domain name',
        make: () => BundleSet.parse('{"trust_domains":{"example.org:8443":{"keys":[]}}}'),
        code: 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR',
      },
      {
        name: 'a trust_domains document keyed by a trust-domain ID instead of a name',
        make: () => BundleSet.parse('{"trust_domains":{"spiffe://example.org":{"keys":[]}}}'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a trust_domains document with an empty trust-domain name',
        make: () => BundleSet.parse('{"trust_domains":{"":{"keys":[]}}}'),
        code: 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING',
      },
      {
        name: 'a trust_domains document whose bundle lacks keys',
        make: () => BundleSet.parse('{"trust_domains":{"example.org":{"spiffe_sequence":1}}}'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'a document without trust_domains',
        make: () => BundleSet.parse('{"keys":[]}'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      {
        name: 'trust_domains is an array',
        make: () => BundleSet.parse('{"trust_domains":[]}'),
        code: 'ERR_BUNDLE_MALFORMED',
      },
      { name: 'invalid JSON', make: () => BundleSet.parse('{"trust_domains":'), code: 'ERR_BUNDLE_MALFORMED' },
    ];

    for (const c of REFUSALS) {
      it(`${c.name} -> ${c.code}`, () => {
        assertCode(c.make, c.code);
      });
    }

    it('toJson -> parse round trip keeps every trust domain apart', () => {
      const set = new BundleSet([bundleA(), bundleOther()]);
      const text = JSON.stringify(set.toJson());
      const again = BundleSet.parse(text);
      assert.equal(again.size, 2);
      assert.deepEqual(again.toJson(), set.toJson());
      assert.equal(again.get(TD)!.refreshHint, 60);
      assert.ok(again.getJwtBundleForTrustDomain(TD)!.findAuthority('k-a')!.key.equals(K.ec.publicKey));
      assert.ok(again.getX509BundleForTrustDomain(OTHER)!.hasAuthority(K.rootOther.cert));
      assert.deepEqual(Object.keys(set.toJson().trust_domains).sort(), ['example.org', 'other.org']);
    });

    it('an empty trust_domains map is an empty set', () => {
      assert.equal(BundleSet.parse('{"trust_domains":{}}').size, 0);
    });

    it('with() replaces the bundle of a trust domain and leaves the original set alone', () => {
      const set = new BundleSet([bundleA(), bundleOther()]);
      const replaced = set.with(new X509Bundle(TD, [K.rootB.cert]));
      assert.equal(replaced.size, 2);
      assert.ok(replaced.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootB.cert));
      assert.ok(!replaced.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootA.cert), 'replaced, not merged');
      assert.equal(replaced.getJwtBundleForTrustDomain(TD)!.size, 0, 'the whole bundle is replaced');
      assert.ok(set.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootA.cert), 'the original is unchanged');
      assert.equal(replaced.get(OTHER), set.get(OTHER));
      const added = set.with(new JwtBundle(TrustDomain.parse('third.example')));
      assert.equal(added.size, 3);
      assert.equal(set.size, 2);
    });
  });

  // -------------------------------------------------------------------------------------------
  // parseBundleDocument
  // -------------------------------------------------------------------------------------------

  describe('parseBundleDocument', () => {
    it('PEM roots with a trust domain', () => {
      const set = parseBundleDocument(K.rootA.cert.toPem() + K.rootB.cert.toPem(), TD);
      assert.equal(set.size, 1);
      assert.equal(set.getX509BundleForTrustDomain(TD)!.size, 2);
    });

    it('PEM roots as bytes, after leading whitespace', () => {
      const set = parseBundleDocument(Buffer.from(`\n  \n${K.rootA.cert.toPem()}`), TD);
      assert.ok(set.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootA.cert));
    });

    it('PEM roots after a text preamble (as openssl x509 -text writes them)', () => {
      const set = parseBundleDocument(`subject=O = svidkit test\nissuer=same\n${K.rootA.cert.toPem()}`, TD);
      assert.ok(set.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootA.cert));
    });

    it('a single SPIFFE bundle JSON with a trust domain', () => {
      const text = new SpiffeBundle(TD, { x509: new X509Bundle(TD, [K.rootA.cert]), sequence: 5 }).marshal();
      const set = parseBundleDocument(`\n${text}`, TD);
      assert.equal(set.size, 1);
      assert.equal(set.get(TD)!.sequence, 5);
      assert.ok(set.getX509BundleForTrustDomain(TD)!.hasAuthority(K.rootA.cert));
    });

    it('a trust_domains map (no trust domain argument needed)', () => {
      const set = new BundleSet([new X509Bundle(TD, [K.rootA.cert]), new X509Bundle(OTHER, [K.rootOther.cert])]);
      const again = parseBundleDocument(JSON.stringify(set.toJson()));
      assert.equal(again.size, 2);
      assert.ok(again.getX509BundleForTrustDomain(OTHER)!.hasAuthority(K.rootOther.cert));
    });

    interface DocumentCase {
      name: string;
      input: () => string;
      trustDomain?: TrustDomain;
      code: ErrorCode;
    }

    const REFUSALS: DocumentCase[] = [
      { name: 'PEM roots without a trust domain', input: () => K.rootA.cert.toPem(), code: 'ERR_BUNDLE_TRUST_DOMAIN' },
      {
        name: 'a PEM root whose SPIFFE ID is of another trust domain',
        input: () => K.rootA.cert.toPem() + K.rootOther.cert.toPem(),
        trustDomain: TD,
        code: 'ERR_BUNDLE_TRUST_DOMAIN',
      },
      {
        name: 'a single SPIFFE bundle without a trust domain',
        input: () => doc([x509Key(K.rootA.cert)]),
        code: 'ERR_BUNDLE_TRUST_DOMAIN',
      },
      {
        name: 'a repeated trust domain in a trust_domains map',
        input: () => fixture('bundle-set-repeated-trust-domain.json.txt'),
        code: 'ERR_BUNDLE_DUPLICATE',
      },
      {
        name: 'a YAML document',
        input: () => fixture('bundle-neither-json-nor-pem.txt'),
        trustDomain: TD,
        code: 'ERR_BUNDLE_MALFORMED',
      },
      { name: 'an empty document', input: () => '', trustDomain: TD, code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'a JSON array', input: () => '[]', trustDomain: TD, code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'a JSON object without keys', input: () => '{}', trustDomain: TD, code: 'ERR_BUNDLE_MALFORMED' },
      { name: 'invalid JSON', input: () => '{"keys": [', trustDomain: TD, code: 'ERR_BUNDLE_MALFORMED' },
      {
        name: 'more than 4 MiB',
        input: () => padTo(doc([]), 4 * MAX_BUNDLE_BYTES + 1),
        trustDomain: TD,
        code: 'ERR_BUNDLE_TOO_LARGE',
      },
      {
        name: 'a single SPIFFE bundle over 1 MiB (the bound SpiffeBundle.parse keeps too)',
        input: () => padTo(doc([]), MAX_BUNDLE_BYTES + 1),
        trustDomain: TD,
        code: 'ERR_BUNDLE_TOO_LARGE',
      },
    ];

    for (const c of REFUSALS) {
      it(`${c.name} -> ${c.code}`, () => {
        assertCode(() => parseBundleDocument(c.input(), c.trustDomain), c.code);
      });
    }

    it('a single SPIFFE bundle whose x509-svid root has the SPIFFE ID of another trust domain is refused', () => {
      // Regression: the root check once ran on the PEM form only.
      const text = doc([x509Key(K.rootOther.cert)]);
      assertCode(() => parseBundleDocument(text, TD), 'ERR_BUNDLE_TRUST_DOMAIN');
    });
  });
});
