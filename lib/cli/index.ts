/**
 * The `svidkit` command line. Each command prints its result on stdout and exits 0, or prints one line
 * `error <CODE>: <message>` on stderr and exits 1; usage mistakes exit 2, an unreachable CA or Workload
 * API endpoint 3. Never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { isSvidkitError } from '../errors/index.js';
import { registerAdminCommands } from './admin.js';
import { registerApiCommands } from './api.js';
import { registerDoctorCommands } from './doctor.js';
import { registerIdCommands } from './id.js';
import type { CliIo } from './io.js';
import { registerJwtCommands } from './jwt.js';
import { registerSvidCommands } from './svid.js';
import { registerUpstreamCommands } from './upstream.js';

export type { CliIo } from './io.js';

/** Exit codes scripts can rely on: 3 means the CA or the Workload API endpoint could not be reached (worth retrying). */
export const EXIT = { ok: 0, failure: 1, usage: 2, unreachable: 3 } as const;

/** Codes that mean nothing answered in time: the CA's admin socket, or a Workload API endpoint. */
const UNREACHABLE: ReadonlySet<string> = new Set([
  'ERR_ADMIN_UNREACHABLE',
  'ERR_WORKLOADAPI_UNAVAILABLE',
  'ERR_WORKLOADAPI_TIMEOUT',
]);

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const program = new Command('svidkit')
    .description('SPIFFE workload identity toolkit: SVIDs, bundles, JWT-SVIDs and an offline upstream root')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })
    .exitOverride()
    .showHelpAfterError(false);
  registerIdCommands(program, io);
  registerSvidCommands(program, io);
  registerJwtCommands(program, io);
  registerUpstreamCommands(program, io);
  registerDoctorCommands(program, io);
  registerAdminCommands(program, io);
  registerApiCommands(program, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok; // --help, --version
      if (err.code === 'commander.help') return EXIT.usage; // a command group without a subcommand: help was shown
      io.stderr(`error ERR_USAGE: ${err.message.replace(/^error: /, '')}\n`);
      return EXIT.usage;
    }
    if (isSvidkitError(err)) {
      io.stderr(`error ${err.code}: ${err.message}\n`);
      if (err.code === 'ERR_USAGE') return EXIT.usage;
      return UNREACHABLE.has(err.code) ? EXIT.unreachable : EXIT.failure;
    }
    // Anything else is a bug; still one line, and the class name helps a report.
    io.stderr(`error ERR_INTERNAL: ${(err as Error)?.name ?? 'Error'}: ${(err as Error)?.message ?? String(err)}\n`);
    return EXIT.failure;
  }
}
