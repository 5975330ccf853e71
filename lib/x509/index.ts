/** Low-level X.509: parsed certificates, building and signing, CSRs, and the signature algorithms. */
export { SIG_OID, signatureAlgorithmFor, signatureAlgorithmName, signWith, verifyWith } from './algorithms.js';
export {
  buildName,
  type CertificateTemplate,
  DN_OID,
  type DnSpec,
  extensions,
  keyIdentifier,
  randomSerial,
  signCertificate,
} from './build.js';
export {
  Certificate,
  type DecodedNameConstraints,
  HANDLED_EXTENSIONS,
  KeyUsageBit,
  MAX_CERTIFICATE_BYTES,
  MAX_CHAIN_LENGTH,
} from './certificate.js';
export { buildCsr, type CsrRequest, csrToPem, MAX_CSR_BYTES, type ParsedCsr, parseCsr, parseCsrPem } from './csr.js';
export { type GeneralNames, generalNamesOf } from './names.js';
