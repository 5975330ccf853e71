import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig } from '../lib/agent/config.js';
import { pidfdUnavailable } from '../lib/agent/reload-pidfd.js';
import { ReloadRunner } from '../lib/agent/reload-runner.js';
import { isSignalName, runReload } from '../lib/agent/reload.js';

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean, limitMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent reload actions', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-reload-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sends the signal to the pid in the pid file', async () => {
    const child = spawn(
      process.execPath,
      ['-e', "process.on('SIGHUP', () => { console.log('hup'); }); console.log('up'); setInterval(() => {}, 1000);"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    const seen = (word: string) =>
      new Promise<void>((resolve) => {
        const check = () => (out.includes(word) ? resolve() : undefined);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          check();
        });
        check();
      });
    await seen('up');
    const pidFile = join(dir, 'app.pid');
    writeFileSync(pidFile, `${child.pid}\n`);
    assert.equal(await runReload({ signal: { pidFile, signal: 'SIGHUP' } }), `sent SIGHUP to pid ${child.pid}`);
    await seen('hup');
    // Where koffi ships a binary, the signal went through a pidfd: a broken install must not hide behind the fallback.
    if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
      assert.equal(pidfdUnavailable(), undefined);
    }
    child.kill('SIGKILL');
  });

  it('without pidfds (the FFI library does not load) signals through kill(2) after the start-time check', async () => {
    const victim = spawn(
      process.execPath,
      ['-e', "process.on('SIGHUP', () => { console.log('hup'); }); console.log('up'); setInterval(() => {}, 1000);"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      const seen = (word: string) =>
        new Promise<void>((resolve) => {
          const check = () => (out.includes(word) ? resolve() : undefined);
          victim.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            check();
          });
          check();
        });
      await seen('up');
      const pidFile = join(dir, 'fallback.pid');
      writeFileSync(pidFile, `${victim.pid}\n`);
      // A second agent process in which koffi cannot be required, as on a platform without its binary.
      const preload = join(dir, 'no-koffi.cjs');
      writeFileSync(
        preload,
        `const M = require('module'); const resolve = M._resolveFilename;
        M._resolveFilename = function (req, ...rest) {
          if (req === 'koffi') throw new Error('not installed here');
          return resolve.call(this, req, ...rest);
        };`,
      );
      const script = `const r = await import(${JSON.stringify(new URL('../lib/agent/reload.js', import.meta.url).href)});
        const f = await import(${JSON.stringify(new URL('../lib/agent/reload-pidfd.js', import.meta.url).href)});
        console.log(await r.runReload({ signal: { pidFile: process.argv[1], signal: 'SIGHUP' } }));
        console.log(f.pidfdUnavailable());`;
      const agentOut = await new Promise<string>((resolve, reject) => {
        const c = spawn(process.execPath, ['-r', preload, '--input-type=module', '-e', script, pidFile], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let text = '';
        c.stdout.on('data', (d: Buffer) => (text += d.toString()));
        c.once('error', reject);
        c.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`exited ${code}: ${text}`))));
      });
      assert.equal(agentOut, `sent SIGHUP to pid ${victim.pid}\nkoffi did not load (not installed here)\n`);
      await seen('hup');
    } finally {
      victim.kill('SIGKILL');
    }
  });

  const badPidFiles: Array<[string, string]> = [
    ['pid 1', '1'],
    ['pid 0', '0'],
    ['a negative pid', '-42'],
    ['text', 'nginx'],
    ['an oversized file', '9'.repeat(100)],
  ];
  for (const [name, content] of badPidFiles) {
    it(`refuses a pid file holding ${name}`, async () => {
      const pidFile = join(dir, 'bad.pid');
      writeFileSync(pidFile, content);
      await assert.rejects(runReload({ signal: { pidFile, signal: 'SIGHUP' } }), { code: 'ERR_AGENT_RELOAD' });
    });
  }

  it('refuses a missing pid file with its path', async () => {
    await assert.rejects(runReload({ signal: { pidFile: join(dir, 'none.pid'), signal: 'SIGHUP' } }), {
      code: 'ERR_AGENT_RELOAD',
      message: /none\.pid \(ENOENT\)/,
    });
  });

  it('runs a command without a shell', async () => {
    const marker = join(dir, 'ran');
    const cmd = [process.execPath, '-e', `require('fs').appendFileSync(${JSON.stringify(marker)}, 'x')`];
    await runReload({ exec: { command: cmd, timeoutMs: 10_000 } });
    await runReload({ exec: { command: cmd, timeoutMs: 10_000 } });
    assert.equal(readFileSync(marker, 'utf8'), 'xx');
    // Shell syntax is just an argument: nothing is interpreted.
    await runReload({ exec: { command: [process.execPath, '-e', '0', '; touch /tmp/never'], timeoutMs: 10_000 } });
  });

  it('reports a failing, missing or hanging command', async () => {
    await assert.rejects(
      runReload({ exec: { command: [process.execPath, '-e', 'process.exit(3)'], timeoutMs: 10_000 } }),
      {
        code: 'ERR_AGENT_RELOAD',
        message: /exited 3/,
      },
    );
    await assert.rejects(runReload({ exec: { command: [join(dir, 'no-such-binary')], timeoutMs: 10_000 } }), {
      code: 'ERR_AGENT_RELOAD',
      message: /ENOENT/,
    });
    await assert.rejects(
      runReload({ exec: { command: [process.execPath, '-e', 'setTimeout(() => {}, 60000)'], timeoutMs: 300 } }),
      // A timeout is a failure of its own kind, not the exit status of the killed command.
      {
        code: 'ERR_AGENT_RELOAD',
        reason: 'timeout',
        message: /timed out after 300 ms/,
      },
    );
  });

  describe('one runner per workload', () => {
    it('runs one reload at a time and folds requests made meanwhile into exactly one more run', async () => {
      const log = join(dir, 'runs.log');
      const gate = join(dir, 'gate');
      // Each run notes itself, then waits for the gate: the first run is in flight while more are asked for.
      const script = `const fs = require('fs'); fs.appendFileSync(process.argv[1], 'x');
        const t = setInterval(() => { if (fs.existsSync(process.argv[2])) clearInterval(t); }, 20);`;
      const reports: boolean[] = [];
      const runner = new ReloadRunner(
        { exec: { command: [process.execPath, '-e', script, log, gate], timeoutMs: 30_000 } },
        undefined,
        (ok) => reports.push(ok),
      );
      runner.request();
      await until('the first run', () => existsSync(log));
      runner.request();
      runner.request();
      runner.request();
      assert.equal(reports.length, 0);
      writeFileSync(gate, '');
      await until('the runner to be idle', () => !runner.busy);
      assert.deepEqual(reports, [true, true]);
      assert.equal(readFileSync(log, 'utf8'), 'xx');
      await runner.close();
    });

    it('close kills a running command with its process group and reports it stopped', async () => {
      const pgidFile = join(dir, 'close.pgid');
      const reports: Array<[boolean, unknown]> = [];
      const runner = new ReloadRunner(
        { exec: { command: ['sh', '-c', 'echo $$ > "$1"; sleep 1000', 'sh', pgidFile], timeoutMs: 600_000 } },
        undefined,
        (ok, detail) => reports.push([ok, detail]),
      );
      runner.request();
      await until('the command to start', () => existsSync(pgidFile) && readFileSync(pgidFile, 'utf8').endsWith('\n'));
      const pgid = Number(readFileSync(pgidFile, 'utf8'));
      await runner.close();
      assert.equal(reports.length, 1);
      assert.equal(reports[0]![0], false);
      assert.equal((reports[0]![1] as { reason?: string }).reason, 'stopped');
      runner.request(); // ignored once closed
      assert.equal(runner.busy, false);
      await until(`process group ${pgid} to be gone`, () => {
        try {
          process.kill(-pgid, 0);
          return false;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ESRCH';
        }
      });
    });
  });

  describe('configuration', () => {
    const parse = (reload: unknown) =>
      parseAgentConfig(
        {
          ca: { bundle_file: 'bundle.pem' },
          attestation: { join_token: 'Zm9vYmFyLWpvaW4tdG9rZW4tZm9yLXRlc3Rz' },
          workloads: [{ spiffe_id: 'spiffe://example.org/w', output_dir: 'out', reload }],
        },
        dir,
      ).workloads[0]!.reload;

    it('reads reload.signal.uid and reload.exec.env', () => {
      assert.deepEqual(parse({ signal: { pid_file: '/run/app.pid', uid: 0 } }), {
        signal: { pidFile: '/run/app.pid', signal: 'SIGHUP', uid: 0 },
      });
      assert.deepEqual(parse({ exec: { command: ['/bin/true'], env: ['LANG=C.UTF-8', 'EMPTY='] } }), {
        exec: { command: ['/bin/true'], timeoutMs: 30_000, env: ['LANG=C.UTF-8', 'EMPTY='] },
      });
    });

    const bad: Array<[string, unknown, RegExp]> = [
      ['a negative signal uid', { signal: { pid_file: 'p', uid: -1 } }, /reload\.signal\.uid/],
      ['an env entry without =', { exec: { command: ['x'], env: ['LANG'] } }, /reload\.exec\.env\[0\]/],
      ['an env name with a space', { exec: { command: ['x'], env: ['MY VAR=1'] } }, /reload\.exec\.env\[0\]/],
      ['an env name set twice', { exec: { command: ['x'], env: ['A=1', 'A=2'] } }, /env\[1\].*sets A again/],
      [
        'too many env entries',
        { exec: { command: ['x'], env: Array.from({ length: 33 }, (_, i) => `V${i}=1`) } },
        /reload\.exec\.env/,
      ],
    ];
    for (const [name, reload, message] of bad) {
      it(`refuses ${name} with ERR_CONFIG`, () => {
        assert.throws(() => parse(reload), { code: 'ERR_CONFIG', message });
      });
    }
  });

  it('knows signal names', () => {
    assert.ok(isSignalName('SIGHUP'));
    assert.ok(!isSignalName('SIGNOPE'));
  });
});
