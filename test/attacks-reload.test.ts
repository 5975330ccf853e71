/**
 * Attacks on the agent's reload actions, with real processes and files: a workload that writes its
 * own pid file must not be able to aim the root agent's signal at another process, block the agent
 * with a FIFO, or keep it waiting with a command; a reload command sees nothing of the agent's
 * environment. The last cases run the real agent against a real CA on loopback.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseAgentConfig } from '../lib/agent/config.js';
import { type RunningAgent, runAgent } from '../lib/agent/daemon.js';
import { EXEC_PATH } from '../lib/agent/reload-exec.js';
import { runReload } from '../lib/agent/reload.js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import { createLogger } from '../lib/observe/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { tempDir } from './helpers/agent-fs.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean, limitMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A process that prints the name of each signal it gets; started as `uid` through setpriv when given. */
interface Reporter {
  readonly pid: number;
  readonly child: ChildProcess;
  seen(word: string): Promise<void>;
  output(): string;
}

const REPORTER = `for (const s of ['SIGHUP', 'SIGUSR2']) process.on(s, () => console.log(s));
console.log('up'); setInterval(() => {}, 1000);`;

async function reporter(started: ChildProcess[], uid?: number): Promise<Reporter> {
  const argv =
    uid === undefined
      ? [process.execPath, '-e', REPORTER]
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e', REPORTER];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const seen = (word: string) =>
    new Promise<void>((resolve) => {
      const check = () => (out.includes(word) ? resolve() : waiters.push(check));
      check();
    });
  await seen('up');
  return { pid: child.pid!, child, seen, output: () => out };
}

/**
 * Proves that `r` got no SIGHUP: sends it SIGUSR2 and waits for that. A SIGHUP sent before would have
 * been delivered, and printed, first.
 */
async function assertNoHup(r: Reporter): Promise<void> {
  process.kill(r.pid, 'SIGUSR2');
  await r.seen('SIGUSR2');
  assert.ok(!r.output().includes('SIGHUP'), `the process got a SIGHUP: ${r.output()}`);
}

describe('attacks: a workload cannot aim the reload signal', function () {
  this.timeout(60_000);
  let dir: string;
  const started: ChildProcess[] = [];
  before(async () => {
    dir = await tempDir('svidkit-reload-attack-');
    chmodSync(dir, 0o755);
  });
  after(async () => {
    for (const c of started) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  /** A directory owned by the workload's uid, as its runtime directory is. */
  function workloadDir(name: string): string {
    const d = join(dir, name);
    mkdirSync(d, { mode: 0o755 });
    chownSync(d, NOBODY, NOBODY);
    return d;
  }

  /** The workload writes its pid file itself, as uid 65534. */
  function writeAsWorkload(path: string, content: string): void {
    execFileSync('setpriv', [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      'sh',
      '-c',
      'umask 022; printf "%s\\n" "$1" > "$2"',
      'sh',
      content,
      path,
    ]);
  }

  it('refuses a pid file that is a symlink to another pid file, and signals nothing', async () => {
    const victim = await reporter(started);
    writeFileSync(join(dir, 'real.pid'), `${victim.pid}\n`);
    symlinkSync(join(dir, 'real.pid'), join(dir, 'link.pid'));
    await assert.rejects(runReload({ signal: { pidFile: join(dir, 'link.pid'), signal: 'SIGHUP' } }), {
      code: 'ERR_AGENT_RELOAD',
      reason: 'pid_file',
      message: /link\.pid is a symbolic link/,
    });
    await assertNoHup(victim);
  });

  it('refuses a pid file naming a root process for a workload with uid 65534; the victim gets nothing', async function () {
    if (!isRoot) this.skip(); // needs root: the victim runs as root and the pid file is written as uid 65534
    const victim = await reporter(started);
    const run = workloadDir('victim-run');
    writeAsWorkload(join(run, 'app.pid'), String(victim.pid));
    await assert.rejects(runReload({ signal: { pidFile: join(run, 'app.pid'), signal: 'SIGHUP' } }, { uid: NOBODY }), {
      code: 'ERR_AGENT_RELOAD',
      reason: 'process',
      message: new RegExp(`pid ${victim.pid} .* runs as uid 0, not uid ${NOBODY}`),
    });
    await assertNoHup(victim);
    assert.equal(victim.child.exitCode, null);
  });

  it("signals the workload's own process (uid 65534) named by the pid file it wrote", async function () {
    if (!isRoot) this.skip(); // needs root: starts a process as uid 65534
    const own = await reporter(started, NOBODY);
    const run = workloadDir('own-run');
    writeAsWorkload(join(run, 'app.pid'), String(own.pid));
    assert.equal(
      await runReload({ signal: { pidFile: join(run, 'app.pid'), signal: 'SIGHUP' } }, { uid: NOBODY }),
      `sent SIGHUP to pid ${own.pid}`,
    );
    await own.seen('SIGHUP');
  });

  it('refuses a pid file the workload owns when no uid holds the process to it', async function () {
    if (!isRoot) this.skip(); // needs root: the pid file is written as uid 65534
    const victim = await reporter(started);
    const run = workloadDir('no-uid-run');
    writeAsWorkload(join(run, 'app.pid'), String(victim.pid));
    // The directory is the workload's, so it could swap any file in: refused before the file is read.
    await assert.rejects(runReload({ signal: { pidFile: join(run, 'app.pid'), signal: 'SIGHUP' } }), {
      code: 'ERR_AGENT_RELOAD',
      reason: 'pid_dir',
      message: /no-uid-run is owned by uid 65534/,
    });
    await assertNoHup(victim);
  });

  const loose: Array<[string, () => string, RegExp]> = [
    [
      'a group-writable pid file',
      () => {
        const p = join(dir, 'loose.pid');
        writeFileSync(p, '');
        chmodSync(p, 0o664);
        return p;
      },
      /loose\.pid is writable by group or others \(mode 0664\)/,
    ],
    [
      'a pid file in a directory anyone can write',
      () => {
        const d = join(dir, 'open-dir');
        mkdirSync(d);
        chmodSync(d, 0o777);
        return join(d, 'app.pid');
      },
      /open-dir is writable by group or others \(mode 0777\)/,
    ],
  ];
  for (const [name, make, message] of loose) {
    it(`refuses ${name} when no uid holds the process to it`, async () => {
      const victim = await reporter(started);
      const pidFile = make();
      writeFileSync(pidFile, `${victim.pid}\n`);
      await assert.rejects(runReload({ signal: { pidFile, signal: 'SIGHUP' } }), {
        code: 'ERR_AGENT_RELOAD',
        message,
      });
      await assertNoHup(victim);
    });
  }

  it('refuses the id of a thread (kill would reach its whole process)', async () => {
    const victim = await reporter(started);
    const tid = readdirSync(`/proc/${victim.pid}/task`).find((t) => t !== String(victim.pid));
    assert.ok(tid, 'node runs more than one thread');
    writeFileSync(join(dir, 'thread.pid'), `${tid}\n`);
    await assert.rejects(runReload({ signal: { pidFile: join(dir, 'thread.pid'), signal: 'SIGHUP' } }), {
      code: 'ERR_AGENT_RELOAD',
      reason: 'process',
    });
    await assertNoHup(victim);
  });

  it('refuses a pid file naming the agent itself', async () => {
    let got = 0;
    const count = () => got++;
    process.on('SIGUSR2', count); // keeps the test process alive if the signal were sent
    try {
      writeFileSync(join(dir, 'self.pid'), `${process.pid}\n`);
      await assert.rejects(runReload({ signal: { pidFile: join(dir, 'self.pid'), signal: 'SIGUSR2' } }), {
        code: 'ERR_AGENT_RELOAD',
        reason: 'pid_file',
        message: /names the agent itself/,
      });
    } finally {
      process.off('SIGUSR2', count);
    }
    assert.equal(got, 0);
  });

  it('refuses a FIFO as the pid file at once instead of blocking on it', async () => {
    const fifo = join(dir, 'app.fifo');
    execFileSync('mkfifo', [fifo]);
    try {
      await assert.rejects(runReload({ signal: { pidFile: fifo, signal: 'SIGHUP' } }), {
        code: 'ERR_AGENT_RELOAD',
        reason: 'pid_file',
        message: /app\.fifo is not a regular file/,
      });
    } finally {
      // Should an open still wait on the FIFO, a reader-writer open releases it.
      closeSync(openSync(fifo, 'r+'));
    }
  });
});

describe('attacks: a reload command cannot hold the agent or read its environment', function () {
  this.timeout(60_000);
  let dir: string;
  const groups: number[] = [];
  before(async () => {
    dir = await tempDir('svidkit-reload-exec-');
  });
  after(async () => {
    for (const g of groups) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  const holders: Array<[string, string]> = [
    ['backgrounds a child that holds its output pipes', 'echo $$ > "$1"; sleep 1000 & echo started'],
    ['ignores SIGTERM', 'echo $$ > "$1"; trap "" TERM; echo started; sleep 1000'],
  ];
  for (const [name, script] of holders) {
    it(`ends a command that ${name} at the timeout, as a failure, with its whole process group`, async () => {
      const pgidFile = join(dir, `${name.split(' ')[0]}.pgid`);
      const res = runReload({ exec: { command: ['sh', '-c', script, 'sh', pgidFile], timeoutMs: 1000 } });
      await assert.rejects(res, {
        code: 'ERR_AGENT_RELOAD',
        reason: 'timeout',
        message: /sh timed out after 1000 ms; its process group was killed: started/,
      });
      const pgid = Number(readFileSync(pgidFile, 'utf8'));
      groups.push(pgid);
      assert.ok(pgid > 1);
      // Killed members are reaped by init, which may take a moment: wait for the group to vanish.
      await until(`process group ${pgid} to be gone`, () => !groupAlive(pgid));
      assert.throws(() => process.kill(-pgid, 0), { code: 'ESRCH' });
    });
  }

  it("runs a command with PATH and the configured entries only, none of the agent's environment", async () => {
    const saved = process.env['SVIDKIT_AGENT_JOIN_TOKEN'];
    process.env['SVIDKIT_AGENT_JOIN_TOKEN'] = 'not-a-real-token-but-secret';
    try {
      const out = join(dir, 'env.json');
      const cmd = [
        process.execPath,
        '-e',
        `require('fs').writeFileSync(process.argv[1], JSON.stringify(process.env))`,
        out,
      ];
      await runReload({ exec: { command: cmd, timeoutMs: 10_000, env: ['LANG=C.UTF-8'] } });
      const env = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>;
      assert.deepEqual(
        Object.keys(env).filter((k) => k.startsWith('SVIDKIT_')),
        [],
      );
      assert.deepEqual(env, { PATH: EXEC_PATH, LANG: 'C.UTF-8' });
    } finally {
      if (saved === undefined) delete process.env['SVIDKIT_AGENT_JOIN_TOKEN'];
      else process.env['SVIDKIT_AGENT_JOIN_TOKEN'] = saved;
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface LogLine {
  msg: string;
  workload?: string;
  reason?: string;
  action?: string;
}

describe('attacks: one workload’s reload cannot stop the rotation of the others (real agent and CA)', function () {
  this.timeout(180_000);
  let dir: string;
  let ca: RunningCa;
  let caPort: number;
  let agent: RunningAgent | undefined;
  let fifo: string;
  let marker: string;
  const ID = (name: string) => `spiffe://example.org/ns/prod/sa/${name}`;

  before(async () => {
    dir = await tempDir('svidkit-reload-agent-');
    chmodSync(dir, 0o755);
    caPort = await freePort();
    const config = parseCaConfig(
      {
        trust_domain: 'example.org',
        data_dir: join(dir, 'ca'),
        listen: { port: caPort },
        observability: { port: 0 },
        x509_svid_ttl: '30s',
      },
      dir,
    );
    ca = await run(config, { logger: createLogger({ name: 'svidkit-ca', destination: new PassThrough().resume() }) });
    writeFileSync(join(dir, 'bundle.pem'), ca.context.keys.bundle().x509.toPem());
    fifo = join(dir, 'app.fifo');
    marker = join(dir, 'release');
  });
  afterEach(async () => {
    // Releases whatever an agent of the old design still waits on, so the next test starts clean.
    writeFileSync(marker, '');
    if (existsSync(fifo)) closeSync(openSync(fifo, 'r+'));
    await agent?.close();
    agent = undefined;
  });
  after(async () => {
    await ca?.close(500);
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts an agent with its own join token and entries; every log line lands in `lines`. */
  async function startAgent(name: string, workloads: Array<{ id: string; ttl: number; reload?: unknown }>) {
    const token = generateJoinToken();
    await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
    const agentId = agentIdForJoinToken(TrustDomain.parse('example.org'), token);
    for (const w of workloads) {
      await ca.context.store.createEntry({
        spiffeId: w.id,
        parentId: agentId.toString(),
        x509SvidTtlSeconds: w.ttl,
        jwtSvidTtlSeconds: 60,
        dnsNames: [],
      });
    }
    const lines: LogLine[] = [];
    const sink = new PassThrough();
    let rest = '';
    sink.on('data', (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      for (const p of parts) if (p) lines.push(JSON.parse(p) as LogLine);
    });
    const config = parseAgentConfig(
      {
        trust_domain: 'example.org',
        data_dir: join(dir, name, 'agent'),
        ca: { address: `127.0.0.1:${caPort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation: { join_token: token },
        observability: { port: 0 },
        backoff: { min: '100ms', max: '1s' },
        workloads: workloads.map((w, i) => ({
          spiffe_id: w.id,
          output_dir: join(dir, name, `out${i}`),
          ...(w.reload ? { reload: w.reload } : {}),
        })),
      },
      dir,
    );
    agent = await runAgent(config, { logger: createLogger({ name: 'svidkit-agent', destination: sink }) });
    return { agent, lines };
  }

  const rotations = (a: RunningAgent, id: string) => a.agent.status().find((s) => s.spiffeId === id)?.rotations ?? 0;

  it('a FIFO as one workload’s pid file fails that reload at once, and the other workload keeps rotating', async () => {
    execFileSync('mkfifo', [fifo]);
    const { agent: a, lines } = await startAgent('fifo', [
      { id: ID('fifo-web'), ttl: 600, reload: { signal: { pid_file: fifo, signal: 'SIGHUP' } } },
      { id: ID('fifo-api'), ttl: 4 },
    ]);
    await until('three rotations of the other workload', () => rotations(a, ID('fifo-api')) >= 3, 90_000);
    const failed = lines.find((l) => l.msg === 'reload action failed' && l.workload === ID('fifo-web'));
    assert.ok(failed, 'the FIFO reload was reported');
    assert.match(failed.reason!, /^ERR_AGENT_RELOAD: agent: pid file .*app\.fifo is not a regular file$/);
  });

  it('a slow reload of one workload does not delay the rotation of another', async () => {
    rmSync(marker, { force: true });
    const wait = `const fs = require('fs'); const t = setInterval(() => { if (fs.existsSync(process.argv[1])) { clearInterval(t); } }, 20);`;
    const { lines } = await startAgent('slow', [
      {
        id: ID('slow-web'),
        ttl: 600,
        reload: { exec: { command: [process.execPath, '-e', wait, marker], timeout: '2m' } },
      },
      { id: ID('slow-api'), ttl: 4 },
    ]);
    const written = (id: string) => lines.filter((l) => l.msg === 'workload files written' && l.workload === id).length;
    await until('three writes of the other workload', () => written(ID('slow-api')) >= 3, 90_000);
    const reloadDone = (l: LogLine) => l.workload === ID('slow-web') && l.msg.startsWith('reload action');
    assert.ok(!lines.some(reloadDone), 'the slow reload is still running');
    writeFileSync(marker, '');
    await until('the slow reload to finish', () => lines.some(reloadDone));
    // By the log's order: the other workload rotated three times before the slow reload ended.
    const firstDone = lines.findIndex(reloadDone);
    const thirdWrite = lines
      .map((l, i) => (l.msg === 'workload files written' && l.workload === ID('slow-api') ? i : -1))
      .filter((i) => i >= 0)[2]!;
    assert.ok(thirdWrite < firstDone);
    assert.equal(lines[firstDone]!.msg, 'reload action fired');
  });
});
