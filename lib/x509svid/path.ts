/**
 * RFC 5280 path building and validation, limited to what a SPIFFE trust model needs: chain signatures,
 * validity at one instant, CA flag and keyCertSign on every issuer, path length, name constraints
 * (URI, DNS and directoryName; other forms are refused when constrained), and unknown critical extensions.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Name } from '@peculiar/asn1-x509';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import { type Certificate, KeyUsageBit, MAX_CHAIN_LENGTH } from '../x509/certificate.js';
import type { GeneralNames } from '../x509/names.js';

/** The longest path we try to build: a full chain of MAX_CHAIN_LENGTH certificates plus the root. */
export const MAX_PATH_LENGTH = MAX_CHAIN_LENGTH + 1;

function fail(code: ErrorCode, message: string): never {
  throw new SvidkitError(code, `x509svid: ${message}`);
}

function role(index: number, length: number): string {
  if (index === 0) return 'leaf';
  if (index === length - 1) return 'root';
  return `intermediate ${index}`;
}

function checkValidity(cert: Certificate, what: string, at: Date): void {
  const t = at.getTime();
  if (t < cert.notBefore.getTime()) {
    fail('ERR_X509SVID_NOT_YET_VALID', `${what} certificate is not valid before ${cert.notBefore.toISOString()}`);
  }
  if (t > cert.notAfter.getTime()) {
    fail('ERR_X509SVID_EXPIRED', `${what} certificate expired at ${cert.notAfter.toISOString()}`);
  }
}

/** The rules of every signing certificate: cA set and the keyCertSign key usage (go-spiffe's Parse checks the same). */
export function checkSigningCertificate(cert: Certificate, what: string): void {
  if (!cert.basicConstraints?.cA)
    fail('ERR_X509SVID_ISSUER_NOT_CA', `${what} certificate is not a CA (basicConstraints cA is not set)`);
  if (!cert.keyUsage || (cert.keyUsage.bits & KeyUsageBit.keyCertSign) === 0) {
    fail('ERR_X509SVID_ISSUER_KEY_USAGE', `${what} certificate lacks the keyCertSign key usage`);
  }
}

function checkIssuer(cert: Certificate, what: string): void {
  checkSigningCertificate(cert, what);
  for (const uri of cert.subjectAltName?.uris ?? []) {
    const id = SpiffeId.tryParse(uri);
    if (id && !id.isTrustDomainId()) {
      fail(
        'ERR_X509SVID_ISSUER_HAS_PATH',
        `${what} certificate has a SPIFFE ID with a path; signing certificates must not`,
      );
    }
  }
}

function hostOfUri(uri: string): string | undefined {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (!m) return undefined;
  let host = m[1]!;
  const at = host.lastIndexOf('@');
  if (at >= 0) host = host.slice(at + 1);
  host = host.replace(/:\d*$/, '');
  return host.toLowerCase();
}

/** RFC 5280 4.2.1.10: a leading dot means subdomains only; otherwise the host itself or any subdomain. */
function domainMatches(name: string, constraint: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return n.endsWith(c);
  return n === c || n.endsWith('.' + c);
}

/** URI constraints name a host: exact for `host`, subdomains for `.domain` (RFC 5280 4.2.1.10). */
function uriMatches(uri: string, constraint: string): boolean {
  const host = hostOfUri(uri);
  if (host === undefined || host === '') return false;
  const c = constraint.toLowerCase();
  return c.startsWith('.') ? host.endsWith(c) : host === c;
}

function rdns(nameDer: Buffer): Buffer[] {
  const name = AsnConvert.parse(nameDer, Name);
  return name.map((rdn) => Buffer.from(AsnConvert.serialize(rdn)));
}

function dirMatches(subject: Buffer, constraint: Buffer): boolean {
  const s = rdns(subject);
  const c = rdns(constraint);
  return c.length <= s.length && c.every((r, i) => r.equals(s[i]!));
}

/** A certificate's names, by form, as name constraints are checked against them. */
type NamesToCheck = GeneralNames;

function namesOf(cert: Certificate): NamesToCheck {
  const san = cert.subjectAltName;
  const dirs = [...(san?.directoryNames ?? [])];
  if (!cert.subjectIsEmpty) dirs.push(cert.subjectDer);
  return {
    uris: san?.uris ?? [],
    dnsNames: san?.dnsNames ?? [],
    directoryNames: dirs,
    emails: san?.emails ?? [],
    ipAddresses: san?.ipAddresses ?? [],
    other: san?.other ?? [],
  };
}

function checkNameConstraints(
  issuer: Certificate,
  issuerWhat: string,
  subject: Certificate,
  subjectWhat: string,
): void {
  const nc = issuer.nameConstraints;
  if (!nc) return;
  const names = namesOf(subject);
  function refuse(why: string): never {
    return fail(
      'ERR_X509SVID_NAME_CONSTRAINTS',
      `${subjectWhat} certificate ${why} of the ${issuerWhat} certificate's name constraints`,
    );
  }
  type Form = keyof NamesToCheck;
  const matchers: Record<Form, ((name: never, constraint: never) => boolean) | undefined> = {
    uris: uriMatches,
    dnsNames: domainMatches,
    directoryNames: dirMatches,
    emails: undefined,
    ipAddresses: undefined,
    other: undefined,
  };
  const labels: Record<Form, string> = {
    uris: 'a URI',
    dnsNames: 'a DNS name',
    directoryNames: 'a directory name',
    emails: 'an email address',
    ipAddresses: 'an IP address',
    other: 'an otherName, registeredID, x400Address or ediPartyName',
  };
  for (const form of Object.keys(matchers) as Form[]) {
    const permitted: readonly unknown[] = nc.permitted?.[form] ?? [];
    const excluded: readonly unknown[] = nc.excluded?.[form] ?? [];
    let values: readonly unknown[] = names[form];
    // The rarely used forms are grouped; only a constraint on the same kind concerns a name.
    if (form === 'other') values = values.filter((kind) => permitted.includes(kind) || excluded.includes(kind));
    if (values.length === 0 || (permitted.length === 0 && excluded.length === 0)) continue;
    const match = matchers[form] as ((name: unknown, constraint: unknown) => boolean) | undefined;
    if (match === undefined) refuse(`has ${labels[form]}, a name form svidkit cannot check against the rules`);
    for (const v of values) {
      if (excluded.some((c) => match(v, c))) refuse(`has ${labels[form]} excluded by the rules`);
      if (permitted.length > 0 && !permitted.some((c) => match(v, c))) {
        refuse(`has ${labels[form]} outside the permitted subtrees`);
      }
    }
  }
}

/**
 * Validates a built path (leaf first, root last). Signatures were checked while building; this applies
 * every other RFC 5280 rule at instant `at`.
 */
export function validatePath(path: readonly Certificate[], at: Date): void {
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const cert = path[i]!;
    const what = role(i, n);
    checkValidity(cert, what, at);
    if (cert.unhandledCriticalExtensions.length > 0) {
      fail(
        'ERR_X509SVID_UNHANDLED_CRITICAL_EXTENSION',
        `${what} certificate has an unhandled critical extension ${cert.unhandledCriticalExtensions[0]}`,
      );
    }
    if (i === 0) continue;
    checkIssuer(cert, what);
    // pathLen counts the non-self-issued intermediates between this issuer and the leaf.
    const pathLen = cert.basicConstraints?.pathLen;
    if (pathLen !== undefined) {
      let below = 0;
      for (let j = 1; j < i; j++) if (!path[j]!.isSelfIssued()) below++;
      if (below > pathLen) {
        fail(
          'ERR_X509SVID_PATH_LENGTH',
          `${what} certificate allows ${pathLen} intermediates below it, found ${below}`,
        );
      }
    }
    for (let j = 0; j < i; j++) {
      // Self-issued intermediates are exempt (RFC 5280 6.1.3 (b)); the leaf never is.
      if (j > 0 && path[j]!.isSelfIssued()) continue;
      checkNameConstraints(cert, what, path[j]!, role(j, n));
    }
  }
}

function mayHaveIssued(child: Certificate, parent: Certificate): boolean {
  if (!child.issuerDer.equals(parent.subjectDer)) return false;
  if (child.authorityKeyId && parent.subjectKeyId && !child.authorityKeyId.equals(parent.subjectKeyId)) return false;
  return true;
}

const PRIORITY: Partial<Record<ErrorCode, number>> = {
  ERR_X509SVID_UNTRUSTED: 0,
  ERR_X509SVID_BAD_SIGNATURE: 1,
};

/**
 * Builds a path from `leaf` through `intermediates` to one of `roots` and validates it. Returns the
 * first valid path (leaf first, root last). When none is valid, throws the most telling error met:
 * a rule violation on a complete path, else a bad signature, else ERR_X509SVID_UNTRUSTED.
 */
export function buildPath(
  leaf: Certificate,
  intermediates: readonly Certificate[],
  roots: readonly Certificate[],
  at: Date,
): Certificate[] {
  let best: SvidkitError = new SvidkitError(
    'ERR_X509SVID_UNTRUSTED',
    'x509svid: certificate signed by unknown authority (no path to a root of the bundle)',
  );
  const consider = (err: unknown) => {
    if (!(err instanceof SvidkitError)) throw err;
    if ((PRIORITY[err.code] ?? 2) > (PRIORITY[best.code] ?? 2)) best = err;
  };
  // The tail of a partial path is never the root, so its role does not depend on the final length.
  const signedBy = (path: Certificate[], issuer: Certificate): boolean => {
    if (path[path.length - 1]!.isSignedBy(issuer.publicKey)) return true;
    const what = role(path.length - 1, Number.MAX_SAFE_INTEGER);
    consider(
      new SvidkitError(
        'ERR_X509SVID_BAD_SIGNATURE',
        `x509svid: ${what} certificate signature does not verify with its issuer's key`,
      ),
    );
    return false;
  };
  let budget = 64; // bounds the search however the intermediates are arranged
  const walk = (path: Certificate[]): Certificate[] | undefined => {
    const tail = path[path.length - 1]!;
    for (const root of roots) {
      if (!mayHaveIssued(tail, root)) continue;
      if (budget-- <= 0) return undefined;
      if (!signedBy(path, root)) continue;
      const full = [...path, root];
      try {
        validatePath(full, at);
        return full;
      } catch (err) {
        consider(err);
      }
    }
    if (path.length + 1 >= MAX_PATH_LENGTH) return undefined;
    for (const next of intermediates) {
      if (path.includes(next) || !mayHaveIssued(tail, next)) continue;
      if (budget-- <= 0) return undefined;
      if (!signedBy(path, next)) continue;
      const found = walk([...path, next]);
      if (found) return found;
    }
    return undefined;
  };
  const found = walk([leaf]);
  if (found) return found;
  throw best;
}
