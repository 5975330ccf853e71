/**
 * The mesh's daemons as child processes: the real svidkit-ca and svidkit-agent binaries, their JSON
 * log lines handed to a listener one record at a time, stopped with SIGTERM (their drain) and, only
 * if they do not exit in time, SIGKILL. Only processes started here are ever signalled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One log line of a daemon: the parsed pino record, or the raw text when it is not JSON. */
export type LogLine =
  { readonly record: Record<string, unknown> } | { readonly text: string; readonly stderr: boolean };

/** A daemon started by the mesh. */
export class Daemon {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  readonly #waiting = new Map<string, (record: Record<string, unknown>) => void>();

  /** Starts `node <script> ...args`; every output line goes to `onLine`. */
  constructor(name: string, script: string, args: readonly string[], onLine: (line: LogLine) => void) {
    this.name = name;
    this.#child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal === null ? null : -1);
        resolve(this.#exitCode);
      });
      this.#child.once('error', () => {
        this.#exitCode = -1;
        resolve(-1);
      });
    });
    const read = (stream: NodeJS.ReadableStream, stderr: boolean) => {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (line.trim() === '') return;
        let record: unknown;
        try {
          record = JSON.parse(line);
        } catch {
          record = undefined;
        }
        if (typeof record === 'object' && record !== null && !Array.isArray(record)) {
          const r = record as Record<string, unknown>;
          this.#waiting.get(String(r['msg']))?.(r);
          onLine({ record: r });
        } else {
          onLine({ text: line, stderr });
        }
      });
    };
    read(this.#child.stdout!, false);
    read(this.#child.stderr!, true);
  }

  /**
   * The first log record whose message is `msg` (a daemon's "ready" line, with its ports). Rejects when
   * the process exits first or after `timeoutMs`; `tick` is called every second while waiting.
   */
  record(msg: string, timeoutMs: number, tick?: (elapsedMs: number) => void): Promise<Record<string, unknown>> {
    const start = Date.now();
    return new Promise((resolve, reject) => {
      const ticker = setInterval(() => tick?.(Date.now() - start), 1000);
      const timer = setTimeout(
        () => done(new Error(`${this.name}: no "${msg}" after ${timeoutMs / 1000}s`)),
        timeoutMs,
      );
      const done = (result: Record<string, unknown> | Error) => {
        clearInterval(ticker);
        clearTimeout(timer);
        this.#waiting.delete(msg);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      this.#waiting.set(msg, done);
      void this.#exited.then((code) => done(new Error(`${this.name} exited (code ${String(code)})`)));
    });
  }

  /** The exit code once the process has ended, undefined while it runs. */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }

  /** Resolves when the process ends. */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.#exitCode !== undefined) return this.#exitCode;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process at once (used when the supervisor itself is exiting). */
  killNow(): void {
    if (this.#exitCode === undefined) this.#child.kill('SIGKILL');
  }
}

/** Resolves once `check` returns true, polling every `everyMs`; calls `tick` each second while waiting. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  options: {
    timeoutMs: number;
    everyMs?: number;
    tick?: (elapsedMs: number) => void;
    abort?: () => string | undefined;
  },
): Promise<void> {
  const start = Date.now();
  let lastTick = start;
  for (;;) {
    const stop = options.abort?.();
    if (stop !== undefined) throw new Error(`${what}: ${stop}`);
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    const now = Date.now();
    if (now - start > options.timeoutMs) throw new Error(`${what}: not done after ${options.timeoutMs / 1000}s`);
    if (now - lastTick >= 1000) {
      lastTick = now;
      options.tick?.(now - start);
    }
    await new Promise((r) => setTimeout(r, options.everyMs ?? 100));
  }
}

/** True when an HTTP GET of `url` answers 200 (a daemon's /readyz). */
export async function ready(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}
