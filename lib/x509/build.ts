/**
 * Building and signing certificates with the low-level ASN.1 schemas and crypto.sign: about ten times
 * the throughput of a high-level generator, and every field is chosen explicitly.
 */
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  Certificate as AsnCertificate,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyIdentifier,
  KeyUsage,
  Name,
  NameConstraints,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
} from '@peculiar/asn1-x509';
import { spkiDer } from '../keys/index.js';
import { signatureAlgorithmFor, signWith } from './algorithms.js';
import { Certificate } from './certificate.js';

/** Attribute OIDs for the distinguished names svidkit writes. */
export const DN_OID = {
  C: '2.5.4.6',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
} as const;

/** A distinguished name as ordered [attribute, value] pairs, e.g. [['O', 'svidkit'], ['CN', 'root']]. */
export type DnSpec = ReadonlyArray<readonly [keyof typeof DN_OID, string]>;

/** Encodes a DnSpec as an X.501 Name (one attribute per RDN, UTF8String except C, which is PrintableString). */
export function buildName(spec: DnSpec): Name {
  return new Name(
    spec.map(([attr, value]) => {
      const v =
        attr === 'C' || attr === 'serialNumber'
          ? new AttributeValue({ printableString: value })
          : new AttributeValue({ utf8String: value });
      return new RelativeDistinguishedName([new AttributeTypeAndValue({ type: DN_OID[attr], value: v })]);
    }),
  );
}

/** A random positive serial number of 128 bits (RFC 5280 allows up to 20 octets; SVIDs need at least 64 random bits). */
export function randomSerial(): Uint8Array {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive, and never a leading zero octet that DER would have to strip
  return b;
}

/** The RFC 5280 method-1 key identifier: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = AsnConvert.parse(spkiDer(publicKey), SubjectPublicKeyInfo);
  return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
}

function ext(oid: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** Extension builders; each returns an Extension ready for a template. */
export const extensions = {
  /** basicConstraints, critical by default. */
  basicConstraints(cA: boolean, pathLen?: number, critical = true): Extension {
    return ext(id_ce_basicConstraints, critical, new BasicConstraints({ cA, pathLenConstraint: pathLen }));
  },
  /** keyUsage from KeyUsageBit flags, critical by default. */
  keyUsage(bits: number, critical = true): Extension {
    return ext(id_ce_keyUsage, critical, new KeyUsage(bits));
  },
  /** extKeyUsage with the given purpose OIDs. */
  extKeyUsage(oids: readonly string[], critical = false): Extension {
    return ext(id_ce_extKeyUsage, critical, new ExtendedKeyUsage([...oids]));
  },
  /** subjectAltName with URIs and DNS names, in that order. */
  subjectAltName(names: { uris?: readonly string[]; dnsNames?: readonly string[] }, critical: boolean): Extension {
    const list = [
      ...(names.uris ?? []).map((u) => new GeneralName({ uniformResourceIdentifier: u })),
      ...(names.dnsNames ?? []).map((d) => new GeneralName({ dNSName: d })),
    ];
    return ext(id_ce_subjectAltName, critical, new SubjectAlternativeName(list));
  },
  /** subjectKeyIdentifier. */
  subjectKeyId(id: Uint8Array): Extension {
    return ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(new Uint8Array(id)));
  },
  /** authorityKeyIdentifier with a keyIdentifier only. */
  authorityKeyId(id: Uint8Array): Extension {
    return ext(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(new Uint8Array(id)) }),
    );
  },
  /** nameConstraints over URI and DNS subtrees (critical, as RFC 5280 requires). */
  nameConstraints(c: {
    permittedUris?: readonly string[];
    excludedUris?: readonly string[];
    permittedDns?: readonly string[];
    excludedDns?: readonly string[];
  }): Extension {
    const subtrees = (uris: readonly string[] = [], dns: readonly string[] = []) => {
      const all = [
        ...uris.map((u) => new GeneralSubtree({ base: new GeneralName({ uniformResourceIdentifier: u }) })),
        ...dns.map((d) => new GeneralSubtree({ base: new GeneralName({ dNSName: d }) })),
      ];
      return all.length > 0 ? new GeneralSubtrees(all) : undefined;
    };
    return ext(
      id_ce_nameConstraints,
      true,
      new NameConstraints({
        permittedSubtrees: subtrees(c.permittedUris, c.permittedDns),
        excludedSubtrees: subtrees(c.excludedUris, c.excludedDns),
      }),
    );
  },
};

/** Everything a certificate says, apart from the signature. */
export interface CertificateTemplate {
  readonly serialNumber?: Uint8Array;
  readonly subject: Name | DnSpec;
  /** The issuer's subject Name; omit for a self-signed certificate. */
  readonly issuer?: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: KeyObject;
  readonly extensions: readonly Extension[];
}

/** Builds the certificate of `template` and signs it with `signerKey` (a private key). */
export function signCertificate(template: CertificateTemplate, signerKey: KeyObject): Certificate {
  const subject = template.subject instanceof Name ? template.subject : buildName(template.subject);
  const sigAlg = signatureAlgorithmFor(signerKey);
  const tbs = new TBSCertificate({
    version: 2,
    serialNumber: new Uint8Array(template.serialNumber ?? randomSerial()).buffer,
    signature: sigAlg,
    issuer: template.issuer ?? subject,
    validity: new Validity({ notBefore: template.notBefore, notAfter: template.notAfter }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer(template.publicKey), SubjectPublicKeyInfo),
    extensions: template.extensions.length > 0 ? new Extensions([...template.extensions]) : undefined,
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const cert = new AsnCertificate({
    tbsCertificate: tbs,
    signatureAlgorithm: sigAlg,
    signatureValue: new Uint8Array(signWith(sigAlg, signerKey, tbsDer)).buffer,
  });
  return Certificate.fromDer(new Uint8Array(AsnConvert.serialize(cert)));
}
