/** `svidkit id ...`: SPIFFE ID commands. */
import type { Command } from 'commander';
import { SpiffeId } from '../spiffeid/index.js';
import type { CliIo } from './io.js';

/** Adds `id parse`. */
export function registerIdCommands(program: Command, io: CliIo): void {
  const id = program.command('id').description('SPIFFE IDs');
  id.command('parse')
    .description('check a SPIFFE ID and print its normalized form')
    .argument('<id>', 'the SPIFFE ID')
    .option('--json', 'print trust domain and path as JSON')
    .action((raw: string, opts: { json?: boolean }) => {
      const parsed = SpiffeId.parse(raw);
      if (opts.json) {
        io.stdout(
          JSON.stringify({ id: parsed.toString(), trustDomain: parsed.trustDomain.name, path: parsed.path }) + '\n',
        );
      } else {
        io.stdout(parsed.toString() + '\n');
      }
    });
}
