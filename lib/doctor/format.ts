/** Human-readable rendering of a doctor report, and the small formatting helpers the checks share. */
import type { DoctorReport } from './types.js';

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A duration as its largest unit and the next one: "3d 4h", "2h 5m", "45s"; milliseconds under a second. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(Math.abs(ms)));
  if (total < 1000) return `${total}ms`;
  const i = UNITS.findIndex(([, size]) => total >= size);
  const [unit, size] = UNITS[i]!;
  const head = `${Math.floor(total / size)}${unit}`;
  const next = UNITS[i + 1];
  if (!next) return head;
  const rest = Math.floor((total % size) / next[1]);
  return rest > 0 ? `${head} ${rest}${next[0]}` : head;
}

/** A certificate name as one line ("CN=web, O=example"); "(empty)" when there is none. */
export function oneLineName(name: string): string {
  const flat = name.replace(/\n/g, ', ').trim();
  return flat.length === 0 ? '(empty)' : flat;
}

/** The subject or issuer of a certificate as one line; never throws. */
export function nameOf(
  cert: { readonly subject: string; readonly issuer: string },
  which: 'subject' | 'issuer',
): string {
  try {
    return oneLineName(cert[which]);
  } catch {
    return '(unreadable name)';
  }
}

/** A value from a certificate quoted for a message: JSON-escaped and cut to `max` characters. */
export function quote(value: string, max = 120): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}...` : value);
}

const LABEL = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

/** The report as text: one line per check, a `fix:` line under each warning or failure, then the verdict. */
export function formatDoctorReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length), 8);
  const lines: string[] = [];
  const head = report.spiffeId ? ` (${report.spiffeId})` : '';
  lines.push(`svidkit doctor: ${report.dir}${head}`);
  lines.push(`clock of this machine: ${report.clock}`);
  if (report.peer) lines.push(`peer: ${report.peer.address}`);
  lines.push('');
  for (const c of report.checks) {
    lines.push(`${LABEL[c.status]}  ${c.name.padEnd(width)}  ${c.message}`);
    if (c.fix !== undefined && c.status !== 'pass') lines.push(`${' '.repeat(width + 8)}fix: ${c.fix}`);
  }
  lines.push('');
  lines.push(report.verdict);
  return lines.join('\n') + '\n';
}
