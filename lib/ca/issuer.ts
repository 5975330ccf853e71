/**
 * The CA's issuance hot path: one workload X.509-SVID from a DER CSR, with the profile of
 * signWorkloadSvid (profile.ts) but at close to the speed of the three unavoidable crypto operations
 * (import the CSR's key, verify the CSR, sign the certificate).
 *
 * What makes it fast: the CSR is walked with a minimal DER reader instead of an ASN.1 schema, the
 * signed part and the SubjectPublicKeyInfo are sliced rather than re-encoded, EC and Ed25519 keys are
 * imported from JWK (OpenSSL 3's DER decoders are about 2.5 times slower), and every byte of the
 * certificate that does not change per SVID is encoded once, when the issuer is built.
 */
import { createHash, createPublicKey, type KeyObject, randomFillSync } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { readElement } from '../internal/der.js';
import {
  DER_NULL,
  DER_TRUE,
  header,
  ia5String,
  namedBits,
  oid,
  sequence,
  TAG,
  tlv,
  unsignedInteger,
  x509Time,
} from '../internal/der-write.js';
import { KEY_TYPES, type KeyType, keyTypeOf, samePublicKey } from '../keys/index.js';
import type { SpiffeId } from '../spiffeid/index.js';
import { SIG_OID, signatureAlgorithmFor, signWith, verifyWith } from '../x509/algorithms.js';
import { keyIdentifier } from '../x509/build.js';
import { KeyUsageBit } from '../x509/certificate.js';
import { MAX_CSR_BYTES } from '../x509/csr.js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH } from '../x509svid/index.js';
import { CLOCK_SKEW_MS, isDnsText, type Signer } from './profile.js';

/** What one issuance needs: the registration entry's names, the CSR and the validity. */
export interface IssueRequest {
  /** The workload's SPIFFE ID (with a path); the only URI SAN of the certificate. */
  readonly id: SpiffeId;
  /** DNS names from the registration entry (IA5 strings, not empty); nothing is taken from the CSR. */
  readonly dnsNames?: readonly string[];
  /** The DER CSR; only its public key is used, after its self-signature verifies. */
  readonly csrDer: Uint8Array;
  /** Issuance instant; notBefore is `now - CLOCK_SKEW_MS`. */
  readonly now: Date;
  /** Requested lifetime; notAfter is `min(now + ttlMs, the signer's notAfter)`. */
  readonly ttlMs: number;
  /** Key types accepted in the CSR; default every one of KEY_TYPES. */
  readonly allowedKeyTypes?: readonly KeyType[];
}

/** An issued X.509-SVID. */
export interface IssuedSvid {
  /** The certificate, DER. */
  readonly der: Buffer;
  /** Serial number as lowercase hex without leading zeros (as Certificate.serialHex). */
  readonly serialHex: string;
  /** notAfter exactly as encoded (whole seconds). */
  readonly notAfter: Date;
}

// ---------------------------------------------------------------------------------------------
// Constant encodings

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_P256 = '1.2.840.10045.3.1.7';
const OID_P384 = '1.3.132.0.34';
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const OID_ED25519 = '1.3.101.112';

/** SubjectPublicKeyInfo.algorithm encodings svidkit accepts, exactly (RSA with its NULL, as OpenSSL writes it). */
const SPKI_ALG = {
  p256: sequence(oid(OID_EC_PUBLIC_KEY), oid(OID_P256)),
  p384: sequence(oid(OID_EC_PUBLIC_KEY), oid(OID_P384)),
  rsa: sequence(oid(OID_RSA_ENCRYPTION), DER_NULL),
  ed25519: sequence(oid(OID_ED25519)),
} as const;

/**
 * CSR signature AlgorithmIdentifier encodings accepted, by hex of their DER: ECDSA and Ed25519 without
 * parameters (RFC 5758, RFC 8410), PKCS#1 v1.5 with NULL parameters (RFC 4055) or, as some encoders
 * write them, without.
 */
const CSR_SIG_ALGS: ReadonlyMap<string, AlgorithmIdentifier> = (() => {
  const m = new Map<string, AlgorithmIdentifier>();
  for (const [name, dotted] of Object.entries(SIG_OID)) {
    const alg = new AlgorithmIdentifier({ algorithm: dotted });
    m.set(sequence(oid(dotted)).toString('hex'), alg);
    if (name.startsWith('rsa')) m.set(sequence(oid(dotted), DER_NULL).toString('hex'), alg);
  }
  return m;
})();

/** [0] EXPLICIT INTEGER 2: version v3. */
const VERSION_V3 = Buffer.from([0xa0, 0x03, TAG.INTEGER, 0x01, 0x02]);
/** The empty subject Name. */
const EMPTY_NAME = sequence();
/** Context-specific primitive tags of GeneralName. */
const GN_DNS = 0x82;
const GN_URI = 0x86;

function extension(oidDotted: string, critical: boolean, value: Uint8Array): Buffer {
  // critical is BOOLEAN DEFAULT FALSE: DER leaves a false value out.
  return critical
    ? sequence(oid(oidDotted), DER_TRUE, tlv(TAG.OCTET_STRING, value))
    : sequence(oid(oidDotted), tlv(TAG.OCTET_STRING, value));
}

const EXT_SAN_PREFIX = Buffer.concat([oid(id_ce_subjectAltName), DER_TRUE]);
const NO_UNUSED_BITS = Uint8Array.of(0);

// ---------------------------------------------------------------------------------------------
// Serial numbers

const SERIAL_BYTES = 16;
/** CSPRNG output drawn 256 serials at a time: one randomBytes call per certificate costs about 3% of an issuance. */
const serialPool = Buffer.alloc(SERIAL_BYTES * 256);
let serialPoolOffset = serialPool.length;

/** A random positive 128-bit serial, as randomSerial() in build.ts: first octet 0x01-0x7f, so DER keeps all 16 octets. */
function nextSerial(): Buffer {
  if (serialPoolOffset === serialPool.length) {
    randomFillSync(serialPool);
    serialPoolOffset = 0;
  }
  const serial = Buffer.allocUnsafe(SERIAL_BYTES);
  serialPool.copy(serial, 0, serialPoolOffset, serialPoolOffset + SERIAL_BYTES);
  serialPool.fill(0, serialPoolOffset, serialPoolOffset + SERIAL_BYTES); // used randomness is not kept around
  serialPoolOffset += SERIAL_BYTES;
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  return serial;
}

// ---------------------------------------------------------------------------------------------
// Errors

function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new SvidkitError(code, message, cause === undefined ? undefined : { cause });
}

function malformed(message: string, cause?: unknown): never {
  fail('ERR_CSR_MALFORMED', `csr: ${message}`, cause);
}

// ---------------------------------------------------------------------------------------------
// CSR walk

interface CsrParts {
  /** CertificationRequestInfo, sliced: the signed bytes. */
  readonly info: Uint8Array;
  /** SubjectPublicKeyInfo, sliced. */
  readonly spki: Uint8Array;
  /** SubjectPublicKeyInfo.algorithm, sliced. */
  readonly spkiAlg: Uint8Array;
  /** The subjectPublicKey BIT STRING contents after the unused-bits octet. */
  readonly keyBits: Uint8Array;
  readonly sigAlg: AlgorithmIdentifier;
  /** The signature BIT STRING contents after the unused-bits octet. */
  readonly signature: Uint8Array;
}

function expect(buf: Uint8Array, offset: number, limit: number, tag: number, what: string) {
  const el = readElement(buf, offset, limit);
  if (el.tag !== tag) malformed(`expected ${what}`);
  return el;
}

/** The contents of a BIT STRING element whose unused-bits count is zero. */
function bitStringBytes(buf: Uint8Array, el: { contentStart: number; end: number }, what: string): Uint8Array {
  if (el.end - el.contentStart < 1 || buf[el.contentStart] !== 0) malformed(`${what} has unused bits`);
  return buf.subarray(el.contentStart + 1, el.end);
}

/**
 * Walks `CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature BIT STRING }` and,
 * inside info, `SEQUENCE { version INTEGER (0), subject Name, SubjectPublicKeyInfo, [0] attributes }`.
 * Subject and attributes are skipped unread: nothing is taken from them.
 */
function walkCsr(der: Uint8Array): CsrParts {
  try {
    const outer = expect(der, 0, der.length, TAG.SEQUENCE, 'a CertificationRequest SEQUENCE');
    if (outer.end !== der.length) malformed('trailing data after the CSR');
    const infoEl = expect(der, outer.contentStart, outer.end, TAG.SEQUENCE, 'a CertificationRequestInfo SEQUENCE');
    const algEl = expect(der, infoEl.end, outer.end, TAG.SEQUENCE, 'a signature AlgorithmIdentifier');
    const sigEl = expect(der, algEl.end, outer.end, TAG.BIT_STRING, 'a signature BIT STRING');
    if (sigEl.end !== outer.end) malformed('trailing data after the signature');

    const versionEl = expect(der, infoEl.contentStart, infoEl.end, TAG.INTEGER, 'a version INTEGER');
    if (versionEl.end - versionEl.contentStart !== 1 || der[versionEl.contentStart] !== 0) {
      malformed('unsupported CSR version');
    }
    const subjectEl = expect(der, versionEl.end, infoEl.end, TAG.SEQUENCE, 'a subject Name');
    const spkiEl = expect(der, subjectEl.end, infoEl.end, TAG.SEQUENCE, 'a SubjectPublicKeyInfo');
    const attrsEl = expect(der, spkiEl.end, infoEl.end, 0xa0, 'the [0] attributes');
    if (attrsEl.end !== infoEl.end) malformed('trailing data in the CertificationRequestInfo');

    const spkiAlgEl = expect(der, spkiEl.contentStart, spkiEl.end, TAG.SEQUENCE, 'a public key AlgorithmIdentifier');
    const keyEl = expect(der, spkiAlgEl.end, spkiEl.end, TAG.BIT_STRING, 'a subjectPublicKey BIT STRING');
    if (keyEl.end !== spkiEl.end) malformed('trailing data in the SubjectPublicKeyInfo');

    const sigAlg = CSR_SIG_ALGS.get(
      Buffer.from(der.buffer, der.byteOffset + algEl.start, algEl.end - algEl.start).toString('hex'),
    );
    if (!sigAlg) malformed('unsupported signature algorithm');

    return {
      info: der.subarray(infoEl.start, infoEl.end),
      spki: der.subarray(spkiEl.start, spkiEl.end),
      spkiAlg: der.subarray(spkiAlgEl.start, spkiAlgEl.end),
      keyBits: bitStringBytes(der, keyEl, 'subjectPublicKey'),
      sigAlg,
      signature: bitStringBytes(der, sigEl, 'signature'),
    };
  } catch (cause) {
    if (cause instanceof SvidkitError && cause.code === 'ERR_CSR_MALFORMED') throw cause;
    const detail = cause instanceof SvidkitError ? `: ${cause.plainMessage}` : '';
    return malformed(`CSR is not valid DER${detail}`, cause);
  }
}

// ---------------------------------------------------------------------------------------------
// Public key import

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function b64url(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('base64url');
}

function refuseType(type: KeyType | string, allowed: readonly KeyType[]): void {
  if (!(allowed as readonly string[]).includes(type)) {
    fail('ERR_KEY_UNSUPPORTED', `keys: key type ${type} is not allowed here (allowed: ${allowed.join(', ')})`);
  }
}

function importJwk(jwk: Record<string, string>): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (cause) {
    return malformed('public key cannot be imported', cause);
  }
}

/** Checks that `bits` is exactly `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`. */
function checkRsaPublicKey(bits: Uint8Array): void {
  try {
    const seq = readElement(bits, 0);
    if (seq.tag !== TAG.SEQUENCE || seq.end !== bits.length) malformed('RSA public key is not one SEQUENCE');
    const n = readElement(bits, seq.contentStart, seq.end);
    const e = readElement(bits, n.end, seq.end);
    if (n.tag !== TAG.INTEGER || e.tag !== TAG.INTEGER || e.end !== seq.end) malformed('RSA public key is malformed');
  } catch (cause) {
    if (cause instanceof SvidkitError && cause.code === 'ERR_CSR_MALFORMED') throw cause;
    malformed('RSA public key is not valid DER', cause);
  }
}

/**
 * Imports the CSR's public key and names its type, refusing types not in `allowed`. EC keys must be
 * uncompressed points on P-256 or P-384 and are imported from JWK, as are Ed25519 keys; RSA goes
 * through DER since its size is only known after import.
 */
function importKey(parts: CsrParts, allowed: readonly KeyType[]): { key: KeyObject; type: KeyType } {
  const { spkiAlg, keyBits } = parts;
  if (sameBytes(spkiAlg, SPKI_ALG.p256) || sameBytes(spkiAlg, SPKI_ALG.p384)) {
    const type: KeyType = spkiAlg.length === SPKI_ALG.p256.length ? 'ec-p256' : 'ec-p384';
    refuseType(type, allowed);
    const size = type === 'ec-p256' ? 32 : 48;
    if (keyBits[0] !== 0x04) fail('ERR_KEY_UNSUPPORTED', 'keys: only uncompressed EC points are supported');
    if (keyBits.length !== 1 + 2 * size) malformed('EC point has the wrong length for its curve');
    const crv = type === 'ec-p256' ? 'P-256' : 'P-384';
    const key = importJwk({
      kty: 'EC',
      crv,
      x: b64url(keyBits, 1, 1 + size),
      y: b64url(keyBits, 1 + size, 1 + 2 * size),
    });
    return { key, type };
  }
  if (sameBytes(spkiAlg, SPKI_ALG.ed25519)) {
    refuseType('ed25519', allowed);
    if (keyBits.length !== 32) malformed('Ed25519 public key must be 32 bytes');
    return { key: importJwk({ kty: 'OKP', crv: 'Ed25519', x: b64url(keyBits, 0, 32) }), type: 'ed25519' };
  }
  if (sameBytes(spkiAlg, SPKI_ALG.rsa)) {
    checkRsaPublicKey(keyBits);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: Buffer.from(parts.spki), format: 'der', type: 'spki' });
    } catch (cause) {
      malformed('public key cannot be imported', cause);
    }
    const type = keyTypeOf(key); // ERR_KEY_UNSUPPORTED for sizes other than 2048, 3072 and 4096 bits
    refuseType(type, allowed);
    return { key, type };
  }
  return fail('ERR_KEY_UNSUPPORTED', 'keys: unsupported public key algorithm in the CSR');
}

// ---------------------------------------------------------------------------------------------
// The issuer

function usage(message: string): never {
  fail('ERR_USAGE', `ca: ${message}`);
}

/**
 * Issues workload X.509-SVIDs for one signing CA. Build one per CA key (and again after rotation);
 * `issue` is synchronous and keeps nothing between calls (apart from a module-wide pool of random
 * bytes for serial numbers).
 */
export class SvidIssuer {
  /** The signing CA. */
  readonly signer: Signer;
  readonly #sigAlg: AlgorithmIdentifier;
  /** AlgorithmIdentifier + issuer Name: the TBSCertificate fields between serial and validity. */
  readonly #algAndIssuer: Buffer;
  /** Certificate.signatureAlgorithm (same bytes as in the TBSCertificate). */
  readonly #sigAlgDer: Buffer;
  /** basicConstraints + keyUsage + extKeyUsage, with digitalSignature only or, for RSA, keyEncipherment too. */
  readonly #leadingExtensions: { readonly plain: Buffer; readonly rsa: Buffer };
  /** authorityKeyIdentifier. */
  readonly #aki: Buffer;
  readonly #signerNotAfter: number;

  constructor(signer: Signer) {
    const { cert, key } = signer;
    if (key.type !== 'private') usage('the signer key must be a private key');
    if (!samePublicKey(key, cert.publicKey)) {
      fail('ERR_X509SVID_KEY_MISMATCH', 'ca: the signer key does not match the signer certificate');
    }
    if (cert.basicConstraints?.cA !== true)
      fail('ERR_X509SVID_ISSUER_NOT_CA', 'ca: the signer certificate is not a CA');
    if (cert.keyUsage && (cert.keyUsage.bits & KeyUsageBit.keyCertSign) === 0) {
      fail('ERR_X509SVID_ISSUER_KEY_USAGE', 'ca: the signer certificate lacks keyCertSign');
    }
    this.signer = signer;
    this.#sigAlg = signatureAlgorithmFor(key); // ERR_KEY_UNSUPPORTED for key types svidkit does not sign with
    this.#sigAlgDer = Buffer.from(AsnConvert.serialize(this.#sigAlg));
    this.#algAndIssuer = Buffer.concat([this.#sigAlgDer, cert.subjectDer]);
    const basicConstraints = extension(id_ce_basicConstraints, true, sequence()); // cA FALSE is the DEFAULT
    const eku = extension(id_ce_extKeyUsage, false, sequence(oid(OID_SERVER_AUTH), oid(OID_CLIENT_AUTH)));
    const ku = (bits: number) => extension(id_ce_keyUsage, true, namedBits(bits));
    this.#leadingExtensions = {
      plain: Buffer.concat([basicConstraints, ku(KeyUsageBit.digitalSignature), eku]),
      rsa: Buffer.concat([basicConstraints, ku(KeyUsageBit.digitalSignature | KeyUsageBit.keyEncipherment), eku]),
    };
    const akid = cert.subjectKeyId ?? keyIdentifier(cert.publicKey);
    this.#aki = extension(id_ce_authorityKeyIdentifier, false, sequence(tlv(0x80, akid)));
    this.#signerNotAfter = cert.notAfter.getTime();
  }

  /**
   * Verifies the CSR and signs the workload SVID. Throws ERR_CSR_MALFORMED (bad encoding, size,
   * version, signature algorithm or key encoding), ERR_KEY_UNSUPPORTED (key type not supported or not
   * in allowedKeyTypes), ERR_CSR_SIGNATURE (the CSR's self-signature does not verify),
   * ERR_X509SVID_INVALID_ID (an ID without a path), ERR_X509SVID_EXPIRED (the signer has expired at
   * `now`) and ERR_USAGE (bad now, ttlMs or DNS names).
   */
  issue(req: IssueRequest): IssuedSvid {
    const { id, csrDer, now, ttlMs } = req;
    if (id.isTrustDomainId()) fail('ERR_X509SVID_INVALID_ID', 'ca: a workload ID needs a path');
    const nowMs = now instanceof Date ? now.getTime() : NaN;
    if (!Number.isFinite(nowMs)) usage('now must be a valid Date');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) usage('ttlMs must be a positive number');
    const notAfterMs = Math.floor(Math.min(nowMs + ttlMs, this.#signerNotAfter) / 1000) * 1000;
    if (notAfterMs <= nowMs) {
      fail('ERR_X509SVID_EXPIRED', `ca: the signing CA expired at ${new Date(this.#signerNotAfter).toISOString()}`);
    }
    let validity: Buffer;
    try {
      validity = sequence(x509Time(new Date(nowMs - CLOCK_SKEW_MS)), x509Time(new Date(notAfterMs)));
    } catch {
      usage('now is outside the years X.509 can encode');
    }
    const san = this.#subjectAltName(id, req.dnsNames ?? []);

    if (!(csrDer instanceof Uint8Array)) malformed('the CSR must be bytes');
    if (csrDer.length > MAX_CSR_BYTES) malformed(`CSR is larger than ${MAX_CSR_BYTES} bytes`);
    const parts = walkCsr(csrDer);
    const { key, type } = importKey(parts, req.allowedKeyTypes ?? KEY_TYPES);
    let ok: boolean;
    try {
      ok = verifyWith(parts.sigAlg, key, parts.info, parts.signature);
    } catch (cause) {
      // Unsupported algorithms are refused by the walk already; anything else is an encoding problem.
      return malformed('signature cannot be checked', cause);
    }
    if (!ok) fail('ERR_CSR_SIGNATURE', 'csr: signature does not verify with the CSR public key');

    const serial = nextSerial();
    const serialHex = serial.toString('hex').replace(/^0+(?=.)/, '');
    const ski = extension(
      id_ce_subjectKeyIdentifier,
      false,
      tlv(TAG.OCTET_STRING, createHash('sha1').update(parts.keyBits).digest()),
    );
    const extensions = tlv(
      0xa3,
      sequence(
        type.startsWith('rsa') ? this.#leadingExtensions.rsa : this.#leadingExtensions.plain,
        san,
        ski,
        this.#aki,
      ),
    );
    const tbs = sequence(
      VERSION_V3,
      unsignedInteger(serial),
      this.#algAndIssuer,
      validity,
      EMPTY_NAME,
      parts.spki,
      extensions,
    );
    const signature = signWith(this.#sigAlg, this.signer.key, tbs);
    const der = sequence(tbs, this.#sigAlgDer, header(TAG.BIT_STRING, signature.length + 1), NO_UNUSED_BITS, signature);
    return { der, serialHex, notAfter: new Date(notAfterMs) };
  }

  /** The critical subjectAltName: the ID's URI, then the DNS names, all IA5String. */
  #subjectAltName(id: SpiffeId, dnsNames: readonly string[]): Buffer {
    const names: Buffer[] = [ia5String(id.toString(), GN_URI)];
    for (const d of dnsNames) {
      if (!isDnsText(d)) usage('a DNS name must be a non-empty string of printable ASCII');
      names.push(ia5String(d, GN_DNS));
    }
    return sequence(EXT_SAN_PREFIX, tlv(TAG.OCTET_STRING, sequence(...names)));
  }
}
