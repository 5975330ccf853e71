/**
 * Turns the daemons' JSON log records into the mesh's readable lines: issuance and rotation as they
 * happen, warnings and errors always, routine chatter not at all. Key material and tokens never reach
 * these records (the daemons redact them), and nothing here prints a field it does not name.
 */
import type { LogLine } from './processes.js';

/** pino's numeric levels. */
const WARN = 40;

/** The short form of a serial or fingerprint for a line meant for people. */
export function short(hex: unknown): string {
  return typeof hex === 'string' ? (hex.length > 12 ? `${hex.slice(0, 12)}…` : hex) : '?';
}

/** A time as HH:MM:SS (UTC) for a line meant for people. */
export function clock(value: unknown): string {
  const d = typeof value === 'string' || typeof value === 'number' ? new Date(value) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString().slice(11, 19) : '?';
}

const str = (v: unknown): string =>
  typeof v === 'string' ? v : Array.isArray(v) ? v.map(String).join(', ') : v === undefined ? '?' : JSON.stringify(v);

/** The readable line for one daemon log line, or undefined when it is not worth showing. */
export function narrate(line: LogLine): string | undefined {
  if ('text' in line) return line.stderr ? line.text : undefined;
  const r = line.record;
  const msg = str(r['msg']);
  const level = typeof r['level'] === 'number' ? r['level'] : 30;
  switch (r['event']) {
    case 'x509svid_issued':
      return `issued X.509-SVID ${str(r['spiffe_id'])} (serial ${short(r['serial'])}, valid until ${clock(r['not_after'])})`;
    case 'jwtsvid_issued':
      return `issued JWT-SVID ${str(r['spiffe_id'])} for ${str(r['audience'])}`;
    default:
  }
  switch (msg) {
    case 'workload files written':
      return `delivered ${str(r['workload'])} files, version ${str(r['version'])} (serial ${short(r['serial'])}, expires ${clock(r['expires_at'])})`;
    case 'Workload API SVID minted':
      return `minted ${str(r['spiffe_id'])} for the Workload API, in memory only (serial ${short(r['serial'])}, expires ${clock(r['expires_at'])})`;
    case 'agent attested':
      return `attested as ${str(r['agent'])}`;
    case 'trust bundle updated':
      return `trust bundle updated (sequence ${str(r['sequence'])})`;
    case 'reload action fired':
      return `reload action for ${str(r['workload'])}: ${str(r['action'])}`;
    default:
  }
  if (level >= WARN) {
    const reason = r['reason'] ?? (r['err'] as { message?: unknown } | undefined)?.message;
    return `${level >= 50 ? 'ERROR' : 'warning'}: ${msg}${reason === undefined ? '' : ` (${str(reason)})`}`;
  }
  return undefined;
}
