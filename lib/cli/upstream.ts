/**
 * `svidkit upstream ...`: the offline root and the intermediate that svidkit-ca's upstream mode signs
 * with (`ca.upstream.cert_file`, `key_file`, `bundle_file`; see certs/README.md).
 *
 *   create-root          a self-signed CA for a trust domain (made and kept on an offline machine)
 *   create-intermediate  an intermediate CA signed by that root, for the CA daemon
 *
 * Private keys are written as PKCS#8 PEM with mode 0600 and never printed. An existing output file is
 * never replaced without --force; with --force each file is written to a temporary name beside it and
 * renamed over it, so a symlink at the target is replaced rather than followed, and nothing is half
 * written. Option values that are malformed or out of range (--ttl, --path-len, --subject-cn) fail
 * with ERR_CONFIG (exit 1) like parseDuration, whose errors they extend; missing options and
 * conflicting output paths are usage errors (exit 2).
 */
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import type { Command } from 'commander';
import { X509Bundle } from '../bundle/x509.js';
import { CLOCK_SKEW_MS, selfSignedRoot, signWorkloadSvid } from '../ca/profile.js';
import { parseDuration } from '../config/index.js';
import { type ErrorCode, isSvidkitError, SvidkitError } from '../errors/index.js';
import { MAX_PEM_BYTES } from '../internal/pem.js';
import {
  generateKeyPair,
  type KeyType,
  keyTypeOf,
  loadPrivateKeyPem,
  parseKeyType,
  privateKeyToPem,
  samePublicKey,
} from '../keys/index.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { buildName, type DnSpec, extensions, keyIdentifier, signCertificate } from '../x509/build.js';
import { Certificate, KeyUsageBit } from '../x509/certificate.js';
import { verify } from '../x509svid/index.js';
import { type CliIo, readInput } from './io.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const YEAR_MS = 365 * DAY_MS;

/** Defaults of create-root. */
export const ROOT_DEFAULTS = { keyType: 'ec-p384', ttl: '87600h' } as const;
/** Defaults of create-intermediate. */
export const INTERMEDIATE_DEFAULTS = { keyType: 'ec-p256', ttl: '720h', pathLen: '0' } as const;

/** Bounds of the requested lifetimes (an intermediate is further capped at its root's notAfter). */
const ROOT_TTL_MS = { min: DAY_MS, max: 100 * YEAR_MS };
const INTERMEDIATE_TTL_MS = { min: HOUR_MS, max: 100 * YEAR_MS };
/** Largest --path-len accepted: a chain holds at most 10 certificates. */
const MAX_PATH_LEN = 8;
/** ub-common-name (RFC 5280 appendix A). */
const MAX_CN_LENGTH = 64;
/** Largest private key file read (an RSA-4096 PKCS#8 PEM is about 3.3 KiB). */
const MAX_KEY_FILE_BYTES = 64 * 1024;

function fail(code: ErrorCode, message: string): never {
  throw new SvidkitError(code, `upstream: ${message}`);
}

function ioFail(message: string): never {
  throw new SvidkitError('ERR_IO', `io: ${message}`);
}

function badOption(option: string, message: string): never {
  fail('ERR_CONFIG', `${option}: ${message}`);
}

/** A --ttl value in ms, within [min, max]; the parse errors are parseDuration's, renamed to this command. */
function parseTtl(value: string, bounds: { min: number; max: number }): number {
  let ms: number;
  try {
    ms = parseDuration(value, '--ttl');
  } catch (err) {
    if (isSvidkitError(err)) throw new SvidkitError(err.code, err.message.replace(/^config: /, 'upstream: '));
    throw err;
  }
  if (ms < bounds.min || ms > bounds.max) {
    badOption('--ttl', `must be between ${bounds.min / HOUR_MS}h and ${bounds.max / HOUR_MS}h`);
  }
  return ms;
}

function parsePathLen(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) > MAX_PATH_LEN) {
    badOption('--path-len', `must be a whole number from 0 to ${MAX_PATH_LEN}`);
  }
  return Number(value);
}

function checkCommonName(cn: string): string {
  // eslint-disable-next-line no-control-regex
  if (cn.length === 0 || cn.length > MAX_CN_LENGTH || /[\u0000-\u001f\u007f]/.test(cn)) {
    badOption('--subject-cn', `must be 1 to ${MAX_CN_LENGTH} characters without control characters`);
  }
  return cn;
}

/** `<prefix> <trust domain>`, or the prefix alone when that would pass the 64 characters a CN may have. */
function defaultCommonName(prefix: string, td: TrustDomain): string {
  const cn = `${prefix} ${td.name}`;
  return cn.length <= MAX_CN_LENGTH ? cn : prefix;
}

function subjectOf(cn: string): DnSpec {
  return [
    ['O', 'svidkit'],
    ['CN', cn],
  ];
}

function oneLine(dn: string): string {
  return dn.replace(/\n/g, ', ');
}

/**
 * A path as a YAML scalar: plain when YAML reads it back as that same string (it has a slash, or starts
 * with a letter and is not true, false or null), JSON (a YAML double-quoted string) otherwise.
 */
function yamlPath(path: string): string {
  const plain =
    /^[A-Za-z0-9_./][A-Za-z0-9_./-]*$/.test(path) &&
    (path.includes('/') || (/^[A-Za-z_]/.test(path) && !/^(true|false|null)$/i.test(path)));
  return plain ? path : JSON.stringify(path);
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? 'error';
}

// ---------------------------------------------------------------------------------------------
// Output files

interface Output {
  readonly path: string;
  readonly data: string;
  readonly mode: number;
}

/** Refuses paths that name the same file twice, or an input about to be replaced. */
function checkDistinct(
  outputs: readonly { option: string; path: string }[],
  inputs: readonly { option: string; path: string }[],
): void {
  const seen = new Map<string, string>();
  for (const { option, path } of outputs) {
    const abs = resolve(path);
    const clash = seen.get(abs) ?? inputs.find((i) => i.path !== '-' && resolve(i.path) === abs)?.option;
    if (clash !== undefined) fail('ERR_USAGE', `${option} and ${clash} name the same file (${path})`);
    seen.set(abs, option);
  }
}

/** Fails with ERR_IO before any work when an output exists and --force is not given. */
async function checkOutputs(paths: readonly string[], force: boolean): Promise<void> {
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = (await lstat(path)).isDirectory();
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') continue;
      throw new SvidkitError('ERR_IO', `io: cannot check ${path} (${errnoOf(err)})`, { cause: err });
    }
    if (isDir) ioFail(`${path} is a directory`);
    if (!force) ioFail(`${path} exists; refusing to overwrite it without --force`);
  }
}

/** Creates `path` exclusively (flag 'wx') with `mode`, writes and syncs `data`. */
async function writeNew(path: string, data: string, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  const buf = Buffer.from(data, 'utf8');
  try {
    await handle.chmod(mode); // the umask can only have narrowed it; make it exact
    await handle.writeFile(buf);
    await handle.sync();
  } finally {
    buf.fill(0);
    await handle.close();
  }
}

/**
 * Writes the outputs in order. Without `force` each file is created with flag 'wx', and a failure removes
 * the files this call created. With `force` every file is first written completely to a temporary name in
 * its directory, then each is renamed over its target.
 */
async function writeOutputs(outputs: readonly Output[], force: boolean): Promise<void> {
  const created: string[] = [];
  const temps: string[] = [];
  const cleanUp = async () => {
    for (const p of [...created, ...temps]) await unlink(p).catch(() => undefined);
  };
  let current = '';
  try {
    if (!force) {
      for (const o of outputs) {
        current = o.path;
        await writeNew(o.path, o.data, o.mode);
        created.push(o.path);
      }
      return;
    }
    const staged: [string, string][] = [];
    for (const o of outputs) {
      current = o.path;
      const temp = join(dirname(o.path), `.${basename(o.path)}.${randomBytes(8).toString('hex')}.tmp`);
      await writeNew(temp, o.data, o.mode);
      temps.push(temp);
      staged.push([temp, o.path]);
    }
    for (const [temp, path] of staged) {
      current = path;
      await rename(temp, path);
      temps.splice(temps.indexOf(temp), 1);
    }
  } catch (err) {
    await cleanUp();
    if (errnoOf(err) === 'EEXIST') {
      ioFail(`${current} exists; refusing to overwrite it without --force`);
    }
    throw new SvidkitError('ERR_IO', `io: cannot write ${current} (${errnoOf(err)})`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// The root

/** The trust domain a root names in its URI SAN, checked against --trust-domain when both are present. */
function trustDomainOfRoot(root: Certificate, given: string | undefined): TrustDomain {
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
function checkRoot(root: Certificate, rootKey: KeyObject, pathLen: number, now: Date): void {
  if (!samePublicKey(rootKey, root.publicKey)) {
    fail('ERR_X509SVID_KEY_MISMATCH', 'the root private key does not belong to the root certificate');
  }
  let selfSigned: boolean;
  try {
    selfSigned = root.isSelfIssued() && root.isSignedBy(root.publicKey);
  } catch {
    selfSigned = false;
  }
  if (!selfSigned) {
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
function parseRoot(pem: Buffer): Certificate {
  const certs = Certificate.fromPem(pem);
  if (certs.length !== 1) {
    fail('ERR_CA_UPSTREAM_BUNDLE', `--root-cert must hold exactly one certificate, found ${certs.length}`);
  }
  return certs[0]!;
}

// ---------------------------------------------------------------------------------------------
// Commands

interface RootOptions {
  trustDomain: string;
  outCert: string;
  outKey: string;
  keyType: string;
  ttl: string;
  subjectCn?: string;
  force?: boolean;
}

interface IntermediateOptions {
  rootCert: string;
  rootKey: string;
  outCert: string;
  outKey: string;
  keyType: string;
  ttl: string;
  pathLen: string;
  subjectCn?: string;
  trustDomain?: string;
  force?: boolean;
}

async function createRoot(opts: RootOptions, io: CliIo): Promise<void> {
  const td = TrustDomain.parse(opts.trustDomain);
  const keyType: KeyType = parseKeyType(opts.keyType);
  const ttlMs = parseTtl(opts.ttl, ROOT_TTL_MS);
  const cn =
    opts.subjectCn === undefined ? defaultCommonName('svidkit offline root', td) : checkCommonName(opts.subjectCn);
  const force = opts.force === true;
  checkDistinct(
    [
      { option: '--out-cert', path: opts.outCert },
      { option: '--out-key', path: opts.outKey },
    ],
    [],
  );
  await checkOutputs([opts.outCert, opts.outKey], force);

  const pair = generateKeyPair(keyType);
  const root = selfSignedRoot({
    trustDomain: td,
    key: pair.privateKey,
    publicKey: pair.publicKey,
    now: new Date(),
    ttlMs,
    subject: subjectOf(cn),
  });
  await writeOutputs(
    [
      { path: opts.outKey, data: privateKeyToPem(pair.privateKey), mode: 0o600 },
      { path: opts.outCert, data: root.toPem(), mode: 0o644 },
    ],
    force,
  );
  io.stdout(
    [
      `root certificate written to ${opts.outCert}; private key to ${opts.outKey} (mode 0600: keep it offline)`,
      `  trust domain: ${td.name}`,
      `  subject:      ${oneLine(root.subject)}`,
      `  serial:       ${root.serialHex}`,
      `  not before:   ${root.notBefore.toISOString()}`,
      `  not after:    ${root.notAfter.toISOString()}`,
      `  key type:     ${keyType}`,
      `  sha256:       ${root.fingerprint256()}`,
      '',
    ].join('\n'),
  );
}

async function createIntermediate(opts: IntermediateOptions, io: CliIo): Promise<void> {
  const keyType: KeyType = parseKeyType(opts.keyType);
  const ttlMs = parseTtl(opts.ttl, INTERMEDIATE_TTL_MS);
  const pathLen = parsePathLen(opts.pathLen);
  if (opts.subjectCn !== undefined) checkCommonName(opts.subjectCn);
  const force = opts.force === true;
  if (opts.rootCert === '-' && opts.rootKey === '-') {
    fail('ERR_USAGE', '--root-cert and --root-key cannot both be standard input');
  }
  checkDistinct(
    [
      { option: '--out-cert', path: opts.outCert },
      { option: '--out-key', path: opts.outKey },
    ],
    [
      { option: '--root-cert', path: opts.rootCert },
      { option: '--root-key', path: opts.rootKey },
    ],
  );
  await checkOutputs([opts.outCert, opts.outKey], force);

  const root = parseRoot(await readInput(opts.rootCert, MAX_PEM_BYTES, io));
  const keyPem = await readInput(opts.rootKey, MAX_KEY_FILE_BYTES, io);
  let rootKey: KeyObject;
  try {
    rootKey = loadPrivateKeyPem(keyPem);
  } finally {
    keyPem.fill(0);
  }
  const now = new Date();
  checkRoot(root, rootKey, pathLen, now);
  const td = trustDomainOfRoot(root, opts.trustDomain);
  const cn = opts.subjectCn ?? defaultCommonName('svidkit intermediate', td);
  const subject = buildName(subjectOf(cn));
  // Issuer and subject alike would make the intermediate self-issued: chain building and path length break.
  if (Buffer.from(AsnConvert.serialize(subject)).equals(root.subjectDer)) {
    fail('ERR_USAGE', 'the intermediate would have the same subject as the root; choose another --subject-cn');
  }

  const pair = generateKeyPair(keyType);
  const requestedEnd = now.getTime() + ttlMs;
  const notAfter = new Date(Math.min(requestedEnd, root.notAfter.getTime()));
  const ica = signCertificate(
    {
      subject,
      issuer: root.asn.tbsCertificate.subject,
      notBefore: new Date(Math.max(now.getTime() - CLOCK_SKEW_MS, root.notBefore.getTime())),
      notAfter,
      publicKey: pair.publicKey,
      extensions: [
        extensions.basicConstraints(true, pathLen),
        extensions.keyUsage(KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign),
        extensions.subjectAltName({ uris: [td.idString()] }, false),
        extensions.subjectKeyId(keyIdentifier(pair.publicKey)),
        extensions.authorityKeyId(root.subjectKeyId ?? keyIdentifier(root.publicKey)),
      ],
    },
    rootKey,
  );

  // The check svidkit-ca makes at start: a workload SVID signed by the intermediate verifies against the root.
  const probe = generateKeyPair('ec-p256');
  const leaf = signWorkloadSvid({
    id: SpiffeId.fromSegments(td, 'svidkit', 'upstream-check'),
    publicKey: probe.publicKey,
    signer: { cert: ica, key: pair.privateKey },
    now,
    ttlMs: 60_000,
  });
  verify([leaf, ica], new X509Bundle(td, [root]), { at: now });

  await writeOutputs(
    [
      { path: opts.outKey, data: privateKeyToPem(pair.privateKey), mode: 0o600 },
      { path: opts.outCert, data: ica.toPem(), mode: 0o644 },
    ],
    force,
  );
  const capped = requestedEnd > root.notAfter.getTime() ? " (capped at the root's notAfter)" : '';
  io.stdout(
    [
      `intermediate certificate written to ${opts.outCert}; private key to ${opts.outKey} (mode 0600)`,
      `  trust domain: ${td.name}`,
      `  subject:      ${oneLine(ica.subject)}`,
      `  issuer:       ${oneLine(ica.issuer)}`,
      `  serial:       ${ica.serialHex}`,
      `  not before:   ${ica.notBefore.toISOString()}`,
      `  not after:    ${ica.notAfter.toISOString()}${capped}`,
      `  path length:  ${pathLen}`,
      `  key type:     ${keyTypeOf(pair.publicKey)}`,
      `  sha256:       ${ica.fingerprint256()}`,
      'svidkit-ca configuration (use the paths the files have on the CA host; the bundle is the root):',
      'ca:',
      '  upstream:',
      `    cert_file: ${yamlPath(opts.outCert)}`,
      `    key_file: ${yamlPath(opts.outKey)}`,
      `    bundle_file: ${yamlPath(opts.rootCert)}`,
      '',
    ].join('\n'),
  );
}

/** Adds `upstream create-root` and `upstream create-intermediate`. */
export function registerUpstreamCommands(program: Command, io: CliIo): void {
  const upstream = program
    .command('upstream')
    .description("an offline root and intermediates for svidkit-ca's upstream mode");

  upstream
    .command('create-root')
    .description('create a self-signed root CA for a trust domain (run it on an offline machine)')
    .requiredOption('--trust-domain <name>', 'the trust domain, e.g. prod.example.com')
    .requiredOption('--out-cert <file>', 'where to write the root certificate (PEM)')
    .requiredOption('--out-key <file>', 'where to write the root private key (PKCS#8 PEM, mode 0600)')
    .option('--key-type <type>', 'ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519', ROOT_DEFAULTS.keyType)
    .option('--ttl <duration>', 'lifetime, e.g. 87600h (10 years)', ROOT_DEFAULTS.ttl)
    .option('--subject-cn <name>', 'subject common name (default "svidkit offline root <trust domain>")')
    .option('--force', 'replace existing output files')
    .action((opts: RootOptions) => createRoot(opts, io));

  upstream
    .command('create-intermediate')
    .description('create an intermediate CA signed by the root, for ca.upstream in the svidkit-ca configuration')
    .requiredOption('--root-cert <file>', 'the root certificate (PEM)')
    .requiredOption('--root-key <file>', 'the root private key (PKCS#8 PEM)')
    .requiredOption('--out-cert <file>', 'where to write the intermediate certificate (PEM)')
    .requiredOption('--out-key <file>', 'where to write the intermediate private key (PKCS#8 PEM, mode 0600)')
    .option(
      '--key-type <type>',
      'ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519',
      INTERMEDIATE_DEFAULTS.keyType,
    )
    .option(
      '--ttl <duration>',
      "lifetime, e.g. 720h (30 days); never past the root's notAfter",
      INTERMEDIATE_DEFAULTS.ttl,
    )
    .option(
      '--path-len <n>',
      'basicConstraints pathLen: CAs allowed below the intermediate',
      INTERMEDIATE_DEFAULTS.pathLen,
    )
    .option('--subject-cn <name>', 'subject common name (default "svidkit intermediate <trust domain>")')
    .option('--trust-domain <name>', 'only for a root without a spiffe:// URI SAN: the trust domain it serves')
    .option('--force', 'replace existing output files')
    .action((opts: IntermediateOptions) => createIntermediate(opts, io));
}
