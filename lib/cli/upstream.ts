/**
 * `svidkit upstream ...`: the offline root and the intermediate that svidkit-ca's upstream mode signs
 * with (`ca.upstream.cert_file`, `key_file`, `bundle_file`; see certs/README.md).
 *
 *   create-root          a self-signed CA for a trust domain (made and kept on an offline machine)
 *   create-intermediate  an intermediate CA signed by that root, for the CA daemon
 *
 * Private keys are written as PKCS#8 PEM with mode 0600 and never printed. The jobs have their own
 * files: the flags (upstream-flags.ts), the staged output files (upstream-output.ts) and the
 * certificate work (upstream-certs.ts); this file runs them in order and prints the summary.
 * Malformed or out-of-range option values fail with ERR_CONFIG (exit 1); missing options and
 * conflicting output paths are usage errors (exit 2).
 */
import type { KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { MAX_PEM_BYTES } from '../internal/pem.js';
import { type KeyType, keyTypeOf, loadPrivateKeyPem, parseKeyType, privateKeyToPem } from '../keys/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import { type CliIo, readInput } from './io.js';
import { makeIntermediate, makeRoot, parseRoot } from './upstream-certs.js';
import {
  checkCommonName,
  defaultCommonName,
  fail,
  INTERMEDIATE_DEFAULTS,
  INTERMEDIATE_TTL_MS,
  type IntermediateOptions,
  MAX_KEY_FILE_BYTES,
  parsePathLen,
  parseTtl,
  ROOT_DEFAULTS,
  ROOT_TTL_MS,
  type RootOptions,
} from './upstream-flags.js';
import { checkDistinct, checkOutputs, oneLine, writeOutputs, yamlPath } from './upstream-output.js';

/** The defaults of the two commands, re-exported where they have always been. */
export { INTERMEDIATE_DEFAULTS, ROOT_DEFAULTS } from './upstream-flags.js';

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

  const { root, privateKey } = makeRoot(td, keyType, ttlMs, cn);
  await writeOutputs(
    [
      { path: opts.outKey, data: privateKeyToPem(privateKey), mode: 0o600 },
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
  const { td, ica, privateKey, capped } = makeIntermediate({
    root,
    rootKey,
    keyType,
    ttlMs,
    pathLen,
    subjectCn: opts.subjectCn,
    trustDomain: opts.trustDomain,
  });

  await writeOutputs(
    [
      { path: opts.outKey, data: privateKeyToPem(privateKey), mode: 0o600 },
      { path: opts.outCert, data: ica.toPem(), mode: 0o644 },
    ],
    force,
  );

  io.stdout(
    [
      `intermediate certificate written to ${opts.outCert}; private key to ${opts.outKey} (mode 0600)`,
      `  trust domain: ${td.name}`,
      `  subject:      ${oneLine(ica.subject)}`,
      `  issuer:       ${oneLine(ica.issuer)}`,
      `  serial:       ${ica.serialHex}`,
      `  not before:   ${ica.notBefore.toISOString()}`,
      `  not after:    ${ica.notAfter.toISOString()}${capped ? " (capped at the root's notAfter)" : ''}`,
      `  path length:  ${pathLen}`,
      `  key type:     ${keyTypeOf(privateKey)}`,
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
