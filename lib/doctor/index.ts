/**
 * Doctor: says exactly why an mTLS connection made with the files of an SVID directory would fail or
 * succeed. Local checks cover the files, the chain and key, the leaf's X509-SVID rules and validity,
 * and the bundle; with a peer, a real handshake through the library shows what the peer presents and
 * whether it accepts us. Every result is a named check (pass, warn or fail) with a one-line message and
 * what to do; the verdict is the first failure.
 *
 * ```ts
 * const report = await diagnose({ dir: '/run/svid', peer: 'billing:8443', expect: 'spiffe://example.org/billing' });
 * if (!report.ok) console.error(report.verdict);
 * ```
 */
import { resolve } from 'node:path';
import { SvidkitError } from '../errors/index.js';
import { FILE_LAYOUTS, type FileLayout } from '../source/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import { type NameOverrides, namesFor } from './files.js';
import { checkLocal } from './local.js';
import { checkPeer } from './peer.js';
import { CheckList, type DoctorReport, type PeerSummary } from './types.js';

export { alertName, alertOf, type Explanation, explainFailure, type FailureStage } from './explain.js';
export type { NameOverrides } from './files.js';
export { formatDoctorReport, formatDuration } from './format.js';
export {
  CHECK_NAMES,
  type CheckName,
  type CheckStatus,
  type DoctorCheck,
  type DoctorReport,
  type PeerSummary,
} from './types.js';

/** Default bound of each connection attempt to the peer (TCP and TLS handshake together). */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Default wait after the handshake for a peer that refuses our certificate to say so. */
export const DEFAULT_SETTLE_MS = 1000;
/** Largest timeout accepted. */
export const MAX_TIMEOUT_MS = 120_000;

/** The verdict line of a report without failures. */
export const OK_VERDICT = 'OK: an mTLS connection with these files would succeed';

/** Options of diagnose. */
export interface DoctorOptions {
  /** The SVID directory. */
  readonly dir: string;
  /** The layout; default: detected from the files present. */
  readonly layout?: FileLayout;
  /** Other names for the certificate, key and bundle files (plain file names inside `dir`). */
  readonly names?: NameOverrides;
  /** host:port of a peer to make a real mTLS handshake with. */
  readonly peer?: string;
  /** The SPIFFE ID the peer must have (needs `peer`). */
  readonly expect?: string;
  /** Bound of each connection attempt in ms; default 5000. */
  readonly timeoutMs?: number;
  /** Wait after the handshake for the peer's verdict on our certificate, in ms; default 1000. */
  readonly settleMs?: number;
  /** This machine's clock for the local checks; default `new Date()`. TLS itself always uses the system clock. */
  readonly clock?: () => Date;
}

function optionError(message: string): SvidkitError {
  return new SvidkitError('ERR_DOCTOR_OPTIONS', `doctor: ${message}`);
}

/** Parses "host:port" or "[v6 address]:port"; ERR_DOCTOR_OPTIONS for anything else. */
export function parsePeerAddress(value: string): { host: string; port: number } {
  if (typeof value !== 'string' || value.length === 0 || value.length > 300) {
    throw optionError('the peer must be given as host:port');
  }
  const shown = JSON.stringify(value.slice(0, 80));
  const m = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(value);
  if (!m) {
    const hint = (value.match(/:/g) ?? []).length > 1 ? ' (write an IPv6 address in brackets: [::1]:8443)' : '';
    throw optionError(`${shown} is not host:port${hint}`);
  }
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw optionError(`${shown} has a port outside 1-65535`);
  if (host.length > 253) throw optionError(`${shown} has a host name longer than 253 characters`);
  return { host, port };
}

/** Parses the expected peer ID; ERR_DOCTOR_OPTIONS when it is not a workload SPIFFE ID. */
export function parseExpectedId(value: string): SpiffeId {
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(value);
  } catch (err) {
    const why = err instanceof SvidkitError ? err.plainMessage : 'invalid';
    throw optionError(`the expected peer ID ${JSON.stringify(String(value).slice(0, 80))} is not a SPIFFE ID: ${why}`);
  }
  if (id.isTrustDomainId()) {
    throw optionError(`the expected peer ID ${id.toString()} names a trust domain; give the peer's full SPIFFE ID`);
  }
  return id;
}

function checkMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_MS) {
    throw optionError(`${name} must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
  }
  return value;
}

interface Settings {
  readonly dir: string;
  readonly layout: FileLayout | undefined;
  readonly names: NameOverrides;
  readonly peer: { host: string; port: number; address: string } | undefined;
  readonly expect: SpiffeId | undefined;
  readonly timeoutMs: number;
  readonly settleMs: number;
  readonly clock: () => Date;
}

function checkOptions(options: DoctorOptions): Settings {
  if (typeof options !== 'object' || options === null) throw optionError('options must be an object');
  const { dir } = options;
  if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) {
    throw optionError('the SVID directory must be a non-empty path');
  }
  if (options.layout !== undefined && !FILE_LAYOUTS.includes(options.layout)) {
    throw optionError(`the layout must be one of ${FILE_LAYOUTS.join(', ')}`);
  }
  const names = options.names ?? {};
  try {
    namesFor(options.layout ?? 'spiffe-helper', names, 'file names');
  } catch (err) {
    throw optionError(err instanceof Error ? err.message : 'file names: invalid');
  }
  const peer = options.peer === undefined ? undefined : { ...parsePeerAddress(options.peer), address: options.peer };
  const expect = options.expect === undefined ? undefined : parseExpectedId(options.expect);
  if (expect && !peer) throw optionError('an expected peer ID needs a peer (host:port) to connect to');
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw optionError('clock must be a function');
  }
  const clock = options.clock ?? (() => new Date());
  return {
    dir,
    layout: options.layout,
    names,
    peer,
    expect,
    timeoutMs: checkMs('the timeout', options.timeoutMs, DEFAULT_TIMEOUT_MS),
    settleMs: checkMs('the settle time', options.settleMs, DEFAULT_SETTLE_MS),
    clock: () => {
      const d = clock();
      if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw optionError('clock() must return a valid Date');
      return d;
    },
  };
}

/**
 * Runs every check on an SVID directory (and, with `peer`, a real mTLS handshake) and returns the
 * report. Throws only for bad options (ERR_DOCTOR_OPTIONS); every problem with the files or the peer
 * is a failed check in the report.
 */
export async function diagnose(options: DoctorOptions): Promise<DoctorReport> {
  const s = checkOptions(options);
  const now = s.clock();
  const checks = new CheckList();
  const local = await checkLocal({ dir: s.dir, layout: s.layout, names: s.names, clock: s.clock }, checks);
  let peer: PeerSummary | undefined;
  if (s.peer) {
    peer = await checkPeer(
      {
        host: s.peer.host,
        port: s.peer.port,
        address: s.peer.address,
        svid: local.svid,
        clientCertificate: local.clientCertificate,
        bundles: local.bundles,
        expect: s.expect,
        ourId: local.spiffeId,
        timeoutMs: s.timeoutMs,
        settleMs: s.settleMs,
      },
      checks,
    );
  }
  const list = checks.list();
  const firstFailure = list.find((c) => c.status === 'fail');
  return {
    ok: firstFailure === undefined,
    verdict: firstFailure ? `FAIL: ${firstFailure.message}` : OK_VERDICT,
    dir: local.svidDir?.dir ?? resolve(s.dir),
    layout: local.svidDir?.layout,
    spiffeId: local.spiffeId?.toString(),
    clock: now.toISOString(),
    peer,
    checks: list,
  };
}
