/**
 * Certificate profiles a svidkit CA signs: its self-signed root and workload X.509-SVIDs. A workload
 * certificate is built from the registration entry alone; nothing but the public key is taken from
 * the CSR, so a CSR asking for CA=true or extra names changes nothing.
 */
import type { KeyObject } from 'node:crypto';
import { SvidkitError } from '../errors/index.js';
import { keyTypeOf } from '../keys/index.js';
import type { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { type DnSpec, extensions, keyIdentifier, signCertificate } from '../x509/build.js';
import { type Certificate, KeyUsageBit } from '../x509/certificate.js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH } from '../x509svid/index.js';

/** How far notBefore is backdated to absorb clock skew between CA and peers. */
export const CLOCK_SKEW_MS = 30_000;

/** True for text a DNS name SAN can hold: non-empty printable ASCII, as an IA5String requires. */
export function isDnsText(d: unknown): d is string {
  if (typeof d !== 'string' || d.length === 0) return false;
  for (let i = 0; i < d.length; i++) {
    const c = d.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** A CA certificate with its private key. */
export interface Signer {
  readonly cert: Certificate;
  readonly key: KeyObject;
}

/** Builds a self-signed root for a trust domain, valid from now - skew for `ttlMs`. */
export function selfSignedRoot(params: {
  trustDomain: TrustDomain;
  key: KeyObject;
  publicKey: KeyObject;
  now: Date;
  ttlMs: number;
  subject?: DnSpec;
}): Certificate {
  const ski = keyIdentifier(params.publicKey);
  return signCertificate(
    {
      subject: params.subject ?? [
        ['O', 'svidkit'],
        ['CN', `svidkit root ${params.trustDomain.name}`],
      ],
      notBefore: new Date(params.now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(params.now.getTime() + params.ttlMs),
      publicKey: params.publicKey,
      extensions: [
        extensions.basicConstraints(true),
        extensions.keyUsage(KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign),
        extensions.subjectAltName({ uris: [params.trustDomain.idString()] }, false),
        extensions.subjectKeyId(ski),
        extensions.authorityKeyId(ski),
      ],
    },
    params.key,
  );
}

/**
 * Signs a workload X.509-SVID: exactly one URI SAN (the ID) plus DNS names, CA=false, critical
 * keyUsage digitalSignature (and keyEncipherment for RSA keys), EKU serverAuth + clientAuth, SKI and
 * AKI, a random 128-bit serial, notBefore = now - 30 s, notAfter = min(now + ttl, the CA's notAfter).
 */
export function signWorkloadSvid(params: {
  id: SpiffeId;
  publicKey: KeyObject;
  dnsNames?: readonly string[];
  signer: Signer;
  now: Date;
  ttlMs: number;
}): Certificate {
  const { id, publicKey, signer, now } = params;
  if (id.isTrustDomainId()) throw new SvidkitError('ERR_X509SVID_INVALID_ID', 'ca: a workload ID needs a path');
  for (const d of params.dnsNames ?? []) {
    if (!isDnsText(d))
      throw new SvidkitError('ERR_USAGE', 'ca: a DNS name must be a non-empty string of printable ASCII');
  }
  const isRsa = keyTypeOf(publicKey).startsWith('rsa');
  const notAfter = Math.min(now.getTime() + params.ttlMs, signer.cert.notAfter.getTime());
  return signCertificate(
    {
      subject: [],
      issuer: signer.cert.asn.tbsCertificate.subject,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(notAfter),
      publicKey,
      extensions: [
        extensions.basicConstraints(false),
        extensions.keyUsage(KeyUsageBit.digitalSignature | (isRsa ? KeyUsageBit.keyEncipherment : 0)),
        extensions.extKeyUsage([OID_SERVER_AUTH, OID_CLIENT_AUTH]),
        // The subject is empty, so the SAN carries the identity and must be critical (RFC 5280 4.2.1.6).
        extensions.subjectAltName({ uris: [id.toString()], dnsNames: params.dnsNames }, true),
        extensions.subjectKeyId(keyIdentifier(publicKey)),
        extensions.authorityKeyId(signer.cert.subjectKeyId ?? keyIdentifier(signer.cert.publicKey)),
      ],
    },
    signer.key,
  );
}
