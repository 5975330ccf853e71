import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSignalName, runReload } from '../lib/agent/reload.js';

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
    child.kill('SIGKILL');
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

  it('knows signal names', () => {
    assert.ok(isSignalName('SIGHUP'));
    assert.ok(!isSignalName('SIGNOPE'));
  });
});
