/**
 * The checks that need no network: the files of the SVID directory, the certificate chain and key, the
 * leaf's X509-SVID rules, its validity at this machine's clock, and the bundle of its trust domain.
 * Each rule the library enforces gets its own named check, so that one report shows every problem;
 * the library's own parser and verifier are then asked too, so that doctor never passes a set the
 * library would refuse.
 */
import type { KeyObject } from 'node:crypto';
import { BundleSet, parseBundleDocument, X509Bundle } from '../bundle/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { keyTypeOf, loadPrivateKeyPem, samePublicKey } from '../keys/index.js';
import { FileSource, type FileLayout, MAX_BUNDLE_FILE_BYTES, MAX_PEM_FILE_BYTES } from '../source/index.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { Certificate } from '../x509/certificate.js';
import { idFromLeaf, type LeafRuleViolation, leafRuleViolations, parseChainPem, X509Svid } from '../x509svid/index.js';
import { buildPath } from '../x509svid/path.js';
import {
  type FileRead,
  fileExists,
  type NameOverrides,
  openSvidDir,
  readSvidFile,
  sourceNames,
  type SvidDir,
} from './files.js';
import { formatDuration, nameOf, quote } from './format.js';
import type { CheckList, CheckName } from './types.js';

/** Below this share of its lifetime left, a valid leaf is reported with a warning. */
const RENEWAL_WARNING_SHARE = 0.1;
/** How many bundle roots a PEM file may hold, as the library reads it. */
const MAX_BUNDLE_ROOTS = 256;

/** What the local checks found, for the peer checks. */
export interface LocalFindings {
  readonly svidDir?: SvidDir;
  /** The leaf's SPIFFE ID, when it has a valid one. */
  readonly spiffeId?: SpiffeId;
  /** The SVID as the library holds it, when the chain, key and leaf rules allow one. */
  readonly svid?: X509Svid;
  /** The chain as PEM and the matching key, when they parse and match (even if the leaf breaks a rule). */
  readonly clientCertificate?: { readonly certPem: string; readonly key: KeyObject };
  /** The trusted bundles, when the bundle file parses. */
  readonly bundles?: BundleSet;
}

/** What the local checks need. */
export interface LocalOptions {
  readonly dir: string;
  readonly layout?: FileLayout;
  readonly names?: NameOverrides;
  readonly clock: () => Date;
}

function errorText(err: unknown): string {
  return isSvidkitError(err) ? err.message : 'it cannot be parsed';
}

function readOrFail(
  checks: CheckList,
  name: CheckName,
  d: SvidDir,
  r: { ok: FileRead } | { failure: { errno?: string; text: string } },
  file: string,
  fix: string,
): FileRead | undefined {
  if ('ok' in r) {
    checks.pass(name, `${file}: ${r.ok.data.length} bytes`);
    return r.ok;
  }
  const f = r.failure;
  const where = d.layout === 'svidkit' ? `${file} (in ${d.dataTarget ?? 'the version directory'})` : file;
  const why =
    f.errno === 'EACCES' || f.errno === 'EPERM'
      ? 'run doctor as the user the workload runs as, or fix the owner and mode the writer gives the file'
      : fix;
  checks.fail(name, `${where} ${f.text}`, why);
  return undefined;
}

function missingFix(d: SvidDir, what: 'svid' | 'key' | 'bundle'): string {
  if (d.layout === 'svidkit') {
    return "the agent's last write is incomplete or this is not its output directory: check the agent's log";
  }
  if (d.layout === 'cert-manager' && what === 'bundle') {
    return `cert-manager writes ${d.names.bundle} only when the issuer knows its CA; distribute the trust bundle (e.g. with trust-manager) or name the bundle file with --bundle`;
  }
  return 'check that the writer (spiffe-helper, cert-manager...) has written the file, or name it with --cert, --key or --bundle';
}

function checkKeyMode(checks: CheckList, key: FileRead): void {
  const mode = key.mode & 0o777;
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  if ((mode & 0o077) !== 0) {
    checks.warn(
      'key-mode',
      `${key.name} has mode ${octal}: users other than its owner (uid ${key.uid}) can read the private key`,
      `chmod 600 ${key.name} (svidkit agent: key_mode 0600; a Kubernetes volume: defaultMode 0400 or 0440 with fsGroup)`,
    );
    return;
  }
  checks.pass('key-mode', `${key.name} has mode ${octal}`);
}

function parseChain(checks: CheckList, d: SvidDir, file: FileRead): Certificate[] | undefined {
  try {
    const certs = parseChainPem(file.data);
    const rest = certs.length - 1;
    checks.pass(
      'cert-parse',
      `${file.name}: the leaf${rest > 0 ? ` and ${rest} more certificate${rest > 1 ? 's' : ''}` : ' alone'} (serial ${certs[0]!.serialHex})`,
    );
    return certs;
  } catch (err) {
    const swapped = isSvidkitError(err, 'ERR_PEM_UNEXPECTED_TYPE') && /PRIVATE KEY/.test(err.message);
    checks.fail(
      'cert-parse',
      swapped
        ? `${file.name} holds a private key where the certificate chain should be`
        : `${file.name} is not a PEM certificate chain: ${errorText(err)}`,
      swapped
        ? `the certificate and key files may be swapped, or one file holds both: ${d.names.svid} must hold the chain (leaf first), ${d.names.key} the key`
        : `${d.names.svid} must hold PEM CERTIFICATE blocks, the leaf first, then its intermediates`,
    );
    return undefined;
  }
}

function parseKey(checks: CheckList, d: SvidDir, file: FileRead): KeyObject | undefined {
  try {
    const key = loadPrivateKeyPem(file.data);
    checks.pass('key-parse', `${file.name}: ${keyTypeOf(key)} private key (PKCS#8)`);
    return key;
  } catch (err) {
    const text = errorText(err);
    let fix = `${d.names.key} must hold one unencrypted PKCS#8 "PRIVATE KEY" block of a supported type (EC P-256/P-384, RSA 2048-4096, Ed25519)`;
    if (/"(RSA|EC) PRIVATE KEY"/.test(text)) {
      fix = `convert it to PKCS#8 with "openssl pkcs8 -topk8 -nocrypt" (cert-manager: privateKey.encoding: PKCS8 in the Certificate)`;
    } else if (/ENCRYPTED|encrypted/.test(text)) {
      fix = 'svidkit reads unencrypted keys only: protect the file by its mode instead';
    } else if (/found 0/.test(text)) {
      fix = `${d.names.key} holds no private key: the certificate and key files may be swapped`;
    }
    checks.fail('key-parse', `${file.name}: ${text}`, fix);
    return undefined;
  } finally {
    file.data.fill(0);
  }
}

function checkValidity(checks: CheckList, leaf: Certificate, now: Date): void {
  const t = now.getTime();
  const clock = `this machine's clock reads ${now.toISOString()}`;
  if (t < leaf.notBefore.getTime()) {
    checks.fail(
      'validity',
      `the leaf is not valid yet: it becomes valid in ${formatDuration(leaf.notBefore.getTime() - t)}, at ${leaf.notBefore.toISOString()}; ${clock}`,
      "this machine's clock is behind the issuer's (sync it with NTP), or the issuer does not back-date new certificates",
    );
    return;
  }
  if (t > leaf.notAfter.getTime()) {
    checks.fail(
      'validity',
      `the leaf expired ${formatDuration(t - leaf.notAfter.getTime())} ago, at ${leaf.notAfter.toISOString()}; ${clock}`,
      'nothing renewed it: check that the agent (svidkit-agent, spire-agent, cert-manager) runs and reaches its CA; if the date is wrong, fix the clock (NTP)',
    );
    return;
  }
  const left = leaf.notAfter.getTime() - t;
  const lifetime = leaf.notAfter.getTime() - leaf.notBefore.getTime();
  const message = `valid for another ${formatDuration(left)}, until ${leaf.notAfter.toISOString()}; ${clock}`;
  if (lifetime > 0 && left < lifetime * RENEWAL_WARNING_SHARE) {
    checks.warn(
      'validity',
      `${message}; less than a tenth of its lifetime is left`,
      'SVIDs are normally renewed at half of their lifetime: check that the agent that renews it runs',
    );
    return;
  }
  checks.pass('validity', message);
}

function checkSpiffeId(checks: CheckList, leaf: Certificate): SpiffeId | undefined {
  const uris = leaf.subjectAltName?.uris ?? [];
  const notSvid =
    'this certificate is not an X.509-SVID: it must be issued with exactly one URI SAN holding the SPIFFE ID (cert-manager: spec.uris; SPIRE: the registration entry)';
  if (uris.length === 0) {
    checks.fail('spiffe-id', 'the leaf has no URI SAN, so it carries no SPIFFE ID', notSvid);
    return undefined;
  }
  if (uris.length > 1) {
    const shown = uris.slice(0, 4).map((u) => quote(u, 80));
    checks.fail(
      'spiffe-id',
      `the leaf has ${uris.length} URI SANs (${shown.join(', ')}${uris.length > 4 ? ', ...' : ''}); an X.509-SVID has exactly one`,
      notSvid,
    );
    return undefined;
  }
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uris[0]!);
  } catch (err) {
    const why = isSvidkitError(err) ? err.plainMessage : 'invalid';
    checks.fail('spiffe-id', `the leaf's URI SAN ${quote(uris[0]!)} is not a valid SPIFFE ID: ${why}`, notSvid);
    return undefined;
  }
  if (id.isTrustDomainId()) {
    checks.fail(
      'spiffe-id',
      `the leaf's SPIFFE ID ${id.toString()} names a trust domain, not a workload (it has no path)`,
      notSvid,
    );
    return undefined;
  }
  checks.pass('spiffe-id', id.toString());
  return id;
}

function checkNotCa(checks: CheckList, leaf: Certificate): void {
  if (leafRuleViolations(leaf).some((v) => v.rule === 'leaf-is-ca')) {
    checks.fail(
      'leaf-not-ca',
      'the leaf certificate is a CA (basicConstraints cA=true); SPIFFE forbids CA certificates as SVIDs and peers refuse them',
      'the first certificate of the file must be the workload leaf: the chain may be in the wrong order, or the issuing profile marks leaves as CAs',
    );
    return;
  }
  checks.pass('leaf-not-ca', 'the leaf is not a CA');
}

/** How doctor words each leaf rule the library checks (x509svid's leafRuleViolations holds the rules). */
const LEAF_PROBLEM: Readonly<Record<Exclude<LeafRuleViolation['rule'], 'leaf-is-ca'>, string>> = {
  'no-key-usage': 'it has no keyUsage extension',
  'key-usage-not-critical': 'its keyUsage is not critical',
  'no-digital-signature': 'its keyUsage lacks digitalSignature',
  'signing-key-usage': 'its keyUsage includes keyCertSign or cRLSign',
  'ext-key-usage': 'its extKeyUsage lacks serverAuth or clientAuth (mTLS uses both)',
  'san-not-critical': 'its subject is empty but its subjectAltName is not critical',
};

function checkKeyUsage(checks: CheckList, leaf: Certificate): void {
  const problems = leafRuleViolations(leaf).flatMap((v) => (v.rule === 'leaf-is-ca' ? [] : [LEAF_PROBLEM[v.rule]]));
  const eku = leaf.extKeyUsage;
  if (problems.length > 0) {
    checks.fail(
      'key-usage',
      `the leaf breaks the X509-SVID rules: ${problems.join('; ')}`,
      'reissue the SVID with a critical keyUsage of digitalSignature only, and extKeyUsage serverAuth and clientAuth (or none)',
    );
    return;
  }
  const ekuText = eku ? 'extKeyUsage serverAuth and clientAuth' : 'no extKeyUsage';
  checks.pass('key-usage', `keyUsage digitalSignature (critical), ${ekuText}`);
}

/** The check a leaf-rule error of the library belongs to. */
function checkOfLeafError(code: string): CheckName {
  if (code === 'ERR_X509SVID_NO_URI_SAN' || code === 'ERR_X509SVID_MULTIPLE_URI_SANS') return 'spiffe-id';
  if (code === 'ERR_X509SVID_INVALID_ID') return 'spiffe-id';
  if (code === 'ERR_X509SVID_LEAF_IS_CA') return 'leaf-not-ca';
  return 'key-usage';
}

/** The trust domain the roots of a PEM file claim in their URI SANs, if any. */
function claimedTrustDomain(data: Buffer): TrustDomain | undefined {
  try {
    for (const root of Certificate.fromPem(data, MAX_BUNDLE_ROOTS, MAX_BUNDLE_FILE_BYTES)) {
      for (const uri of root.subjectAltName?.uris ?? []) {
        const id = SpiffeId.tryParse(uri);
        if (id) return id.trustDomain;
      }
    }
  } catch {
    // Not PEM roots: no claim.
  }
  return undefined;
}

function describeSet(set: BundleSet): string {
  const names = set.bundles().map((b) => b.trustDomain.name);
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? ', ...' : '');
  return `${names.length} trust domain${names.length === 1 ? '' : 's'} (${shown})`;
}

interface ParsedBundle {
  readonly bundles?: BundleSet;
  /** Set when the roots of a PEM file belong to another trust domain than our SVID's. */
  readonly foreignTrustDomain?: TrustDomain;
}

function parseBundleFile(checks: CheckList, file: FileRead, isSet: boolean, td: TrustDomain | undefined): ParsedBundle {
  const fix = 'the bundle file must hold PEM root certificates, a SPIFFE bundle (JSON) or a {"trust_domains": ...} set';
  try {
    if (isSet) {
      const set = BundleSet.parse(file.data);
      checks.pass('bundle-parse', `${file.name}: ${describeSet(set)}`);
      return { bundles: set };
    }
    const owner = td ?? claimedTrustDomain(file.data);
    if (owner === undefined) {
      // Without a trust domain a PEM file can only be checked for parsing.
      const roots = X509Bundle.parsePem(TrustDomain.parse('unknown.invalid'), file.data);
      checks.pass('bundle-parse', `${file.name}: ${roots.size} root${roots.size === 1 ? '' : 's'}`);
      return {};
    }
    const set = parseBundleDocument(file.data, owner);
    const x509 = set.getX509BundleForTrustDomain(owner);
    const what = x509 && set.size === 1 ? `${x509.size} root${x509.size === 1 ? '' : 's'}` : describeSet(set);
    checks.pass('bundle-parse', `${file.name}: ${what}`);
    return { bundles: set };
  } catch (err) {
    if (isSvidkitError(err, 'ERR_BUNDLE_TRUST_DOMAIN') && td !== undefined) {
      const claimed = claimedTrustDomain(file.data);
      checks.pass('bundle-parse', `${file.name}: parses`);
      if (claimed !== undefined && !claimed.equals(td)) {
        try {
          return { bundles: parseBundleDocument(file.data, claimed), foreignTrustDomain: claimed };
        } catch {
          return { foreignTrustDomain: claimed };
        }
      }
      return {};
    }
    checks.fail('bundle-parse', `${file.name}: ${errorText(err)}`, fix);
    return {};
  }
}

function checkTrustDomain(
  checks: CheckList,
  file: FileRead,
  id: SpiffeId,
  parsed: ParsedBundle,
): X509Bundle | undefined {
  const td = id.trustDomain;
  const fix = `the SVID and the bundle come from different trust domains: fetch the bundle of "${td.name}" from the same source as the SVID`;
  if (parsed.foreignTrustDomain) {
    checks.fail(
      'bundle-trust-domain',
      `wrong trust domain: the roots in ${file.name} belong to "${parsed.foreignTrustDomain.name}", but our SVID is in "${td.name}"`,
      fix,
    );
    return undefined;
  }
  const x509 = parsed.bundles?.getX509BundleForTrustDomain(td);
  if (!x509 || x509.size === 0) {
    const held = parsed.bundles ? `; it holds ${describeSet(parsed.bundles)}` : '';
    checks.fail(
      'bundle-trust-domain',
      `wrong trust domain: ${file.name} has no X.509 roots for "${td.name}", the trust domain of our SVID${held}`,
      fix,
    );
    return undefined;
  }
  const others = (parsed.bundles?.size ?? 1) - 1;
  checks.pass(
    'bundle-trust-domain',
    `${x509.size} root${x509.size === 1 ? '' : 's'} for "${td.name}"${others > 0 ? `, and bundles of ${others} other trust domain${others === 1 ? '' : 's'}` : ''}`,
  );
  return x509;
}

function describePath(chain: readonly Certificate[]): string {
  return chain
    .slice(1)
    .map((c) => nameOf(c, 'subject'))
    .join(' -> ');
}

function checkChain(
  checks: CheckList,
  certs: readonly Certificate[],
  id: SpiffeId,
  roots: X509Bundle,
  now: Date,
): void {
  const leaf = certs[0]!;
  // The leaf's own dates are the validity check's business: verify inside its window when it is outside.
  const outside = now < leaf.notBefore || now > leaf.notAfter;
  const at = outside
    ? new Date(Math.min(Math.max(now.getTime(), leaf.notBefore.getTime()), leaf.notAfter.getTime()))
    : now;
  try {
    // The path alone: the leaf's own rules are the checks above, so that one fault fails one check.
    const path = buildPath(leaf, certs.slice(1), roots.authorities(), at);
    const note = outside ? " (checked within the leaf's validity; its dates are reported above)" : '';
    checks.pass(
      'chain-verifies',
      `our chain verifies against the bundle of "${id.trustDomain.name}": leaf -> ${describePath(path)}${note}`,
    );
  } catch (err) {
    if (isSvidkitError(err, 'ERR_X509SVID_UNTRUSTED')) {
      const issuer = nameOf(leaf, 'issuer');
      const single = certs.length === 1;
      checks.fail(
        'chain-verifies',
        `the bundle lacks the issuer of our chain: no path from the leaf (issued by ${issuer}) to any of the ${roots.size} root${roots.size === 1 ? '' : 's'} of "${id.trustDomain.name}"`,
        single
          ? `if an intermediate CA issued the leaf, the certificate file must hold it after the leaf; otherwise the bundle is stale or from another CA (after a CA rotation it must hold the new root)`
          : 'the bundle is stale or from another CA: after a CA rotation it must hold the new root',
      );
      return;
    }
    checks.fail(
      'chain-verifies',
      `our chain does not verify against the bundle of "${id.trustDomain.name}": ${errorText(err)}`,
      'reissue the SVID, or fix the intermediates in the certificate file (leaf first, then its issuers)',
    );
  }
}

async function checkWithFileSource(checks: CheckList, d: SvidDir, clock: () => Date): Promise<void> {
  let source: FileSource | undefined;
  try {
    source = await FileSource.open(d.dir, {
      layout: d.layout,
      names: sourceNames(d),
      clock,
      watch: false,
      pollIntervalMs: 0,
    });
    checks.pass('library-source', `svidkit's FileSource loads the directory as layout "${d.layout}"`);
  } catch (err) {
    checks.fail(
      'library-source',
      `svidkit's FileSource refuses the directory: ${errorText(err)}`,
      'an application that reads these files with svidkit would not start; fix what the message names',
    );
  } finally {
    await source?.close();
  }
}

/** Runs every local check into `checks`; resolves with what the peer checks can use. */
export async function checkLocal(options: LocalOptions, checks: CheckList): Promise<LocalFindings> {
  const now = options.clock();
  const d = await openSvidDir(options.dir, options.layout, options.names ?? {}, checks);
  if (!d) return {};
  const { names } = d;
  const certFile = readOrFail(
    checks,
    'cert-file',
    d,
    await readSvidFile(d, names.svid, MAX_PEM_FILE_BYTES),
    names.svid,
    missingFix(d, 'svid'),
  );
  const keyFile = readOrFail(
    checks,
    'key-file',
    d,
    await readSvidFile(d, names.key, MAX_PEM_FILE_BYTES),
    names.key,
    missingFix(d, 'key'),
  );
  if (keyFile) checkKeyMode(checks, keyFile);
  // The agent's layout carries every trusted trust domain in one set; FileSource prefers it too.
  const isSet = d.layout === 'svidkit' && (await fileExists(d, names.spiffeBundle));
  const bundleName = isSet ? names.spiffeBundle : names.bundle;
  const bundleFile = readOrFail(
    checks,
    'bundle-file',
    d,
    await readSvidFile(d, bundleName, MAX_BUNDLE_FILE_BYTES),
    bundleName,
    missingFix(d, 'bundle'),
  );

  const certs = certFile ? parseChain(checks, d, certFile) : undefined;
  const key = keyFile ? parseKey(checks, d, keyFile) : undefined;
  const leaf = certs?.[0];
  let matches = false;
  if (leaf && key) {
    try {
      matches = samePublicKey(key, leaf.publicKey);
    } catch (err) {
      checks.fail(
        'key-match',
        `the public key of the leaf in ${names.svid} cannot be read: ${errorText(err)}`,
        'reissue the SVID with a supported key type (EC P-256/P-384, RSA 2048-4096, Ed25519)',
      );
    }
    if (matches) checks.pass('key-match', `${names.key} is the key of the leaf in ${names.svid}`);
    else if (!checks.failed('key-match')) {
      checks.fail(
        'key-match',
        `${names.key} does not match the leaf in ${names.svid}: the key belongs to another certificate`,
        d.layout === 'svidkit'
          ? 'the agent writes both atomically, so the files were changed by hand: let the agent write them again'
          : 'a rotation may have been caught half-way (run doctor again), or the files come from two different SVIDs',
      );
    }
  }

  let id: SpiffeId | undefined;
  if (leaf) {
    checkValidity(checks, leaf, now);
    id = checkSpiffeId(checks, leaf);
    checkNotCa(checks, leaf);
    checkKeyUsage(checks, leaf);
    try {
      idFromLeaf(leaf);
    } catch (err) {
      // A rule the checks above do not know yet: the library's word is final.
      const name = isSvidkitError(err) ? checkOfLeafError(err.code) : 'key-usage';
      if (!checks.failed(name))
        checks.fail(name, errorText(err), 'reissue the SVID so that it follows the X509-SVID rules');
    }
  }

  let bundles: BundleSet | undefined;
  if (bundleFile) {
    const parsed = parseBundleFile(checks, bundleFile, isSet, id?.trustDomain);
    bundles = parsed.bundles;
    if (id && certs && !checks.failed('bundle-parse')) {
      const roots = checkTrustDomain(checks, bundleFile, id, parsed);
      if (roots) checkChain(checks, certs, id, roots, now);
    }
  }

  if (!checks.anyFailed) await checkWithFileSource(checks, d, options.clock);

  let svid: X509Svid | undefined;
  let clientCertificate: LocalFindings['clientCertificate'];
  if (certs && key && matches) {
    clientCertificate = { certPem: certs.map((c) => c.toPem()).join(''), key };
    try {
      svid = X509Svid.fromParts(certs, key);
    } catch (err) {
      if (!(err instanceof SvidkitError)) throw err;
      svid = undefined;
    }
  }
  return { svidDir: d, spiffeId: id, svid, clientCertificate, bundles };
}
