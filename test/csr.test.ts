/**
 * Tests of lib/x509/csr (buildCsr, parseCsr, parseCsrPem) and createCsr: round trips for every key
 * type, proof of possession (a CSR whose signature does not verify with its own key is refused),
 * bounded and strict DER, and interop with `openssl req` in both directions.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Attribute, Extensions, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { buildName, extensions } from '../lib/x509/build.js';
import type { ErrorCode } from '../lib/errors/index.js';
import { generateKeyPair, KEY_TYPES, type KeyType, loadPrivateKeyPem, spkiDer } from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import {
  buildCsr,
  type CsrRequest,
  csrToPem,
  MAX_CSR_BYTES,
  parseCsr,
  parseCsrPem,
  signatureAlgorithmFor,
  signWith,
} from '../lib/x509/index.js';
import { createCsr } from '../lib/x509svid/index.js';
import { assertCode } from './helpers/assert.js';
import { opensslVersion } from './helpers/openssl.js';

const ID = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');

/** Reads a deliberately broken fixture from test/testdata (tests run from dist/test). */
function fixture(name: string): string {
  return readFileSync(new URL(`../../test/testdata/${name}`, import.meta.url), 'utf8');
}

/** The CertificationRequestInfo the ASN.1 library encodes for a request (how buildCsr once built it). */
function schemaCsrInfo(req: CsrRequest): Buffer {
  const attrs: Attribute[] = [];
  if ((req.uris?.length ?? 0) + (req.dnsNames?.length ?? 0) > 0) {
    const san = extensions.subjectAltName({ uris: req.uris, dnsNames: req.dnsNames }, !req.subject?.length);
    attrs.push(new Attribute({ type: '1.2.840.113549.1.9.14', values: [AsnConvert.serialize(new Extensions([san]))] }));
  }
  const info = new CertificationRequestInfo({
    version: 0,
    subject: req.subject ? buildName(req.subject) : new Name(),
    subjectPKInfo: AsnConvert.parse(spkiDer(req.key), SubjectPublicKeyInfo),
    attributes: new Attributes(attrs),
  });
  return Buffer.from(AsnConvert.serialize(info));
}

/** The request info of a DER CSR, decoded. */
function infoOf(der: Uint8Array): CertificationRequestInfo {
  return AsnConvert.parse(der, CertificationRequest).certificationRequestInfo;
}

/** Encodes a CSR from its three parts, as given (no check that the signature fits). */
function assemble(info: CertificationRequestInfo, alg: AlgorithmIdentifier, signature: Uint8Array): Buffer {
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: alg,
    signature: new Uint8Array(signature).buffer,
  });
  return Buffer.from(AsnConvert.serialize(csr));
}

/** Signs `info` with `key`, whatever public key the info carries. */
function signInfo(info: CertificationRequestInfo, key: KeyObject): Buffer {
  const alg = signatureAlgorithmFor(key);
  return assemble(info, alg, signWith(alg, key, new Uint8Array(AsnConvert.serialize(info))));
}

/** A copy of `der` with the last byte (inside the signature BIT STRING) flipped. */
function flipLastByte(der: Buffer): Buffer {
  const out = Buffer.from(der);
  out[out.length - 1] = out[out.length - 1]! ^ 0xff;
  return out;
}

/** An Ed25519 CSR of exactly `size` bytes (Ed25519 signatures have a fixed length), found by growing a DNS name. */
function csrOfSize(size: number): Buffer {
  const key = generateKeyPair('ed25519').privateKey;
  const build = (n: number) => buildCsr({ key, uris: [ID.toString()], dnsNames: ['a'.repeat(n)] });
  let n = 0;
  for (let round = 0; round < 8; round++) {
    const der = build(n);
    if (der.length === size) return der;
    n = Math.max(0, n + size - der.length - (round > 3 ? 1 : 0));
  }
  throw new Error(`no CSR of exactly ${size} bytes`);
}

/** Runs openssl and returns its exit status with stdout and stderr together (openssl req reports on stderr). */
function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Skips outside CI when openssl is missing; in CI a missing peer is a failure. */
function needOpenssl(ctx: Mocha.Context): void {
  if (opensslVersion()) return;
  if (process.env.CI === 'true') throw new Error('openssl is required in CI but is not on PATH');
  ctx.test!.title += ' [skipped: openssl is not on PATH]';
  ctx.skip();
}

describe('csr', () => {
  describe('round trip', () => {
    for (const kt of KEY_TYPES) {
      it(`buildCsr -> parseCsr keeps the ${kt} public key and the requested names`, function () {
        if (kt === 'rsa-4096') this.timeout(120_000);
        const pair = generateKeyPair(kt);
        const der = buildCsr({ key: pair.privateKey, uris: [ID.toString()], dnsNames: ['web.example.org'] });
        const csr = parseCsr(der);
        assert.ok(csr.publicKey.equals(pair.publicKey), 'public key differs');
        assert.ok(csr.publicKey.equals(createPublicKey(pair.privateKey)), 'not the public half of the key');
        assert.deepEqual(csr.requestedNames.uris, [ID.toString()]);
        assert.deepEqual(csr.requestedNames.dnsNames, ['web.example.org']);
        assert.ok(csr.der.equals(der));
        assert.ok(parseCsrPem(csrToPem(der)).der.equals(der), 'PEM round trip');
      });
    }

    for (const kt of ['ec-p256', 'rsa-2048', 'ed25519'] as const) {
      it(`createCsr -> parseCsr holds the SPIFFE ID (${kt})`, () => {
        const pair = generateKeyPair(kt);
        const csr = parseCsr(createCsr(ID, pair.privateKey));
        assert.deepEqual(csr.requestedNames.uris, [ID.toString()]);
        assert.deepEqual(csr.requestedNames.dnsNames, []);
        assert.ok(csr.publicKey.equals(pair.publicKey));
      });
    }

    it('a CSR with a subject and no SAN parses with no requested names', () => {
      const pair = generateKeyPair();
      const csr = parseCsr(buildCsr({ key: pair.privateKey, subject: [['CN', 'workload']] }));
      assert.deepEqual(csr.requestedNames.uris, []);
      assert.ok(csr.publicKey.equals(pair.publicKey));
    });

    it('buildCsr writes, byte for byte, the request the ASN.1 library encodes for the same fields', () => {
      // buildCsr uses the DER writer; the schema encoding it replaced is the oracle here. ECDSA
      // signatures are randomized, so the signed part and the algorithm are compared, and the signature
      // is checked by parseCsr.
      const requests: Array<Omit<CsrRequest, 'key'>> = [
        {},
        { uris: [ID.toString()] },
        { uris: [ID.toString(), 'spiffe://example.org/b'], dnsNames: ['web.example.org', 'a.example'] },
        { dnsNames: ['only.dns'] },
        { subject: [['CN', 'workload']], uris: [ID.toString()] },
        {
          subject: [
            ['O', 'svidkit'],
            ['CN', 'x'],
          ],
        },
        { subject: [], uris: [ID.toString()] },
      ];
      for (const kt of KEY_TYPES.filter((t) => !t.startsWith('rsa') || t === 'rsa-2048')) {
        const key = generateKeyPair(kt).privateKey;
        for (const req of requests) {
          const mine = buildCsr({ key, ...req });
          const theirs = schemaCsrInfo({ key, ...req });
          const parsed = AsnConvert.parse(mine, CertificationRequest);
          assert.ok(
            Buffer.from(AsnConvert.serialize(parsed.certificationRequestInfo)).equals(theirs),
            `${kt} ${JSON.stringify(req)}`,
          );
          assert.ok(
            Buffer.from(AsnConvert.serialize(parsed.signatureAlgorithm)).equals(
              Buffer.from(AsnConvert.serialize(signatureAlgorithmFor(key))),
            ),
          );
          // The info is exactly the bytes signed, and parseCsr verifies the signature over them.
          assert.ok(Buffer.from(mine).includes(theirs));
          parseCsr(mine);
        }
      }
    });

    it('buildCsr refuses a URI or DNS name outside ASCII with ERR_CSR_MALFORMED', () => {
      const key = generateKeyPair().privateKey;
      assertCode(() => buildCsr({ key, dnsNames: ['bücher.example'] }), 'ERR_CSR_MALFORMED');
    });

    it('createCsr refuses a trust-domain ID', () => {
      const key = generateKeyPair().privateKey;
      assertCode(() => createCsr(SpiffeId.parse('spiffe://example.org'), key), 'ERR_X509SVID_INVALID_ID');
    });
  });

  describe('refusals', () => {
    interface RefusalCase {
      name: string;
      der: () => Uint8Array;
      code: ErrorCode;
    }

    const good = (kt: KeyType = 'ec-p256') => buildCsr({ key: generateKeyPair(kt).privateKey, uris: [ID.toString()] });

    const CASES: RefusalCase[] = [
      // proof of possession
      ...(['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const).map((kt): RefusalCase => ({
        name: `a ${kt} CSR whose signature bytes were flipped`,
        der: () => flipLastByte(good(kt)),
        code: 'ERR_CSR_SIGNATURE',
      })),
      {
        name: "key A's request info signed by key B",
        der: () => signInfo(infoOf(good()), generateKeyPair().privateKey),
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: "key B's public key swapped into key A's signed CSR",
        der: () => {
          const der = good();
          const csr = AsnConvert.parse(der, CertificationRequest);
          const info = infoOf(der);
          info.subjectPKInfo = AsnConvert.parse(spkiDer(generateKeyPair().publicKey), SubjectPublicKeyInfo);
          return assemble(info, csr.signatureAlgorithm, new Uint8Array(csr.signature));
        },
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: 'a requested URI changed after signing',
        der: () => {
          const der = good();
          const at = der.indexOf(Buffer.from('ns/prod'));
          assert.ok(at > 0);
          der[at] = 'x'.charCodeAt(0);
          return der;
        },
        code: 'ERR_CSR_SIGNATURE',
      },
      {
        name: 'an Ed25519 key with an ECDSA signature algorithm',
        der: () => {
          const der = good('ed25519');
          const csr = AsnConvert.parse(der, CertificationRequest);
          const alg = new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' });
          return assemble(infoOf(der), alg, new Uint8Array(csr.signature));
        },
        code: 'ERR_CSR_SIGNATURE',
      },
      // algorithms and versions
      {
        name: 'an RSA CSR labelled sha1WithRSAEncryption (an algorithm svidkit refuses)',
        der: () => {
          const der = good('rsa-2048');
          const csr = AsnConvert.parse(der, CertificationRequest);
          const alg = new AlgorithmIdentifier({
            algorithm: '1.2.840.113549.1.1.5',
            parameters: new Uint8Array([5, 0]).buffer,
          });
          return assemble(infoOf(der), alg, new Uint8Array(csr.signature));
        },
        code: 'ERR_CSR_MALFORMED',
      },
      {
        name: 'a CSR of version 2 (only version 1, encoded 0, exists)',
        der: () => {
          const key = generateKeyPair().privateKey;
          const info = infoOf(buildCsr({ key, uris: [ID.toString()] }));
          info.version = 1;
          return signInfo(info, key);
        },
        code: 'ERR_CSR_MALFORMED',
      },
      // DER framing and size
      { name: 'an empty input', der: () => new Uint8Array(0), code: 'ERR_CSR_MALFORMED' },
      {
        name: 'DER garbage',
        der: () => Buffer.from('this is not a certification request at all'),
        code: 'ERR_CSR_MALFORMED',
      },
      { name: 'a DER NULL', der: () => new Uint8Array([0x05, 0x00]), code: 'ERR_CSR_MALFORMED' },
      { name: 'an empty SEQUENCE', der: () => new Uint8Array([0x30, 0x00]), code: 'ERR_CSR_MALFORMED' },
      { name: 'a truncated CSR', der: () => good().subarray(0, 100), code: 'ERR_CSR_MALFORMED' },
      { name: 'a CSR missing its last byte', der: () => good().subarray(0, -1), code: 'ERR_CSR_MALFORMED' },
      {
        name: 'a CSR followed by a trailing zero byte',
        der: () => Buffer.concat([good(), Buffer.from([0])]),
        code: 'ERR_CSR_MALFORMED',
      },
      {
        name: 'a CSR followed by a trailing DER element',
        der: () => Buffer.concat([good(), Buffer.from([0x05, 0x00])]),
        code: 'ERR_CSR_MALFORMED',
      },
      {
        name: 'a CSR with an indefinite length (BER, not DER)',
        der: () => {
          const der = good();
          // 30 8n <n length octets> <content>  ->  30 80 <content> 00 00
          const header = 2 + (der[1]! & 0x7f);
          return Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(header), Buffer.from([0, 0])]);
        },
        code: 'ERR_CSR_MALFORMED',
      },
      { name: 'a CSR of 8 KiB + 1 bytes', der: () => csrOfSize(MAX_CSR_BYTES + 1), code: 'ERR_CSR_MALFORMED' },
      { name: '1 MiB of zeros', der: () => new Uint8Array(1024 * 1024), code: 'ERR_CSR_MALFORMED' },
    ];

    for (const c of CASES) {
      it(`${c.name} -> ${c.code}`, () => {
        assertCode(() => parseCsr(c.der()), c.code);
      });
    }

    it('a CSR of exactly 8 KiB is accepted', () => {
      const der = csrOfSize(MAX_CSR_BYTES);
      assert.equal(der.length, 8 * 1024);
      assert.deepEqual(parseCsr(der).requestedNames.uris, [ID.toString()]);
    });

    const PEM_CASES: { name: string; pem: () => string; code: ErrorCode }[] = [
      {
        name: 'DER garbage in a CERTIFICATE REQUEST block',
        pem: () => fixture('csr-block-garbage-der.pem'),
        code: 'ERR_CSR_MALFORMED',
      },
      {
        name: 'a CERTIFICATE block instead of a CERTIFICATE REQUEST',
        pem: () => fixture('csr-file-holding-a-certificate-block.pem'),
        code: 'ERR_CSR_MALFORMED',
      },
      { name: 'a file without PEM blocks', pem: () => fixture('no-pem-blocks.txt'), code: 'ERR_CSR_MALFORMED' },
      {
        name: 'two CERTIFICATE REQUEST blocks',
        pem: () => {
          const one = csrToPem(good());
          return one + one;
        },
        code: 'ERR_PEM_TOO_LARGE',
      },
      {
        name: 'a flipped signature behind valid PEM',
        pem: () => csrToPem(flipLastByte(good())),
        code: 'ERR_CSR_SIGNATURE',
      },
    ];

    for (const c of PEM_CASES) {
      it(`parseCsrPem: ${c.name} -> ${c.code}`, () => {
        assertCode(() => parseCsrPem(c.pem()), c.code);
      });
    }
  });

  describe(`openssl req interop (${opensslVersion() ?? 'openssl is not on PATH'})`, () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'svidkit-csr-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    for (const kt of ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const) {
      it(`openssl req -verify accepts our ${kt} CSR`, function () {
        needOpenssl(this);
        const file = join(dir, `ours-${kt}.csr.pem`);
        writeFileSync(file, csrToPem(createCsr(ID, generateKeyPair(kt).privateKey, { dnsNames: ['web.example.org'] })));
        const r = run(['req', '-verify', '-noout', '-in', file]);
        assert.equal(r.status, 0, r.output);
        assert.match(r.output, /verify OK/i);
        assert.doesNotMatch(r.output, /fail/i);
      });
    }

    it('control: openssl req -verify refuses our CSR with a flipped signature', function () {
      needOpenssl(this);
      const file = join(dir, 'ours-flipped.csr.pem');
      writeFileSync(file, csrToPem(flipLastByte(createCsr(ID, generateKeyPair('rsa-2048').privateKey))));
      const r = run(['req', '-verify', '-noout', '-in', file]);
      // OpenSSL 3.0 prints the failure but may still exit 0, so the message is what counts.
      assert.match(r.output, /verify fail/i, r.output);
      assert.doesNotMatch(r.output, /verify OK/i);
    });

    const NEWKEY: Record<string, string[]> = {
      'ec P-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      'rsa 2048': ['-newkey', 'rsa:2048'],
      ed25519: ['-newkey', 'ed25519'],
    };
    for (const [what, newkey] of Object.entries(NEWKEY)) {
      it(`a CSR made by openssl req -new (${what}) parses and verifies`, function () {
        needOpenssl(this);
        const base = join(dir, `openssl-${what.replace(/\W/g, '')}`);
        const r = run([
          'req',
          '-new',
          ...newkey,
          '-nodes',
          '-keyout',
          `${base}.key.pem`,
          '-subj',
          '/CN=x',
          '-addext',
          'subjectAltName=URI:spiffe://example.org/a',
          '-out',
          `${base}.csr.pem`,
        ]);
        assert.equal(r.status, 0, r.output);
        const csr = parseCsrPem(readFileSync(`${base}.csr.pem`));
        assert.deepEqual(csr.requestedNames.uris, ['spiffe://example.org/a']);
        const key = loadPrivateKeyPem(readFileSync(`${base}.key.pem`));
        assert.ok(csr.publicKey.equals(createPublicKey(key)), 'the CSR carries the key openssl generated');
      });
    }
  });
});
