/**
 * Upstream CAs: the checks that an intermediate, its key and the upstream roots form a CA that peers
 * will trust, and the profile of an intermediate signed by an offline root. svidkit-ca checks the
 * configured upstream with these before it writes anything; `svidkit upstream create-intermediate`
 * builds its intermediate with the same profile and makes the same probe before it writes a file.
 */
import type { KeyObject } from 'node:crypto';
import { X509Bundle } from '../bundle/x509.js';
import { generateKeyPair, loadPrivateKeyPem, samePublicKey } from '../keys/index.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';
import { type CertificateTemplate, extensions, keyIdentifier, signCertificate } from '../x509/build.js';
import { Certificate, KeyUsageBit } from '../x509/certificate.js';
import { verify } from '../x509svid/index.js';
import { caError, errorDetail } from './ca-error.js';
import { CLOCK_SKEW_MS, type Signer, signWorkloadSvid } from './profile.js';

/** An upstream CA: the intermediate this CA signs with, its key, and the roots it chains to (all PEM). */
export interface UpstreamCa {
  /** The intermediate first, then any further intermediates up to (not including) a root. */
  certPem: string;
  /** The intermediate's private key, PKCS#8 PEM. */
  keyPem: string;
  /** The upstream root certificates: they, not the intermediate, form the X.509 bundle. */
  bundlePem: string;
}

/** A checked upstream CA, parsed. */
export interface UpstreamMaterial {
  /** Signing intermediate first. */
  readonly chain: readonly Certificate[];
  readonly key: KeyObject;
  readonly roots: readonly Certificate[];
}

/** The outcome of a probe leaf: which step failed, with the error it threw. */
export type ProbeResult = { ok: true } | { ok: false; step: 'sign' | 'verify'; error: unknown };

/** True when two certificates are the same bytes. */
export function sameCert(a: Certificate, b: Certificate): boolean {
  return a.der.equals(b.der);
}

/** True for a self-issued certificate whose signature its own key verifies; false for anything unreadable. */
export function isSelfSignedRoot(c: Certificate): boolean {
  try {
    return c.isSelfIssued() && c.isSignedBy(c.publicKey);
  } catch {
    return false;
  }
}

/**
 * The decisive test of an upstream CA: a workload leaf signed now by `signer` must verify, with
 * `chain` after it, against `roots`, with every rule a peer applies (validity, path length, name
 * constraints, issuer flags). The probe's own key is thrown away.
 */
export function probeLeaf(
  td: TrustDomain,
  signer: Signer,
  chain: readonly Certificate[],
  roots: readonly Certificate[],
  now: Date,
): ProbeResult {
  const probeKey = generateKeyPair('ec-p256');
  let leaf: Certificate;
  try {
    leaf = signWorkloadSvid({
      id: SpiffeId.fromSegments(td, 'svidkit', 'upstream-check'),
      publicKey: probeKey.publicKey,
      signer,
      now,
      ttlMs: 60_000,
    });
  } catch (error) {
    return { ok: false, step: 'sign', error };
  }
  try {
    verify([leaf, ...chain], new X509Bundle(td, roots), { at: now });
  } catch (error) {
    return { ok: false, step: 'verify', error };
  }
  return { ok: true };
}

/**
 * Signs the intermediate svidkit-ca's upstream mode uses: CA with `pathLen`, keyCertSign and cRLSign,
 * the trust domain ID as its only URI SAN, valid from now - skew (not before the root) until
 * min(now + ttl, the root's notAfter).
 */
export function signIntermediate(params: {
  trustDomain: TrustDomain;
  root: Signer;
  publicKey: KeyObject;
  subject: CertificateTemplate['subject'];
  now: Date;
  ttlMs: number;
  pathLen: number;
}): Certificate {
  const { root, now } = params;
  return signCertificate(
    {
      subject: params.subject,
      issuer: root.cert.asn.tbsCertificate.subject,
      notBefore: new Date(Math.max(now.getTime() - CLOCK_SKEW_MS, root.cert.notBefore.getTime())),
      notAfter: new Date(Math.min(now.getTime() + params.ttlMs, root.cert.notAfter.getTime())),
      publicKey: params.publicKey,
      extensions: [
        extensions.basicConstraints(true, params.pathLen),
        extensions.keyUsage(KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign),
        extensions.subjectAltName({ uris: [params.trustDomain.idString()] }, false),
        extensions.subjectKeyId(keyIdentifier(params.publicKey)),
        extensions.authorityKeyId(root.cert.subjectKeyId ?? keyIdentifier(root.cert.publicKey)),
      ],
    },
    root.key,
  );
}

/** Checks an upstream CA before anything is written: key, CA flags, bundle, and a probe leaf that must verify. */
export function checkUpstream(td: TrustDomain, up: UpstreamCa, now: Date): UpstreamMaterial {
  if (typeof up !== 'object' || up === null) throw caError('ERR_CA_CONFIG', 'upstream must be an object');
  let certs: Certificate[];
  try {
    certs = Certificate.fromPem(up.certPem);
  } catch (err) {
    throw caError('ERR_CA_CONFIG', `upstream certPem cannot be read: ${errorDetail(err)}`, err);
  }
  if (certs.length === 0) throw caError('ERR_CA_CONFIG', 'upstream certPem holds no certificate');
  let key: KeyObject;
  try {
    key = loadPrivateKeyPem(up.keyPem);
  } catch (err) {
    throw caError('ERR_CA_CONFIG', `upstream keyPem cannot be read: ${errorDetail(err)}`, err);
  }
  let roots: Certificate[];
  try {
    roots = [...X509Bundle.parsePem(td, up.bundlePem).authorities()];
  } catch (err) {
    throw caError('ERR_CA_UPSTREAM_BUNDLE', `upstream bundlePem cannot be read: ${errorDetail(err)}`, err);
  }

  const ca = certs[0]!;
  if (!samePublicKey(key, ca.publicKey)) {
    throw caError(
      'ERR_CA_UPSTREAM_KEY_MISMATCH',
      'the upstream private key does not belong to the upstream certificate',
    );
  }
  if (!ca.basicConstraints?.cA) {
    throw caError('ERR_CA_UPSTREAM_NOT_CA', 'the upstream certificate is not a CA (basicConstraints cA is not set)');
  }
  if (!ca.keyUsage || (ca.keyUsage.bits & KeyUsageBit.keyCertSign) === 0) {
    throw caError('ERR_CA_UPSTREAM_NOT_CA', 'the upstream certificate lacks the keyCertSign key usage');
  }
  for (const uri of ca.subjectAltName?.uris ?? []) {
    const id = SpiffeId.tryParse(uri);
    if (id && (!id.memberOf(td) || !id.isTrustDomainId())) {
      throw caError(
        'ERR_CA_UPSTREAM_UNTRUSTED',
        `the upstream certificate names ${JSON.stringify(id.toString())}, not the trust domain ID ${td.idString()}`,
      );
    }
  }

  if (roots.length === 0) throw caError('ERR_CA_UPSTREAM_BUNDLE', 'the upstream bundle holds no root certificate');
  for (const root of roots) {
    if (sameCert(root, ca) || samePublicKey(root.publicKey, ca.publicKey)) {
      throw caError(
        'ERR_CA_UPSTREAM_BUNDLE',
        'the upstream bundle contains the intermediate itself; it must hold the upstream roots only',
      );
    }
    if (!isSelfSignedRoot(root)) {
      throw caError(
        'ERR_CA_UPSTREAM_BUNDLE',
        `the upstream bundle holds a certificate that is not a self-signed root (subject ${JSON.stringify(root.subject)})`,
      );
    }
    for (const uri of root.subjectAltName?.uris ?? []) {
      const id = SpiffeId.tryParse(uri);
      if (id && !id.memberOf(td)) {
        throw caError('ERR_CA_UPSTREAM_BUNDLE', `an upstream root belongs to trust domain "${id.trustDomain.name}"`);
      }
    }
  }
  // A root appended to certPem is in the bundle already; leaves need not carry it.
  const chain = certs.filter((c) => !roots.some((r) => sameCert(r, c)));
  if (chain.length === 0 || !sameCert(chain[0]!, ca)) {
    throw caError('ERR_CA_UPSTREAM_BUNDLE', 'the upstream certificate is itself one of the upstream roots');
  }

  const probe = probeLeaf(td, { cert: ca, key }, chain, roots, now);
  if (!probe.ok && probe.step === 'sign') {
    throw caError(
      'ERR_CA_UPSTREAM_NOT_CA',
      `the upstream CA cannot sign a workload certificate: ${errorDetail(probe.error)}`,
      probe.error,
    );
  }
  if (!probe.ok) {
    throw caError(
      'ERR_CA_UPSTREAM_UNTRUSTED',
      `an SVID signed by the upstream certificate does not verify against the upstream bundle: ${errorDetail(probe.error)}`,
      probe.error,
    );
  }
  return { chain, key, roots };
}
