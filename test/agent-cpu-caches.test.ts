/**
 * What the agent remembers to keep a rotation cheap, and why no remembered answer can be stale: parsed
 * intermediates by exact DER, verified signatures by the exact SPKI of the issuer key, SPKIs and key
 * types by KeyObject, and the leaf's key compared by its exact bytes before any import.
 */
import { strict as assert } from 'node:assert';
import { ECDH, sign as cryptoSign } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate as AsnCertificate, SubjectPublicKeyInfo, TBSCertificate } from '@peculiar/asn1-x509';
import { BundleSet } from '../lib/bundle/index.js';
import { generateKeyPair, keyTypeOf, samePublicKey, spkiDer } from '../lib/keys/index.js';
import { readElement } from '../lib/internal/der.js';
import { Certificate, CertificateCache } from '../lib/x509/certificate.js';
import { verify, X509Svid } from '../lib/x509svid/index.js';
import { assertCode } from './helpers/assert.js';
import { T0, TestCa } from './helpers/ca.js';

/** `cert` with its TBSCertificate changed by `edit` and signed again with `key` (ECDSA P-256, SHA-256). */
function resign(cert: Certificate, edit: (tbs: TBSCertificate) => void, key: Parameters<typeof cryptoSign>[2]) {
  const asn = AsnConvert.parse(cert.der, AsnCertificate);
  edit(asn.tbsCertificate);
  const tbs = new Uint8Array(AsnConvert.serialize(asn.tbsCertificate));
  const signed = new AsnCertificate({
    tbsCertificate: AsnConvert.parse(tbs, TBSCertificate),
    signatureAlgorithm: asn.signatureAlgorithm,
    signatureValue: new Uint8Array(cryptoSign('sha256', tbs, key)).buffer,
  });
  return Certificate.fromDer(new Uint8Array(AsnConvert.serialize(signed)));
}

describe('agent rotation caches', () => {
  const root = TestCa.root();
  const bundle = new BundleSet([root.bundle()]);

  describe('CertificateCache', () => {
    it('answers a chain whose intermediate differs only in its bytes with that intermediate, not the one seen before', () => {
      // Same subject name, same key, different issuer: only the bytes tell the two intermediates apart,
      // and a leaf signed with that key verifies under either. A cache keyed by anything less than the
      // exact DER would hand back the trusted one and let the untrusted chain through.
      const interKey = generateKeyPair();
      const trusted = root.intermediate({ keyPair: interKey });
      const untrusted = TestCa.root().intermediate({ keyPair: interKey });
      assert.ok(trusted.cert.subjectDer.equals(untrusted.cert.subjectDer));
      const leafKey = generateKeyPair();
      const good = trusted.leaf('/w', { keyPair: leafKey, notBefore: new Date(T0.getTime() - 60_000) });
      const bad = untrusted.leaf('/w', { keyPair: leafKey, notBefore: new Date(T0.getTime() - 60_000) });

      const cache = new CertificateCache();
      const parse = (chain: Certificate[]) =>
        chain.map((c, k) => (k === 0 ? Certificate.fromDer(c.der) : cache.fromDer(c.der)));
      const first = parse(good.chain);
      assert.equal(verify(X509Svid.fromParts(first, good.key).certificates, bundle, { at: T0 }).chain.length, 3);
      const again = parse(good.chain);
      assert.equal(again[1], first[1], 'the same bytes are answered from the cache');

      const second = parse(bad.chain);
      assert.notEqual(second[1], first[1]);
      assert.ok(second[1]!.der.equals(untrusted.cert.der));
      assertCode(
        () => verify(X509Svid.fromParts(second, bad.key).certificates, bundle, { at: T0 }),
        'ERR_X509SVID_UNTRUSTED',
      );
      assert.equal(cache.size, 2);
    });

    it('refuses a certificate that does not parse every time and never keeps it', () => {
      const cache = new CertificateCache();
      const truncated = Buffer.from(root.cert.der).subarray(0, root.cert.der.length - 1);
      for (let i = 0; i < 2; i++) assertCode(() => cache.fromDer(truncated), 'ERR_X509_MALFORMED');
      assertCode(() => cache.fromDer(Buffer.alloc(16 * 1024 + 1, 0x30)), 'ERR_X509_MALFORMED');
      assert.equal(cache.size, 0);
    });

    it('keeps at most max certificates, the least recently used going first', () => {
      const certs = [root.intermediate(), root.intermediate(), root.intermediate()].map((ca) => ca.cert);
      const cache = new CertificateCache(2);
      const a = cache.fromDer(certs[0]!.der);
      cache.fromDer(certs[1]!.der);
      assert.equal(cache.fromDer(certs[0]!.der), a);
      cache.fromDer(certs[2]!.der);
      assert.equal(cache.size, 2);
      assert.equal(cache.fromDer(certs[0]!.der), a, 'recently used, so kept');
      assert.notEqual(cache.fromDer(certs[1]!.der).der, certs[0]!.der);
      assert.throws(() => new CertificateCache(0), TypeError);
    });
  });

  describe('Certificate.isSignedBy', () => {
    it('remembers a verified issuer key by its SPKI, and still refuses every other key', () => {
      const inter = root.intermediate();
      const other = TestCa.root();
      assert.equal(inter.cert.isSignedBy(root.cert.publicKey), true);
      assert.equal(inter.cert.isSignedBy(root.cert.publicKey), true);
      assert.equal(inter.cert.isSignedBy(other.cert.publicKey), false, 'another key after a remembered success');
      assert.equal(inter.cert.isSignedBy(inter.cert.publicKey), false);
      // A certificate with the same subject and key, signed by someone else, has its own answer.
      const forged = resign(inter.cert, () => undefined, other.key);
      assert.equal(forged.isSignedBy(root.cert.publicKey), false);
      assert.equal(forged.isSignedBy(other.cert.publicKey), true);
      assert.equal(inter.cert.isSignedBy(root.cert.publicKey), true);
    });
  });

  describe('keys', () => {
    it('answers spkiDer, samePublicKey and keyTypeOf for each key, and hands out copies', () => {
      const a = generateKeyPair();
      const b = generateKeyPair();
      const c = generateKeyPair('ed25519');
      assert.equal(samePublicKey(a.privateKey, a.publicKey), true);
      assert.equal(samePublicKey(a.privateKey, b.publicKey), false);
      assert.equal(samePublicKey(b.privateKey, b.publicKey), true);
      assert.equal(samePublicKey(a.privateKey, c.publicKey), false);
      assert.equal(keyTypeOf(a.privateKey), 'ec-p256');
      assert.equal(keyTypeOf(c.privateKey), 'ed25519');
      const mine = spkiDer(a.privateKey);
      const expected = a.publicKey.export({ format: 'der', type: 'spki' });
      assert.ok(mine.equals(expected));
      mine.fill(0);
      assert.ok(spkiDer(a.privateKey).equals(expected), 'changing a returned SPKI changes nothing remembered');
      assert.equal(samePublicKey(a.privateKey, a.publicKey), true);
    });
  });

  describe('the leaf key check', () => {
    it('compares a leaf whose SPKI encodes the key differently (a compressed EC point) as OpenSSL writes both keys', () => {
      const inter = root.intermediate();
      const { chain, key } = inter.leaf('/w');
      const point = chain[0]!.publicKey.export({ format: 'jwk' });
      const raw = Buffer.concat([
        Buffer.from([4]),
        Buffer.from(point.x!, 'base64url'),
        Buffer.from(point.y!, 'base64url'),
      ]);
      const compressed = ECDH.convertKey(raw, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
      const spki = AsnConvert.parse(chain[0]!.publicKey.export({ format: 'der', type: 'spki' }), SubjectPublicKeyInfo);
      spki.subjectPublicKey = new Uint8Array(compressed).buffer;
      const leaf = resign(chain[0]!, (tbs) => (tbs.subjectPublicKeyInfo = spki), inter.key);
      assert.ok(!leaf.der.includes(raw), 'the leaf carries the compressed point');
      // The fast path (equal bytes) does not apply; the fallback is the byte comparison of both keys as
      // OpenSSL exports them, which keeps the compressed form apart, as svidkit always has.
      assert.equal(leaf.hasPublicKey(key), samePublicKey(key, leaf.publicKey));
      assert.equal(chain[0]!.hasPublicKey(key), true);
      assertCode(() => X509Svid.fromParts([leaf, ...chain.slice(1)], key), 'ERR_X509SVID_KEY_MISMATCH');
      assertCode(
        () => X509Svid.fromParts([leaf, ...chain.slice(1)], generateKeyPair().privateKey),
        'ERR_X509SVID_KEY_MISMATCH',
      );
    });

    it('reads the public key of a version 1 certificate, which has no version field', () => {
      const pair = generateKeyPair();
      const v1 = resign(
        root.cert,
        (tbs) => {
          tbs.version = 0;
          tbs.extensions = undefined;
          tbs.subjectPublicKeyInfo = AsnConvert.parse(
            pair.publicKey.export({ format: 'der', type: 'spki' }),
            SubjectPublicKeyInfo,
          );
        },
        root.key,
      );
      const tbs = readElement(v1.tbs, 0);
      assert.notEqual(v1.tbs[tbs.contentStart], 0xa0, 'no [0] version field');
      assert.equal(samePublicKey(v1.publicKey, pair.publicKey), true);
      assert.equal(v1.hasPublicKey(pair.privateKey), true);
      assert.equal(v1.hasPublicKey(root.key), false);
    });
  });
});
