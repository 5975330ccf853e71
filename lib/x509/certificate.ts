/**
 * A parsed X.509 certificate: the exact DER, the signed part as received, and the extensions svidkit
 * needs decoded from ASN.1 (Node's X509Certificate exposes neither key-usage bits nor name constraints).
 */
import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate as AsnCertificate,
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  type GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  type Name,
  NameConstraints,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { SvidkitError } from '../errors/index.js';
import { checkStructure, readElement, signedPart } from '../internal/der.js';
import { decodePem, encodePem, MAX_PEM_BYTES } from '../internal/pem.js';
import { hasSpkiDer, samePublicKey, spkiDer } from '../keys/index.js';
import { signatureAlgorithmName, verifyWith } from './algorithms.js';
import { type GeneralNames, generalNamesOf } from './names.js';

/** Key usage bits as decoded (RFC 5280 section 4.2.1.3). */
export const KeyUsageBit = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;

/** Extension OIDs whose criticality svidkit understands and enforces. */
export const HANDLED_EXTENSIONS: ReadonlySet<string> = new Set([
  id_ce_basicConstraints,
  id_ce_keyUsage,
  id_ce_extKeyUsage,
  id_ce_subjectAltName,
  id_ce_nameConstraints,
  id_ce_subjectKeyIdentifier,
  id_ce_authorityKeyIdentifier,
]);

/** Most certificates in one PEM chain. */
export const MAX_CHAIN_LENGTH = 10;
/** Largest single certificate accepted in DER. */
export const MAX_CERTIFICATE_BYTES = 16 * 1024;
/** Issuer keys one certificate remembers a verified signature for; a real chain needs one, cross-signing a few. */
const MAX_REMEMBERED_SIGNERS = 4;

/** Decoded name constraints: permitted and excluded subtrees, each grouped by name form. */
export interface DecodedNameConstraints {
  readonly permitted?: GeneralNames;
  readonly excluded?: GeneralNames;
}

function malformed(message: string, cause?: unknown): never {
  throw new SvidkitError('ERR_X509_MALFORMED', `x509: ${message}`, cause === undefined ? undefined : { cause });
}

function parseExt<T>(value: ArrayBuffer, type: new () => T, what: string): T {
  try {
    return AsnConvert.parse(value, type);
  } catch (cause) {
    return malformed(`${what} extension is malformed`, cause);
  }
}

/**
 * DER of a decoded field. The ASN.1 reader takes some values its writer refuses (a Name attribute whose
 * string tag says UTCTime, say); such a certificate is malformed, not a reason to throw something else.
 */
function reencode(what: string, value: unknown): Buffer {
  try {
    return Buffer.from(AsnConvert.serialize(value));
  } catch (cause) {
    return malformed(`${what} cannot be encoded again`, cause);
  }
}

/** generalNamesOf, which re-encodes directoryName entries, with the failure reported as reencode does. */
function namesOf(names: Iterable<GeneralName>, what: string): GeneralNames {
  try {
    return generalNamesOf(names);
  } catch (cause) {
    return malformed(`${what} extension holds a name that cannot be encoded again`, cause);
  }
}

/** The subjectPublicKeyInfo element of a TBSCertificate, exactly as encoded (RFC 5280 4.1: the 7th field, 6th without a version). */
function spkiPart(tbs: Uint8Array): Uint8Array {
  const outer = readElement(tbs, 0);
  let pos = outer.contentStart;
  let el = readElement(tbs, pos, outer.end);
  if (el.tag === 0xa0) el = readElement(tbs, (pos = el.end), outer.end);
  // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
  for (let i = 0; i < 5; i++) el = readElement(tbs, (pos = el.end), outer.end);
  if (el.tag !== 0x30) malformed('subjectPublicKeyInfo is not a SEQUENCE');
  return tbs.subarray(el.start, el.end);
}

/** An X.509 certificate with the fields path validation and SVID rules need, parsed once. */
export class Certificate {
  /** The certificate's DER encoding, exactly as received. */
  readonly der: Buffer;
  /** The to-be-signed part, sliced from `der`. */
  readonly tbs: Uint8Array;
  /** The decoded ASN.1 structure. */
  readonly asn: AsnCertificate;
  /** Serial number as lowercase hex without leading zeros. */
  readonly serialHex: string;
  /** Start of validity. */
  readonly notBefore: Date;
  /** End of validity. */
  readonly notAfter: Date;
  /** DER of the subject Name, for exact comparison while chaining. */
  readonly subjectDer: Buffer;
  /** DER of the issuer Name. */
  readonly issuerDer: Buffer;
  /** basicConstraints, if present. */
  readonly basicConstraints?: { readonly cA: boolean; readonly pathLen?: number; readonly critical: boolean };
  /** keyUsage bits (see KeyUsageBit), if present. */
  readonly keyUsage?: { readonly bits: number; readonly critical: boolean };
  /** extKeyUsage OIDs, if present. */
  readonly extKeyUsage?: readonly string[];
  /** subjectAltName, if present. */
  readonly subjectAltName?: GeneralNames & { readonly critical: boolean };
  /** nameConstraints, if present. */
  readonly nameConstraints?: DecodedNameConstraints;
  /** subjectKeyIdentifier, if present. */
  readonly subjectKeyId?: Buffer;
  /** authorityKeyIdentifier's keyIdentifier, if present. */
  readonly authorityKeyId?: Buffer;
  /** OIDs of critical extensions svidkit does not process; path validation refuses such certificates. */
  readonly unhandledCriticalExtensions: readonly string[];
  #publicKey?: KeyObject;
  #node?: X509Certificate;
  /** Base64 SPKIs of the issuer keys this certificate's signature verified with. */
  readonly #signers = new Set<string>();

  private constructor(der: Buffer) {
    if (der.length > MAX_CERTIFICATE_BYTES) malformed(`certificate is larger than ${MAX_CERTIFICATE_BYTES} bytes`);
    this.der = der;
    let asn: AsnCertificate;
    try {
      this.tbs = signedPart(der);
      checkStructure(der);
      asn = AsnConvert.parse(der, AsnCertificate);
    } catch (cause) {
      const detail = cause instanceof SvidkitError ? `: ${cause.message.replace(/^der: /, '')}` : '';
      malformed(`certificate is not valid DER${detail}`, cause);
    }
    this.asn = asn;
    const tbs = asn.tbsCertificate;
    if (
      !reencode('signature algorithm', tbs.signature).equals(reencode('signature algorithm', asn.signatureAlgorithm))
    ) {
      malformed('inner and outer signature algorithms differ');
    }
    this.serialHex = Buffer.from(tbs.serialNumber)
      .toString('hex')
      .replace(/^0+(?=.)/, '');
    this.notBefore = tbs.validity.notBefore.getTime();
    this.notAfter = tbs.validity.notAfter.getTime();
    this.subjectDer = reencode('subject', tbs.subject);
    this.issuerDer = reencode('issuer', tbs.issuer);
    const exts = tbs.extensions ?? [];
    if (exts.length > 0 && tbs.version !== 2) malformed('extensions require a version 3 certificate');
    const seen = new Set<string>();
    const unhandled: string[] = [];
    for (const ext of exts) {
      if (seen.has(ext.extnID)) malformed(`extension ${ext.extnID} appears more than once`);
      seen.add(ext.extnID);
      const value = ext.extnValue.buffer;
      switch (ext.extnID) {
        case id_ce_basicConstraints: {
          const bc = parseExt(value, BasicConstraints, 'basicConstraints');
          this.basicConstraints = { cA: bc.cA, pathLen: bc.pathLenConstraint, critical: ext.critical };
          break;
        }
        case id_ce_keyUsage: {
          const ku = parseExt(value, KeyUsage, 'keyUsage');
          this.keyUsage = { bits: ku.toNumber(), critical: ext.critical };
          break;
        }
        case id_ce_extKeyUsage:
          this.extKeyUsage = [...parseExt(value, ExtendedKeyUsage, 'extKeyUsage')];
          break;
        case id_ce_subjectAltName:
          this.subjectAltName = {
            ...namesOf(parseExt(value, SubjectAlternativeName, 'subjectAltName'), 'subjectAltName'),
            critical: ext.critical,
          };
          break;
        case id_ce_nameConstraints: {
          const nc = parseExt(value, NameConstraints, 'nameConstraints');
          const pick = (subtrees: NameConstraints['permittedSubtrees']) =>
            subtrees
              ? namesOf(
                  subtrees.map((s) => s.base),
                  'nameConstraints',
                )
              : undefined;
          this.nameConstraints = {
            permitted: pick(nc.permittedSubtrees),
            excluded: pick(nc.excludedSubtrees),
          };
          break;
        }
        case id_ce_subjectKeyIdentifier:
          this.subjectKeyId = Buffer.from(parseExt(value, SubjectKeyIdentifier, 'subjectKeyIdentifier').buffer);
          break;
        case id_ce_authorityKeyIdentifier: {
          const aki = parseExt(value, AuthorityKeyIdentifier, 'authorityKeyIdentifier');
          if (aki.keyIdentifier) this.authorityKeyId = Buffer.from(aki.keyIdentifier.buffer);
          break;
        }
        default:
          if (ext.critical) unhandled.push(ext.extnID);
      }
    }
    this.unhandledCriticalExtensions = unhandled;
  }

  /** Parses one DER certificate; throws ERR_X509_MALFORMED or ERR_DER_MALFORMED. */
  static fromDer(der: Uint8Array): Certificate {
    return new Certificate(Buffer.from(der));
  }

  /**
   * Parses every CERTIFICATE block of a PEM text, in order. At most `max` certificates and `maxBytes` (64 KiB);
   * other block types are refused so that a key file passed by mistake is not half-read.
   */
  static fromPem(pem: string | Uint8Array, max = MAX_CHAIN_LENGTH, maxBytes = MAX_PEM_BYTES): Certificate[] {
    const blocks = decodePem(pem, max, maxBytes);
    return blocks.map((b) => {
      if (b.type !== 'CERTIFICATE') {
        throw new SvidkitError('ERR_PEM_UNEXPECTED_TYPE', `pem: expected CERTIFICATE blocks, found "${b.type}"`);
      }
      return Certificate.fromDer(b.der);
    });
  }

  /** The subject public key; import errors surface as ERR_X509_MALFORMED. */
  get publicKey(): KeyObject {
    if (!this.#publicKey) {
      try {
        // The signed bytes themselves, not a re-encoding of the decoded field: cheaper, and what was signed.
        this.#publicKey = createPublicKey({ key: Buffer.from(spkiPart(this.tbs)), format: 'der', type: 'spki' });
      } catch (cause) {
        malformed('subject public key cannot be imported', cause);
      }
    }
    return this.#publicKey;
  }

  /** True when `key` (public or private) is this certificate's subject public key. */
  hasPublicKey(key: KeyObject): boolean {
    // Byte-equal SPKIs are the same key and need no import. Otherwise both keys are compared as
    // OpenSSL encodes them again: a comparison by value would accept keys OpenSSL loads but cannot
    // write back in a form it reads (found by the X509Svid.parse fuzz test).
    if (hasSpkiDer(key, spkiPart(this.tbs))) return true;
    return samePublicKey(key, this.publicKey);
  }

  /** Node's view of the same certificate (for subject/issuer strings); OpenSSL's refusal is ERR_X509_MALFORMED. */
  get node(): X509Certificate {
    if (!this.#node) {
      try {
        this.#node = new X509Certificate(this.der);
      } catch (cause) {
        malformed('OpenSSL cannot read the certificate', cause);
      }
    }
    return this.#node;
  }

  /** The subject distinguished name as Node prints it (one attribute per line). */
  get subject(): string {
    return this.node.subject ?? '';
  }

  /** The issuer distinguished name as Node prints it. */
  get issuer(): string {
    return this.node.issuer ?? '';
  }

  /** True when the subject Name is empty. */
  get subjectIsEmpty(): boolean {
    return (this.asn.tbsCertificate.subject as Name).length === 0;
  }

  /** The signature algorithm's name. */
  get signatureAlgorithm(): string {
    return signatureAlgorithmName(this.asn.signatureAlgorithm.algorithm);
  }

  /** True when issuer and subject are the same Name. */
  isSelfIssued(): boolean {
    return this.issuerDer.equals(this.subjectDer);
  }

  /** True when `issuerKey` verifies this certificate's signature. */
  isSignedBy(issuerKey: KeyObject): boolean {
    // The answer depends only on this certificate's bytes and the issuer's public key, and the agent asks
    // it of the same intermediate and root for every workload: a success is remembered under the exact
    // SPKI of the key that gave it. A failure is always checked again.
    const signer = spkiDer(issuerKey).toString('base64');
    if (this.#signers.has(signer)) return true;
    const ok = verifyWith(this.asn.signatureAlgorithm, issuerKey, this.tbs, new Uint8Array(this.asn.signatureValue));
    if (ok && this.#signers.size < MAX_REMEMBERED_SIGNERS) this.#signers.add(signer);
    return ok;
  }

  /** SHA-256 of the DER, hex. */
  fingerprint256(): string {
    return createHash('sha256').update(this.der).digest('hex');
  }

  /** PEM encoding. */
  toPem(): string {
    return encodePem('CERTIFICATE', this.der);
  }
}

/**
 * Parsed certificates by their exact DER encoding, for chains that repeat the same intermediates: the
 * agent receives its CA's intermediates once per workload. A hit is only ever a certificate with the
 * very same bytes, and a certificate that does not parse is never kept. The oldest entry goes first.
 */
export class CertificateCache {
  readonly #max: number;
  readonly #byDer = new Map<string, Certificate>();

  /** A cache of at most `max` certificates. */
  constructor(max = 16) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('x509: CertificateCache max must be a positive integer');
    this.#max = max;
  }

  /** Certificate.fromDer, answered from the cache when these exact bytes were parsed before. */
  fromDer(der: Uint8Array): Certificate {
    // Oversized input goes straight to the parser, which refuses it, and never becomes a map key.
    if (der.length > MAX_CERTIFICATE_BYTES) return Certificate.fromDer(der);
    const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
    const hit = this.#byDer.get(key);
    if (hit) {
      this.#byDer.delete(key);
      this.#byDer.set(key, hit);
      return hit;
    }
    const cert = Certificate.fromDer(der);
    if (this.#byDer.size >= this.#max) this.#byDer.delete(this.#byDer.keys().next().value!);
    this.#byDer.set(key, cert);
    return cert;
  }

  /** How many certificates the cache holds. */
  get size(): number {
    return this.#byDer.size;
  }
}
