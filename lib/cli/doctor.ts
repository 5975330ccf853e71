/** `svidkit doctor`: why an mTLS connection with the files of an SVID directory would fail or succeed. */
import { type Command, Option } from 'commander';
import { diagnose, formatDoctorReport, MAX_TIMEOUT_MS } from '../doctor/index.js';
import { isSvidkitError, SvidkitError } from '../errors/index.js';
import { FILE_LAYOUTS, type FileLayout } from '../source/index.js';
import type { CliIo } from './io.js';
import { parseWholeNumber } from './options.js';

interface DoctorFlags {
  peer?: string;
  expect?: string;
  json?: boolean;
  layout?: FileLayout;
  cert?: string;
  key?: string;
  bundle?: string;
  timeout?: string;
}

function parseTimeout(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseWholeNumber(value, '--timeout (milliseconds)', 1, MAX_TIMEOUT_MS);
}

/** Adds `doctor <svid-dir>`. */
export function registerDoctorCommands(program: Command, io: CliIo): void {
  program
    .command('doctor')
    .description('explain why an mTLS connection made with the files of an SVID directory would fail or succeed')
    .argument('<svid-dir>', 'the directory the agent, spiffe-helper or cert-manager writes the SVID files to')
    .option('--peer <host:port>', 'also make a real mTLS handshake with this peer')
    .option('--expect <spiffe-id>', 'the SPIFFE ID the peer must have (with --peer)')
    .option('--json', 'print the checks and the verdict as JSON')
    .addOption(new Option('--layout <layout>', 'the directory layout (default: detected)').choices([...FILE_LAYOUTS]))
    .option('--cert <name>', 'file name of the certificate chain in <svid-dir>')
    .option('--key <name>', 'file name of the private key in <svid-dir>')
    .option('--bundle <name>', 'file name of the trust bundle in <svid-dir>')
    .option('--timeout <ms>', 'bound of each connection attempt to the peer, in milliseconds (default 5000)')
    .action(async (dir: string, flags: DoctorFlags) => {
      let report;
      try {
        report = await diagnose({
          dir,
          layout: flags.layout,
          names: { svid: flags.cert, key: flags.key, bundle: flags.bundle },
          peer: flags.peer,
          expect: flags.expect,
          timeoutMs: parseTimeout(flags.timeout),
        });
      } catch (err) {
        // Bad options are usage errors (exit 2); the message already starts with "doctor: ".
        if (isSvidkitError(err, 'ERR_DOCTOR_OPTIONS')) throw new SvidkitError('ERR_USAGE', err.message);
        throw err;
      }
      io.stdout(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatDoctorReport(report));
      if (!report.ok) {
        const first = report.checks.find((c) => c.status === 'fail');
        throw new SvidkitError('ERR_DOCTOR_FAILED', `doctor: check ${first?.name ?? '?'} failed`);
      }
    });
}
