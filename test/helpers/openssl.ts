/** Runs the openssl binary as an independent peer; outside CI a missing binary skips with a reason. */
import { execFileSync, spawnSync } from 'node:child_process';

/** The `openssl version` line, or undefined when openssl is not installed. */
export function opensslVersion(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Skips the current test when openssl is missing, except in CI where a missing peer is a failure. */
export function requireOpenssl(ctx: Mocha.Context): string {
  const v = opensslVersion();
  if (v) return v;
  if (process.env.CI === 'true') throw new Error('openssl is required in CI but is not installed');
  ctx.skip();
  return '';
}

/** Runs openssl with arguments; returns stdout+stderr and the exit status. */
export function openssl(args: string[]): { status: number; output: string } {
  try {
    const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, output: out };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { status: e.status ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
