/** Options shared by several commands. */
import { Option } from 'commander';
import { SvidkitError } from '../errors/index.js';
import { SpiffeId } from '../spiffeid/index.js';

/** Parses an RFC 3339 time given on the command line. */
export function parseTimeOption(value: string): Date {
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(value);
  const d = new Date(value);
  if (!ok || Number.isNaN(d.getTime())) throw new SvidkitError('ERR_USAGE', `cli: "${value}" is not an RFC 3339 time`);
  return d;
}

/** A reusable `--at <time>` option. */
export function atOption(): Option {
  return new Option('--at <time>', 'check validity at this RFC 3339 instant instead of now');
}

/** A whole number between `min` and `max` given to `option`, or ERR_USAGE naming the option and the range. */
export function parseWholeNumber(value: string, option: string, min: number, max: number): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new SvidkitError('ERR_USAGE', `cli: ${option} must be a whole number between ${min} and ${max}`);
  }
  return Number(value);
}

/** A SPIFFE ID from the command line, or ERR_USAGE with the parser's reason. */
export function spiffeIdArg(value: string, what: string): string {
  try {
    return SpiffeId.parse(value).toString();
  } catch (err) {
    throw new SvidkitError('ERR_USAGE', `cli: ${what} "${value}" is not a SPIFFE ID: ${(err as Error).message}`);
  }
}

/** Collects a repeatable option's values in order (argv is already in memory; the receiver bounds the count). */
export function repeatable(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
