/**
 * A real CaContext for tests: an in-memory SQLite store, a CaKeyManager with its key files in a
 * temporary directory, the configuration parser, a logger whose lines are captured, and the CA's
 * metrics. Time is a manual clock; the key manager is wired as the daemon wires it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCaConfig } from '../../lib/ca/config.js';
import { CaContext, createCaMetrics } from '../../lib/ca/context.js';
import { CaKeyManager, type UpstreamCa } from '../../lib/ca/keys.js';
import { createLogger } from '../../lib/observe/index.js';
import { SqliteStore } from '../../lib/store/index.js';

/** A clock the test moves by hand. */
export interface ManualClock {
  (): Date;
  set(d: Date): void;
  advance(ms: number): void;
}

/** Creates a manual clock starting at `start`. */
export function manualClock(start: Date): ManualClock {
  let now = start.getTime();
  const clock = (() => new Date(now)) as ManualClock;
  clock.set = (d: Date) => {
    now = d.getTime();
  };
  clock.advance = (ms: number) => {
    now += ms;
  };
  return clock;
}

/** Every line a logger wrote, as text and parsed. */
export interface LogCapture {
  write(s: string): void;
  /** What was written since the last clear(). */
  readonly text: string;
  /** Everything ever written, clear() or not. */
  readonly all: string;
  /** The lines of `text`, parsed. */
  lines(): Record<string, unknown>[];
  clear(): void;
}

/** A pino destination that keeps what is written (pino writes to it synchronously). */
export function captureLog(): LogCapture {
  let text = '';
  let all = '';
  return {
    write(s: string) {
      text += s;
      all += s;
    },
    get text() {
      return text;
    },
    get all() {
      return all;
    },
    lines() {
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    clear() {
      text = '';
    },
  };
}

/** A test CA context and what it was built from. */
export interface TestCaContext {
  readonly ctx: CaContext;
  readonly store: SqliteStore;
  readonly keys: CaKeyManager;
  readonly clock: ManualClock;
  readonly logs: LogCapture;
  /** The temporary directory holding keyDir; removed by close(). */
  readonly dir: string;
  /** Closes the store and removes the temporary directory. */
  close(): Promise<void>;
}

/**
 * Builds a CaContext from a config document (trust_domain example.org unless given), optionally in
 * upstream mode (the daemon reads the same material from the configured files). The clock
 * starts at `start`, by default the current second, so that certificates it signs are also valid
 * for TLS handshakes, which OpenSSL checks against the real time.
 */
export async function createTestCaContext(
  options: { config?: Record<string, unknown>; start?: Date; upstream?: UpstreamCa } = {},
): Promise<TestCaContext> {
  const dir = mkdtempSync(join(tmpdir(), 'svidkit-ca-'));
  const clock = manualClock(options.start ?? new Date(Math.floor(Date.now() / 1000) * 1000));
  const logs = captureLog();
  let store: SqliteStore | undefined;
  try {
    const config = parseCaConfig({ trust_domain: 'example.org', ...options.config }, dir);
    const log = createLogger({ name: 'svidkit-ca', destination: logs });
    store = await SqliteStore.open(':memory:', { clock });
    const keys = await CaKeyManager.open({
      trustDomain: config.trustDomain,
      store,
      keyDir: join(dir, 'keys'),
      clock,
      caTtlMs: config.ca.ttlMs,
      keyType: config.ca.keyType,
      jwtKeyType: config.ca.jwtKeyType,
      maxJwtSvidTtlMs: config.defaultJwtSvidTtlMs,
      logger: log,
      upstream: options.upstream,
    });
    const ctx = new CaContext({ config, store, keys, log, metrics: createCaMetrics(), clock });
    const opened = store;
    return {
      ctx,
      store: opened,
      keys,
      clock,
      logs,
      dir,
      async close() {
        await opened.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
