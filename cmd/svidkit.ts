#!/usr/bin/env node
/** Entry point of the `svidkit` CLI: wires process I/O to run() and sets the exit code. */
import { run } from '../lib/cli/index.js';

process.exitCode = await run(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stdin: () => process.stdin,
});
