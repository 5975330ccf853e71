/**
 * Fuzzing PEM and DER input: lib/internal/pem.ts, Certificate.fromDer/fromPem, parseCsr and the CA's
 * CSR walk (SvidIssuer.issue), X509Svid.parse, parseChainPem, X.509-SVID chain verification with
 * mutated chains, and private key PEM loading. Real DER from the test CA is mutated (bytes, lengths,
 * tags, truncation, duplication) next to fully random input; every call returns a valid value or throws
 * a SvidkitError, and valid input round-trips.
 */
import { strict as assert } from 'node:assert';
import type { KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { X509Bundle } from '../lib/bundle/index.js';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  Attribute,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate as AsnCertificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  Name,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { SvidIssuer } from '../lib/ca/issuer.js';
import { readElement } from '../lib/internal/der.js';
import { oid, sequence, TAG, tlv } from '../lib/internal/der-write.js';
import { decodePem, encodePem, MAX_PEM_BYTES } from '../lib/internal/pem.js';
import {
  generateKeyPair,
  KEY_TYPES,
  keyTypeOf,
  loadPrivateKeyPem,
  privateKeyToPem,
  samePublicKey,
  spkiDer,
} from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { Certificate, MAX_CERTIFICATE_BYTES } from '../lib/x509/certificate.js';
import { signatureAlgorithmFor, signatureAlgorithmName, signWith } from '../lib/x509/algorithms.js';
import { buildCsr, csrToPem, MAX_CSR_BYTES, parseCsr, parseCsrPem } from '../lib/x509/csr.js';
import { parseChainPem, verify, X509Svid } from '../lib/x509svid/index.js';
import { T0, TestCa } from './helpers/ca.js';
import { anyText, FuzzStats, mutatedBytes, mutatedText, typed } from './helpers/fuzz.js';
import type { SvidkitError } from '../lib/errors/index.js';

// ---------------------------------------------------------------------------------------------
// Corpus: real certificates, CSRs and keys, built at test time

const root = TestCa.root();
const inter = root.intermediate({ pathLen: 0 });
const leafEc = inter.leaf('/ns/prod/sa/web', { dnsNames: ['web.prod.svc'], subject: [['CN', 'web']] });
const rsaRoot = TestCa.root({ keyType: 'rsa-2048', trustDomain: 'rsa.example' });
const leafRsa = rsaRoot.leaf('/rsa', { keyType: 'rsa-2048' });
const constrained = TestCa.root({
  trustDomain: 'nc.example',
  nameConstraints: { permittedUris: ['nc.example'], permittedDns: ['.svc'], excludedDns: ['bad.svc'] },
});
const leafNc = constrained.leaf('/nc', { dnsNames: ['a.svc'] });
const edRoot = TestCa.root({ keyType: 'ed25519', trustDomain: 'ed.example' });
const leafEd = edRoot.leaf('/ed', { keyType: 'ed25519' });

const CHAIN = [leafEc.chain[0]!, inter.cert];
const BUNDLES = [root.bundle(), rsaRoot.bundle(), constrained.bundle(), edRoot.bundle()];
const ALL_CERTS: Certificate[] = [
  ...CHAIN,
  root.cert,
  leafRsa.chain[0]!,
  rsaRoot.cert,
  leafNc.chain[0]!,
  constrained.cert,
  leafEd.chain[0]!,
  edRoot.cert,
];
const CERT_DERS = ALL_CERTS.map((c) => c.der);
const CHAIN_PEM = CHAIN.map((c) => c.toPem()).join('');

const KEYS: KeyObject[] = [leafEc.key, leafRsa.key, leafEd.key, generateKeyPair('ec-p384').privateKey];
const KEY_PEMS = KEYS.map((k) => privateKeyToPem(k));
const CSR_DERS = [
  buildCsr({ key: KEYS[0]! }),
  buildCsr({ key: KEYS[0]!, uris: ['spiffe://example.org/w'], dnsNames: ['a.example'] }),
  buildCsr({ key: KEYS[1]!, subject: [['CN', 'rsa']] }),
  buildCsr({ key: KEYS[2]! }),
  buildCsr({ key: KEYS[3]!, uris: ['spiffe://example.org/p384'] }),
];
const issuer = new SvidIssuer({ cert: root.cert, key: root.key });
const WORKLOAD = SpiffeId.parse('spiffe://example.org/fuzz/workload');

// ---------------------------------------------------------------------------------------------
// Generators

const certDer = fc.constantFrom(...CERT_DERS);
const mutatedCertDer = mutatedBytes(certDer);
const randomBytes = fc.uint8Array({ maxLength: 2048 });
/** A DER SEQUENCE header in front of random bytes, so that more of them get past the first byte. */
const framedRandom = fc
  .uint8Array({ maxLength: 600 })
  .map((b) => Buffer.concat([Buffer.from([0x30, 0x82, b.length >> 8, b.length & 0xff]), b]));

/** PEM text mutations: base64url instead of base64, padding, CRLF, headers, doubled blocks. */
const pemTweak = fc.constantFrom<(pem: string) => string>(
  (p) => p.replace(/\+/g, '-').replace(/\//g, '_'),
  (p) => p.replace(/\n-----END/, '==\n-----END'),
  (p) => p.replace(/\n/g, '\r\n'),
  (p) => p.replace(/-----\n/, '-----\nProc-Type: 4,ENCRYPTED\n'),
  (p) => p + p,
  (p) => p.repeat(11),
  (p) => p.replace(/\n(?!-)/g, ''),
  (p) => p.replace('CERTIFICATE-----\n', 'CERTIFICATE-----\n\n\n'),
  (p) => p.replace(/-----END [A-Z ]+-----\n?$/, ''),
  (p) => p.replace('BEGIN', 'BEGIN  '),
  (p) => `junk before\n${p}junk after\n`,
  (p) => p.replace(/(-----BEGIN [A-Z ]+-----\n)/, '$1$1'),
  (p) => p.replace(/[A-Za-z0-9+/]{8}\n/, '        \n'),
);
const pemText = (bases: fc.Arbitrary<string>) =>
  fc.oneof(
    mutatedText(bases),
    fc.tuple(bases, pemTweak).map(([p, t]) => t(p)),
    fc.tuple(bases, pemTweak, pemTweak).map(([p, t, u]) => u(t(p))),
    mutatedBytes(bases.map((p) => Buffer.from(p))).map((b) => b.toString('latin1')),
  );
const chainPem = fc.oneof(
  fc.constant(CHAIN_PEM),
  fc.subarray(ALL_CERTS, { minLength: 1 }).map((cs) => cs.map((c) => c.toPem()).join('')),
  fc
    .array(mutatedCertDer, { minLength: 1, maxLength: 3 })
    .map((ds) => ds.map((d) => encodePem('CERTIFICATE', d)).join('')),
);
const keyPem = fc.constantFrom(...KEY_PEMS);

/** A date anywhere from 1950 to 9999 (UTCTime and GeneralizedTime), weighted to the corpus' validity. */
const instant = fc.oneof(
  fc.constant(T0),
  fc.integer({ min: -48, max: 48 }).map((h) => new Date(T0.getTime() + h * 3600_000)),
  fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
);

// ---------------------------------------------------------------------------------------------
// Checks on whatever parsed

/** The SvidkitError `fn` throws (the contract's only kind of failure). */
function assertThrowsTyped(fn: () => unknown): SvidkitError {
  const r = typed('call', 0, fn);
  assert.ok(!r.ok, 'expected a SvidkitError');
  return r.error;
}

/** Every accessor of a parsed certificate works, and the certificate round-trips through PEM. */
function checkCertificate(c: Certificate): void {
  assert.ok(c.der.length <= MAX_CERTIFICATE_BYTES);
  assert.equal(typeof c.serialHex, 'string');
  assert.ok(
    Number.isFinite(c.notBefore.getTime()) && Number.isFinite(c.notAfter.getTime()),
    'an invalid validity date',
  );
  assert.equal(typeof c.signatureAlgorithm, 'string');
  assert.equal(typeof c.fingerprint256(), 'string');
  assert.equal(typeof c.isSelfIssued(), 'boolean');
  assert.equal(typeof c.subjectIsEmpty, 'boolean');
  typed('Certificate.subject', c.der.length, () => [c.subject, c.issuer]);
  const key = typed('Certificate.publicKey', c.der.length, () => c.publicKey);
  if (key.ok) typed('Certificate.isSignedBy', c.der.length, () => c.isSignedBy(key.value));
  const again = Certificate.fromPem(c.toPem());
  assert.equal(again.length, 1);
  assert.ok(again[0]!.der.equals(c.der));
}

describe('fuzz: PEM, DER certificates, CSRs, X.509-SVIDs and private keys', function () {
  this.timeout(120_000);
  const stats = new FuzzStats('x509');
  after(() => stats.report());

  it('decodePem: random and mutated text, blocks re-encode to the same DER', () => {
    const input = fc.oneof(
      anyText,
      pemText(fc.constant(CHAIN_PEM)),
      pemText(keyPem),
      pemText(fc.constant(csrToPem(CSR_DERS[1]!))),
    );
    fc.assert(
      fc.property(input, fc.integer({ min: 1, max: 12 }), (text, max) => {
        stats.count('decodePem');
        const r = typed('decodePem', Buffer.byteLength(text), () => decodePem(text, max));
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_PEM_/);
          return;
        }
        assert.ok(r.value.length <= max);
        for (const b of r.value) {
          assert.ok(b.der.length > 0);
          const back = decodePem(encodePem(b.type, b.der), 1);
          assert.equal(back[0]!.type, b.type);
          assert.ok(back[0]!.der.equals(b.der));
        }
      }),
      stats.params(3),
    );
  });

  it('decodePem: input past the size bound is refused before any work', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), fc.boolean(), (extra, asBytes) => {
        stats.count('decodePem');
        const text = CHAIN_PEM.repeat(Math.ceil((MAX_PEM_BYTES + extra) / CHAIN_PEM.length));
        const input = asBytes ? Buffer.from(text) : text;
        const r = typed('decodePem', text.length, () => decodePem(input, 1000));
        assert.ok(!r.ok && r.error.code === 'ERR_PEM_TOO_LARGE');
      }),
      stats.params(0.1),
    );
  });

  it('Certificate.fromDer: random bytes are refused with a typed error', () => {
    fc.assert(
      fc.property(fc.oneof(randomBytes, framedRandom), (der) => {
        stats.count('Certificate.fromDer');
        const r = typed('Certificate.fromDer', der.length, () => Certificate.fromDer(der));
        if (r.ok) checkCertificate(r.value);
      }),
      stats.params(2),
    );
  });

  it('Certificate.fromDer: mutated real certificates parse fully or are refused', () => {
    fc.assert(
      fc.property(mutatedCertDer, (der) => {
        stats.count('Certificate.fromDer');
        const r = typed('Certificate.fromDer', der.length, () => Certificate.fromDer(der));
        if (r.ok) checkCertificate(r.value);
        else assert.match(r.error.code, /^ERR_(X509|DER)_/);
      }),
      stats.params(3),
    );
  });

  it('Certificate.fromDer: whatever the hand-written reader accepts, the ASN.1 library decodes to the same fields', () => {
    // The reader (lib/x509/decode.ts) replaced a schema-driven parse of the whole certificate; the
    // library stays as the oracle. The reader may refuse more (RFC 5280 times, string-only Name values,
    // 0x00/0xff booleans) but never accepts what the library refuses, nor reads a field differently.
    let compared = 0;
    fc.assert(
      fc.property(fc.oneof(certDer, mutatedCertDer), (der) => {
        stats.count('Certificate.fromDer');
        const r = typed('Certificate.fromDer', der.length, () => Certificate.fromDer(der));
        if (!r.ok) return;
        const c = r.value;
        const asn = AsnConvert.parse(der, AsnCertificate);
        const tbs = asn.tbsCertificate;
        compared++;
        assert.equal(
          c.serialHex,
          Buffer.from(tbs.serialNumber)
            .toString('hex')
            .replace(/^0+(?=.)/, ''),
        );
        assert.equal(c.notBefore.getTime(), tbs.validity.notBefore.getTime().getTime());
        assert.equal(c.notAfter.getTime(), tbs.validity.notAfter.getTime().getTime());
        // Names are kept as signed; the library re-encodes what it decoded, which is lossy for text that
        // is not valid in its string type. Both must read the same.
        const sameName = (mine: Buffer, theirs: Name) =>
          Buffer.from(AsnConvert.serialize(AsnConvert.parse(mine, Name))).equals(
            Buffer.from(AsnConvert.serialize(theirs)),
          );
        assert.ok(sameName(c.subjectDer, tbs.subject));
        assert.ok(sameName(c.issuerDer, tbs.issuer));
        assert.equal(c.subjectIsEmpty, tbs.subject.length === 0);
        assert.equal(c.signatureAlgorithm, signatureAlgorithmName(asn.signatureAlgorithm.algorithm));
        const ext = (oid: string) => tbs.extensions?.find((e) => e.extnID === oid);
        const bc = ext(id_ce_basicConstraints);
        assert.deepEqual(
          c.basicConstraints,
          bc &&
            (({ cA, pathLenConstraint }) => ({ cA, pathLen: pathLenConstraint, critical: bc.critical }))(
              AsnConvert.parse(bc.extnValue, BasicConstraints),
            ),
        );
        const ku = ext(id_ce_keyUsage);
        assert.deepEqual(
          c.keyUsage,
          ku && { bits: AsnConvert.parse(ku.extnValue, KeyUsage).toNumber(), critical: ku.critical },
        );
        const eku = ext(id_ce_extKeyUsage);
        assert.deepEqual(c.extKeyUsage, eku && [...AsnConvert.parse(eku.extnValue, ExtendedKeyUsage)]);
        const ski = ext(id_ce_subjectKeyIdentifier);
        assert.deepEqual(
          c.subjectKeyId,
          ski && Buffer.from(AsnConvert.parse(ski.extnValue, SubjectKeyIdentifier).buffer),
        );
        const aki = ext(id_ce_authorityKeyIdentifier);
        const akiId = aki && AsnConvert.parse(aki.extnValue, AuthorityKeyIdentifier).keyIdentifier;
        assert.deepEqual(c.authorityKeyId, akiId && Buffer.from(akiId.buffer));
        assert.ok(
          Buffer.from(asn.signatureValue).equals(
            Buffer.from(c.der.subarray(c.der.length - asn.signatureValue.byteLength)),
          ),
        );
      }),
      stats.params(3),
    );
    assert.ok(compared > 0, 'no certificate was compared');
  });

  it('Certificate.fromDer: oversized certificates are refused', () => {
    fc.assert(
      fc.property(certDer, fc.integer({ min: 1, max: 4096 }), (der, extra) => {
        stats.count('Certificate.fromDer');
        const big = Buffer.concat([der, Buffer.alloc(MAX_CERTIFICATE_BYTES - der.length + extra)]);
        const r = typed('Certificate.fromDer', big.length, () => Certificate.fromDer(big));
        assert.ok(!r.ok && r.error.code === 'ERR_X509_MALFORMED');
      }),
      stats.params(0.1),
    );
  });

  it('Certificate.fromPem and parseChainPem: mutated PEM chains', () => {
    fc.assert(
      fc.property(pemText(chainPem), (pem) => {
        stats.count('Certificate.fromPem');
        const size = Buffer.byteLength(pem);
        const r = typed('Certificate.fromPem', size, () => Certificate.fromPem(pem));
        if (r.ok) r.value.forEach(checkCertificate);
        const c = typed('parseChainPem', size, () => parseChainPem(pem));
        if (c.ok) assert.ok(c.value.length >= 1 && c.value.length <= 10);
      }),
      stats.params(1),
    );
  });

  it('valid certificates round-trip through DER and PEM', () => {
    fc.assert(
      fc.property(fc.subarray(ALL_CERTS, { minLength: 1 }), (certs) => {
        stats.count('Certificate round trip');
        const pem = certs.map((c) => c.toPem()).join('');
        const parsed = Certificate.fromPem(pem);
        assert.deepEqual(
          parsed.map((c) => c.fingerprint256()),
          certs.map((c) => c.fingerprint256()),
        );
        for (const c of parsed) checkCertificate(c);
      }),
      stats.params(0.05),
    );
  });

  it('parseCsr and the CA issuer: random and mutated CSRs', () => {
    const csr = fc.oneof(
      { weight: 4, arbitrary: mutatedBytes(fc.constantFrom(...CSR_DERS)) },
      { weight: 1, arbitrary: randomBytes },
      { weight: 1, arbitrary: framedRandom },
    );
    fc.assert(
      fc.property(csr, (der) => {
        stats.count('parseCsr');
        const parsed = typed('parseCsr', der.length, () => parseCsr(der));
        if (!parsed.ok) assert.match(parsed.error.code, /^ERR_CSR_/);
        const issued = typed('SvidIssuer.issue', der.length, () =>
          issuer.issue({ id: WORKLOAD, csrDer: der, now: T0, ttlMs: 3600_000 }),
        );
        if (!issued.ok) {
          assert.ok(['ERR_CSR_MALFORMED', 'ERR_CSR_SIGNATURE', 'ERR_KEY_UNSUPPORTED'].includes(issued.error.code));
          return;
        }
        // What the CA signs parses back and verifies against the bundle, for the CSR's own key.
        const cert = Certificate.fromDer(issued.value.der);
        assert.equal(verify([cert], root.bundle(), { at: T0 }).id.toString(), WORKLOAD.toString());
        assert.ok(parsed.ok, 'the issuer accepted a CSR that parseCsr refuses');
        assert.ok(samePublicKey(cert.publicKey, parsed.value.publicKey));
      }),
      stats.params(2),
    );
  });

  it('parseCsr: oversized CSRs and mutated CSR PEM', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 1, max: 2048 }).map((n) => Buffer.concat([CSR_DERS[0]!, Buffer.alloc(MAX_CSR_BYTES + n)])),
          pemText(fc.constantFrom(...CSR_DERS.map((d) => csrToPem(d)))).map((p) => Buffer.from(p)),
        ),
        (input) => {
          stats.count('parseCsr');
          if (input.length > MAX_CSR_BYTES && input[0] === 0x30) {
            const r = typed('parseCsr', input.length, () => parseCsr(input));
            assert.ok(!r.ok && r.error.code === 'ERR_CSR_MALFORMED');
            return;
          }
          const r = typed('parseCsrPem', input.length, () => parseCsrPem(input));
          if (r.ok) assert.ok(parseCsr(r.value.der).publicKey.equals(r.value.publicKey));
        },
      ),
      stats.params(1),
    );
  });

  it('valid CSRs of every key type parse and are issued', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...KEYS),
        fc.array(fc.constantFrom('a.example', 'b.example'), { maxLength: 2 }),
        (key, dns) => {
          stats.count('CSR round trip');
          const der = buildCsr({ key, uris: [WORKLOAD.toString()], dnsNames: dns });
          assert.ok(samePublicKey(parseCsr(der).publicKey, key));
          const cert = Certificate.fromDer(issuer.issue({ id: WORKLOAD, csrDer: der, now: T0, ttlMs: 600_000 }).der);
          assert.ok(samePublicKey(cert.publicKey, key));
          assert.equal(verify([cert], root.bundle(), { at: T0 }).id.toString(), WORKLOAD.toString());
        },
      ),
      stats.params(0.05),
    );
  });

  it('verify: mutated, reordered, repeated and foreign chains', () => {
    const member = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...ALL_CERTS) },
      {
        weight: 2,
        arbitrary: mutatedCertDer.map((d) => {
          try {
            return Certificate.fromDer(d);
          } catch {
            return undefined;
          }
        }),
      },
    );
    const chain = fc.oneof(
      fc.constant(CHAIN),
      fc
        .array(member, { minLength: 0, maxLength: 12 })
        .map((cs) => cs.filter((c): c is Certificate => c !== undefined)),
      fc
        .tuple(fc.constantFrom(...CHAIN), fc.array(member, { maxLength: 4 }))
        .map(([l, cs]) => [l, ...cs.filter((c): c is Certificate => c !== undefined)]),
    );
    const bundle = fc.oneof(
      fc.constantFrom(...BUNDLES),
      fc.subarray(ALL_CERTS).map((cs) => new X509Bundle(root.trustDomain, cs)),
    );
    fc.assert(
      fc.property(chain, bundle, instant, (certs, b, at) => {
        stats.count('x509svid.verify');
        const size = certs.reduce((n, c) => n + c.der.length, 0);
        const r = typed('x509svid.verify', size, () => verify(certs, b, { at }));
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_(X509SVID|X509|SPIFFEID)_/);
          return;
        }
        // A verified path is made of untouched certificates only, and ends at one of the bundle's roots.
        for (const c of r.value.chain)
          assert.ok(
            CERT_DERS.some((d) => d.equals(c.der)),
            'a mutated certificate verified',
          );
        assert.ok(b.hasAuthority(r.value.chain[r.value.chain.length - 1]!));
        assert.equal(r.value.id.toString(), certs[0]!.subjectAltName!.uris[0]);
      }),
      stats.params(1),
    );
  });

  it('X509Svid.parse: mutated chains and keys; a valid SVID round-trips', () => {
    const keyText = fc.oneof(keyPem, pemText(keyPem), anyText);
    fc.assert(
      fc.property(fc.oneof(fc.constant(CHAIN_PEM), pemText(chainPem)), keyText, (certs, key) => {
        stats.count('X509Svid.parse');
        const size = Buffer.byteLength(certs) + Buffer.byteLength(key);
        const r = typed('X509Svid.parse', size, () => X509Svid.parse(certs, key));
        if (!r.ok) return;
        const svid = r.value;
        assert.ok(samePublicKey(svid.privateKey, svid.leaf.publicKey));
        const again = X509Svid.parse(svid.certificatesPem(), svid.privateKeyPem());
        assert.ok(again.id.equals(svid.id));
        assert.equal(again.certificatesPem(), svid.certificatesPem());
      }),
      stats.params(1),
    );
    const svid = X509Svid.parse(CHAIN_PEM, privateKeyToPem(leafEc.key));
    assert.equal(svid.id.toString(), 'spiffe://example.org/ns/prod/sa/web');
  });

  it('loadPrivateKeyPem: random, mutated and foreign key PEM', () => {
    const foreign = fc.constantFrom(
      ...KEY_PEMS.map((p) => p.replace(/PRIVATE KEY/g, 'EC PRIVATE KEY')),
      ...KEY_PEMS.map((p) => p.replace(/PRIVATE KEY/g, 'ENCRYPTED PRIVATE KEY')),
      ...KEY_PEMS.map((p) => p.replace(/PRIVATE KEY/g, 'PUBLIC KEY')),
      KEY_PEMS[0]! + KEY_PEMS[1]!,
      CHAIN_PEM + KEY_PEMS[0]!,
    );
    const input = fc.oneof(
      keyPem,
      pemText(keyPem),
      foreign,
      anyText,
      mutatedBytes(fc.constantFrom(...KEYS.map((k) => k.export({ format: 'der', type: 'pkcs8' })))).map((d) =>
        encodePem('PRIVATE KEY', d),
      ),
    );
    fc.assert(
      fc.property(input, (pem) => {
        stats.count('loadPrivateKeyPem');
        const r = typed('loadPrivateKeyPem', Buffer.byteLength(pem), () => loadPrivateKeyPem(pem));
        if (!r.ok) {
          assert.match(r.error.code, /^ERR_(KEY|PEM)_/);
          return;
        }
        assert.equal(r.value.type, 'private');
        assert.ok(KEY_TYPES.includes(keyTypeOf(r.value)));
        assert.ok(samePublicKey(loadPrivateKeyPem(privateKeyToPem(r.value)), r.value));
      }),
      stats.params(2),
    );
  });

  describe('regressions found by fuzzing', () => {
    /** The leaf with the given bytes of its DER replaced, found by content. */
    function patched(find: number[], replace: number[]): Buffer {
      const der = Buffer.from(leafEc.chain[0]!.der);
      const at = der.indexOf(Buffer.from(find));
      assert.ok(at >= 0);
      return Buffer.concat([der.subarray(0, at), Buffer.from(replace), der.subarray(at + find.length)]);
    }

    it('refuses a certificate whose subject Name is shorter than the RDN inside it', () => {
      // SEQUENCE (14) { SET (12) { CN "web" } } becomes SEQUENCE (2) { SET (12) ... }: the SET runs on
      // into the public key. The ASN.1 reader used to accept it, reading the name out of its neighbour.
      const der = patched([0x30, 0x0e, 0x31, 0x0c], [0x30, 0x02, 0x31, 0x0c]);
      const err = assertThrowsTyped(() => Certificate.fromDer(der));
      assert.equal(err.code, 'ERR_X509_MALFORMED');
      assert.match(err.message, /runs past its container/);
    });

    it('reports a certificate OpenSSL cannot read as ERR_X509_MALFORMED from subject and issuer', () => {
      // A UTF8String CN holding bytes that are not UTF-8: the ASN.1 reader takes it, OpenSSL does not.
      const cert = Certificate.fromDer(patched([0x0c, 0x03, 0x77, 0x65, 0x62], [0x0c, 0x03, 0xff, 0xfe, 0xfd]));
      assert.equal(assertThrowsTyped(() => cert.subject).code, 'ERR_X509_MALFORMED');
      assert.equal(assertThrowsTyped(() => cert.issuer).code, 'ERR_X509_MALFORMED');
    });

    it('refuses a certificate whose issuer Name holds a value that is not a string (the ASN.1 writer could not encode it again)', () => {
      // The issuer CN "intermediate" tagged UTCTime instead of UTF8String: once read as text and refused
      // on writing; now refused while reading, as Go's x509 does.
      const cn = [...Buffer.from('intermediate')];
      const der = patched([0x0c, 0x0c, ...cn], [0x17, 0x0c, ...cn]);
      assert.equal(assertThrowsTyped(() => Certificate.fromDer(der)).code, 'ERR_X509_MALFORMED');
    });

    /** GeneralNames holding one directoryName whose CN is tagged UTCTime. */
    const oddDirectoryName = sequence(
      tlv(0xa4, sequence(tlv(0x31, sequence(oid('2.5.4.3'), tlv(0x17, Buffer.from('bad')))))),
    );

    it('refuses a certificate whose subjectAltName holds a directoryName that cannot be encoded again', () => {
      const san = new Extension({
        extnID: id_ce_subjectAltName,
        critical: false,
        extnValue: new OctetString(oddDirectoryName),
      });
      // The test CA parses what it signs, so the refusal comes out of signing already.
      assert.equal(
        assertThrowsTyped(() => root.leaf('/odd', { noSan: true, extraExtensions: [san] })).code,
        'ERR_X509_MALFORMED',
      );
    });

    it('refuses a CSR whose requested subjectAltName holds a directoryName that cannot be encoded again', () => {
      const key = KEYS[0]!;
      const san = new Extension({
        extnID: id_ce_subjectAltName,
        critical: false,
        extnValue: new OctetString(oddDirectoryName),
      });
      const info = new CertificationRequestInfo({
        version: 0,
        subject: new Name(),
        subjectPKInfo: AsnConvert.parse(spkiDer(key), SubjectPublicKeyInfo),
        attributes: new Attributes([
          new Attribute({ type: '1.2.840.113549.1.9.14', values: [AsnConvert.serialize(new Extensions([san]))] }),
        ]),
      });
      const infoDer = new Uint8Array(AsnConvert.serialize(info));
      const alg = signatureAlgorithmFor(key);
      const csr = sequence(
        infoDer,
        Buffer.from(AsnConvert.serialize(alg)),
        tlv(TAG.BIT_STRING, Buffer.from([0]), signWith(alg, key, infoDer)),
      );
      assert.equal(assertThrowsTyped(() => parseCsr(csr)).code, 'ERR_CSR_MALFORMED');
    });

    it('refuses a self-signed CSR whose subject Name is shorter than the RDN inside it', () => {
      const der = buildCsr({ key: KEYS[0]!, subject: [['CN', 'web']] });
      const at = der.indexOf(Buffer.from([0x30, 0x0e, 0x31, 0x0c]));
      const info = readElement(der, readElement(der, 0).contentStart);
      const mangled = Buffer.from(der.subarray(info.start, info.end));
      mangled[at - info.start + 1] = 0x02;
      // Signed again, so that only the framing is wrong: the ASN.1 reader used to accept it.
      const alg = signatureAlgorithmFor(KEYS[0]!);
      const sig = signWith(alg, KEYS[0]!, mangled);
      const csr = sequence(mangled, Buffer.from(AsnConvert.serialize(alg)), tlv(TAG.BIT_STRING, Buffer.from([0]), sig));
      const err = assertThrowsTyped(() => parseCsr(csr));
      assert.equal(err.code, 'ERR_CSR_MALFORMED');
      assert.ok(err.cause instanceof Error && /runs past its container/.test(err.cause.message));
    });
  });
});
