/**
 * Binding the Workload API socket (lib/agent/workloadapi/listen.ts) on real files: the directory is
 * created 0755 and the socket 0666; a previous run's socket is replaced; a symlink, another file, a
 * live socket, another uid's socket and a directory others can write are refused and left as they are.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, lchownSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { join } from 'node:path';
import { listenWorkloadApi } from '../lib/agent/workloadapi/listen.js';
import { rejectsCode } from './helpers/assert.js';
import { tempDir } from './helpers/agent-fs.js';

/** Leaves a socket file at `path` with nobody serving it, as a killed agent would. */
function staleSocket(path: string): void {
  const code = `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`;
  const r = spawnSync(process.execPath, ['-e', code], { stdio: 'inherit' });
  assert.equal(r.status, 0);
  assert.ok(lstatSync(path).isSocket());
}

function connects(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ path }, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

describe('agent: the Workload API socket', function () {
  let dir: string;
  const servers: Server[] = [];
  beforeEach(async function () {
    dir = await tempDir('svidkit-wlsock-');
  });
  afterEach(async function () {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });
  const listen = async (path: string) => {
    const s = await listenWorkloadApi(path);
    // Nobody attests here: each connection is dropped so that close() does not wait for it.
    s.on('connection', (c) => c.destroy());
    servers.push(s);
    return s;
  };

  it('creates its directory 0755 and a socket every local user can connect to', async function () {
    const path = join(dir, 'agent', 'public', 'api.sock');
    const server = await listen(path);
    assert.equal(lstatSync(join(dir, 'agent', 'public')).mode & 0o7777, 0o755);
    assert.equal(lstatSync(path).mode & 0o777, 0o666);
    const accepted = new Promise<boolean>((resolve) =>
      server.prependOnceListener('connection', (s) => {
        // Paused until attested: grpc-js must not read a byte before that.
        resolve(s.isPaused());
      }),
    );
    await connects(path);
    assert.equal(await accepted, true);
  });

  it('replaces a previous run’s socket that nobody serves', async function () {
    const path = join(dir, 'api.sock');
    staleSocket(path);
    await listen(path);
    await connects(path);
  });

  it('refuses a socket another process is serving, and leaves it serving', async function () {
    const path = join(dir, 'api.sock');
    await listen(path);
    await rejectsCode(listenWorkloadApi(path), 'ERR_AGENT_WORKLOAD_API_SOCKET', { message: /another process/ });
    await connects(path);
  });

  it('refuses a symlink and a regular file at the path, and touches neither', async function () {
    const target = join(dir, 'target');
    writeFileSync(target, 'keep');
    const link = join(dir, 'link.sock');
    symlinkSync(target, link);
    await rejectsCode(listenWorkloadApi(link), 'ERR_AGENT_WORKLOAD_API_SOCKET', { message: /symlink/ });
    assert.ok(lstatSync(link).isSymbolicLink());
    await rejectsCode(listenWorkloadApi(target), 'ERR_AGENT_WORKLOAD_API_SOCKET', { message: /not a socket/ });
    assert.equal(readFileSync(target, 'utf8'), 'keep');
  });

  it('refuses a directory other users can write (they could swap the socket)', async function () {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await rejectsCode(listenWorkloadApi(join(open, 'api.sock')), 'ERR_AGENT_UNSAFE_DIR');
  });

  it('refuses a stale socket of another uid (as root)', async function () {
    if (process.geteuid?.() !== 0) this.skip(); // only root can give a file to another uid
    const path = join(dir, 'api.sock');
    staleSocket(path);
    lchownSync(path, 65534, 65534);
    await rejectsCode(listenWorkloadApi(path), 'ERR_AGENT_WORKLOAD_API_SOCKET', { message: /uid 65534/ });
    assert.ok(lstatSync(path).isSocket());
  });
});
