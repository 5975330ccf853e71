/**
 * The cases of go-spiffe's own parse tables (svid/x509svid/svid_test.go TestParse and the fixtures
 * under svid/x509svid/testdata; bundle/x509bundle/bundle_test.go TestParse), rebuilt here with
 * certificates made at test time: X509Svid.parse and X509Bundle.parsePem must accept what go-spiffe
 * accepts and refuse what it refuses. The codes are ours; the go-spiffe message each case expects is
 * quoted next to it.
 */
import { strict as assert } from 'node:assert';
import type { KeyObject } from 'node:crypto';
import { X509Bundle } from '../lib/bundle/index.js';
import type { ErrorCode } from '../lib/errors/index.js';
import { encodePem } from '../lib/internal/pem.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { KeyUsageBit } from '../lib/x509/index.js';
import { X509Svid } from '../lib/x509svid/index.js';
import { assertCode } from './helpers/assert.js';
import { TestCa } from './helpers/ca.js';

const TD = TrustDomain.parse('example.org');
const WORKLOAD = '/workload-1';

describe("go-spiffe parity: the cases of go-spiffe's parse tables", function () {
  this.timeout(60_000);
  const root = TestCa.root({ keyType: 'rsa-2048' });
  const inter = root.intermediate();
  /** certSingle / keyRSA: a leaf signed by the root, RSA key. */
  const single = root.leaf(WORKLOAD, { keyType: 'rsa-2048' });
  /** certMultiple / keyECDSA: a leaf and its intermediate, ECDSA key. */
  const multiple = inter.leaf(WORKLOAD);
  const pem = (chain: { toPem(): string }[]) => chain.map((c) => c.toPem()).join('');
  const keyPem = (leaf: { key: KeyObject }) => leaf.key.export({ format: 'pem', type: 'pkcs8' }) as string;
  const singlePem = pem(single.chain);
  const rsaKey = keyPem(single);
  const multiplePem = pem(multiple.chain);
  const ecKey = keyPem(multiple);
  /** A leaf built with `opts`, with the single leaf's key so that only the rule under test fails. */
  const broken = (opts: Parameters<TestCa['leaf']>[1], ca: TestCa = root): string =>
    pem(
      ca.leaf(WORKLOAD, {
        keyType: 'rsa-2048',
        keyPair: { privateKey: single.key, publicKey: single.chain[0]!.publicKey },
        ...opts,
      }).chain,
    );

  interface Case {
    /** go-spiffe's name for the case. */
    name: string;
    certs: () => string;
    key: () => string;
    /** Our code; undefined when go-spiffe accepts. */
    code?: ErrorCode;
    /** What go-spiffe's error says. */
    goSays?: string;
  }

  const CASES: Case[] = [
    { name: 'Single certificate and key', certs: () => singlePem, key: () => rsaKey },
    { name: 'Certificate with intermediate and key', certs: () => multiplePem, key: () => ecKey },
    {
      name: 'Key and certificate in the same byte array',
      certs: () => ecKey + multiplePem,
      key: () => ecKey + multiplePem,
    },
    {
      name: 'Certificate and Key in the same byte array',
      certs: () => multiplePem + ecKey,
      key: () => multiplePem + ecKey,
    },
    {
      name: 'Missing certificate',
      certs: () => rsaKey,
      key: () => rsaKey,
      code: 'ERR_X509SVID_NO_CERTIFICATES',
      goSays: 'no certificates found',
    },
    {
      name: 'Missing private key',
      certs: () => singlePem,
      key: () => singlePem,
      code: 'ERR_KEY_MALFORMED',
      goSays: 'no private key found',
    },
    {
      name: 'Private key not PEM',
      certs: () => singlePem,
      key: () => 'not-pem\n',
      code: 'ERR_KEY_MALFORMED',
      goSays: 'no PEM blocks found',
    },
    {
      name: 'Certificate not PEM',
      certs: () => 'not-pem\n',
      key: () => rsaKey,
      code: 'ERR_X509SVID_NO_CERTIFICATES',
      goSays: 'no PEM blocks found',
    },
    {
      name: 'Corrupt private key',
      certs: () => singlePem,
      key: () => encodePem('PRIVATE KEY', Buffer.from('CORRUPT')),
      code: 'ERR_KEY_MALFORMED',
      goSays: 'asn1: structure error',
    },
    {
      name: 'Corrupt certificate',
      certs: () => encodePem('CERTIFICATE', Buffer.from('CORRUPT')),
      key: () => rsaKey,
      code: 'ERR_X509_MALFORMED',
      goSays: 'x509: malformed certificate',
    },
    {
      name: 'Certificate does not match private key',
      certs: () => multiplePem,
      key: () => rsaKey,
      code: 'ERR_X509SVID_KEY_MISMATCH',
      goSays: 'leaf certificate does not match private key',
    },
    {
      name: 'Certificate without SPIFFE ID',
      certs: () => broken({ noSan: true, subject: [['CN', 'no id']] }),
      key: () => rsaKey,
      code: 'ERR_X509SVID_NO_URI_SAN',
      goSays: 'certificate contains no URI SAN',
    },
    {
      name: 'Leaf certificate with CA flag set to true',
      certs: () => broken({ ca: true }),
      key: () => rsaKey,
      code: 'ERR_X509SVID_LEAF_IS_CA',
      goSays: 'leaf certificate must not have CA flag set to true',
    },
    {
      name: 'Leaf certificate without digitalSignature as key usage',
      certs: () => broken({ keyUsage: KeyUsageBit.keyEncipherment }),
      key: () => rsaKey,
      code: 'ERR_X509SVID_LEAF_KEY_USAGE',
      goSays: "leaf certificate must have 'digitalSignature' set as key usage",
    },
    {
      name: 'Leaf certificate with certSign as key usage',
      certs: () => broken({ keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.keyCertSign }),
      key: () => rsaKey,
      code: 'ERR_X509SVID_LEAF_KEY_USAGE',
      goSays: "leaf certificate must not have 'keyCertSign' set as key usage",
    },
    {
      name: 'Leaf certificate with cRLSign as key usage',
      certs: () => broken({ keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.cRLSign }),
      key: () => rsaKey,
      code: 'ERR_X509SVID_LEAF_KEY_USAGE',
      goSays: "leaf certificate must not have 'cRLSign' set as key usage",
    },
    {
      name: 'Signing certificate without CA flag',
      certs: () => broken({}, root.intermediate({ basicConstraints: 'not-ca' })),
      key: () => rsaKey,
      code: 'ERR_X509SVID_ISSUER_NOT_CA',
      goSays: 'signing certificate must have CA flag set to true',
    },
    {
      name: "Signing certificate without 'keyCertSign' usage",
      certs: () => broken({}, root.intermediate({ keyUsage: KeyUsageBit.cRLSign })),
      key: () => rsaKey,
      code: 'ERR_X509SVID_ISSUER_KEY_USAGE',
      goSays: "signing certificate must have 'keyCertSign' set as key usage",
    },
  ];

  describe('x509svid.Parse (18 cases)', () => {
    it('has all eighteen of them', () => assert.equal(CASES.length, 18));
    for (const c of CASES) {
      it(`${c.name} -> ${c.code ? `${c.code} (go-spiffe: "${c.goSays}")` : 'accepted'}`, () => {
        if (c.code) {
          assertCode(() => X509Svid.parse(c.certs(), c.key()), c.code);
          return;
        }
        const svid = X509Svid.parse(c.certs(), c.key());
        assert.equal(svid.id.toString(), `spiffe://example.org${WORKLOAD}`);
      });
    }
  });

  describe('x509bundle.Parse', () => {
    const twoRoots = () => root.cert.toPem() + TestCa.root({ subject: [['CN', 'second']] }).cert.toPem();
    const BUNDLE_CASES: { name: string; pem: () => string; roots?: number; code?: ErrorCode }[] = [
      { name: 'Parse multiple certificates should succeed', pem: twoRoots, roots: 2 },
      { name: 'Parse single certificate should succeed', pem: () => root.cert.toPem(), roots: 1 },
      { name: 'Parse empty bytes should result in empty bundle', pem: () => '', roots: 0 },
      { name: 'Parse non-PEM bytes should fail', pem: () => 'not-pem\n', code: 'ERR_BUNDLE_MALFORMED' },
      {
        name: 'Parse a corrupted certificate should fail',
        pem: () => encodePem('CERTIFICATE', Buffer.from('CORRUPT')),
        code: 'ERR_X509_MALFORMED',
      },
    ];
    for (const c of BUNDLE_CASES) {
      it(`${c.name} -> ${c.code ?? `${c.roots} root(s)`}`, () => {
        if (c.code) {
          assertCode(() => X509Bundle.parsePem(TD, c.pem()), c.code);
          return;
        }
        assert.equal(X509Bundle.parsePem(TD, c.pem()).size, c.roots);
      });
    }
  });
});
