/**
 * The certificate work of `svidkit upstream ...`: the checks of an offline root, and the root and
 * intermediate themselves, built with the CA's own profiles and probed like svidkit-ca probes its
 * upstream at start (lib/ca/upstream.ts).
 */
import type { KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { isSelfSignedRoot, probeLeaf, signIntermediate } from '../ca/upstream.js';
import { selfSignedRoot } from '../ca/profile.js';
import { generateKeyPair, type KeyType, samePublicKey } from '../keys/index.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { buildName, type DnSpec } from '../x509/build.js';
import { Certificate, KeyUsageBit } from '../x509/certificate.js';
import { defaultCommonName, fail, HOUR_MS, INTERMEDIATE_TTL_MS } from './upstream-flags.js';

function subjectOf(cn: string): DnSpec {
  return [
    ['O', 'svidkit'],
    ['CN', cn],
  ];
}

/** The trust domain a root names in its URI SAN, checked against --trust-domain when both are present. */
export function trustDomainOfRoot(root: Certificate, given: string | undefined): TrustDomain {
  const ids = (root.subjectAltName?.uris ?? []).map((u) => SpiffeId.tryParse(u)).filter((id) => id !== undefined);
  for (const id of ids) {
    if (!id.isTrustDomainId()) {
      fail('ERR_X509SVID_ISSUER_HAS_PATH', `the root names ${id.toString()}; a CA may only name a trust domain ID`);
    }
  }
  const names = [...new Set(ids.map((id) => id.trustDomain.name))];
  if (names.length > 1) fail('ERR_CA_UPSTREAM_BUNDLE', `the root names several trust domains (${names.join(', ')})`);
  const wanted = given === undefined ? undefined : TrustDomain.parse(given);
  if (names.length === 0) {
    if (wanted === undefined) {
      fail('ERR_USAGE', 'the root names no trust domain (no spiffe:// URI SAN); give --trust-domain');
    }
    return wanted;
  }
  const td = TrustDomain.parse(names[0]!);
  if (wanted !== undefined && !wanted.equals(td)) {
    fail('ERR_SPIFFEID_MISMATCH', `the root belongs to trust domain "${td.name}", not "${wanted.name}"`);
  }
  return td;
}

/** Checks that `root` can be the bundle of svidkit-ca's upstream mode and sign an intermediate now. */
export function checkRoot(root: Certificate, rootKey: KeyObject, pathLen: number, now: Date): void {
  if (!samePublicKey(rootKey, root.publicKey)) {
    fail('ERR_X509SVID_KEY_MISMATCH', 'the root private key does not belong to the root certificate');
  }
  if (!isSelfSignedRoot(root)) {
    fail('ERR_CA_UPSTREAM_BUNDLE', 'the root certificate is not self-signed; svidkit-ca needs the root itself');
  }
  if (!root.basicConstraints?.cA) {
    fail('ERR_X509SVID_ISSUER_NOT_CA', 'the root certificate is not a CA (basicConstraints cA is not set)');
  }
  if (root.keyUsage && (root.keyUsage.bits & KeyUsageBit.keyCertSign) === 0) {
    fail('ERR_X509SVID_ISSUER_KEY_USAGE', 'the root certificate lacks the keyCertSign key usage');
  }
  const limit = root.basicConstraints.pathLen;
  if (limit !== undefined && pathLen + 1 > limit) {
    fail(
      'ERR_X509SVID_PATH_LENGTH',
      limit === 0
        ? 'the root has pathLen 0: it cannot have an intermediate'
        : `--path-len ${pathLen} is more than the root allows below an intermediate (${limit - 1})`,
    );
  }
  if (now.getTime() < root.notBefore.getTime()) {
    fail('ERR_X509SVID_NOT_YET_VALID', `the root is not valid before ${root.notBefore.toISOString()}`);
  }
  if (root.notAfter.getTime() < now.getTime() + INTERMEDIATE_TTL_MS.min) {
    fail(
      'ERR_X509SVID_EXPIRED',
      `the root expires at ${root.notAfter.toISOString()}, within ${INTERMEDIATE_TTL_MS.min / HOUR_MS}h; make a new root`,
    );
  }
}

/** Reads the single certificate of the --root-cert file. */
export function parseRoot(pem: Buffer): Certificate {
  const certs = Certificate.fromPem(pem);
  if (certs.length !== 1) {
    fail('ERR_CA_UPSTREAM_BUNDLE', `--root-cert must hold exactly one certificate, found ${certs.length}`);
  }
  return certs[0]!;
}

/** A new self-signed offline root for `td`, valid from now for `ttlMs`. */
export function makeRoot(td: TrustDomain, keyType: KeyType, ttlMs: number, cn: string) {
  const pair = generateKeyPair(keyType);
  const root = selfSignedRoot({
    trustDomain: td,
    key: pair.privateKey,
    publicKey: pair.publicKey,
    now: new Date(),
    ttlMs,
    subject: subjectOf(cn),
  });
  return { root, privateKey: pair.privateKey };
}

/**
 * A new intermediate signed by `root`: the root is checked first, and a workload SVID signed by the
 * intermediate must verify against the root before anything is written.
 */
export function makeIntermediate(params: {
  root: Certificate;
  rootKey: KeyObject;
  keyType: KeyType;
  ttlMs: number;
  pathLen: number;
  subjectCn?: string;
  trustDomain?: string;
}) {
  const { root, rootKey, pathLen } = params;
  const now = new Date();
  checkRoot(root, rootKey, pathLen, now);
  const td = trustDomainOfRoot(root, params.trustDomain);
  const cn = params.subjectCn ?? defaultCommonName('svidkit intermediate', td);
  const subject = buildName(subjectOf(cn));
  // Issuer and subject alike would make the intermediate self-issued: chain building and path length break.
  if (Buffer.from(AsnConvert.serialize(subject)).equals(root.subjectDer)) {
    fail('ERR_USAGE', 'the intermediate would have the same subject as the root; choose another --subject-cn');
  }

  const pair = generateKeyPair(params.keyType);
  const ica = signIntermediate({
    trustDomain: td,
    root: { cert: root, key: rootKey },
    publicKey: pair.publicKey,
    subject,
    now,
    ttlMs: params.ttlMs,
    pathLen,
  });
  const probe = probeLeaf(td, { cert: ica, key: pair.privateKey }, [ica], [root], now);
  if (!probe.ok) throw probe.error;
  const capped = now.getTime() + params.ttlMs > root.notAfter.getTime();
  return { td, ica, privateKey: pair.privateKey, capped };
}
