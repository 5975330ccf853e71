import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit-ca.js');

/** Collects a child's output and resolves when a line matches. */
function waitForLine(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => re.test(l));
      if (line) resolve(line);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before ${re}: ${buf}`)));
  });
}

describe('svidkit-ca command', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-ca-cmd-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts from a YAML file with flag overrides, reports ready, and exits 0 on SIGTERM', async () => {
    const config = join(dir, 'ca.yaml');
    writeFileSync(
      config,
      `trust_domain: file.example\ndata_dir: ${join(dir, 'data')}\nlisten: { port: 0 }\nobservability: { port: 0 }\n`,
    );
    const child = spawn(process.execPath, [BIN, '--config', config, '--trust-domain', 'flag.example'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ready = JSON.parse(await waitForLine(child, /svidkit-ca ready/)) as Record<string, unknown>;
    assert.equal(ready['trust_domain'], 'flag.example');
    const res = await fetch(`http://127.0.0.1:${String(ready['metrics_port'])}/readyz`);
    assert.equal(res.status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('refuses a bad configuration with one error line and exit 1', async () => {
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'trust_domian: typo.example\n');
    const child = spawn(process.execPath, [BIN, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.equal(err, 'error ERR_CONFIG: config: trust_domian: unknown key\n');
  });
});
