/**
 * X.509-SVIDs: CSRs for a SPIFFE ID, parsing an SVID (chain + key) and verifying a chain against the
 * bundle of the leaf's trust domain with the X509-SVID rules on top of RFC 5280 path validation.
 */
import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import type { X509BundleSource } from '../bundle/source.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { keyTypeOf, loadPrivateKeyPem, privateKeyToPem } from '../keys/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import { Certificate, KeyUsageBit, MAX_CHAIN_LENGTH } from '../x509/certificate.js';
import { buildCsr } from '../x509/csr.js';
import { decodePem } from '../internal/pem.js';
import { buildPath, checkSigningCertificate, MAX_PATH_LENGTH, validatePath } from './path.js';

/** RFC 5280 validation of an already built path (leaf first, root last). */
export { MAX_PATH_LENGTH, validatePath as validateCertificatePath };

/** id-kp-serverAuth. */
export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
/** id-kp-clientAuth. */
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const OID_ANY_EKU = '2.5.29.37.0';

function fail(code: ErrorCode, message: string): never {
  throw new SvidkitError(code, `x509svid: ${message}`);
}

/**
 * Checks the X509-SVID leaf rules and returns the leaf's SPIFFE ID: exactly one URI SAN holding a
 * workload ID, not a CA, critical keyUsage with digitalSignature and without keyCertSign/cRLSign,
 * serverAuth and clientAuth when EKU is present, and a critical SAN when the subject is empty.
 */
export function idFromLeaf(leaf: Certificate): SpiffeId {
  const uris = leaf.subjectAltName?.uris ?? [];
  if (uris.length === 0) fail('ERR_X509SVID_NO_URI_SAN', 'leaf certificate has no URI SAN');
  if (uris.length > 1)
    fail('ERR_X509SVID_MULTIPLE_URI_SANS', `leaf certificate has ${uris.length} URI SANs; exactly one is allowed`);
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uris[0]!);
  } catch (err) {
    const why = err instanceof SvidkitError ? err.plainMessage : 'invalid';
    fail('ERR_X509SVID_INVALID_ID', `leaf URI SAN is not a valid SPIFFE ID: ${why}`);
  }
  if (id.isTrustDomainId()) fail('ERR_X509SVID_INVALID_ID', 'leaf SPIFFE ID has no path; a workload ID needs one');
  const broken = leafRuleViolations(leaf)[0];
  if (broken) fail(broken.code, broken.message);
  return id;
}

/** One X509-SVID leaf rule a certificate breaks. */
export interface LeafRuleViolation {
  /** Which rule. */
  readonly rule:
    | 'leaf-is-ca'
    | 'no-key-usage'
    | 'key-usage-not-critical'
    | 'no-digital-signature'
    | 'signing-key-usage'
    | 'ext-key-usage'
    | 'san-not-critical';
  /** The code idFromLeaf throws for it. */
  readonly code: ErrorCode;
  /** The message idFromLeaf throws for it (without the module prefix). */
  readonly message: string;
}

/**
 * Every leaf rule past the SPIFFE ID that `leaf` breaks, in the order idFromLeaf checks them: not a
 * CA; a critical keyUsage with digitalSignature and without keyCertSign or cRLSign; serverAuth and
 * clientAuth when there is an extKeyUsage; a critical subjectAltName when the subject is empty.
 */
export function leafRuleViolations(leaf: Certificate): LeafRuleViolation[] {
  const out: LeafRuleViolation[] = [];
  if (leaf.basicConstraints?.cA) {
    out.push({ rule: 'leaf-is-ca', code: 'ERR_X509SVID_LEAF_IS_CA', message: 'leaf certificate must not be a CA' });
  }
  const ku = leaf.keyUsage;
  const usage = (rule: LeafRuleViolation['rule'], message: string) =>
    out.push({ rule, code: 'ERR_X509SVID_LEAF_KEY_USAGE', message });
  if (!ku) usage('no-key-usage', 'leaf certificate has no keyUsage extension');
  else {
    if (!ku.critical) usage('key-usage-not-critical', 'leaf keyUsage extension must be critical');
    if ((ku.bits & KeyUsageBit.digitalSignature) === 0) {
      usage('no-digital-signature', 'leaf keyUsage must include digitalSignature');
    }
    if ((ku.bits & (KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign)) !== 0) {
      usage('signing-key-usage', 'leaf keyUsage must not include keyCertSign or cRLSign');
    }
  }
  const eku = leaf.extKeyUsage;
  if (eku && !eku.includes(OID_ANY_EKU) && !(eku.includes(OID_SERVER_AUTH) && eku.includes(OID_CLIENT_AUTH))) {
    out.push({
      rule: 'ext-key-usage',
      code: 'ERR_X509SVID_LEAF_EXT_KEY_USAGE',
      message: 'leaf extKeyUsage must include serverAuth and clientAuth',
    });
  }
  if (leaf.subjectIsEmpty && !leaf.subjectAltName?.critical) {
    out.push({
      rule: 'san-not-critical',
      code: 'ERR_X509SVID_SAN_NOT_CRITICAL',
      message: 'leaf subject is empty, so its subjectAltName must be critical',
    });
  }
  return out;
}

/** Options of verify. */
export interface VerifyOptions {
  /** Instant at which every certificate must be valid; default now. */
  readonly at?: Date;
}

/** A verified chain: the SPIFFE ID and the path from the leaf to a root of the bundle. */
export interface VerifiedChain {
  readonly id: SpiffeId;
  /** Leaf first, root (from the bundle) last. */
  readonly chain: readonly Certificate[];
}

/**
 * Verifies an X.509-SVID chain (leaf first, then intermediates in any order) against the bundle of
 * the leaf's trust domain, taken from `bundles`; the roots of other trust domains are never consulted.
 */
export function verify(
  certificates: readonly Certificate[],
  bundles: X509BundleSource,
  options: VerifyOptions = {},
): VerifiedChain {
  if (certificates.length === 0) fail('ERR_X509SVID_NO_CERTIFICATES', 'no certificates to verify');
  if (certificates.length > MAX_CHAIN_LENGTH) {
    fail('ERR_X509SVID_TOO_MANY_CERTIFICATES', `chain has more than ${MAX_CHAIN_LENGTH} certificates`);
  }
  const leaf = certificates[0]!;
  const id = idFromLeaf(leaf);
  const bundle = bundles.getX509BundleForTrustDomain(id.trustDomain);
  if (!bundle) fail('ERR_X509SVID_NO_BUNDLE', `no X.509 bundle for trust domain "${id.trustDomain.name}"`);
  const chain = buildPath(leaf, certificates.slice(1), bundle.authorities(), options.at ?? new Date());
  return { id, chain };
}

/** Parses a PEM chain and verifies it; see verify. */
export function verifyPem(
  pem: string | Uint8Array,
  bundles: X509BundleSource,
  options: VerifyOptions = {},
): VerifiedChain {
  return verify(parseChainPem(pem), bundles, options);
}

/** Parses a PEM certificate chain with the SVID bounds (1 to 10 certificates, 64 KiB). */
export function parseChainPem(pem: string | Uint8Array): Certificate[] {
  // One block more than allowed is read so that an overlong chain gets the chain error, not a PEM one.
  return checkChainLength(Certificate.fromPem(pem, MAX_CHAIN_LENGTH + 1));
}

/**
 * The chain of an SVID's certificate file, which may also hold the PKCS#8 key (one file for both, as
 * nginx and HAProxy users keep them): CERTIFICATE blocks in order, PRIVATE KEY blocks skipped, any
 * other block refused. go-spiffe's Parse reads such a file the same way.
 */
function parseSvidChainPem(pem: string | Uint8Array): Certificate[] {
  const certs: Certificate[] = [];
  for (const block of decodePem(pem, MAX_CHAIN_LENGTH + 2)) {
    if (block.type === 'PRIVATE KEY') continue;
    if (block.type !== 'CERTIFICATE') {
      throw new SvidkitError('ERR_PEM_UNEXPECTED_TYPE', `pem: expected CERTIFICATE blocks, found "${block.type}"`);
    }
    certs.push(Certificate.fromDer(block.der));
  }
  return checkChainLength(certs);
}

function checkChainLength(certs: Certificate[]): Certificate[] {
  if (certs.length > MAX_CHAIN_LENGTH) {
    fail('ERR_X509SVID_TOO_MANY_CERTIFICATES', `chain has more than ${MAX_CHAIN_LENGTH} certificates`);
  }
  if (certs.length === 0) fail('ERR_X509SVID_NO_CERTIFICATES', 'no CERTIFICATE block found');
  return certs;
}

/** An X.509-SVID: the SPIFFE ID, the chain (leaf first) and the private key of the leaf. */
export class X509Svid {
  /** The SPIFFE ID of the leaf. */
  readonly id: SpiffeId;
  /** Leaf first, then intermediates. */
  readonly certificates: readonly Certificate[];
  readonly #privateKey: KeyObject;

  private constructor(id: SpiffeId, certificates: readonly Certificate[], privateKey: KeyObject) {
    this.id = id;
    this.certificates = Object.freeze([...certificates]);
    this.#privateKey = privateKey;
  }

  /**
   * Builds an SVID from parsed parts: checks the leaf rules and that the key is the leaf's. The chain
   * is not verified against a bundle here; use verify for that.
   */
  static fromParts(certificates: readonly Certificate[], privateKey: KeyObject): X509Svid {
    if (certificates.length === 0) fail('ERR_X509SVID_NO_CERTIFICATES', 'no certificates');
    if (certificates.length > MAX_CHAIN_LENGTH) {
      fail('ERR_X509SVID_TOO_MANY_CERTIFICATES', `chain has more than ${MAX_CHAIN_LENGTH} certificates`);
    }
    const id = idFromLeaf(certificates[0]!);
    certificates.slice(1).forEach((c, i) => checkSigningCertificate(c, `intermediate ${i + 1}`));
    if (privateKey.type !== 'private') throw new TypeError('x509svid: privateKey must be a private key');
    keyTypeOf(privateKey);
    if (!certificates[0]!.hasPublicKey(privateKey)) {
      fail('ERR_X509SVID_KEY_MISMATCH', 'private key does not match the leaf certificate');
    }
    return new X509Svid(id, certificates, privateKey);
  }

  /**
   * Parses an SVID from a PEM chain and a PEM PKCS#8 key. Both may be the same text: the chain's
   * CERTIFICATE blocks and the one PRIVATE KEY block are each taken from it, in either order.
   */
  static parse(certificatesPem: string | Uint8Array, keyPem: string | Uint8Array): X509Svid {
    return X509Svid.fromParts(parseSvidChainPem(certificatesPem), loadPrivateKeyPem(keyPem));
  }

  /** The leaf certificate. */
  get leaf(): Certificate {
    return this.certificates[0]!;
  }

  /** The leaf's notAfter. */
  get expiresAt(): Date {
    return this.leaf.notAfter;
  }

  /** The private key; keep it in memory or in a 0600 file, never in a log. */
  get privateKey(): KeyObject {
    return this.#privateKey;
  }

  /** The chain as PEM. */
  certificatesPem(): string {
    return this.certificates.map((c) => c.toPem()).join('');
  }

  /** The private key as PKCS#8 PEM. */
  privateKeyPem(): string {
    return privateKeyToPem(this.#privateKey);
  }

  /** A summary without the key. */
  toJSON(): { id: string; serial: string; expiresAt: string } {
    return { id: this.id.toString(), serial: this.leaf.serialHex, expiresAt: this.expiresAt.toISOString() };
  }

  /** A summary without the key. */
  toString(): string {
    return `X509Svid(${this.id.toString()}, serial ${this.leaf.serialHex}, expires ${this.expiresAt.toISOString()})`;
  }

  /** Keeps the key out of console.log and util.inspect. */
  [inspect.custom](): string {
    return this.toString();
  }
}

/** Builds a DER CSR for a workload SPIFFE ID (and optional DNS names) signed with `key`. */
export function createCsr(id: SpiffeId, key: KeyObject, options: { dnsNames?: readonly string[] } = {}): Buffer {
  if (id.isTrustDomainId()) fail('ERR_X509SVID_INVALID_ID', 'a workload SVID needs an ID with a path');
  keyTypeOf(key);
  return buildCsr({ key, uris: [id.toString()], dnsNames: options.dnsNames });
}
