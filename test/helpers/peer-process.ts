/**
 * The SPIFFE client programs of the interop suites (test/interop/gospiffe, test/interop/pyspiffe), run
 * as child processes that print one JSON object per line: to their end (runClient), or left running
 * while the test waits for the line it needs (LiveClient, e.g. go-spiffe's `serve`). Nothing here
 * sleeps: a wait ends on a line, on the process's exit, or on the bound.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** One JSON object per line, as both client programs print them. */
export type Line = Record<string, unknown>;

/** Bound on a client's run: its own -timeout is shorter, this only catches a hang. */
export const CLIENT_LIMIT_MS = 90_000;
const MAX_OUTPUT = 4 * 1024 * 1024;

function parseLine(l: string): Line {
  try {
    return JSON.parse(l) as Line;
  } catch {
    return { unparsed: l };
  }
}

/** Runs a client to its end; resolves with its exit status and the JSON lines it printed. */
export function runClient(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number; lines: Line[]; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: CLIENT_LIMIT_MS, maxBuffer: MAX_OUTPUT }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      const lines = String(stdout)
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map(parseLine);
      resolve({ status, lines, output: `${String(stdout)}${String(stderr)}` });
    });
  });
}

/** A long-running client: its lines as they come, and a way to wait for one. */
export class LiveClient {
  readonly lines: Line[] = [];
  private readonly waiters = new Set<() => void>();
  private stderr = '';
  private exit: number | null | undefined;
  private readonly child: ChildProcess;

  constructor(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      this.lines.push(parseLine(l));
      this.wake();
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < MAX_OUTPUT) this.stderr += d.toString();
    });
    this.child.once('exit', (code) => {
      this.exit = code;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with the first line `match` accepts; rejects if the process exits first. */
  waitFor(what: string, match: (l: Line) => boolean, limitMs = CLIENT_LIMIT_MS): Promise<Line> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}: ${this.describe()}`)), limitMs);
      const finish = (err?: Error, line?: Line) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve(line!);
      };
      const check = () => {
        const hit = this.lines.find(match);
        if (hit) finish(undefined, hit);
        else if (this.exit !== undefined) finish(new Error(`exited (${this.exit}) before ${what}: ${this.describe()}`));
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves with the exit code once the process has ended by itself. */
  exited(): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.exit !== undefined) resolve(this.exit);
      else this.child.once('exit', (code) => resolve(code));
    });
  }

  /** Everything it printed, for assertion messages. */
  describe(): string {
    return `${JSON.stringify(this.lines)}\n${this.stderr}`;
  }

  /** Ends the process (SIGTERM) unless it already ended; resolves once it has. */
  async stop(): Promise<void> {
    if (this.exit !== undefined || this.child.exitCode !== null) return;
    const gone = this.exited();
    this.child.kill('SIGTERM');
    await gone;
  }
}
