/**
 * Tests of lib/ca/issuer (SvidIssuer, the CA's issuance hot path) and lib/internal/der-write: the
 * certificate must be the profile of signWorkloadSvid byte for byte apart from the serial, verify with
 * svidkit and `openssl verify -x509_strict`, take nothing but the key from the CSR, and turn every
 * malformed input into a SvidkitError with an exact code.
 */
import { strict as assert } from 'node:assert';
import { createHash, generateKeyPairSync, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, KeyUsage, Time } from '@peculiar/asn1-x509';
import { BundleSet, X509Bundle } from '../lib/bundle/index.js';
import { CLOCK_SKEW_MS, type Signer, selfSignedRoot, signWorkloadSvid } from '../lib/ca/index.js';
import { type IssueRequest, SvidIssuer } from '../lib/ca/issuer.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import { readElement } from '../lib/internal/der.js';
import {
  DER_NULL,
  header,
  namedBits,
  oid,
  sequence,
  TAG,
  tlv,
  unsignedInteger,
  x509Time,
} from '../lib/internal/der-write.js';
import { generateKeyPair, type KeyPair, type KeyType, spkiDer } from '../lib/keys/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import {
  buildCsr,
  buildName,
  Certificate,
  extensions as ext,
  KeyUsageBit,
  MAX_CSR_BYTES,
  parseCsr,
  SIG_OID,
  signatureAlgorithmFor,
  signWith,
} from '../lib/x509/index.js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH, verify } from '../lib/x509svid/index.js';
import { assertCode } from './helpers/assert.js';
import { T0, TestCa } from './helpers/ca.js';
import { openssl, requireOpenssl } from './helpers/openssl.js';

const td = TrustDomain.parse('example.org');
const ID = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;
/** The key types every table runs over (RSA-3072/4096 only where their size matters: generation is slow). */
const TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const satisfies readonly KeyType[];
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

const pairs = new Map<KeyType, KeyPair>();
/** One key pair per type for the whole file. */
function pairOf(type: KeyType): KeyPair {
  let p = pairs.get(type);
  if (!p) {
    p = generateKeyPair(type);
    pairs.set(type, p);
  }
  return p;
}

function makeRoot(keyType: KeyType = 'ec-p256', opts: { now?: Date; ttlMs?: number } = {}): Signer {
  const pair = generateKeyPair(keyType);
  const cert = selfSignedRoot({
    trustDomain: td,
    key: pair.privateKey,
    publicKey: pair.publicKey,
    now: opts.now ?? T0,
    ttlMs: opts.ttlMs ?? DAY,
  });
  return { cert, key: pair.privateKey };
}

const roots = new Map<KeyType, Signer>();
function rootOf(type: KeyType): Signer {
  let r = roots.get(type);
  if (!r) {
    r = makeRoot(type);
    roots.set(type, r);
  }
  return r;
}

function dnsNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `svc-${i}.prod.example.org`);
}

const ser = (v: unknown): string => Buffer.from(AsnConvert.serialize(v)).toString('hex');

/** Every extension as [OID, critical, value hex], in order. */
function extensionList(cert: Certificate): Array<[string, boolean, string]> {
  return (cert.asn.tbsCertificate.extensions ?? []).map((e) => [
    e.extnID,
    e.critical,
    Buffer.from(e.extnValue.buffer).toString('hex'),
  ]);
}

/** The TBSCertificate bytes before and after the serial number's content octets. */
function tbsAroundSerial(cert: Certificate): { before: string; after: string; serial: Buffer } {
  const tbs = cert.tbs;
  const seq = readElement(tbs, 0);
  const version = readElement(tbs, seq.contentStart, seq.end);
  const serial = readElement(tbs, version.end, seq.end);
  return {
    before: Buffer.from(tbs.subarray(0, serial.contentStart)).toString('hex'),
    after: Buffer.from(tbs.subarray(serial.end)).toString('hex'),
    serial: Buffer.from(tbs.subarray(serial.contentStart, serial.end)),
  };
}

/**
 * Asserts that `mine` has the profile of `ref`: every field and every extension (OID, criticality,
 * value) equal, and the TBSCertificate identical byte for byte except the serial's content.
 */
function assertSameProfile(mine: Certificate, ref: Certificate): void {
  const a = mine.asn.tbsCertificate;
  const b = ref.asn.tbsCertificate;
  assert.equal(a.version, b.version);
  assert.equal(ser(a.signature), ser(b.signature));
  assert.equal(ser(mine.asn.signatureAlgorithm), ser(ref.asn.signatureAlgorithm));
  assert.deepEqual(mine.issuerDer, ref.issuerDer);
  assert.deepEqual(mine.subjectDer, ref.subjectDer);
  assert.equal(ser(a.validity), ser(b.validity));
  assert.equal(ser(a.subjectPublicKeyInfo), ser(b.subjectPublicKeyInfo));
  assert.equal(a.issuerUniqueID, undefined);
  assert.equal(a.subjectUniqueID, undefined);
  assert.deepEqual(extensionList(mine), extensionList(ref));
  const x = tbsAroundSerial(mine);
  const y = tbsAroundSerial(ref);
  assert.equal(x.before, y.before);
  assert.equal(x.after, y.after);
  assert.equal(x.serial.length, 16);
  assert.ok((x.serial[0]! & 0x80) === 0 && x.serial[0] !== 0, 'serial is positive and minimal');
  assert.notDeepEqual(x.serial, y.serial);
}

/** Issues with an issuer and returns the parsed certificate, checking the returned metadata on the way. */
function issueCert(issuer: SvidIssuer, req: IssueRequest): Certificate {
  const out = issuer.issue(req);
  const cert = Certificate.fromDer(out.der);
  assert.deepEqual(cert.der, out.der);
  assert.equal(out.serialHex, cert.serialHex);
  assert.equal(out.notAfter.getTime(), cert.notAfter.getTime());
  return cert;
}

/** The raw SubjectPublicKeyInfo bytes of a certificate, sliced from its TBSCertificate. */
function spkiOf(cert: Certificate): Buffer {
  return Buffer.from(AsnConvert.serialize(cert.asn.tbsCertificate.subjectPublicKeyInfo));
}

/** A CSR built from raw parts, so that any field can be wrong while the signature still verifies. */
function rawCsr(opts: {
  key: KeyObject;
  spki?: Uint8Array;
  version?: Uint8Array;
  subject?: Uint8Array;
  /** The whole [0] attributes element; null leaves it out. */
  attributes?: Uint8Array | null;
  sigAlg?: Uint8Array;
  signInfo?: (info: Buffer) => Buffer;
  unusedBits?: number;
}): Buffer {
  const info = sequence(
    opts.version ?? Buffer.from([TAG.INTEGER, 1, 0]),
    opts.subject ?? sequence(),
    opts.spki ?? spkiDer(opts.key),
    ...(opts.attributes === null ? [] : [opts.attributes ?? tlv(0xa0)]),
  );
  // The default algorithm is looked up only when needed: keys svidkit does not sign with have none.
  const alg = () => signatureAlgorithmFor(opts.key);
  const signature = opts.signInfo ? opts.signInfo(info) : signWith(alg(), opts.key, info);
  return sequence(
    info,
    opts.sigAlg ?? Buffer.from(AsnConvert.serialize(alg())),
    tlv(TAG.BIT_STRING, Uint8Array.of(opts.unusedBits ?? 0), signature),
  );
}

/** An extensionRequest attribute carrying `extensions`. */
function extensionRequest(extensions: Extensions): Buffer {
  return tlv(0xa0, sequence(oid(OID_EXTENSION_REQUEST), tlv(0x31, Buffer.from(AsnConvert.serialize(extensions)))));
}

/** Seeded PRNG (mulberry32), so that the fuzz corpus is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function assertCsrError(err: unknown, what: string): ErrorCode {
  assert.ok(err instanceof SvidkitError, `${what}: expected a SvidkitError, got ${String(err)}`);
  assert.match(err.code, /^ERR_(CSR|KEY|DER)_/, `${what}: unexpected code ${err.code} (${err.message})`);
  return err.code;
}

describe('lib/internal/der-write', () => {
  const lengths = [0, 1, 127, 128, 255, 256, 65535, 65536, 0x123456];
  for (const n of lengths) {
    it(`writes a minimal length for ${n} content octets that the DER reader reads back`, () => {
      const el = tlv(TAG.OCTET_STRING, Buffer.alloc(n, 0xab));
      const back = readElement(el, 0);
      assert.equal(back.tag, TAG.OCTET_STRING);
      assert.equal(back.end, el.length);
      assert.equal(back.end - back.contentStart, n);
      assert.equal(header(TAG.OCTET_STRING, n).length, back.contentStart);
    });
  }

  const oids: Array<[string, string]> = [
    ['2.5.29.17', '0603551d11'],
    ['1.2.840.113549.1.1.11', '06092a864886f70d01010b'],
    ['1.2.840.10045.3.1.7', '06082a8648ce3d030107'],
    ['1.3.101.112', '06032b6570'],
    ['2.999.3', '0603883703'],
  ];
  for (const [dotted, hex] of oids) {
    it(`encodes OID ${dotted}`, () => assert.equal(oid(dotted).toString('hex'), hex));
  }
  for (const bad of ['', '1', '3.1', '1.40', '1.2.x', '1..2', '1.02']) {
    it(`refuses the OID "${bad}"`, () => assert.throws(() => oid(bad), RangeError));
  }

  const kuCases = [
    KeyUsageBit.digitalSignature,
    KeyUsageBit.digitalSignature | KeyUsageBit.keyEncipherment,
    KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign,
    KeyUsageBit.decipherOnly,
    KeyUsageBit.digitalSignature | KeyUsageBit.decipherOnly,
  ];
  for (const bits of kuCases) {
    it(`encodes key usage bits 0x${bits.toString(16)} as @peculiar/asn1-x509 does`, () => {
      assert.equal(namedBits(bits).toString('hex'), ser(new KeyUsage(bits)));
    });
  }

  const times = [
    '1950-01-01T00:00:00Z',
    '1999-12-31T23:59:59Z',
    '2026-06-01T12:00:00Z',
    '2049-12-31T23:59:59Z',
    '2050-01-01T00:00:00Z',
    '2051-03-04T05:06:07Z',
    '9999-12-31T23:59:59Z',
  ];
  for (const t of times) {
    it(`encodes ${t} as @peculiar/asn1-x509 Time does`, () => {
      assert.equal(x509Time(new Date(t)).toString('hex'), ser(new Time(new Date(t))));
    });
  }
  it('uses GeneralizedTime before 1950 and drops milliseconds', () => {
    assert.equal(x509Time(new Date('1949-12-31T23:59:59Z')).toString('latin1', 2), '19491231235959Z');
    assert.equal(x509Time(new Date('2030-01-02T03:04:05.678Z')).toString('latin1', 2), '300102030405Z');
    assert.throws(() => x509Time(new Date(NaN)), RangeError);
  });

  it('encodes unsigned integers minimally', () => {
    assert.equal(unsignedInteger(Uint8Array.of()).toString('hex'), '020100');
    assert.equal(unsignedInteger(Uint8Array.of(0, 0, 5)).toString('hex'), '020105');
    assert.equal(unsignedInteger(Uint8Array.of(0x80)).toString('hex'), '02020080');
    assert.equal(unsignedInteger(Uint8Array.of(0, 0x7f, 1)).toString('hex'), '02027f01');
  });
});

describe('SvidIssuer', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-issuer-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs `openssl verify -x509_strict` on a leaf against a root at `at`; asserts OK. */
  function opensslVerify(ctx: Mocha.Context, name: string, root: Certificate, leafDer: Buffer, at: Date): void {
    const version = requireOpenssl(ctx);
    ctx.test!.title += ` (${version})`;
    const rootPem = join(dir, `${name}-root.pem`);
    const leafPem = join(dir, `${name}-leaf.pem`);
    writeFileSync(rootPem, root.toPem());
    writeFileSync(leafPem, new X509Certificate(leafDer).toString());
    const r = openssl([
      'verify',
      '-x509_strict',
      '-attime',
      String(Math.floor(at.getTime() / 1000)),
      '-CAfile',
      rootPem,
      leafPem,
    ]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /: OK\n/);
  }

  describe('profile equality with signWorkloadSvid', () => {
    const cases: Array<{ leaf: KeyType; signer: KeyType; dns: number }> = [];
    for (const leaf of TYPES) for (const dns of [0, 1, 20]) cases.push({ leaf, signer: 'ec-p256', dns });
    for (const signer of TYPES) if (signer !== 'ec-p256') cases.push({ leaf: 'ec-p256', signer, dns: 1 });
    cases.push({ leaf: 'rsa-3072', signer: 'rsa-2048', dns: 2 });

    for (const c of cases) {
      it(`${c.leaf} leaf, ${c.signer} signer, ${c.dns} DNS names`, () => {
        const root = rootOf(c.signer);
        const pair = pairOf(c.leaf);
        const csrDer = buildCsr({ key: pair.privateKey, uris: [ID.toString()] });
        const names = dnsNames(c.dns);
        const mine = issueCert(new SvidIssuer(root), { id: ID, dnsNames: names, csrDer, now: T0, ttlMs: HOUR });
        const ref = signWorkloadSvid({
          id: ID,
          dnsNames: names,
          publicKey: parseCsr(csrDer).publicKey,
          signer: root,
          now: T0,
          ttlMs: HOUR,
        });
        assertSameProfile(mine, ref);
        // The SPKI is the CSR's, byte for byte.
        assert.deepEqual(spkiOf(mine), spkiDer(pair.publicKey));
        assert.ok(mine.isSignedBy(root.cert.publicKey));
        assert.deepEqual(mine.subjectAltName?.dnsNames, names);
      });
    }

    it('RSA-4096 leaf (long-form SPKI length) with 60 DNS names', () => {
      const root = rootOf('ec-p256');
      const pair = generateKeyPair('rsa-4096');
      const csrDer = buildCsr({ key: pair.privateKey });
      const names = dnsNames(60);
      const mine = issueCert(new SvidIssuer(root), { id: ID, dnsNames: names, csrDer, now: T0, ttlMs: HOUR });
      const ref = signWorkloadSvid({
        id: ID,
        dnsNames: names,
        publicKey: pair.publicKey,
        signer: root,
        now: T0,
        ttlMs: HOUR,
      });
      assertSameProfile(mine, ref);
      assert.equal(mine.keyUsage?.bits, KeyUsageBit.digitalSignature | KeyUsageBit.keyEncipherment);
    });
  });

  describe('verification by svidkit and openssl -x509_strict', () => {
    for (const keyType of TYPES) {
      it(`${keyType} leaf signed by a ${keyType} CA`, function () {
        const root = rootOf(keyType);
        const pair = pairOf(keyType);
        const csrDer = buildCsr({ key: pair.privateKey });
        const cert = issueCert(new SvidIssuer(root), {
          id: ID,
          dnsNames: ['web.example.org'],
          csrDer,
          now: T0,
          ttlMs: HOUR,
        });
        const bundles = new BundleSet([new X509Bundle(td, [root.cert])]);
        assert.ok(verify([cert], bundles, { at: T0 }).id.equals(ID));
        opensslVerify(this, keyType, root.cert, cert.der, T0);
      });
    }

    it('3-octet lengths: 1,000 long DNS names (openssl and Node parse it)', function () {
      const root = rootOf('ec-p256');
      const names = Array.from({ length: 1000 }, (_, i) => `${'x'.repeat(60)}-${i}.example.org`);
      const out = new SvidIssuer(root).issue({
        id: ID,
        dnsNames: names,
        csrDer: buildCsr({ key: pairOf('ec-p256').privateKey }),
        now: T0,
        ttlMs: HOUR,
      });
      assert.equal(out.der[1], 0x83, 'the certificate length takes three octets');
      const node = new X509Certificate(out.der);
      assert.equal(node.subjectAltName?.split(', ').length, 1001);
      assert.ok(node.verify(root.cert.publicKey));
      opensslVerify(this, 'long', root.cert, out.der, T0);
    });
  });

  describe('validity', () => {
    it("caps notAfter at the signer's notAfter", () => {
      const root = makeRoot('ec-p256', { ttlMs: 10 * 60_000 });
      const cert = issueCert(new SvidIssuer(root), {
        id: ID,
        csrDer: buildCsr({ key: pairOf('ec-p256').privateKey }),
        now: T0,
        ttlMs: HOUR,
      });
      assert.equal(cert.notAfter.getTime(), root.cert.notAfter.getTime());
      assert.equal(cert.notBefore.getTime(), T0.getTime() - CLOCK_SKEW_MS);
    });

    it('drops milliseconds (RFC 5280 times have whole seconds) and returns notAfter as encoded', () => {
      const root = rootOf('ec-p256');
      const now = new Date(T0.getTime() + 999);
      const out = new SvidIssuer(root).issue({
        id: ID,
        csrDer: buildCsr({ key: pairOf('ec-p256').privateKey }),
        now,
        ttlMs: HOUR,
      });
      assert.equal(out.notAfter.getTime(), T0.getTime() + HOUR);
      assert.equal(Certificate.fromDer(out.der).notBefore.getTime(), T0.getTime() - CLOCK_SKEW_MS);
    });

    const switchCases: Array<{ now: string; tags: [number, number] }> = [
      { now: '2049-06-01T00:00:00Z', tags: [TAG.UTC_TIME, TAG.UTC_TIME] },
      { now: '2049-12-31T23:30:00Z', tags: [TAG.UTC_TIME, TAG.GENERALIZED_TIME] },
      { now: '2051-06-01T00:00:00Z', tags: [TAG.GENERALIZED_TIME, TAG.GENERALIZED_TIME] },
    ];
    for (const c of switchCases) {
      it(`encodes validity at ${c.now} as ${c.tags.map((t) => (t === TAG.UTC_TIME ? 'UTCTime' : 'GeneralizedTime')).join(' / ')}`, function () {
        const root = makeRoot('ec-p256', { now: new Date('2048-01-01T00:00:00Z'), ttlMs: 12 * YEAR });
        const now = new Date(c.now);
        const pair = pairOf('ec-p256');
        const cert = issueCert(new SvidIssuer(root), {
          id: ID,
          csrDer: buildCsr({ key: pair.privateKey }),
          now,
          ttlMs: HOUR,
        });
        const ref = signWorkloadSvid({ id: ID, publicKey: pair.publicKey, signer: root, now, ttlMs: HOUR });
        assertSameProfile(cert, ref);
        // TBSCertificate: version, serial, signature, issuer, validity.
        const tbs = cert.tbs;
        const seq = readElement(tbs, 0);
        let el = readElement(tbs, seq.contentStart);
        for (let i = 0; i < 4; i++) el = readElement(tbs, el.end);
        const nb = readElement(tbs, el.contentStart);
        const na = readElement(tbs, nb.end);
        assert.deepEqual([nb.tag, na.tag], c.tags);
        assert.equal(cert.notBefore.getTime(), now.getTime() - CLOCK_SKEW_MS);
        assert.equal(cert.notAfter.getTime(), now.getTime() + HOUR);
        opensslVerify(this, `time-${c.now.slice(0, 4)}`, root.cert, cert.der, now);
      });
    }

    it('refuses to issue from a signer that has expired at now', () => {
      const root = makeRoot('ec-p256', { ttlMs: HOUR });
      assert.throws(
        () =>
          new SvidIssuer(root).issue({
            id: ID,
            csrDer: buildCsr({ key: pairOf('ec-p256').privateKey }),
            now: new Date(T0.getTime() + 2 * HOUR),
            ttlMs: HOUR,
          }),
        { code: 'ERR_X509SVID_EXPIRED', message: /^ca: / },
      );
    });
  });

  describe('nothing but the key is taken from the CSR', () => {
    it('a CSR asking for CA=true, keyCertSign, a subject and other names gets the entry profile', () => {
      const pair = pairOf('ec-p256');
      const attrs = extensionRequest(
        new Extensions([
          ext.basicConstraints(true, 3),
          ext.keyUsage(KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign),
          ext.subjectAltName(
            { uris: ['spiffe://example.org/admin', 'spiffe://other.org/x'], dnsNames: ['evil.example'] },
            false,
          ),
          ext.subjectKeyId(Buffer.alloc(20, 7)),
        ]),
      );
      const subject = Buffer.from(AsnConvert.serialize(buildName([['CN', 'evil']])));
      const csrDer = rawCsr({ key: pair.privateKey, subject, attributes: attrs });
      parseCsr(csrDer); // the reference parser accepts it, so the CSR itself is valid
      const root = rootOf('ec-p256');
      const id = SpiffeId.parse('spiffe://example.org/ns/a');
      const cert = issueCert(new SvidIssuer(root), { id, dnsNames: ['a.example.org'], csrDer, now: T0, ttlMs: HOUR });
      assert.deepEqual(cert.subjectAltName?.uris, [id.toString()]);
      assert.deepEqual(cert.subjectAltName?.dnsNames, ['a.example.org']);
      assert.equal(cert.subjectAltName?.critical, true);
      assert.equal(cert.subjectIsEmpty, true);
      assert.equal(cert.basicConstraints?.cA, false);
      assert.equal(cert.basicConstraints?.pathLen, undefined);
      assert.equal(cert.keyUsage?.bits, KeyUsageBit.digitalSignature);
      assert.deepEqual(cert.extKeyUsage, [OID_SERVER_AUTH, OID_CLIENT_AUTH]);
      const expectedSki = createHash('sha1')
        .update(new Uint8Array(cert.asn.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey))
        .digest();
      assert.deepEqual(cert.subjectKeyId, expectedSki);
      assert.deepEqual(cert.authorityKeyId, root.cert.subjectKeyId);
      const ref = signWorkloadSvid({
        id,
        dnsNames: ['a.example.org'],
        publicKey: pair.publicKey,
        signer: root,
        now: T0,
        ttlMs: HOUR,
      });
      assertSameProfile(cert, ref);
    });

    it('gives distinct positive 128-bit serials', () => {
      const issuer = new SvidIssuer(rootOf('ec-p256'));
      const csrDer = buildCsr({ key: pairOf('ec-p256').privateKey });
      const serials = new Set<string>();
      for (let i = 0; i < 200; i++) {
        const out = issuer.issue({ id: ID, csrDer, now: T0, ttlMs: HOUR });
        assert.match(out.serialHex, /^[1-7]?[0-9a-f]{1,31}$/);
        serials.add(out.serialHex);
      }
      assert.equal(serials.size, 200);
    });
  });

  describe('refusals', () => {
    const p256 = () => pairOf('ec-p256').privateKey;
    const base = (): Omit<IssueRequest, 'csrDer'> => ({ id: ID, now: T0, ttlMs: HOUR });
    const malformed = (): Array<[string, () => Uint8Array]> => [
      ['an empty input', () => new Uint8Array(0)],
      ['a single byte', () => Uint8Array.of(0x30)],
      ['more than MAX_CSR_BYTES', () => Buffer.alloc(MAX_CSR_BYTES + 1, 0x30)],
      ['trailing data after the CSR', () => Buffer.concat([buildCsr({ key: p256() }), Uint8Array.of(0)])],
      ['an indefinite length', () => Buffer.from('3080020100', 'hex')],
      ['a non-minimal length', () => Buffer.from('30810100', 'hex')],
      ['a certificate instead of a CSR', () => rootOf('ec-p256').cert.der],
      ['version 1 (correctly signed)', () => rawCsr({ key: p256(), version: Buffer.from([TAG.INTEGER, 1, 1]) })],
      ['a two-octet version 0', () => rawCsr({ key: p256(), version: Buffer.from([TAG.INTEGER, 2, 0, 0]) })],
      ['no attributes element (correctly signed)', () => rawCsr({ key: p256(), attributes: null })],
      [
        'an element after the attributes',
        () => rawCsr({ key: p256(), attributes: Buffer.concat([tlv(0xa0), tlv(TAG.NULL)]) }),
      ],
      ['a subject that is not a SEQUENCE', () => rawCsr({ key: p256(), subject: tlv(0x31) })],
      ['a signature with unused bits', () => rawCsr({ key: p256(), unusedBits: 1 })],
      [
        'an unsupported signature algorithm (sha1WithRSAEncryption)',
        () =>
          rawCsr({
            key: pairOf('rsa-2048').privateKey,
            sigAlg: sequence(oid('1.2.840.113549.1.1.5'), DER_NULL),
            signInfo: (info) => sign('sha1', info, pairOf('rsa-2048').privateKey),
          }),
      ],
      [
        'ECDSA with NULL parameters',
        () => rawCsr({ key: p256(), sigAlg: sequence(oid(SIG_OID.ecdsaSha256), DER_NULL) }),
      ],
      [
        'an EC point that is not on the curve',
        () => {
          const spki = Buffer.from(spkiDer(p256()));
          spki[spki.length - 1]! ^= 1;
          return rawCsr({ key: p256(), spki });
        },
      ],
      [
        'an EC point of the wrong length',
        () => {
          const spki = Buffer.from(spkiDer(p256()));
          const bits = readElement(spki, readElement(spki, 2).end);
          return rawCsr({
            key: p256(),
            spki: sequence(
              spki.subarray(2, bits.start),
              tlv(TAG.BIT_STRING, spki.subarray(bits.contentStart, bits.end - 1)),
            ),
          });
        },
      ],
      [
        'an RSA key with trailing data in its BIT STRING',
        () => {
          const key = pairOf('rsa-2048').privateKey;
          const spki = Buffer.from(spkiDer(key));
          const alg = readElement(spki, readElement(spki, 0).contentStart);
          const bits = readElement(spki, alg.end);
          const spki2 = sequence(
            spki.subarray(alg.start, alg.end),
            tlv(TAG.BIT_STRING, spki.subarray(bits.contentStart, bits.end), Uint8Array.of(0)),
          );
          return rawCsr({ key, spki: spki2 });
        },
      ],
    ];
    for (const [name, make] of malformed()) {
      it(`ERR_CSR_MALFORMED: ${name}`, () => {
        const issuer = new SvidIssuer(rootOf('ec-p256'));
        assertCode(() => issuer.issue({ ...base(), csrDer: make() }), 'ERR_CSR_MALFORMED');
      });
    }

    for (const keyType of TYPES) {
      it(`ERR_CSR_SIGNATURE: a ${keyType} CSR with a flipped signature byte`, () => {
        const csrDer = Buffer.from(buildCsr({ key: pairOf(keyType).privateKey, uris: [ID.toString()] }));
        csrDer[csrDer.length - 1]! ^= 0x01;
        assertCode(() => new SvidIssuer(rootOf('ec-p256')).issue({ ...base(), csrDer }), 'ERR_CSR_SIGNATURE');
      });
    }
    it('ERR_CSR_SIGNATURE: a CSR signed by another key', () => {
      const csrDer = rawCsr({ key: p256(), signInfo: (info) => sign('sha256', info, generateKeyPair().privateKey) });
      assertCode(() => new SvidIssuer(rootOf('ec-p256')).issue({ ...base(), csrDer }), 'ERR_CSR_SIGNATURE');
    });
    it('ERR_CSR_SIGNATURE: an RSA algorithm on an EC key (the algorithm must fit the key)', () => {
      const csrDer = rawCsr({ key: p256(), sigAlg: sequence(oid(SIG_OID.rsaSha256), DER_NULL) });
      assertCode(() => new SvidIssuer(rootOf('ec-p256')).issue({ ...base(), csrDer }), 'ERR_CSR_SIGNATURE');
    });

    const keyCases: Array<[string, () => Uint8Array, readonly KeyType[] | undefined]> = [
      ['a P-384 key when only P-256 is allowed', () => buildCsr({ key: pairOf('ec-p384').privateKey }), ['ec-p256']],
      [
        'an RSA-2048 key when only EC is allowed',
        () => buildCsr({ key: pairOf('rsa-2048').privateKey }),
        ['ec-p256', 'ec-p384'],
      ],
      ['an Ed25519 key when only P-256 is allowed', () => buildCsr({ key: pairOf('ed25519').privateKey }), ['ec-p256']],
      ['a P-256 key when nothing is allowed', () => buildCsr({ key: p256() }), []],
      [
        'a P-521 key',
        () => {
          const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
          return rawCsr({
            key: privateKey,
            sigAlg: sequence(oid(SIG_OID.ecdsaSha512)),
            signInfo: (info) => sign('sha512', info, privateKey),
          });
        },
        undefined,
      ],
      [
        'an RSA-1024 key',
        () => {
          const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
          return rawCsr({
            key: privateKey,
            sigAlg: sequence(oid(SIG_OID.rsaSha256), DER_NULL),
            signInfo: (info) => sign('sha256', info, privateKey),
          });
        },
        undefined,
      ],
      [
        'an Ed448 key',
        () => {
          const { privateKey } = generateKeyPairSync('ed448');
          return rawCsr({
            key: privateKey,
            sigAlg: sequence(oid(SIG_OID.ed25519)),
            signInfo: (info) => sign(null, info, privateKey),
          });
        },
        undefined,
      ],
      [
        'a compressed EC point',
        () => {
          const pub = pairOf('ec-p256').publicKey;
          const jwk = pub.export({ format: 'jwk' });
          const y = Buffer.from(jwk.y!, 'base64url');
          const point = Buffer.concat([Uint8Array.of(2 | (y[31]! & 1)), Buffer.from(jwk.x!, 'base64url')]);
          const spki = sequence(
            sequence(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')),
            tlv(TAG.BIT_STRING, Uint8Array.of(0), point),
          );
          return rawCsr({ key: p256(), spki });
        },
        undefined,
      ],
      [
        'an RSA key without NULL parameters',
        () => {
          const key = pairOf('rsa-2048').privateKey;
          const spki = Buffer.from(spkiDer(key));
          const alg = readElement(spki, readElement(spki, 0).contentStart);
          const bits = readElement(spki, alg.end);
          return rawCsr({
            key,
            spki: sequence(sequence(oid('1.2.840.113549.1.1.1')), spki.subarray(bits.start, bits.end)),
          });
        },
        undefined,
      ],
    ];
    for (const [name, make, allowed] of keyCases) {
      it(`ERR_KEY_UNSUPPORTED: ${name}`, () => {
        const issuer = new SvidIssuer(rootOf('ec-p256'));
        const req: IssueRequest = { ...base(), csrDer: make(), ...(allowed ? { allowedKeyTypes: allowed } : {}) };
        assertCode(() => issuer.issue(req), 'ERR_KEY_UNSUPPORTED');
      });
    }
    it('accepts a key type that is in allowedKeyTypes', () => {
      const out = new SvidIssuer(rootOf('ec-p256')).issue({
        ...base(),
        csrDer: buildCsr({ key: pairOf('ed25519').privateKey }),
        allowedKeyTypes: ['ed25519'],
      });
      assert.ok(Certificate.fromDer(out.der).isSignedBy(rootOf('ec-p256').cert.publicKey));
    });

    const requestCases: Array<[string, Partial<IssueRequest>, ErrorCode]> = [
      ['a trust-domain ID', { id: td.id() }, 'ERR_X509SVID_INVALID_ID'],
      ['a non-ASCII DNS name', { dnsNames: ['bücher.example'] }, 'ERR_USAGE'],
      ['an empty DNS name', { dnsNames: [''] }, 'ERR_USAGE'],
      ['a DNS name with a NUL', { dnsNames: ['a.example.org\0.evil'] }, 'ERR_USAGE'],
      ['a DNS name with a space', { dnsNames: ['a example.org'] }, 'ERR_USAGE'],
      ['a date before year 0000', { now: new Date('-000001-06-01T00:00:00Z') }, 'ERR_USAGE'],
      ['an invalid date', { now: new Date(NaN) }, 'ERR_USAGE'],
      ['a zero TTL', { ttlMs: 0 }, 'ERR_USAGE'],
      ['a NaN TTL', { ttlMs: NaN }, 'ERR_USAGE'],
    ];
    for (const [name, patch, code] of requestCases) {
      it(`${code}: ${name}`, () => {
        const issuer = new SvidIssuer(rootOf('ec-p256'));
        const req = { ...base(), csrDer: buildCsr({ key: p256() }), ...patch };
        assert.throws(() => issuer.issue(req), { name: 'SvidkitError', code, message: /^ca: / });
      });
    }

    const signerCases: Array<[string, () => Signer, ErrorCode]> = [
      [
        'a key that is not the certificate key',
        () => ({ cert: rootOf('ec-p256').cert, key: p256() }),
        'ERR_X509SVID_KEY_MISMATCH',
      ],
      [
        'a certificate that is not a CA',
        () => {
          const { chain, key } = TestCa.root().leaf('/w');
          return { cert: chain[0]!, key };
        },
        'ERR_X509SVID_ISSUER_NOT_CA',
      ],
      [
        'a CA without keyCertSign',
        () => {
          const ca = TestCa.root({ keyUsage: KeyUsageBit.cRLSign });
          return { cert: ca.cert, key: ca.key };
        },
        'ERR_X509SVID_ISSUER_KEY_USAGE',
      ],
      [
        'a public key as signer key',
        () => ({ cert: rootOf('ec-p256').cert, key: rootOf('ec-p256').cert.publicKey }),
        'ERR_USAGE',
      ],
    ];
    for (const [name, make, code] of signerCases) {
      it(`constructor ${code}: ${name}`, () => {
        assert.throws(() => new SvidIssuer(make()), { name: 'SvidkitError', code, message: /^ca: / });
      });
    }
  });

  describe('fuzz', () => {
    it('2,000 seeded mutations (flip, truncate, extend) of valid CSRs: a valid certificate or a CSR/KEY/DER error', () => {
      const rand = prng(0x5eed);
      const root = rootOf('ec-p256');
      const issuer = new SvidIssuer(root);
      const bundles = new BundleSet([new X509Bundle(td, [root.cert])]);
      const originals = TYPES.map((t) => {
        const der = buildCsr({ key: pairOf(t).privateKey, uris: [ID.toString()], dnsNames: ['a.example.org'] });
        return { der, spki: spkiDer(pairOf(t).publicKey) };
      });
      const counts = new Map<string, number>();
      const bump = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
      for (let i = 0; i < 2000; i++) {
        const orig = originals[i % originals.length]!;
        let m: Buffer;
        const kind = Math.floor(rand() * 3);
        if (kind === 0) {
          m = Buffer.from(orig.der);
          const flips = 1 + Math.floor(rand() * 3);
          for (let f = 0; f < flips; f++) m[Math.floor(rand() * m.length)]! ^= Math.floor(rand() * 256); // 0 now and then: a no-op
        } else if (kind === 1) {
          m = Buffer.from(orig.der.subarray(0, Math.floor(rand() * (orig.der.length + 1)))); // may keep it whole
        } else {
          const extra = Buffer.from(
            Array.from({ length: 1 + Math.floor(rand() * 16) }, () => Math.floor(rand() * 256)),
          );
          m = Buffer.concat([orig.der, extra]);
        }
        const what = `mutation ${i} (${['flip', 'truncate', 'extend'][kind]}) ${m.toString('hex')}`;
        let out: ReturnType<SvidIssuer['issue']> | undefined;
        try {
          out = issuer.issue({ id: ID, csrDer: m, now: T0, ttlMs: HOUR });
        } catch (err) {
          bump(assertCsrError(err, what));
          assert.ok(!m.equals(orig.der), `${what}: an unchanged CSR was refused`);
          continue;
        }
        // Issued: the mutation must have kept the CSR valid for the reference parser too, with the same key.
        bump('issued');
        assert.doesNotThrow(() => parseCsr(m), what);
        const cert = Certificate.fromDer(out.der);
        assert.deepEqual(spkiOf(cert), orig.spki, what);
        assert.ok(verify([cert], bundles, { at: T0 }).id.equals(ID), what);
      }
      if (process.env.FUZZ_STATS) process.stdout.write(`${JSON.stringify([...counts])}\n`);
      // The corpus reaches the structural checks, the signature check and issuance (no-op mutations).
      assert.ok((counts.get('issued') ?? 0) > 0, JSON.stringify([...counts]));
      assert.ok((counts.get('ERR_CSR_MALFORMED') ?? 0) > 100, JSON.stringify([...counts]));
      assert.ok((counts.get('ERR_CSR_SIGNATURE') ?? 0) > 100, JSON.stringify([...counts]));
    });

    it('1,000 random byte strings, some framed as a SEQUENCE, never crash', () => {
      const rand = prng(42);
      const issuer = new SvidIssuer(rootOf('ec-p256'));
      for (let i = 0; i < 1000; i++) {
        const len = Math.floor(rand() * 600);
        const body = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
        const input = i % 2 === 0 ? body : Buffer.concat([header(TAG.SEQUENCE, len), body]);
        try {
          issuer.issue({ id: ID, csrDer: input, now: T0, ttlMs: HOUR });
          assert.fail(`random input ${i} was accepted`);
        } catch (err) {
          assertCsrError(err, `random input ${i}`);
        }
      }
    });
  });
});
