/**
 * `npm start`: the whole svidkit system on this machine (see lib/mesh). Options:
 *
 *   node dist/examples/local-mesh.js [--dir data] [--ttl 120] [--interval 5] [--duration <seconds>]
 *
 * Ctrl-C (or --duration) stops everything cleanly. While it runs, the operator CLI works against it
 * from the same directory: `node dist/cmd/svidkit.js entry list`, `agent list`, `bundle show`...
 */
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { isSvidkitError } from '../lib/errors/index.js';
import { startLocalMesh } from '../lib/mesh/index.js';

const started = Date.now();
const say = (who: string, line: string) => {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`${t}s  ${`[${who}]`.padEnd(18)} ${line}\n`);
};

function seconds(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) {
    process.stderr.write(`error ERR_USAGE: --${name} must be a positive number of seconds\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        dir: { type: 'string' },
        ttl: { type: 'string' },
        interval: { type: 'string' },
        duration: { type: 'string' },
      },
    }) as { values: Record<string, string | undefined> });
  } catch (err) {
    process.stderr.write(`error ERR_USAGE: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const ttl = seconds(values['ttl'], 'ttl', 120);
  const interval = seconds(values['interval'], 'interval', 5);
  const duration = values['duration'] === undefined ? undefined : seconds(values['duration'], 'duration', 0);

  say(
    'mesh',
    'svidkit local mesh: a CA, an agent and two services (web over HTTPS from files, orders over gRPC from the Workload API)',
  );
  const mesh = await startLocalMesh({
    dir: values['dir'] ?? 'data',
    say,
    svidTtlSeconds: Math.round(ttl),
    callIntervalMs: Math.round(interval * 1000),
  });
  const socket = relative(process.cwd(), mesh.adminSocket);
  const flag = socket === join('data', 'ca', 'admin.sock') ? '' : ` --socket ${socket}`;
  say('mesh', `try in another terminal: node dist/cmd/svidkit.js entry list${flag}`);
  say('mesh', 'and, with SPIFFE_ENDPOINT_SOCKET exported: node dist/cmd/svidkit.js api fetch x509 (or api watch)');

  let stopping: Promise<void> | undefined;
  const stop = (why: string, code: number) => {
    if (stopping) return;
    say('mesh', why);
    stopping = mesh.stop().then(
      () => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`error ERR_INTERNAL: stopping failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('Ctrl-C received', 0));
  process.on('SIGTERM', () => stop('SIGTERM received', 0));
  if (duration !== undefined) setTimeout(() => stop(`--duration ${duration}s reached`, 0), duration * 1000).unref();
  mesh.failed.catch((err: unknown) => stop(`a daemon failed: ${(err as Error).message}`, 1));
}

main().catch((err: unknown) => {
  const code = isSvidkitError(err) ? err.code : 'ERR_INTERNAL';
  process.stderr.write(`error ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
