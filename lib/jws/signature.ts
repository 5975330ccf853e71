/**
 * JWS signature checks (RFC 7518, section 3) with node:crypto, for tokens whose structure, header and
 * key were already checked: ES* signatures are the fixed-size r||s form, PS* use a salt as long as the
 * digest, RS* use PKCS #1 v1.5. Verifying here instead of through jose's compactVerify avoids parsing
 * the token a second time; jose still mints, and the tests check both agree.
 */
import { constants, type KeyObject, verify } from 'node:crypto';

/** Length of an ES* signature: both coordinates, each padded to the curve's size. */
const EC_SIGNATURE_BYTES: Readonly<Record<string, number>> = { ES256: 64, ES384: 96, ES512: 132 };

/**
 * True when `signature` is a valid `alg` signature of `signingInput` (the token up to its second dot)
 * under `key`. The caller has checked that the key suits the algorithm.
 */
export function verifyJwsSignature(signingInput: Buffer, signature: Buffer, key: KeyObject, alg: string): boolean {
  const digest = `sha${alg.slice(2)}`;
  switch (alg.slice(0, 2)) {
    case 'ES':
      // A DER signature or one of the wrong size must fail, not be reinterpreted.
      if (signature.length !== EC_SIGNATURE_BYTES[alg]) return false;
      return verify(digest, signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature);
    case 'PS':
      return verify(
        digest,
        signingInput,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
        signature,
      );
    case 'RS':
      return verify(digest, signingInput, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    default:
      return false;
  }
}
