/** Signature algorithms for certificates and CSRs: which one a key signs with, and verification. */
import { constants, type KeyObject, sign, verify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { SvidkitError } from '../errors/index.js';
import { keyTypeOf } from '../keys/index.js';

/** Signature algorithm OIDs svidkit signs and verifies with. */
export const SIG_OID = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha384: '1.2.840.113549.1.1.12',
  rsaSha512: '1.2.840.113549.1.1.13',
  ed25519: '1.3.101.112',
} as const;

interface AlgSpec {
  readonly name: string;
  readonly hash: string | null;
  readonly family: 'ec' | 'rsa' | 'ed25519';
}

const SPECS: ReadonlyMap<string, AlgSpec> = new Map([
  [SIG_OID.ecdsaSha256, { name: 'ecdsa-with-SHA256', hash: 'sha256', family: 'ec' }],
  [SIG_OID.ecdsaSha384, { name: 'ecdsa-with-SHA384', hash: 'sha384', family: 'ec' }],
  [SIG_OID.ecdsaSha512, { name: 'ecdsa-with-SHA512', hash: 'sha512', family: 'ec' }],
  [SIG_OID.rsaSha256, { name: 'sha256WithRSAEncryption', hash: 'sha256', family: 'rsa' }],
  [SIG_OID.rsaSha384, { name: 'sha384WithRSAEncryption', hash: 'sha384', family: 'rsa' }],
  [SIG_OID.rsaSha512, { name: 'sha512WithRSAEncryption', hash: 'sha512', family: 'rsa' }],
  [SIG_OID.ed25519, { name: 'Ed25519', hash: null, family: 'ed25519' }],
]);

const DER_NULL = new Uint8Array([0x05, 0x00]).buffer;

/** A readable name for a signature algorithm OID. */
export function signatureAlgorithmName(oid: string): string {
  return SPECS.get(oid)?.name ?? oid;
}

/** The AlgorithmIdentifier a key signs with: SHA-256 for P-256 and RSA, SHA-384 for P-384, pure Ed25519. */
export function signatureAlgorithmFor(key: KeyObject): AlgorithmIdentifier {
  switch (keyTypeOf(key)) {
    case 'ec-p256':
      return new AlgorithmIdentifier({ algorithm: SIG_OID.ecdsaSha256 });
    case 'ec-p384':
      return new AlgorithmIdentifier({ algorithm: SIG_OID.ecdsaSha384 });
    case 'ed25519':
      return new AlgorithmIdentifier({ algorithm: SIG_OID.ed25519 });
    default:
      // RFC 4055: the parameters of the PKCS#1 v1.5 algorithms are an explicit NULL.
      return new AlgorithmIdentifier({ algorithm: SIG_OID.rsaSha256, parameters: DER_NULL });
  }
}

const ALGORITHM_DER = new Map<string, Buffer>();

/** The DER of signatureAlgorithmFor(key), encoded once per key type. */
export function signatureAlgorithmDerFor(key: KeyObject): Buffer {
  const type = keyTypeOf(key);
  let der = ALGORITHM_DER.get(type);
  if (!der) ALGORITHM_DER.set(type, (der = Buffer.from(AsnConvert.serialize(signatureAlgorithmFor(key)))));
  return der;
}

function specOf(alg: Pick<AlgorithmIdentifier, 'algorithm'>): AlgSpec {
  const spec = SPECS.get(alg.algorithm);
  if (!spec) {
    throw new SvidkitError('ERR_X509_UNSUPPORTED_ALGORITHM', `x509: unsupported signature algorithm ${alg.algorithm}`);
  }
  return spec;
}

/** Signs `data` with `key` under `alg` (an algorithm from signatureAlgorithmFor). */
export function signWith(alg: AlgorithmIdentifier, key: KeyObject, data: Uint8Array): Buffer {
  const spec = specOf(alg);
  if (spec.family === 'rsa') return sign(spec.hash, data, { key, padding: constants.RSA_PKCS1_PADDING });
  return sign(spec.hash, data, key);
}

/**
 * Verifies a signature made under `alg`. Returns false for a bad signature or a key of another
 * family; throws ERR_X509_UNSUPPORTED_ALGORITHM for algorithms we do not accept (SHA-1, PSS, DSA...).
 */
export function verifyWith(
  alg: Pick<AlgorithmIdentifier, 'algorithm'>,
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const spec = specOf(alg);
  if (key.asymmetricKeyType !== spec.family) return false;
  try {
    if (spec.family === 'rsa') return verify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    return verify(spec.hash, data, key, signature);
  } catch {
    // OpenSSL throws on some malformed signatures instead of returning false; both mean "not valid".
    return false;
  }
}
