/**
 * PKCS#10 certificate signing requests. A CSR proves possession of a key; the CA takes nothing else
 * from it (no subject, no extension), so parsing keeps only what a caller may want to inspect.
 */
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  type Extension,
  Extensions,
  type GeneralName,
  id_ce_subjectAltName,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import { SvidkitError } from '../errors/index.js';
import { checkStructure, readElement } from '../internal/der.js';
import { decodePem, encodePem } from '../internal/pem.js';
import { spkiDer } from '../keys/index.js';
import { signatureAlgorithmDerFor, signatureAlgorithmFor, signWith, verifyWith } from './algorithms.js';
import { DER_TRUE, ia5String, oid, sequence, TAG, tlv } from '../internal/der-write.js';
import { buildName, type DnSpec } from './build.js';
import { type GeneralNames, generalNamesOf } from './names.js';

/** PKCS#9 extensionRequest attribute. */
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** Largest CSR accepted in DER. */
export const MAX_CSR_BYTES = 8 * 1024;

/** What a CSR asks for. */
export interface CsrRequest {
  /** The private key whose public half the CSR carries; it signs the CSR and never leaves the caller. */
  readonly key: KeyObject;
  readonly subject?: DnSpec;
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
}

const EXTENSION_REQUEST_OID = oid(OID_EXTENSION_REQUEST);
const SAN_OID = oid(id_ce_subjectAltName);
const VERSION_1 = Buffer.from([TAG.INTEGER, 0x01, 0x00]);
const EMPTY_NAME = sequence();
const GN_DNS = 0x82;
const GN_URI = 0x86;

/**
 * Builds a DER CSR signed with `key`. Written with the DER writer (the agent builds one per workload
 * and rotation); only a subject, which the agent never sets, goes through the ASN.1 library.
 */
export function buildCsr(req: CsrRequest): Buffer {
  const uris = req.uris ?? [];
  const dnsNames = req.dnsNames ?? [];
  const attrs: Uint8Array[] = [];
  if (uris.length + dnsNames.length > 0) {
    let names: Buffer[];
    try {
      names = [...uris.map((u) => ia5String(u, GN_URI)), ...dnsNames.map((d) => ia5String(d, GN_DNS))];
    } catch (cause) {
      throw new SvidkitError('ERR_CSR_MALFORMED', 'csr: URIs and DNS names must be ASCII', { cause });
    }
    // RFC 5280 4.2.1.6: the subjectAltName is critical when the subject is empty.
    const critical = !req.subject?.length;
    const san = sequence(SAN_OID, ...(critical ? [DER_TRUE] : []), tlv(TAG.OCTET_STRING, sequence(...names)));
    attrs.push(sequence(EXTENSION_REQUEST_OID, tlv(TAG.SET, sequence(san))));
  }
  const subject = req.subject?.length ? Buffer.from(AsnConvert.serialize(buildName(req.subject))) : EMPTY_NAME;
  // attributes [0] IMPLICIT SET OF Attribute: one attribute at most, so DER's SET OF order holds.
  const info = sequence(VERSION_1, subject, spkiDer(req.key), tlv(0xa0, ...attrs));
  const alg = signatureAlgorithmFor(req.key);
  const signature = signWith(alg, req.key, info);
  return sequence(info, signatureAlgorithmDerFor(req.key), tlv(TAG.BIT_STRING, Uint8Array.of(0), signature));
}

/** A parsed CSR. */
export interface ParsedCsr {
  readonly der: Buffer;
  readonly publicKey: KeyObject;
  /** SANs the CSR requests (informational: a CA must not copy them). */
  readonly requestedNames: GeneralNames;
}

function bad(message: string, cause?: unknown): never {
  throw new SvidkitError('ERR_CSR_MALFORMED', `csr: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * Parses a DER CSR and verifies its self-signature; throws ERR_CSR_MALFORMED for bad encoding and
 * ERR_CSR_SIGNATURE when the signature does not verify with the CSR's own key.
 */
export function parseCsr(der: Uint8Array): ParsedCsr {
  if (der.length > MAX_CSR_BYTES) bad(`CSR is larger than ${MAX_CSR_BYTES} bytes`);
  const buf = Buffer.from(der);
  let info: Uint8Array;
  let csr: CertificationRequest;
  try {
    const outer = readElement(buf, 0);
    if (outer.tag !== 0x30 || outer.end !== buf.length) bad('not a single DER SEQUENCE');
    const first = readElement(buf, outer.contentStart, outer.end);
    info = buf.subarray(first.start, first.end);
    checkStructure(buf);
    csr = AsnConvert.parse(buf, CertificationRequest);
  } catch (cause) {
    if (cause instanceof SvidkitError && cause.code === 'ERR_CSR_MALFORMED') throw cause;
    bad('CSR is not valid DER', cause);
  }
  if (csr.certificationRequestInfo.version !== 0) bad('unsupported CSR version');
  let publicKey: KeyObject;
  try {
    const spki = AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo);
    publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (cause) {
    bad('public key cannot be imported', cause);
  }
  let ok: boolean;
  try {
    ok = verifyWith(csr.signatureAlgorithm, publicKey, info, new Uint8Array(csr.signature));
  } catch (cause) {
    if (cause instanceof SvidkitError) throw new SvidkitError('ERR_CSR_MALFORMED', `csr: ${cause.message}`, { cause });
    throw cause;
  }
  if (!ok) throw new SvidkitError('ERR_CSR_SIGNATURE', 'csr: signature does not verify with the CSR public key');
  const requested: GeneralName[] = [];
  for (const attr of csr.certificationRequestInfo.attributes) {
    if (attr.type !== OID_EXTENSION_REQUEST) continue;
    for (const v of attr.values) {
      try {
        for (const e of AsnConvert.parse(v, Extensions) as Extension[]) {
          if (e.extnID === id_ce_subjectAltName) {
            requested.push(...AsnConvert.parse(e.extnValue.buffer, SubjectAlternativeName));
          }
        }
      } catch (cause) {
        bad('extensionRequest attribute is malformed', cause);
      }
    }
  }
  let requestedNames: GeneralNames;
  try {
    requestedNames = generalNamesOf(requested);
  } catch (cause) {
    // A directoryName the ASN.1 reader took but its writer cannot encode again.
    bad('extensionRequest attribute is malformed', cause);
  }
  return { der: buf, publicKey, requestedNames };
}

/** Parses a PEM CSR (one `CERTIFICATE REQUEST` block). */
export function parseCsrPem(pem: string | Uint8Array): ParsedCsr {
  const blocks = decodePem(pem, 1, 16 * 1024);
  if (blocks.length !== 1 || blocks[0]!.type !== 'CERTIFICATE REQUEST') bad('expected one CERTIFICATE REQUEST block');
  return parseCsr(blocks[0]!.der);
}

/** Encodes a DER CSR as PEM. */
export function csrToPem(der: Uint8Array): string {
  return encodePem('CERTIFICATE REQUEST', der);
}
