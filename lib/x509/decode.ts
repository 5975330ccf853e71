/**
 * The hand-written reader of a certificate's fields (RFC 5280 4.1) and of the extensions whose
 * content is a few primitives. It walks the DER once, slicing names and keys exactly as they were
 * signed; the general ASN.1 library stays for GeneralNames (subjectAltName, nameConstraints), which
 * have many forms. docs/decisions.md says why: a schema-driven parse of a whole certificate cost
 * about 0.9 ms, most of what the agent spent on each workload's rotation.
 */
import { SvidkitError } from '../errors/index.js';
import {
  childrenOf,
  contentOf,
  type DerElement,
  integerContent,
  readBitsAsNumber,
  readBoolean,
  readElement,
  readOctetAlignedBits,
  readOid,
  readSmallUnsigned,
  readTime,
} from '../internal/der.js';
import { TAG } from '../internal/der-write.js';

/** One extension as encoded: its OID, criticality and the content of extnValue. */
export interface RawExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** The fields of a certificate, each sliced from or decoded out of its DER. */
export interface CertificateFields {
  /** TBSCertificate, exactly as signed. */
  readonly tbs: Uint8Array;
  /** 0 for v1, 1 for v2, 2 for v3. */
  readonly version: number;
  /** serialNumber's content octets. */
  readonly serial: Uint8Array;
  /** The outer signatureAlgorithm, exactly as encoded. */
  readonly signatureAlgorithmDer: Uint8Array;
  /** Its algorithm OID. */
  readonly signatureAlgorithmOid: string;
  /** The signature field inside tbsCertificate, exactly as encoded (RFC 5280: equal to the outer one). */
  readonly innerSignatureAlgorithmDer: Uint8Array;
  /** signatureValue's bits. */
  readonly signature: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** subjectPublicKeyInfo, exactly as encoded. */
  readonly spki: Uint8Array;
  readonly extensions: readonly RawExtension[];
}

function malformed(what: string): never {
  throw new SvidkitError('ERR_DER_MALFORMED', `der: ${what}`);
}

function expectTag(el: DerElement | undefined, tag: number, what: string): DerElement {
  if (!el || el.tag !== tag) malformed(`expected ${what}`);
  return el;
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }: the OID. */
function algorithmOid(buf: Uint8Array, el: DerElement, what: string): string {
  const parts = childrenOf(buf, expectTag(el, TAG.SEQUENCE, what));
  if (parts.length < 1 || parts.length > 2) malformed(`${what} has ${parts.length} fields`);
  return readOid(buf, parts[0]!);
}

/**
 * Tags an attribute value in a Name may carry: the string types of DirectoryString, IA5String and
 * NumericString. Go's x509 refuses any other value, and so do we (a CN tagged UTCTime, say).
 */
const NAME_VALUE_TAGS: ReadonlySet<number> = new Set([0x0c, 0x12, 0x13, 0x14, 0x16, 0x1c, 0x1e]);

/**
 * Name ::= SEQUENCE OF RelativeDistinguishedName (SET SIZE (1..MAX) OF SEQUENCE { type OID, value }),
 * each value a string type.
 */
function checkName(buf: Uint8Array, el: DerElement, what: string): Uint8Array {
  for (const rdn of childrenOf(buf, expectTag(el, TAG.SEQUENCE, `${what} to be a Name`))) {
    const atvs = childrenOf(buf, expectTag(rdn, TAG.SET, `${what} to hold SETs`));
    if (atvs.length === 0) malformed(`${what} holds an empty RelativeDistinguishedName`);
    for (const atv of atvs) {
      const pair = childrenOf(buf, expectTag(atv, TAG.SEQUENCE, `${what} attributes to be SEQUENCEs`));
      if (pair.length !== 2) malformed(`${what} attribute does not hold a type and a value`);
      readOid(buf, pair[0]!);
      if (!NAME_VALUE_TAGS.has(pair[1]!.tag)) malformed(`${what} holds an attribute value that is not a string`);
    }
  }
  return buf.subarray(el.start, el.end);
}

function extensionsOf(buf: Uint8Array, wrapper: DerElement): RawExtension[] {
  const inner = childrenOf(buf, wrapper);
  if (inner.length !== 1) malformed('extensions must be one SEQUENCE');
  const out: RawExtension[] = [];
  for (const ext of childrenOf(buf, expectTag(inner[0], TAG.SEQUENCE, 'a SEQUENCE of extensions'))) {
    const parts = childrenOf(buf, expectTag(ext, TAG.SEQUENCE, 'an extension SEQUENCE'));
    if (parts.length < 2 || parts.length > 3) malformed('an extension has the wrong number of fields');
    const critical = parts.length === 3 ? readBoolean(buf, parts[1]!) : false;
    const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extnValue to be an OCTET STRING');
    out.push({ oid: readOid(buf, parts[0]!), critical, value: contentOf(buf, value) });
  }
  return out;
}

/**
 * Decodes `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`.
 * The caller has checked the framing (checkStructure); this checks each field's type and form.
 */
export function decodeCertificate(der: Uint8Array): CertificateFields {
  const outer = readElement(der, 0);
  const top = childrenOf(der, expectTag(outer, TAG.SEQUENCE, 'a certificate SEQUENCE'));
  if (top.length !== 3) malformed('a certificate holds exactly three fields');
  const [tbsEl, algEl, sigEl] = top as [DerElement, DerElement, DerElement];
  const fields = childrenOf(der, expectTag(tbsEl, TAG.SEQUENCE, 'tbsCertificate to be a SEQUENCE'));
  let i = 0;
  let version = 0;
  if (fields[0]?.tag === 0xa0) {
    const v = childrenOf(der, fields[i++]!);
    if (v.length !== 1) malformed('version must hold one INTEGER');
    version = readSmallUnsigned(der, v[0]!);
    if (version > 2) malformed(`version ${version + 1} is not an X.509 version`);
  }
  const serial = integerContent(der, expectTag(fields[i++], TAG.INTEGER, 'serialNumber'));
  const innerAlg = fields[i++];
  algorithmOid(der, expectTag(innerAlg, TAG.SEQUENCE, 'signature'), 'signature');
  const issuer = checkName(der, expectTag(fields[i++], TAG.SEQUENCE, 'issuer'), 'issuer');
  const validity = childrenOf(der, expectTag(fields[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) malformed('validity holds exactly two times');
  const notBefore = readTime(der, validity[0]!);
  const notAfter = readTime(der, validity[1]!);
  const subject = checkName(der, expectTag(fields[i++], TAG.SEQUENCE, 'subject'), 'subject');
  const spkiEl = expectTag(fields[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const spkiParts = childrenOf(der, spkiEl);
  if (spkiParts.length !== 2) malformed('subjectPublicKeyInfo holds exactly two fields');
  algorithmOid(der, spkiParts[0]!, 'subjectPublicKeyInfo algorithm');
  if (spkiParts[1]!.tag !== TAG.BIT_STRING) malformed('expected subjectPublicKey to be a BIT STRING');
  // issuerUniqueID [1] and subjectUniqueID [2] (IMPLICIT BIT STRING), then extensions [3].
  for (const tag of [0x81, 0x82]) if (fields[i]?.tag === tag) i++;
  let extensions: RawExtension[] = [];
  if (fields[i]?.tag === 0xa3) extensions = extensionsOf(der, fields[i++]!);
  if (i !== fields.length) malformed('tbsCertificate holds unexpected fields');
  const signatureAlgorithmOid = algorithmOid(der, algEl, 'signatureAlgorithm');
  return {
    tbs: der.subarray(tbsEl.start, tbsEl.end),
    version,
    serial,
    signatureAlgorithmDer: der.subarray(algEl.start, algEl.end),
    signatureAlgorithmOid,
    innerSignatureAlgorithmDer: der.subarray(innerAlg!.start, innerAlg!.end),
    signature: readOctetAlignedBits(der, expectTag(sigEl, TAG.BIT_STRING, 'signatureValue')),
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: der.subarray(spkiEl.start, spkiEl.end),
    extensions,
  };
}

/** The single element an extension's value holds; nothing may follow it. */
function valueElement(value: Uint8Array, tag: number, what: string): DerElement {
  const el = readElement(value, 0);
  if (el.end !== value.length) malformed(`${what} has trailing data`);
  return expectTag(el, tag, what);
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }. */
export function decodeBasicConstraints(value: Uint8Array): { cA: boolean; pathLen?: number } {
  const parts = childrenOf(value, valueElement(value, TAG.SEQUENCE, 'basicConstraints'));
  let i = 0;
  const cA = parts[i]?.tag === TAG.BOOLEAN ? readBoolean(value, parts[i++]!) : false;
  const pathLen = parts[i]?.tag === TAG.INTEGER ? readSmallUnsigned(value, parts[i++]!) : undefined;
  if (i !== parts.length) malformed('basicConstraints holds unexpected fields');
  return pathLen === undefined ? { cA } : { cA, pathLen };
}

/** KeyUsage ::= BIT STRING, as a number of KeyUsageBit flags. */
export function decodeKeyUsage(value: Uint8Array): number {
  return readBitsAsNumber(value, valueElement(value, TAG.BIT_STRING, 'keyUsage'));
}

/** ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId (OBJECT IDENTIFIER). */
export function decodeExtKeyUsage(value: Uint8Array): string[] {
  return childrenOf(value, valueElement(value, TAG.SEQUENCE, 'extKeyUsage')).map((el) => readOid(value, el));
}

/** SubjectKeyIdentifier ::= OCTET STRING. */
export function decodeSubjectKeyId(value: Uint8Array): Uint8Array {
  return contentOf(value, valueElement(value, TAG.OCTET_STRING, 'subjectKeyIdentifier'));
}

/**
 * AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL, authorityCertIssuer [1] OPTIONAL,
 * authorityCertSerialNumber [2] OPTIONAL }: the keyIdentifier, if present.
 */
export function decodeAuthorityKeyId(value: Uint8Array): Uint8Array | undefined {
  const parts = childrenOf(value, valueElement(value, TAG.SEQUENCE, 'authorityKeyIdentifier'));
  let i = 0;
  const keyId = parts[i]?.tag === 0x80 ? contentOf(value, parts[i++]!) : undefined;
  if (parts[i]?.tag === 0xa1) i++;
  if (parts[i]?.tag === 0x82) i++;
  if (i !== parts.length) malformed('authorityKeyIdentifier holds unexpected fields');
  return keyId;
}
