import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleSet, X509Bundle } from '../lib/bundle/index.js';
import { CLOCK_SKEW_MS, selfSignedRoot, signWorkloadSvid } from '../lib/ca/index.js';
import { generateKeyPair, KEY_TYPES, type KeyType } from '../lib/keys/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { KeyUsageBit } from '../lib/x509/index.js';
import { buildCsr, parseCsr } from '../lib/x509/csr.js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH, verify, X509Svid } from '../lib/x509svid/index.js';
import { T0 } from './helpers/ca.js';
import { openssl, requireOpenssl } from './helpers/openssl.js';

const td = TrustDomain.parse('example.org');
const HOUR = 3600_000;

function makeRoot(keyType: KeyType = 'ec-p256', ttlMs = 24 * HOUR) {
  const pair = generateKeyPair(keyType);
  const cert = selfSignedRoot({ trustDomain: td, key: pair.privateKey, publicKey: pair.publicKey, now: T0, ttlMs });
  return { cert, key: pair.privateKey };
}

describe('CA certificate profiles', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-profile-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // RSA-4096 generation takes seconds; the other types cover the same code paths.
  const types = KEY_TYPES.filter((t) => t !== 'rsa-4096');
  for (const keyType of types) {
    it(`issues a ${keyType} workload SVID from a CSR that verifies with svidkit and openssl -x509_strict`, function () {
      const root = makeRoot(keyType);
      const id = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
      const pair = generateKeyPair(keyType);
      const csr = parseCsr(buildCsr({ key: pair.privateKey, uris: [id.toString()] }));
      const leaf = signWorkloadSvid({ id, publicKey: csr.publicKey, signer: root, now: T0, ttlMs: HOUR });
      const svid = X509Svid.fromParts([leaf], pair.privateKey);
      const bundles = new BundleSet([new X509Bundle(td, [root.cert])]);
      assert.ok(verify(svid.certificates, bundles, { at: T0 }).id.equals(id));

      const version = requireOpenssl(this);
      this.test!.title += ` (${version})`;
      writeFileSync(join(dir, `${keyType}-root.pem`), root.cert.toPem());
      writeFileSync(join(dir, `${keyType}-leaf.pem`), leaf.toPem());
      const r = openssl([
        'verify',
        '-x509_strict',
        '-attime',
        String(Math.floor(T0.getTime() / 1000)),
        '-CAfile',
        join(dir, `${keyType}-root.pem`),
        join(dir, `${keyType}-leaf.pem`),
      ]);
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /: OK\n/);
    });
  }

  it('builds the workload profile from the entry, not from the CSR', () => {
    const root = makeRoot();
    const pair = generateKeyPair('ec-p256');
    // The CSR asks for other names; the certificate must carry only the entry's.
    const csr = parseCsr(
      buildCsr({
        key: pair.privateKey,
        subject: [['CN', 'evil']],
        uris: ['spiffe://example.org/admin', 'spiffe://other.org/x'],
        dnsNames: ['evil.example'],
      }),
    );
    const id = SpiffeId.parse('spiffe://example.org/ns/a');
    const cert = signWorkloadSvid({
      id,
      publicKey: csr.publicKey,
      dnsNames: ['a.example.org'],
      signer: root,
      now: T0,
      ttlMs: HOUR,
    });
    assert.deepEqual(cert.subjectAltName?.uris, [id.toString()]);
    assert.deepEqual(cert.subjectAltName?.dnsNames, ['a.example.org']);
    assert.equal(cert.subjectAltName?.critical, true);
    assert.equal(cert.subjectIsEmpty, true);
    assert.equal(cert.basicConstraints?.cA, false);
    assert.equal(cert.keyUsage?.critical, true);
    assert.equal(cert.keyUsage?.bits, KeyUsageBit.digitalSignature);
    assert.deepEqual(cert.extKeyUsage, [OID_SERVER_AUTH, OID_CLIENT_AUTH]);
    assert.ok(cert.subjectKeyId && cert.subjectKeyId.length === 20);
    assert.deepEqual(cert.authorityKeyId, root.cert.subjectKeyId);
    assert.equal(cert.notBefore.getTime(), T0.getTime() - CLOCK_SKEW_MS);
    assert.equal(cert.notAfter.getTime(), T0.getTime() + HOUR);
    // A positive serial with at least 64 random bits.
    const serial = Buffer.from(cert.asn.tbsCertificate.serialNumber);
    assert.ok(serial.length >= 8 && (serial[0]! & 0x80) === 0);
  });

  it('adds keyEncipherment for RSA keys', () => {
    const root = makeRoot();
    const cert = signWorkloadSvid({
      id: SpiffeId.parse('spiffe://example.org/rsa'),
      publicKey: generateKeyPair('rsa-2048').publicKey,
      signer: root,
      now: T0,
      ttlMs: HOUR,
    });
    assert.equal(cert.keyUsage?.bits, KeyUsageBit.digitalSignature | KeyUsageBit.keyEncipherment);
  });

  it("caps notAfter at the signing CA's notAfter", () => {
    const root = makeRoot('ec-p256', 10 * 60_000);
    const cert = signWorkloadSvid({
      id: SpiffeId.parse('spiffe://example.org/w'),
      publicKey: generateKeyPair().publicKey,
      signer: root,
      now: T0,
      ttlMs: HOUR,
    });
    assert.equal(cert.notAfter.getTime(), root.cert.notAfter.getTime());
  });

  it('gives distinct serials', () => {
    const root = makeRoot();
    const key = generateKeyPair().publicKey;
    const id = SpiffeId.parse('spiffe://example.org/w');
    const serials = new Set(
      Array.from(
        { length: 50 },
        () => signWorkloadSvid({ id, publicKey: key, signer: root, now: T0, ttlMs: HOUR }).serialHex,
      ),
    );
    assert.equal(serials.size, 50);
  });

  it('refuses a trust-domain ID as a workload ID', () => {
    const root = makeRoot();
    assert.throws(
      () =>
        signWorkloadSvid({ id: td.id(), publicKey: generateKeyPair().publicKey, signer: root, now: T0, ttlMs: HOUR }),
      { code: 'ERR_X509SVID_INVALID_ID' },
    );
  });
});

describe('CA certificate profiles: DNS names', () => {
  it('refuses a DNS name that an IA5String cannot hold', () => {
    const pair = generateKeyPair();
    const cert = selfSignedRoot({
      trustDomain: td,
      key: pair.privateKey,
      publicKey: pair.publicKey,
      now: T0,
      ttlMs: HOUR,
    });
    for (const bad of ['', 'é.example', 'a b.example']) {
      assert.throws(
        () =>
          signWorkloadSvid({
            id: SpiffeId.parse('spiffe://example.org/w'),
            publicKey: generateKeyPair().publicKey,
            dnsNames: [bad],
            signer: { cert, key: pair.privateKey },
            now: T0,
            ttlMs: HOUR,
          }),
        { code: 'ERR_USAGE' },
      );
    }
  });
});
