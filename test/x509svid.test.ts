/**
 * Tests of lib/x509svid against the X509-SVID rules of docs/SPIFFE-RULES.md: every leaf rule and every
 * path rule has an accepted and a refused case, each refusal is checked for its exact error code and
 * module prefix. PKI is generated at test time by TestCa and every check runs at the fixed instant T0.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  DirectoryString,
  Extension,
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  NameConstraints,
  OtherName,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import { BundleSet, X509Bundle } from '../lib/bundle/index.js';
import type { X509BundleSource } from '../lib/bundle/source.js';
import type { ErrorCode } from '../lib/errors/index.js';
import { generateKeyPair, type KeyType, privateKeyToPem } from '../lib/keys/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { buildName, type Certificate, KeyUsageBit, parseCsr } from '../lib/x509/index.js';
import { createCsr, OID_CLIENT_AUTH, OID_SERVER_AUTH, verify, verifyPem, X509Svid } from '../lib/x509svid/index.js';
import { assertCode } from './helpers/assert.js';
import { type CaOptions, type LeafOptions, T0, TestCa } from './helpers/ca.js';
import { openssl, opensslVersion } from './helpers/openssl.js';

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const AT = { at: T0 } as const;
/** T0 moved by `ms` milliseconds. */
const t0 = (ms: number): Date => new Date(T0.getTime() + ms);

const OID_ANY_EKU = '2.5.29.37.0';
const OID_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';
/** An OID under a private enterprise arc that no X.509 library knows. */
const OID_PRIVATE_EXTENSION = '1.3.6.1.4.1.55555.1.1';
/** The Microsoft UPN otherName type, the most common otherName in the wild. */
const OID_UPN = '1.3.6.1.4.1.311.20.2.3';

/** Reads a deliberately broken fixture from test/testdata (tests run from dist/test). */
function fixture(name: string): string {
  return readFileSync(new URL(`../../test/testdata/${name}`, import.meta.url), 'utf8');
}

/** An unknown extension with the given criticality. */
function privateExtension(critical: boolean): Extension {
  return new Extension({
    extnID: OID_PRIVATE_EXTENSION,
    critical,
    extnValue: new OctetString(new Uint8Array([5, 0])),
  });
}

/** A subjectAltName extension with arbitrary GeneralNames (the TestCa builder knows only URIs and DNS names). */
function sanOf(names: GeneralName[], critical = true): Extension {
  return new Extension({
    extnID: id_ce_subjectAltName,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(new SubjectAlternativeName(names))),
  });
}

/** A critical nameConstraints extension with arbitrary permitted subtrees. */
function permittedOf(names: GeneralName[]): Extension {
  const nc = new NameConstraints({
    permittedSubtrees: new GeneralSubtrees(names.map((base) => new GeneralSubtree({ base }))),
  });
  return new Extension({
    extnID: id_ce_nameConstraints,
    critical: true,
    extnValue: new OctetString(AsnConvert.serialize(nc)),
  });
}

/**
 * nameConstraints permitting the IPv4 subnet 10.0.0.0/8, hand-encoded because an iPAddress constraint
 * is address plus mask (8 octets), which the schema's IP converter does not produce:
 * SEQUENCE { [0] { SEQUENCE { [7] 0a000000 ff000000 } } }.
 */
function permittedIpv4Subnet(): Extension {
  return new Extension({
    extnID: id_ce_nameConstraints,
    critical: true,
    extnValue: new OctetString(Buffer.from('300ea00c300a87080a000000ff000000', 'hex')),
  });
}

const uriName = (uri: string) => new GeneralName({ uniformResourceIdentifier: uri });
const upnName = (upn: string) =>
  new GeneralName({
    otherName: new OtherName({
      typeId: OID_UPN,
      value: AsnConvert.serialize(new DirectoryString({ utf8String: upn })),
    }),
  });

// ---------------------------------------------------------------------------------------------
// Leaf rules
// ---------------------------------------------------------------------------------------------

interface LeafCase {
  name: string;
  opts?: LeafOptions;
  /** Expected error code; an accepted leaf when absent. */
  code?: ErrorCode;
}

const LEAF_CASES: LeafCase[] = [
  { name: 'a plain workload leaf' },
  // exactly one URI SAN holding a workload SPIFFE ID
  { name: 'no subjectAltName extension', opts: { noSan: true }, code: 'ERR_X509SVID_NO_URI_SAN' },
  {
    name: 'a subjectAltName with DNS names only',
    opts: { uris: [], dnsNames: ['web.example.org'] },
    code: 'ERR_X509SVID_NO_URI_SAN',
  },
  {
    name: 'two SPIFFE ID URI SANs',
    opts: { uris: ['spiffe://example.org/workload', 'spiffe://example.org/other'] },
    code: 'ERR_X509SVID_MULTIPLE_URI_SANS',
  },
  {
    name: 'a SPIFFE ID and an https URI SAN',
    opts: { uris: ['spiffe://example.org/workload', 'https://example.org/workload'] },
    code: 'ERR_X509SVID_MULTIPLE_URI_SANS',
  },
  {
    name: 'a URI SAN that is not a SPIFFE ID (https)',
    opts: { uris: ['https://example.org/workload'] },
    code: 'ERR_X509SVID_INVALID_ID',
  },
  {
    name: 'a trust-domain ID (no path) as URI SAN',
    opts: { uris: ['spiffe://example.org'] },
    code: 'ERR_X509SVID_INVALID_ID',
  },
  {
    name: 'a URI SAN with an uppercase trust domain',
    opts: { uris: ['spiffe://Example.org/workload'] },
    code: 'ERR_X509SVID_INVALID_ID',
  },
  {
    name: 'a URI SAN with a percent-encoded path',
    opts: { uris: ['spiffe://example.org/work%20load'] },
    code: 'ERR_X509SVID_INVALID_ID',
  },
  {
    name: 'a URI SAN with a dot-dot segment',
    opts: { uris: ['spiffe://example.org/a/../workload'] },
    code: 'ERR_X509SVID_INVALID_ID',
  },
  {
    name: 'a URI SAN with a query',
    opts: { uris: ['spiffe://example.org/workload?x=1'] },
    code: 'ERR_X509SVID_INVALID_ID',
  },
  { name: 'DNS SANs next to the one URI SAN', opts: { dnsNames: ['web.example.org', 'web'] } },
  // basicConstraints
  { name: 'a leaf with cA=true', opts: { ca: true }, code: 'ERR_X509SVID_LEAF_IS_CA' },
  // keyUsage
  { name: 'no keyUsage extension', opts: { keyUsage: 0 }, code: 'ERR_X509SVID_LEAF_KEY_USAGE' },
  { name: 'a non-critical keyUsage', opts: { keyUsageCritical: false }, code: 'ERR_X509SVID_LEAF_KEY_USAGE' },
  {
    name: 'keyUsage without digitalSignature',
    opts: { keyType: 'rsa-2048', keyUsage: KeyUsageBit.keyEncipherment },
    code: 'ERR_X509SVID_LEAF_KEY_USAGE',
  },
  {
    name: 'keyUsage with keyCertSign',
    opts: { keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.keyCertSign },
    code: 'ERR_X509SVID_LEAF_KEY_USAGE',
  },
  {
    name: 'keyUsage with cRLSign',
    opts: { keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.cRLSign },
    code: 'ERR_X509SVID_LEAF_KEY_USAGE',
  },
  {
    name: 'keyUsage digitalSignature + keyEncipherment on an RSA leaf',
    opts: { keyType: 'rsa-2048', keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.keyEncipherment },
  },
  {
    name: 'keyUsage digitalSignature + keyAgreement on an EC leaf',
    opts: { keyUsage: KeyUsageBit.digitalSignature | KeyUsageBit.keyAgreement },
  },
  // extKeyUsage
  { name: 'EKU with serverAuth only', opts: { eku: [OID_SERVER_AUTH] }, code: 'ERR_X509SVID_LEAF_EXT_KEY_USAGE' },
  { name: 'EKU with clientAuth only', opts: { eku: [OID_CLIENT_AUTH] }, code: 'ERR_X509SVID_LEAF_EXT_KEY_USAGE' },
  { name: 'EKU with codeSigning only', opts: { eku: [OID_CODE_SIGNING] }, code: 'ERR_X509SVID_LEAF_EXT_KEY_USAGE' },
  { name: 'no EKU extension', opts: { eku: null } },
  { name: 'EKU anyExtendedKeyUsage', opts: { eku: [OID_ANY_EKU] } },
  {
    name: 'EKU serverAuth + clientAuth + codeSigning',
    opts: { eku: [OID_SERVER_AUTH, OID_CLIENT_AUTH, OID_CODE_SIGNING] },
  },
  // empty subject => critical SAN
  {
    name: 'an empty subject with a non-critical SAN',
    opts: { subject: [], sanCritical: false },
    code: 'ERR_X509SVID_SAN_NOT_CRITICAL',
  },
  { name: 'a non-empty subject with a non-critical SAN', opts: { subject: [['CN', 'workload']], sanCritical: false } },
  { name: 'a non-empty subject with a critical SAN', opts: { subject: [['CN', 'workload']], sanCritical: true } },
];

describe('x509svid', () => {
  let root: TestCa;
  before(() => {
    root = TestCa.root();
  });

  describe('leaf rules', () => {
    for (const c of LEAF_CASES) {
      const outcome = c.code ?? 'accepted';
      it(`verify(): ${c.name} -> ${outcome}`, () => {
        const { chain } = root.leaf('/workload', c.opts);
        if (c.code) {
          assertCode(() => verify(chain, root.bundle(), AT), c.code);
        } else {
          const r = verify(chain, root.bundle(), AT);
          assert.equal(r.id.toString(), 'spiffe://example.org/workload');
        }
      });
      it(`X509Svid.fromParts(): ${c.name} -> ${outcome}`, () => {
        const { chain, key } = root.leaf('/workload', c.opts);
        if (c.code) {
          assertCode(() => X509Svid.fromParts(chain, key), c.code);
        } else {
          assert.equal(X509Svid.fromParts(chain, key).id.toString(), 'spiffe://example.org/workload');
        }
      });
    }
  });

  // -------------------------------------------------------------------------------------------
  // Path rules
  // -------------------------------------------------------------------------------------------

  describe('path rules', () => {
    interface Scenario {
      chain: readonly Certificate[];
      bundles: X509BundleSource;
    }

    interface Spec {
      root?: CaOptions;
      /** Intermediates from the root down; each gets a distinct subject unless it sets one. */
      intermediates?: CaOptions[];
      leaf?: LeafOptions;
      /** Trust domain the root's bundle is filed under; default the root's own. */
      bundleFor?: string;
    }

    /** Root, intermediates and a leaf at /workload; the bundle set holds the root only. */
    function build(spec: Spec = {}): Scenario {
      const top = TestCa.root(spec.root);
      let ca = top;
      (spec.intermediates ?? []).forEach((opts, i) => {
        ca = ca.intermediate({
          subject: [
            ['O', 'svidkit test'],
            ['CN', `intermediate ${i + 1}`],
          ],
          ...opts,
        });
      });
      const { chain } = ca.leaf('/workload', spec.leaf);
      const td = spec.bundleFor ? TrustDomain.parse(spec.bundleFor) : top.trustDomain;
      return { chain, bundles: new BundleSet([new X509Bundle(td, [top.cert])]) };
    }

    interface PathCase {
      name: string;
      build: () => Scenario;
      /** Expected error code; an accepted chain when absent. */
      code?: ErrorCode;
      /** For accepted chains: the length of the verified path, root included. */
      length?: number;
      /** For refusals: a word the message must contain (which certificate was at fault). */
      blames?: string;
    }

    const expired: CaOptions = { notBefore: t0(-48 * HOUR), notAfter: t0(-SECOND) };
    const notYetValid: CaOptions = { notBefore: t0(SECOND), notAfter: t0(48 * HOUR) };
    const unknownCritical = { extraExtensions: [privateExtension(true)] };

    const CASES: PathCase[] = [
      // depth and ordering
      { name: 'leaf signed by the root (depth 1)', build: () => build(), length: 2 },
      { name: 'one intermediate', build: () => build({ intermediates: [{}] }), length: 3 },
      { name: 'two intermediates', build: () => build({ intermediates: [{}, {}] }), length: 4 },
      { name: 'three intermediates', build: () => build({ intermediates: [{}, {}, {}] }), length: 5 },
      {
        name: 'nine intermediates (the longest chain accepted: 10 certificates, 11 with the root)',
        build: () => build({ intermediates: Array.from({ length: 9 }, () => ({})) }),
        length: 11,
      },
      {
        name: 'three intermediates given in shuffled order',
        build: () => {
          const s = build({ intermediates: [{}, {}, {}] });
          const [leaf, i3, i2, i1] = s.chain;
          return { ...s, chain: [leaf!, i1!, i3!, i2!] };
        },
        length: 5,
      },
      {
        name: 'an unrelated certificate among the intermediates is ignored',
        build: () => {
          const s = build({ intermediates: [{}] });
          const stranger = TestCa.root({ trustDomain: 'other.org' }).intermediate().cert;
          return { ...s, chain: [s.chain[0]!, stranger, ...s.chain.slice(1)] };
        },
        length: 3,
      },
      {
        name: 'the root itself sent at the end of the chain',
        build: () => {
          const top = TestCa.root();
          const inter = top.intermediate();
          const { chain } = inter.leaf('/workload');
          return { chain: [...chain, top.cert], bundles: top.bundle() };
        },
        length: 3,
      },
      // validity at T0 (bounds are inclusive)
      {
        name: 'leaf whose notAfter is exactly T0',
        build: () => build({ leaf: { notBefore: t0(-HOUR), notAfter: T0 } }),
        length: 2,
      },
      {
        name: 'leaf whose notBefore is exactly T0',
        build: () => build({ leaf: { notBefore: T0, notAfter: t0(HOUR) } }),
        length: 2,
      },
      {
        name: 'leaf expired one second before T0',
        build: () => build({ leaf: { notBefore: t0(-HOUR), notAfter: t0(-SECOND) } }),
        code: 'ERR_X509SVID_EXPIRED',
        blames: 'leaf',
      },
      {
        name: 'leaf valid from one second after T0',
        build: () => build({ leaf: { notBefore: t0(SECOND), notAfter: t0(HOUR) } }),
        code: 'ERR_X509SVID_NOT_YET_VALID',
        blames: 'leaf',
      },
      {
        name: 'intermediate expired',
        build: () => build({ intermediates: [expired] }),
        code: 'ERR_X509SVID_EXPIRED',
        blames: 'intermediate',
      },
      {
        name: 'intermediate not yet valid',
        build: () => build({ intermediates: [notYetValid] }),
        code: 'ERR_X509SVID_NOT_YET_VALID',
        blames: 'intermediate',
      },
      { name: 'root expired', build: () => build({ root: expired }), code: 'ERR_X509SVID_EXPIRED', blames: 'root' },
      {
        name: 'root not yet valid',
        build: () => build({ root: notYetValid }),
        code: 'ERR_X509SVID_NOT_YET_VALID',
        blames: 'root',
      },
      // issuers are CAs with keyCertSign
      {
        name: 'root without basicConstraints',
        build: () => build({ root: { basicConstraints: 'absent' } }),
        code: 'ERR_X509SVID_ISSUER_NOT_CA',
        blames: 'root',
      },
      {
        name: 'root with cA=false',
        build: () => build({ root: { basicConstraints: 'not-ca' } }),
        code: 'ERR_X509SVID_ISSUER_NOT_CA',
        blames: 'root',
      },
      {
        name: 'intermediate without basicConstraints',
        build: () => build({ intermediates: [{ basicConstraints: 'absent' }] }),
        code: 'ERR_X509SVID_ISSUER_NOT_CA',
        blames: 'intermediate',
      },
      {
        name: 'intermediate with cA=false',
        build: () => build({ intermediates: [{ basicConstraints: 'not-ca' }] }),
        code: 'ERR_X509SVID_ISSUER_NOT_CA',
        blames: 'intermediate',
      },
      {
        name: 'root keyUsage with keyCertSign only (no cRLSign)',
        build: () => build({ root: { keyUsage: KeyUsageBit.keyCertSign } }),
        length: 2,
      },
      {
        name: 'root keyUsage without keyCertSign',
        build: () => build({ root: { keyUsage: KeyUsageBit.cRLSign | KeyUsageBit.digitalSignature } }),
        code: 'ERR_X509SVID_ISSUER_KEY_USAGE',
        blames: 'root',
      },
      {
        name: 'root without keyUsage',
        build: () => build({ root: { keyUsage: 0 } }),
        code: 'ERR_X509SVID_ISSUER_KEY_USAGE',
        blames: 'root',
      },
      {
        name: 'intermediate keyUsage without keyCertSign',
        build: () => build({ intermediates: [{ keyUsage: KeyUsageBit.digitalSignature }] }),
        code: 'ERR_X509SVID_ISSUER_KEY_USAGE',
        blames: 'intermediate',
      },
      {
        name: 'intermediate without keyUsage',
        build: () => build({ intermediates: [{ keyUsage: 0 }] }),
        code: 'ERR_X509SVID_ISSUER_KEY_USAGE',
        blames: 'intermediate',
      },
      // a signing certificate's SPIFFE ID has no path
      {
        name: 'intermediate with the trust-domain ID',
        build: () => build({ intermediates: [{ uris: ['spiffe://example.org'] }] }),
        length: 3,
      },
      {
        name: 'intermediate with a SPIFFE ID that has a path',
        build: () => build({ intermediates: [{ uris: ['spiffe://example.org/ca'] }] }),
        code: 'ERR_X509SVID_ISSUER_HAS_PATH',
        blames: 'intermediate',
      },
      {
        name: 'root with a SPIFFE ID that has a path',
        build: () => build({ root: { uris: ['spiffe://example.org/root'] } }),
        code: 'ERR_X509SVID_ISSUER_HAS_PATH',
        blames: 'root',
      },
      // pathLenConstraint
      { name: 'root pathLen 0 signing the leaf directly', build: () => build({ root: { pathLen: 0 } }), length: 2 },
      {
        name: 'root pathLen 0 with one intermediate',
        build: () => build({ root: { pathLen: 0 }, intermediates: [{}] }),
        code: 'ERR_X509SVID_PATH_LENGTH',
        blames: 'root',
      },
      {
        name: 'root pathLen 1 with one intermediate',
        build: () => build({ root: { pathLen: 1 }, intermediates: [{}] }),
        length: 3,
      },
      {
        name: 'root pathLen 1 with two intermediates',
        build: () => build({ root: { pathLen: 1 }, intermediates: [{}, {}] }),
        code: 'ERR_X509SVID_PATH_LENGTH',
        blames: 'root',
      },
      {
        name: 'intermediate pathLen 0 with another intermediate below it',
        build: () => build({ intermediates: [{ pathLen: 0 }, {}] }),
        code: 'ERR_X509SVID_PATH_LENGTH',
        blames: 'intermediate',
      },
      {
        name: 'root pathLen 0 with a self-issued intermediate (key rollover), which does not count',
        build: () =>
          build({
            root: { pathLen: 0 },
            intermediates: [
              {
                subject: [
                  ['O', 'svidkit test'],
                  ['CN', 'root example.org'],
                ],
              },
            ],
          }),
        length: 3,
      },
      // name constraints: URI
      {
        name: 'root permitting URI host example.org, leaf spiffe://example.org/workload',
        build: () => build({ root: { nameConstraints: { permittedUris: ['example.org'] } } }),
        length: 2,
      },
      {
        name: 'root permitting URI host example.org, through an intermediate spiffe://example.org',
        build: () => build({ root: { nameConstraints: { permittedUris: ['example.org'] } }, intermediates: [{}] }),
        length: 3,
      },
      {
        name: 'control: an unconstrained root filed under other.org validates an other.org leaf',
        build: () => build({ leaf: { uris: ['spiffe://other.org/workload'] }, bundleFor: 'other.org' }),
        length: 2,
      },
      {
        name: 'root permitting URI host example.org, leaf spiffe://other.org/workload',
        build: () =>
          build({
            root: { nameConstraints: { permittedUris: ['example.org'] } },
            leaf: { uris: ['spiffe://other.org/workload'] },
            bundleFor: 'other.org',
          }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
        blames: 'leaf',
      },
      {
        name: 'intermediate permitting URI host example.org, leaf spiffe://other.org/workload',
        build: () =>
          build({
            intermediates: [{ nameConstraints: { permittedUris: ['example.org'] } }],
            leaf: { uris: ['spiffe://other.org/workload'] },
            bundleFor: 'other.org',
          }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
        blames: 'intermediate',
      },
      {
        name: 'root permitting URI .example.org (subdomains only), leaf spiffe://example.org/workload',
        build: () => build({ root: { nameConstraints: { permittedUris: ['.example.org'] } } }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
      },
      {
        name: 'root permitting URI .example.org, leaf spiffe://prod.example.org/workload',
        build: () =>
          build({
            root: { trustDomain: 'prod.example.org', nameConstraints: { permittedUris: ['.example.org'] } },
          }),
        length: 2,
      },
      {
        name: 'root excluding URI host example.org, leaf spiffe://example.org/workload',
        build: () => build({ root: { nameConstraints: { excludedUris: ['example.org'] } } }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
      },
      {
        name: 'root excluding URI host other.org, leaf spiffe://example.org/workload',
        build: () => build({ root: { nameConstraints: { excludedUris: ['other.org'] } } }),
        length: 2,
      },
      // name constraints: DNS (RFC 5280: "example.com" is the host and its subdomains, ".example.com" subdomains only)
      ...dnsCases(),
      // name constraints on forms svidkit does not match
      {
        name: 'root constraining email addresses, leaf without an email SAN',
        build: () =>
          build({ root: { extraExtensions: [permittedOf([new GeneralName({ rfc822Name: 'example.org' })])] } }),
        length: 2,
      },
      {
        name: 'root constraining email addresses, leaf with an email SAN (a form svidkit cannot check)',
        build: () =>
          build({
            root: { extraExtensions: [permittedOf([new GeneralName({ rfc822Name: 'example.org' })])] },
            leaf: {
              noSan: true,
              extraExtensions: [
                sanOf([uriName('spiffe://example.org/workload'), new GeneralName({ rfc822Name: 'w@example.org' })]),
              ],
            },
          }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
      },
      {
        name: 'root constraining IP addresses to 10.0.0.0/8, leaf with IP SAN 10.1.2.3 (a form svidkit cannot check)',
        build: () =>
          build({
            root: { extraExtensions: [permittedIpv4Subnet()] },
            leaf: {
              noSan: true,
              extraExtensions: [
                sanOf([uriName('spiffe://example.org/workload'), new GeneralName({ iPAddress: '10.1.2.3' })]),
              ],
            },
          }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
      },
      {
        name: 'root constraining otherName (UPN), leaf with a UPN otherName SAN (a form svidkit cannot check)',
        build: () =>
          build({
            root: { extraExtensions: [permittedOf([upnName('admin@example.org')])] },
            leaf: {
              noSan: true,
              extraExtensions: [sanOf([uriName('spiffe://example.org/workload'), upnName('someone@evil.example')])],
            },
          }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
      },
      // name constraints: directoryName (the subject)
      {
        name: 'root permitting directoryName O=svidkit test, leaf subject O=svidkit test, CN=workload',
        build: () =>
          build({
            root: {
              extraExtensions: [permittedOf([new GeneralName({ directoryName: buildName([['O', 'svidkit test']]) })])],
            },
            leaf: {
              subject: [
                ['O', 'svidkit test'],
                ['CN', 'workload'],
              ],
            },
          }),
        length: 2,
      },
      {
        name: 'root permitting directoryName O=svidkit test, leaf subject O=evil',
        build: () =>
          build({
            root: {
              extraExtensions: [permittedOf([new GeneralName({ directoryName: buildName([['O', 'svidkit test']]) })])],
            },
            leaf: { subject: [['O', 'evil']] },
          }),
        code: 'ERR_X509SVID_NAME_CONSTRAINTS',
      },
      // critical extensions
      {
        name: 'leaf with an unknown non-critical extension',
        build: () => build({ leaf: { extraExtensions: [privateExtension(false)] } }),
        length: 2,
      },
      {
        name: 'leaf with an unknown critical extension',
        build: () => build({ leaf: unknownCritical }),
        code: 'ERR_X509SVID_UNHANDLED_CRITICAL_EXTENSION',
        blames: 'leaf',
      },
      {
        name: 'intermediate with an unknown critical extension',
        build: () => build({ intermediates: [unknownCritical] }),
        code: 'ERR_X509SVID_UNHANDLED_CRITICAL_EXTENSION',
        blames: 'intermediate',
      },
      {
        name: 'root with an unknown critical extension',
        build: () => build({ root: unknownCritical }),
        code: 'ERR_X509SVID_UNHANDLED_CRITICAL_EXTENSION',
        blames: 'root',
      },
      // signatures and the choice of bundle
      {
        name: 'leaf naming the root (DN and key ID) but signed by another key',
        build: () => build({ leaf: { signingKey: generateKeyPair().privateKey } }),
        code: 'ERR_X509SVID_BAD_SIGNATURE',
      },
      {
        name: 'leaf of an impostor root with the same subject DN (its key ID differs)',
        build: () => {
          const real = TestCa.root();
          const { chain } = TestCa.root().leaf('/workload');
          return { chain, bundles: real.bundle() };
        },
        code: 'ERR_X509SVID_UNTRUSTED',
      },
      {
        name: 'leaf of an impostor root with the same subject DN, without authorityKeyIdentifier',
        build: () => {
          const real = TestCa.root();
          const { chain } = TestCa.root().leaf('/workload', { noAuthorityKeyId: true });
          return { chain, bundles: real.bundle() };
        },
        code: 'ERR_X509SVID_BAD_SIGNATURE',
      },
      {
        name: 'leaf signed by the root, without authorityKeyIdentifier',
        build: () => build({ leaf: { noAuthorityKeyId: true } }),
        length: 2,
      },
      {
        name: 'leaf of trust domain other.org with bundles of example.org only',
        build: () => {
          const a = TestCa.root();
          const b = TestCa.root({ trustDomain: 'other.org' });
          return { chain: b.leaf('/workload').chain, bundles: new BundleSet([a.bundle()]) };
        },
        code: 'ERR_X509SVID_NO_BUNDLE',
      },
      {
        name: "leaf claiming example.org issued by other.org's root, both bundles present",
        build: () => {
          const a = TestCa.root();
          const b = TestCa.root({ trustDomain: 'other.org' });
          const { chain } = b.leaf('/workload', { uris: ['spiffe://example.org/workload'] });
          return { chain, bundles: new BundleSet([a.bundle(), b.bundle()]) };
        },
        code: 'ERR_X509SVID_UNTRUSTED',
      },
      {
        name: "leaf claiming example.org issued by other.org's root named like example.org's, both bundles present",
        build: () => {
          const a = TestCa.root();
          const b = TestCa.root({
            trustDomain: 'other.org',
            subject: [
              ['O', 'svidkit test'],
              ['CN', 'root example.org'],
            ],
          });
          const { chain } = b.leaf('/workload', { uris: ['spiffe://example.org/workload'], noAuthorityKeyId: true });
          return { chain, bundles: new BundleSet([a.bundle(), b.bundle()]) };
        },
        code: 'ERR_X509SVID_BAD_SIGNATURE',
      },
      {
        name: 'control: the same other.org leaf claiming other.org verifies with both bundles',
        build: () => {
          const a = TestCa.root();
          const b = TestCa.root({ trustDomain: 'other.org' });
          return { chain: b.leaf('/workload').chain, bundles: new BundleSet([a.bundle(), b.bundle()]) };
        },
        length: 2,
      },
      {
        name: 'an empty bundle for the trust domain (nothing validates)',
        build: () => {
          const { chain } = TestCa.root().leaf('/workload');
          return { chain, bundles: new X509Bundle(TrustDomain.parse('example.org')) };
        },
        code: 'ERR_X509SVID_UNTRUSTED',
      },
      {
        name: 'the bundle holds a different root of the same trust domain',
        build: () => {
          const { chain } = TestCa.root().leaf('/workload');
          const other = TestCa.root({ subject: [['CN', 'another root']] });
          return { chain, bundles: other.bundle() };
        },
        code: 'ERR_X509SVID_UNTRUSTED',
      },
      {
        name: 'an intermediate missing from the chain',
        build: () => {
          const s = build({ intermediates: [{}, {}] });
          return { ...s, chain: [s.chain[0]!, s.chain[1]!] };
        },
        code: 'ERR_X509SVID_UNTRUSTED',
      },
      // bounds
      {
        name: 'eleven certificates',
        build: () => {
          const s = build({ intermediates: [{}] });
          return { ...s, chain: [s.chain[0]!, ...Array.from({ length: 10 }, () => s.chain[1]!)] };
        },
        code: 'ERR_X509SVID_TOO_MANY_CERTIFICATES',
      },
      {
        name: 'no certificates',
        build: () => ({ chain: [], bundles: root.bundle() }),
        code: 'ERR_X509SVID_NO_CERTIFICATES',
      },
    ];

    function dnsCases(): PathCase[] {
      const rows: [string, 'permittedDns' | 'excludedDns', string, boolean][] = [
        ['example.com', 'permittedDns', 'example.com', true],
        ['example.com', 'permittedDns', 'www.example.com', true],
        ['example.com', 'permittedDns', 'a.b.example.com', true],
        ['example.com', 'permittedDns', 'badexample.com', false],
        ['example.com', 'permittedDns', 'example.net', false],
        ['.example.com', 'permittedDns', 'www.example.com', true],
        ['.example.com', 'permittedDns', 'example.com', false],
        ['example.com', 'excludedDns', 'example.com', false],
        ['example.com', 'excludedDns', 'www.example.com', false],
        ['example.com', 'excludedDns', 'example.net', true],
        ['example.com', 'excludedDns', 'badexample.com', true],
        ['.example.com', 'excludedDns', 'www.example.com', false],
        ['.example.com', 'excludedDns', 'example.com', true],
      ];
      const cases: PathCase[] = rows.map(([constraint, kind, dns, ok]) => ({
        name: `root with ${kind} ${constraint}, leaf DNS SAN ${dns}`,
        build: () => build({ root: { nameConstraints: { [kind]: [constraint] } }, leaf: { dnsNames: [dns] } }),
        ...(ok ? { length: 2 } : { code: 'ERR_X509SVID_NAME_CONSTRAINTS' as const, blames: 'leaf' }),
      }));
      cases.push({
        name: 'root with permittedDns example.com, leaf without DNS SANs (an unconstrained form)',
        build: () => build({ root: { nameConstraints: { permittedDns: ['example.com'] } } }),
        length: 2,
      });
      return cases;
    }

    for (const c of CASES) {
      const outcome = c.code ?? `accepted, path of ${c.length}`;
      it(`${c.name} -> ${outcome}`, () => {
        const s = c.build();
        if (c.code) {
          const err = assertCode(() => verify(s.chain, s.bundles, AT), c.code);
          if (c.blames) assert.match(err.message, new RegExp(c.blames), err.message);
        } else {
          const r = verify(s.chain, s.bundles, AT);
          assert.equal(r.id.toString(), SpiffeId.parse(s.chain[0]!.subjectAltName!.uris[0]!).toString());
          assert.equal(r.chain.length, c.length);
          assert.equal(r.chain[0], s.chain[0]);
          const top = r.chain[r.chain.length - 1]!;
          const anchors = s.bundles.getX509BundleForTrustDomain(r.id.trustDomain)!;
          assert.ok(anchors.hasAuthority(top), 'the path must end at a root of the bundle');
        }
      });
    }

    it('X509Svid.fromParts() refuses eleven certificates and an empty list', () => {
      const s = build({ intermediates: [{}] });
      const { key } = root.leaf('/workload');
      const eleven = [s.chain[0]!, ...Array.from({ length: 10 }, () => s.chain[1]!)];
      assertCode(() => X509Svid.fromParts(eleven, key), 'ERR_X509SVID_TOO_MANY_CERTIFICATES');
      assertCode(() => X509Svid.fromParts([], key), 'ERR_X509SVID_NO_CERTIFICATES');
    });

    it('a PEM chain of eleven certificates gets the chain error, not a PEM one', () => {
      const s = build({ intermediates: [{}] });
      const pem = [s.chain[0]!, ...Array.from({ length: 10 }, () => s.chain[1]!)].map((c) => c.toPem()).join('');
      assertCode(() => verifyPem(pem, s.bundles, AT), 'ERR_X509SVID_TOO_MANY_CERTIFICATES');
    });

    it('X509Svid.fromParts() refuses a non-CA intermediate', () => {
      const ca = root.intermediate({ basicConstraints: 'not-ca' });
      const { chain, key } = ca.leaf('/workload');
      assertCode(() => X509Svid.fromParts(chain, key), 'ERR_X509SVID_ISSUER_NOT_CA');
    });

    it('X509Svid.fromParts() refuses an intermediate without keyCertSign, as go-spiffe does', () => {
      const ca = root.intermediate({ keyUsage: KeyUsageBit.cRLSign });
      const { chain, key } = ca.leaf('/workload');
      assertCode(() => X509Svid.fromParts(chain, key), 'ERR_X509SVID_ISSUER_KEY_USAGE');
    });
  });

  // -------------------------------------------------------------------------------------------
  // Key types
  // -------------------------------------------------------------------------------------------

  describe('key types', () => {
    const TYPES: KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'ed25519'];
    const roots = new Map<KeyType, TestCa>();
    const rootOf = (kt: KeyType): TestCa => {
      let r = roots.get(kt);
      if (!r) {
        r = TestCa.root({ keyType: kt });
        roots.set(kt, r);
      }
      return r;
    };

    for (const caType of TYPES) {
      for (const leafType of TYPES) {
        it(`${caType} root signs a ${leafType} leaf`, () => {
          const ca = rootOf(caType);
          const svid = ca.svid('/workload', { keyType: leafType });
          const r = verify(svid.certificates, ca.bundle(), AT);
          assert.equal(r.id.toString(), 'spiffe://example.org/workload');
          assert.equal(r.chain.length, 2);
        });
      }
      it(`${caType} intermediate under an ${caType} root signs an ec-p256 leaf`, () => {
        const inter = rootOf(caType).intermediate({ keyType: caType });
        const r = verify(inter.svid('/workload').certificates, rootOf(caType).bundle(), AT);
        assert.equal(r.chain.length, 3);
      });
    }

    it('rsa-4096 root signs an rsa-4096 leaf', function () {
      this.timeout(120_000); // two RSA-4096 key generations
      const ca = TestCa.root({ keyType: 'rsa-4096' });
      const svid = ca.svid('/workload', { keyType: 'rsa-4096' });
      assert.equal(verify(svid.certificates, ca.bundle(), AT).chain.length, 2);
    });
  });

  // -------------------------------------------------------------------------------------------
  // PEM parsing and key hygiene
  // -------------------------------------------------------------------------------------------

  describe('X509Svid.parse', () => {
    let svid: X509Svid;
    let chainPem: string;
    let keyPem: string;
    let leafDer: Buffer;
    before(() => {
      svid = root.intermediate().svid('/workload');
      chainPem = svid.certificatesPem();
      keyPem = svid.privateKeyPem();
      leafDer = svid.leaf.der;
    });

    const certPem = (der: Uint8Array): string =>
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(der).toString('base64')}\n-----END CERTIFICATE-----\n`;

    interface ParseCase {
      name: string;
      chain: () => string;
      key: () => string;
      code?: ErrorCode;
    }

    const CASES: ParseCase[] = [
      { name: 'a valid chain and key', chain: () => chainPem, key: () => keyPem },
      {
        name: 'text around the PEM blocks (ignored, as OpenSSL does)',
        chain: () => `subject=whatever\n${chainPem}trailing notes\n`,
        key: () => `# key\n${keyPem}`,
      },
      {
        name: 'the key of another leaf',
        chain: () => chainPem,
        key: () => privateKeyToPem(generateKeyPair().privateKey),
        code: 'ERR_X509SVID_KEY_MISMATCH',
      },
      {
        name: 'an "EC PRIVATE KEY" (SEC1) key block',
        chain: () => chainPem,
        key: () => svid.privateKey.export({ format: 'pem', type: 'sec1' }) as string,
        code: 'ERR_KEY_MALFORMED',
      },
      {
        name: 'an "RSA PRIVATE KEY" (PKCS#1) key block',
        chain: () => chainPem,
        key: () => generateKeyPair('rsa-2048').privateKey.export({ format: 'pem', type: 'pkcs1' }) as string,
        code: 'ERR_KEY_MALFORMED',
      },
      {
        name: 'two private keys in the key file',
        chain: () => chainPem,
        key: () => keyPem + keyPem,
        code: 'ERR_KEY_MALFORMED',
      },
      { name: 'a key file without a key', chain: () => chainPem, key: () => chainPem, code: 'ERR_KEY_MALFORMED' },
      {
        name: 'a chain with invalid base64',
        chain: () => fixture('certificate-block-invalid-base64.pem'),
        key: () => keyPem,
        code: 'ERR_PEM_MALFORMED',
      },
      {
        name: 'a chain whose END line names another type',
        chain: () => fixture('certificate-block-end-line-mismatch.pem'),
        key: () => keyPem,
        code: 'ERR_PEM_MALFORMED',
      },
      {
        name: 'a chain without END line',
        chain: () => fixture('certificate-block-missing-end-line.pem'),
        key: () => keyPem,
        code: 'ERR_PEM_MALFORMED',
      },
      {
        name: 'a chain block with RFC 1421 encryption headers',
        chain: () => fixture('certificate-block-with-encryption-headers.pem'),
        key: () => keyPem,
        code: 'ERR_PEM_MALFORMED',
      },
      {
        name: 'a chain file with no PEM block',
        chain: () => fixture('no-pem-blocks.txt'),
        key: () => keyPem,
        code: 'ERR_X509SVID_NO_CERTIFICATES',
      },
      {
        name: 'a chain padded to exactly 64 KiB',
        chain: () => chainPem + '#'.repeat(64 * 1024 - Buffer.byteLength(chainPem)),
        key: () => keyPem,
      },
      {
        name: 'a chain one byte over 64 KiB',
        chain: () => chainPem + '#'.repeat(64 * 1024 + 1 - Buffer.byteLength(chainPem)),
        key: () => keyPem,
        code: 'ERR_PEM_TOO_LARGE',
      },
      // A PRIVATE KEY block in the chain file is skipped, as go-spiffe's Parse does (one file holding
      // both, the layout of nginx and HAProxy users); a key file alone holds no certificate.
      {
        name: 'the PRIVATE KEY block as the chain',
        chain: () => keyPem,
        key: () => keyPem,
        code: 'ERR_X509SVID_NO_CERTIFICATES',
      },
      {
        name: 'a chain with a PRIVATE KEY block after the certificates',
        chain: () => chainPem + keyPem,
        key: () => keyPem,
      },
      {
        name: 'one file with the chain, then the key, as both',
        chain: () => chainPem + keyPem,
        key: () => chainPem + keyPem,
      },
      {
        name: 'one file with the key, then the chain, as both',
        chain: () => keyPem + chainPem,
        key: () => keyPem + chainPem,
      },
      {
        name: 'an "EC PRIVATE KEY" block in the chain file',
        chain: () => chainPem + (svid.privateKey.export({ format: 'pem', type: 'sec1' }) as string),
        key: () => keyPem,
        code: 'ERR_PEM_UNEXPECTED_TYPE',
      },
      {
        name: 'DER garbage inside a CERTIFICATE block',
        chain: () => fixture('certificate-block-garbage-der.pem'),
        key: () => keyPem,
        code: 'ERR_X509_MALFORMED',
      },
      {
        name: 'a truncated leaf certificate',
        chain: () => certPem(leafDer.subarray(0, leafDer.length - 10)),
        key: () => keyPem,
        code: 'ERR_X509_MALFORMED',
      },
      {
        name: 'a leaf certificate with trailing bytes',
        chain: () => certPem(Buffer.concat([leafDer, Buffer.from([0, 0])])),
        key: () => keyPem,
        code: 'ERR_X509_MALFORMED',
      },
      {
        name: 'a leaf certificate with a trailing DER element',
        chain: () => certPem(Buffer.concat([leafDer, Buffer.from([0x05, 0x00])])),
        key: () => keyPem,
        code: 'ERR_X509_MALFORMED',
      },
    ];

    for (const c of CASES) {
      it(`${c.name} -> ${c.code ?? 'accepted'}`, () => {
        if (c.code) {
          assertCode(() => X509Svid.parse(c.chain(), c.key()), c.code);
        } else {
          const parsed = X509Svid.parse(c.chain(), c.key());
          assert.ok(parsed.id.equals(svid.id));
          assert.equal(parsed.certificates.length, 2);
          assert.ok(parsed.leaf.der.equals(leafDer));
        }
      });
    }

    it('accepts Uint8Array input as well as strings', () => {
      const parsed = X509Svid.parse(Buffer.from(chainPem), Buffer.from(keyPem));
      assert.equal(parsed.id.toString(), 'spiffe://example.org/workload');
    });

    it('privateKeyPem() round-trips through X509Svid.parse', () => {
      const again = X509Svid.parse(svid.certificatesPem(), svid.privateKeyPem());
      assert.equal(again.privateKeyPem(), keyPem);
      assert.equal(again.certificatesPem(), chainPem);
      assert.equal(again.toString(), svid.toString());
    });

    it('String(), JSON.stringify() and util.inspect() never show the private key', () => {
      const body = keyPem.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----'));
      const views = {
        String: String(svid),
        template: `${svid}`,
        JSON: JSON.stringify(svid),
        nestedJSON: JSON.stringify({ svid }),
        inspect: inspect(svid),
        deepInspect: inspect({ svid }, { depth: 10, showHidden: true }),
      };
      for (const [how, text] of Object.entries(views)) {
        assert.ok(!text.includes('PRIVATE KEY'), `${how} shows a PRIVATE KEY block`);
        assert.ok(!text.includes(keyPem), `${how} shows the key PEM`);
        for (const line of body) assert.ok(!text.includes(line), `${how} shows part of the key`);
        assert.ok(text.includes('spiffe://example.org/workload'), `${how} should name the SVID: ${text}`);
      }
      assert.deepEqual(Object.keys(JSON.parse(views.JSON) as object).sort(), ['expiresAt', 'id', 'serial']);
    });
  });

  describe('verifyPem and createCsr', () => {
    it('verifyPem() verifies a PEM chain given as a string and as bytes', () => {
      const inter = root.intermediate();
      const pem = inter.svid('/workload').certificatesPem();
      assert.equal(verifyPem(pem, root.bundle(), AT).chain.length, 3);
      assert.equal(verifyPem(Buffer.from(pem), root.bundle(), AT).id.toString(), 'spiffe://example.org/workload');
    });

    it('verifyPem() applies the rules: an expired leaf', () => {
      const pem = root.svid('/workload').certificatesPem();
      assertCode(() => verifyPem(pem, root.bundle(), { at: t0(2 * HOUR) }), 'ERR_X509SVID_EXPIRED');
    });

    it('verifyPem() refuses a file without certificates', () => {
      assertCode(() => verifyPem(fixture('no-pem-blocks.txt'), root.bundle(), AT), 'ERR_X509SVID_NO_CERTIFICATES');
    });

    it('createCsr() refuses a trust-domain ID', () => {
      const key = generateKeyPair().privateKey;
      assertCode(() => createCsr(SpiffeId.parse('spiffe://example.org'), key), 'ERR_X509SVID_INVALID_ID');
    });

    it('createCsr() requests the workload ID and the DNS names', () => {
      const pair = generateKeyPair();
      const id = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
      const csr = parseCsr(createCsr(id, pair.privateKey, { dnsNames: ['web.example.org'] }));
      assert.deepEqual(csr.requestedNames.uris, [id.toString()]);
      assert.deepEqual(csr.requestedNames.dnsNames, ['web.example.org']);
      assert.ok(csr.publicKey.equals(pair.publicKey));
    });
  });

  // -------------------------------------------------------------------------------------------
  // Interop with the openssl binary
  // -------------------------------------------------------------------------------------------

  describe(`openssl verify -x509_strict interop (${opensslVersion() ?? 'openssl is not on PATH'})`, () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'svidkit-x509svid-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    /** Skips outside CI when openssl is missing; in CI a missing peer is a failure. */
    function needOpenssl(ctx: Mocha.Context): void {
      if (opensslVersion()) return;
      if (process.env.CI === 'true') throw new Error('openssl is required in CI but is not on PATH');
      ctx.test!.title += ' [skipped: openssl is not on PATH]';
      ctx.skip();
    }

    /** Writes root, intermediate and leaf PEM files and runs openssl verify at `at`. */
    function opensslVerify(kt: KeyType, at: Date, leafOpts: LeafOptions = {}) {
      const ca = TestCa.root({ keyType: kt });
      const inter = ca.intermediate({ keyType: kt });
      const { chain } = inter.leaf('/ns/prod/sa/web', { keyType: kt, ...leafOpts });
      const files = {
        root: join(dir, `${kt}-root.pem`),
        inter: join(dir, `${kt}-inter.pem`),
        leaf: join(dir, `${kt}-leaf.pem`),
      };
      writeFileSync(files.root, ca.cert.toPem());
      writeFileSync(files.inter, inter.cert.toPem());
      writeFileSync(files.leaf, chain[0]!.toPem());
      const args = ['verify', '-x509_strict', '-attime', String(Math.floor(at.getTime() / 1000))];
      return openssl([...args, '-CAfile', files.root, '-untrusted', files.inter, files.leaf]);
    }

    for (const kt of ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const) {
      it(`accepts a ${kt} root -> intermediate -> leaf chain that svidkit accepts`, function () {
        needOpenssl(this);
        const r = opensslVerify(kt, T0);
        assert.equal(r.status, 0, r.output);
        assert.match(r.output, /: OK$/m);
      });
    }

    it('control: refuses the same chain after the leaf expired (so -attime is in effect)', function () {
      needOpenssl(this);
      const r = opensslVerify('ec-p256', t0(2 * HOUR));
      assert.notEqual(r.status, 0, r.output);
      assert.match(r.output, /expired/);
    });
  });
});
