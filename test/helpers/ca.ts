/**
 * A small test CA: builds roots, intermediates and leaf SVIDs at test time, with switches to break
 * any one property so that tests can show each rule refusing exactly what it should (the assertions
 * themselves are in helpers/assert.ts).
 */
import type { KeyObject } from 'node:crypto';
import type { Extension } from '@peculiar/asn1-x509';
import { X509Bundle } from '../../lib/bundle/index.js';
import { generateKeyPair, type KeyPair, type KeyType } from '../../lib/keys/index.js';
import { TrustDomain } from '../../lib/spiffeid/index.js';
import { type DnSpec, extensions, keyIdentifier, signCertificate } from '../../lib/x509/build.js';
import { type Certificate, KeyUsageBit } from '../../lib/x509/certificate.js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH, X509Svid } from '../../lib/x509svid/index.js';

/** Fixed reference instant for tests; certificates default to [T0 - 1h, T0 + 1h]. */
export const T0 = new Date('2026-06-01T12:00:00Z');
const HOUR = 3600_000;

/** Options for a CA certificate. */
export interface CaOptions {
  trustDomain?: string;
  keyType?: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  subject?: DnSpec;
  pathLen?: number;
  /** Omit basicConstraints entirely, or set cA=false. */
  basicConstraints?: 'absent' | 'not-ca';
  /** Key usage bits; default keyCertSign | cRLSign. Use 0 for no keyUsage extension. */
  keyUsage?: number;
  /** URI SANs; default the trust domain ID. */
  uris?: string[];
  nameConstraints?: Parameters<typeof extensions.nameConstraints>[0];
  extraExtensions?: Extension[];
  /** Use this key pair instead of a fresh one (two CA certificates for the same key). */
  keyPair?: KeyPair;
}

/** Options for a leaf SVID. */
export interface LeafOptions {
  keyType?: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  subject?: DnSpec;
  uris?: string[];
  dnsNames?: string[];
  sanCritical?: boolean;
  noSan?: boolean;
  ca?: boolean;
  /** Key usage bits; default digitalSignature. Use 0 for none. */
  keyUsage?: number;
  keyUsageCritical?: boolean;
  /** EKU OIDs; default serverAuth + clientAuth; null for no EKU extension. */
  eku?: string[] | null;
  extraExtensions?: Extension[];
  /** Leave out the authorityKeyIdentifier, so that path building can only match on the issuer DN. */
  noAuthorityKeyId?: boolean;
  /** Sign with this key instead of the CA's: a forged leaf that still names this CA as its issuer. */
  signingKey?: KeyObject;
  /** Use this key pair instead of a fresh one (two leaves for the same key). */
  keyPair?: KeyPair;
}

/** A CA (root or intermediate) that can issue more CAs and leaf SVIDs. */
export class TestCa {
  readonly trustDomain: TrustDomain;
  readonly cert: Certificate;
  readonly key: KeyObject;
  /** Certificates from this CA up to, but excluding, the root. */
  readonly chainToRoot: readonly Certificate[];

  private constructor(td: TrustDomain, cert: Certificate, key: KeyObject, chainToRoot: Certificate[]) {
    this.trustDomain = td;
    this.cert = cert;
    this.key = key;
    this.chainToRoot = chainToRoot;
  }

  /** A self-signed root. */
  static root(opts: CaOptions = {}): TestCa {
    const td = TrustDomain.parse(opts.trustDomain ?? 'example.org');
    const pair = opts.keyPair ?? generateKeyPair(opts.keyType ?? 'ec-p256');
    const cert = signCertificate(caTemplate(td, pair.publicKey, opts, undefined), pair.privateKey);
    return new TestCa(td, cert, pair.privateKey, []);
  }

  /** An intermediate CA signed by this CA. */
  intermediate(opts: CaOptions = {}): TestCa {
    const pair = opts.keyPair ?? generateKeyPair(opts.keyType ?? 'ec-p256');
    const cert = signCertificate(
      caTemplate(this.trustDomain, pair.publicKey, { subject: [['CN', 'intermediate']], ...opts }, this),
      this.key,
    );
    return new TestCa(this.trustDomain, cert, pair.privateKey, [cert, ...this.chainToRoot]);
  }

  /** The bundle with this CA's root. */
  bundle(): X509Bundle {
    const root = this.chainToRoot.length > 0 ? undefined : this.cert;
    return new X509Bundle(this.trustDomain, root ? [root] : []);
  }

  /** A leaf certificate and its key; the chain is the leaf followed by this CA's chain to the root. */
  leaf(path: string, opts: LeafOptions = {}): { chain: Certificate[]; key: KeyObject } {
    const pair = opts.keyPair ?? generateKeyPair(opts.keyType ?? 'ec-p256');
    const exts: Extension[] = [];
    exts.push(extensions.basicConstraints(opts.ca ?? false));
    const ku = opts.keyUsage ?? KeyUsageBit.digitalSignature;
    if (ku !== 0) exts.push(extensions.keyUsage(ku, opts.keyUsageCritical ?? true));
    if (opts.eku !== null) exts.push(extensions.extKeyUsage(opts.eku ?? [OID_SERVER_AUTH, OID_CLIENT_AUTH]));
    if (!opts.noSan) {
      const uris = opts.uris ?? [this.trustDomain.idString() + path];
      exts.push(
        extensions.subjectAltName({ uris, dnsNames: opts.dnsNames }, opts.sanCritical ?? !opts.subject?.length),
      );
    }
    exts.push(extensions.subjectKeyId(keyIdentifier(pair.publicKey)));
    if (!opts.noAuthorityKeyId) exts.push(extensions.authorityKeyId(keyIdentifier(this.cert.publicKey)));
    exts.push(...(opts.extraExtensions ?? []));
    const cert = signCertificate(
      {
        subject: opts.subject ?? [],
        issuer: this.cert.asn.tbsCertificate.subject,
        notBefore: opts.notBefore ?? new Date(T0.getTime() - HOUR),
        notAfter: opts.notAfter ?? new Date(T0.getTime() + HOUR),
        publicKey: pair.publicKey,
        extensions: exts,
      },
      opts.signingKey ?? this.key,
    );
    return { chain: [cert, ...this.chainToRoot], key: pair.privateKey };
  }

  /** A valid leaf as an X509Svid. */
  svid(path: string, opts: LeafOptions = {}): X509Svid {
    const { chain, key } = this.leaf(path, opts);
    return X509Svid.fromParts(chain, key);
  }
}

function caTemplate(td: TrustDomain, publicKey: KeyObject, opts: CaOptions, parent: TestCa | undefined) {
  const exts: Extension[] = [];
  if (opts.basicConstraints !== 'absent')
    exts.push(extensions.basicConstraints(opts.basicConstraints !== 'not-ca', opts.pathLen));
  const ku = opts.keyUsage ?? KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign;
  if (ku !== 0) exts.push(extensions.keyUsage(ku));
  exts.push(extensions.subjectAltName({ uris: opts.uris ?? [td.idString()] }, false));
  exts.push(extensions.subjectKeyId(keyIdentifier(publicKey)));
  if (parent) exts.push(extensions.authorityKeyId(keyIdentifier(parent.cert.publicKey)));
  if (opts.nameConstraints) exts.push(extensions.nameConstraints(opts.nameConstraints));
  exts.push(...(opts.extraExtensions ?? []));
  return {
    subject:
      opts.subject ??
      ([
        ['O', 'svidkit test'],
        ['CN', `root ${td.name}`],
      ] as DnSpec),
    issuer: parent?.cert.asn.tbsCertificate.subject,
    notBefore: opts.notBefore ?? new Date(T0.getTime() - 24 * HOUR),
    notAfter: opts.notAfter ?? new Date(T0.getTime() + 24 * HOUR),
    publicKey,
    extensions: exts,
  };
}
