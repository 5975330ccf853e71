/** The shapes doctor reports: named checks with a status, a one-line message and, when needed, what to do. */
import type { FileLayout } from '../source/index.js';

/** Outcome of one check: `fail` blocks the connection, `warn` does not. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

/** Every check doctor can report, in the order it reports them. */
export const CHECK_NAMES = [
  'directory',
  'cert-file',
  'key-file',
  'key-mode',
  'bundle-file',
  'cert-parse',
  'key-parse',
  'key-match',
  'validity',
  'spiffe-id',
  'leaf-not-ca',
  'key-usage',
  'bundle-parse',
  'bundle-trust-domain',
  'chain-verifies',
  'library-source',
  'peer-connect',
  'peer-tls',
  'peer-trusted',
  'peer-accepts',
  'peer-id',
] as const;

/** The name of one check; stable across releases, for scripts. */
export type CheckName = (typeof CHECK_NAMES)[number];

/** One check's result. Messages never hold key material or file contents. */
export interface DoctorCheck {
  readonly name: CheckName;
  readonly status: CheckStatus;
  /** One line in plain words. */
  readonly message: string;
  /** What to do about a `fail` or `warn`. */
  readonly fix?: string;
}

/** What doctor learnt about the peer of `--peer`. */
export interface PeerSummary {
  /** host:port as given. */
  readonly address: string;
  /** The SPIFFE ID the peer presented, verified or not (see `verified`). */
  readonly spiffeId?: string;
  /** True when the peer's chain verified against our bundle of its trust domain. */
  readonly verified: boolean;
  /** The negotiated TLS version, when a handshake completed. */
  readonly tlsVersion?: string;
  /** True when the peer kept the connection after judging our certificate; undefined when unknown. */
  readonly acceptedUs?: boolean;
}

/** The whole diagnosis. */
export interface DoctorReport {
  /** True when no check failed: a connection with these files would succeed. */
  readonly ok: boolean;
  /** "OK: ..." or "FAIL: <first blocking reason>". */
  readonly verdict: string;
  /** The SVID directory, absolute. */
  readonly dir: string;
  /** The layout the files were read in, once known. */
  readonly layout?: FileLayout;
  /** The SPIFFE ID of our leaf, once known. */
  readonly spiffeId?: string;
  /** This machine's clock when the checks ran (ISO 8601). */
  readonly clock: string;
  readonly peer?: PeerSummary;
  readonly checks: readonly DoctorCheck[];
}

/** Collects checks in order. */
export class CheckList {
  readonly #checks: DoctorCheck[] = [];

  /** Records a passed check. */
  pass(name: CheckName, message: string): void {
    this.#checks.push({ name, status: 'pass', message });
  }

  /** Records a warning: worth fixing, but the connection would still work. */
  warn(name: CheckName, message: string, fix: string): void {
    this.#checks.push({ name, status: 'warn', message, fix });
  }

  /** Records a blocking failure. */
  fail(name: CheckName, message: string, fix: string): void {
    this.#checks.push({ name, status: 'fail', message, fix });
  }

  /** True when `name` was recorded as a failure. */
  failed(name: CheckName): boolean {
    return this.#checks.some((c) => c.name === name && c.status === 'fail');
  }

  /** True when any check failed. */
  get anyFailed(): boolean {
    return this.#checks.some((c) => c.status === 'fail');
  }

  /** The checks so far. */
  list(): DoctorCheck[] {
    return [...this.#checks];
  }
}
