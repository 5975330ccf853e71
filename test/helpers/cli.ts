/** Runs the svidkit CLI in-process, collecting what it prints. */
import { Readable } from 'node:stream';
import { run } from '../../lib/cli/index.js';

/** What one CLI run gave: its exit code and everything it wrote to stdout and stderr. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs `svidkit <args>` with `stdin` as standard input. */
export async function runCli(args: string[], stdin = ''): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await run(args, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    stdin: () => Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]),
  });
  return { code, out, err };
}
