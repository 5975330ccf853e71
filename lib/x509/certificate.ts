/**
 * A parsed X.509 certificate: the exact DER, the signed part as received, and the extensions svidkit
 * needs decoded from ASN.1 (Node's X509Certificate exposes neither key-usage bits nor name constraints).
 */
import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate as AsnCertificate,
  type GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  NameConstraints,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import { SvidkitError } from '../errors/index.js';
import { checkStructureAndPrimitives, signedPart } from '../internal/der.js';
import { decodePem, encodePem, MAX_PEM_BYTES } from '../internal/pem.js';
import { hasSpkiDer, samePublicKey, spkiDer } from '../keys/index.js';
import { signatureAlgorithmName, verifyWith } from './algorithms.js';
import {
  type CertificateFields,
  decodeAuthorityKeyId,
  decodeBasicConstraints,
  decodeCertificate,
  decodeExtKeyUsage,
  decodeKeyUsage,
  decodeSubjectKeyId,
} from './decode.js';
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

function parseExt<T>(value: Uint8Array, type: new () => T, what: string): T {
  try {
    return AsnConvert.parse(value, type);
  } catch (cause) {
    return malformed(`${what} extension is malformed`, cause);
  }
}

/** A hand-written extension decoder, with its failure reported as parseExt reports one. */
function decodeExt<T>(value: Uint8Array, decode: (value: Uint8Array) => T, what: string): T {
  try {
    return decode(value);
  } catch (cause) {
    return malformed(`${what} extension is malformed`, cause);
  }
}

/** generalNamesOf, which re-encodes directoryName entries, with the failure reported as malformed. */
function namesOf(names: Iterable<GeneralName>, what: string): GeneralNames {
  try {
    return generalNamesOf(names);
  } catch (cause) {
    return malformed(`${what} extension holds a name that cannot be encoded again`, cause);
  }
}

/** An X.509 certificate with the fields path validation and SVID rules need, parsed once. */
export class Certificate {
  /** The certificate's DER encoding, exactly as received. */
  readonly der: Buffer;
  /** The to-be-signed part, sliced from `der`. */
  readonly tbs: Uint8Array;
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
  readonly #fields: CertificateFields;
  #asn?: AsnCertificate;
  #publicKey?: KeyObject;
  #node?: X509Certificate;
  /** Base64 SPKIs of the issuer keys this certificate's signature verified with. */
  readonly #signers = new Set<string>();

  private constructor(der: Buffer) {
    if (der.length > MAX_CERTIFICATE_BYTES) malformed(`certificate is larger than ${MAX_CERTIFICATE_BYTES} bytes`);
    this.der = der;
    let f: CertificateFields;
    try {
      signedPart(der);
      checkStructureAndPrimitives(der);
      f = decodeCertificate(der);
    } catch (cause) {
      const detail = cause instanceof SvidkitError ? `: ${cause.plainMessage}` : '';
      malformed(`certificate is not valid DER${detail}`, cause);
    }
    this.#fields = f;
    this.tbs = f.tbs;
    if (!Buffer.from(f.innerSignatureAlgorithmDer).equals(f.signatureAlgorithmDer)) {
      malformed('inner and outer signature algorithms differ');
    }
    this.serialHex = Buffer.from(f.serial)
      .toString('hex')
      .replace(/^0+(?=.)/, '');
    this.notBefore = f.notBefore;
    this.notAfter = f.notAfter;
    this.subjectDer = Buffer.from(f.subject);
    this.issuerDer = Buffer.from(f.issuer);
    if (f.extensions.length > 0 && f.version !== 2) malformed('extensions require a version 3 certificate');
    const seen = new Set<string>();
    const unhandled: string[] = [];
    for (const ext of f.extensions) {
      if (seen.has(ext.oid)) malformed(`extension ${ext.oid} appears more than once`);
      seen.add(ext.oid);
      const value = ext.value;
      switch (ext.oid) {
        case id_ce_basicConstraints: {
          const bc = decodeExt(value, decodeBasicConstraints, 'basicConstraints');
          this.basicConstraints = { cA: bc.cA, pathLen: bc.pathLen, critical: ext.critical };
          break;
        }
        case id_ce_keyUsage:
          this.keyUsage = { bits: decodeExt(value, decodeKeyUsage, 'keyUsage'), critical: ext.critical };
          break;
        case id_ce_extKeyUsage:
          this.extKeyUsage = decodeExt(value, decodeExtKeyUsage, 'extKeyUsage');
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
          this.subjectKeyId = Buffer.from(decodeExt(value, decodeSubjectKeyId, 'subjectKeyIdentifier'));
          break;
        case id_ce_authorityKeyIdentifier: {
          const keyId = decodeExt(value, decodeAuthorityKeyId, 'authorityKeyIdentifier');
          if (keyId) this.authorityKeyId = Buffer.from(keyId);
          break;
        }
        default:
          if (ext.critical) unhandled.push(ext.oid);
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

  /**
   * The whole structure decoded by the general ASN.1 library, on first use: for building certificates
   * that name this one's subject as their issuer, not for checks (those use the fields above).
   */
  get asn(): AsnCertificate {
    if (!this.#asn) {
      try {
        this.#asn = AsnConvert.parse(this.der, AsnCertificate);
      } catch (cause) {
        malformed('the ASN.1 library cannot decode the certificate', cause);
      }
    }
    return this.#asn;
  }

  /** The subject public key; import errors surface as ERR_X509_MALFORMED. */
  get publicKey(): KeyObject {
    if (!this.#publicKey) {
      try {
        // The signed bytes themselves, not a re-encoding of the decoded field: cheaper, and what was signed.
        this.#publicKey = createPublicKey({ key: Buffer.from(this.#fields.spki), format: 'der', type: 'spki' });
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
    if (hasSpkiDer(key, this.#fields.spki)) return true;
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
    return this.#fields.subject.length === 2;
  }

  /** The signature algorithm's name. */
  get signatureAlgorithm(): string {
    return signatureAlgorithmName(this.#fields.signatureAlgorithmOid);
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
    const ok = verifyWith(
      { algorithm: this.#fields.signatureAlgorithmOid },
      issuerKey,
      this.tbs,
      this.#fields.signature,
    );
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
