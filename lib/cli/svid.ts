/** `svidkit svid ...`: inspect and verify X.509-SVID files. */
import type { Command } from 'commander';
import { parseBundleDocument } from '../bundle/index.js';
import { isSvidkitError } from '../errors/index.js';
import { MAX_PEM_BYTES } from '../internal/pem.js';
import { keyTypeOf } from '../keys/index.js';
import { TrustDomain } from '../spiffeid/index.js';
import type { Certificate } from '../x509/certificate.js';
import { idFromLeaf, parseChainPem, verify } from '../x509svid/index.js';
import { type CliIo, readInput } from './io.js';
import { atOption, parseTimeOption } from './options.js';

/** The largest bundle file the CLI reads. */
const MAX_BUNDLE_FILE = 4 * 1024 * 1024;

function describeKey(cert: Certificate): string {
  try {
    return keyTypeOf(cert.publicKey);
  } catch {
    return cert.publicKey.asymmetricKeyType ?? 'unknown';
  }
}

function summary(cert: Certificate) {
  let id: string;
  if (cert.basicConstraints?.cA) {
    id = (cert.subjectAltName?.uris ?? []).join(', ') || '(none)';
  } else {
    try {
      id = idFromLeaf(cert).toString();
    } catch (err) {
      id = isSvidkitError(err) ? `(not a valid SVID: ${err.code})` : '(not a valid SVID)';
    }
  }
  return {
    spiffeId: id,
    serial: cert.serialHex,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    keyType: describeKey(cert),
    signatureAlgorithm: cert.signatureAlgorithm,
    isCa: cert.basicConstraints?.cA ?? false,
    dnsNames: cert.subjectAltName?.dnsNames ?? [],
    sha256: cert.fingerprint256(),
  };
}

/** Adds `svid inspect` and `svid verify`. */
export function registerSvidCommands(program: Command, io: CliIo): void {
  const svid = program.command('svid').description('X.509-SVIDs');

  svid
    .command('inspect')
    .description('print a summary of each certificate of a PEM chain (leaf first)')
    .argument('<file>', 'PEM certificate chain, or - for stdin')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const certs = parseChainPem(await readInput(file, MAX_PEM_BYTES, io));
      const rows = certs.map(summary);
      if (opts.json) {
        io.stdout(JSON.stringify({ certificates: rows }, null, 2) + '\n');
        return;
      }
      rows.forEach((r, i) => {
        const title = i === 0 ? 'leaf' : `certificate ${i}`;
        io.stdout(
          [
            `${title}:`,
            `  spiffe id:  ${r.spiffeId}`,
            `  serial:     ${r.serial}`,
            `  not before: ${r.notBefore}`,
            `  not after:  ${r.notAfter}`,
            `  subject:    ${r.subject || '(empty)'}`,
            `  issuer:     ${r.issuer || '(empty)'}`,
            `  key type:   ${r.keyType}`,
            `  signature:  ${r.signatureAlgorithm}`,
            `  ca:         ${r.isCa}`,
            ...(r.dnsNames.length ? [`  dns names:  ${r.dnsNames.join(', ')}`] : []),
            `  sha256:     ${r.sha256}`,
          ].join('\n') + '\n',
        );
      });
    });

  svid
    .command('verify')
    .description('verify an X.509-SVID chain against a bundle; prints the SPIFFE ID and expiry')
    .requiredOption('--svid <file>', 'PEM chain, leaf first')
    .requiredOption('--bundle <file>', 'PEM roots, a SPIFFE bundle JSON, or a trust_domains map')
    .option('--trust-domain <name>', "whose roots a PEM or single SPIFFE bundle holds (default: the leaf's)")
    .addOption(atOption())
    .action(async (opts: { svid: string; bundle: string; trustDomain?: string; at?: string }) => {
      const at = opts.at === undefined ? new Date() : parseTimeOption(opts.at);
      const certs = parseChainPem(await readInput(opts.svid, MAX_PEM_BYTES, io));
      const claimed = idFromLeaf(certs[0]!);
      const td = opts.trustDomain === undefined ? claimed.trustDomain : TrustDomain.parse(opts.trustDomain);
      const bundles = parseBundleDocument(await readInput(opts.bundle, MAX_BUNDLE_FILE, io), td);
      const result = verify(certs, bundles, { at });
      io.stdout(`${result.id.toString()}\nexpires ${certs[0]!.notAfter.toISOString()}\n`);
    });
}
