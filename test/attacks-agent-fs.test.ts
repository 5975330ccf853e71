/**
 * A workload attacking the root agent through the files it delivers (docs/RELIABILITY.md, threat
 * model): an unprivileged process (uid 65534, through setpriv) races the agent's writes and removals,
 * plants symlinks and FIFOs, and a symlinked or loosely owned output directory; the agent must never
 * change, follow into or remove anything outside the workload's own layout, and must never block.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseAgentConfig } from '../lib/agent/config.js';
import { runAgent } from '../lib/agent/daemon.js';
import { resolveOutputDir } from '../lib/agent/trust.js';
import { removeWorkloadFiles, writeWorkloadFiles, type WorkloadFiles } from '../lib/agent/writer.js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { BundleSet, SpiffeBundle } from '../lib/bundle/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import { SvidkitError } from '../lib/errors/index.js';
import { createLogger } from '../lib/observe/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import type { X509Svid } from '../lib/x509svid/index.js';
import { snapshot, tempDir } from './helpers/agent-fs.js';
import { T0, TestCa } from './helpers/ca.js';

const here = dirname(fileURLToPath(import.meta.url));
const ATTACKER = join(here, '..', '..', 'test', 'helpers', 'fs_attacker.py');
const NOBODY = 65534;
/** The system Python: one under root's home (pyenv) cannot be run by uid 65534. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const isRoot = process.getuid?.() === 0;
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const quiet = (name: string) =>
  createLogger({ name, destination: process.env.SVIDKIT_TEST_LOGS ? process.stderr : new PassThrough().resume() });

/** A root-owned file and tree outside the output directory that the agent must leave byte for byte. */
async function plantVictims(tmp: string): Promise<{ file: string; dir: string }> {
  const file = join(tmp, 'shadow');
  await writeFile(file, 'root:secret\n', { mode: 0o600 });
  const dir = join(tmp, 'victim-tree');
  await mkdir(join(dir, 'jwt'), { recursive: true, mode: 0o755 });
  for (const name of ['svid.pem', 'svid_key.pem', 'meta.json', 'jwt/a.token']) {
    await writeFile(join(dir, name), `precious ${name}\n`, { mode: 0o600 });
  }
  return { file, dir };
}

async function fingerprint(victims: { file: string; dir: string }): Promise<unknown> {
  const st = await lstat(victims.file);
  const body = createHash('sha256')
    .update(await readFile(victims.file))
    .digest('hex');
  return { file: [st.uid, st.gid, st.mode & 0o7777, body], tree: await snapshot(victims.dir) };
}

/** Starts the attacker as uid/gid 65534; stop() creates the stop file and resolves with its count of allowed moves. */
function startAttacker(out: string, victims: { file: string; dir: string }, stopFile: string) {
  const child: ChildProcess = spawn(
    'setpriv',
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      PYTHON,
      ATTACKER,
      out,
      victims.file,
      victims.dir,
      stopFile,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let printed = '';
  let markReady: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout!.on('data', (d: Buffer) => {
    printed += d.toString();
    if (printed.startsWith('ready\n')) markReady();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(markReady);
  return {
    /** Resolves once the attacker runs (or has exited). */
    started,
    async stop(): Promise<number> {
      writeFileSync(stopFile, '');
      await exited;
      // An attacker that could not even start would make every assertion below vacuous.
      assert.match(
        printed,
        /^ready\n\d+\n$/,
        `the attacker did not run to the end (printed ${JSON.stringify(printed)})`,
      );
      return Number(printed.slice('ready\n'.length).trim());
    },
  };
}

describe('attacks on the agent through its output directories', function () {
  this.timeout(120_000);
  const root = TestCa.root();
  let svids: X509Svid[];
  let bundles: BundleSet;
  let tmp: string;

  before(function () {
    bundles = new BundleSet([new SpiffeBundle(TrustDomain.parse('example.org'), { x509: root.bundle() })]);
    svids = [root.svid('/ns/prod/sa/web'), root.svid('/ns/prod/sa/web')];
  });
  beforeEach(async function () {
    tmp = await tempDir('svidkit-attack-fs-');
    // The attacker must reach the output directory, as a workload on the node can.
    await chmod(tmp, 0o755);
  });
  afterEach(async function () {
    await rm(tmp, { recursive: true, force: true });
  });

  const files = (i: number): WorkloadFiles => ({
    svid: svids[i % 2]!,
    bundles,
    jwtTokens: new Map(),
    version: i + 1,
  });

  describe('a workload racing the writer (uid 65534, 300 writes each)', function () {
    before(function () {
      if (!isRoot || !hasSetpriv) this.skip(); // needs root to run the attacker as another uid and to chown
    });

    for (const [label, ownedByWorkload] of [
      ['the agent owns the output directory', false],
      ['the workload owns the output directory', true],
    ] as const) {
      it(`never chowns, chmods, follows or removes outside the layout, never blocks (${label})`, async function () {
        const victims = await plantVictims(tmp);
        const before = await fingerprint(victims);
        const out = join(tmp, 'out');
        await mkdir(out, { mode: 0o755 });
        if (ownedByWorkload) await chown(out, NOBODY, NOBODY);
        const attacker = startAttacker(out, victims, join(tmp, 'stop'));
        await attacker.started;
        let allowed: number;
        let written = 0;
        try {
          for (let i = 0; i < 300; i++) {
            try {
              await writeWorkloadFiles(files(i), { dir: out, uid: NOBODY, gid: NOBODY, at: T0, clock: () => T0 });
              written++;
            } catch (err) {
              // A workload that renames its own directory's entries can spoil its own delivery, and only that.
              if (!ownedByWorkload || !(err instanceof SvidkitError) || err.code !== 'ERR_AGENT_WRITE') throw err;
            }
          }
        } finally {
          allowed = await attacker.stop();
        }
        if (!ownedByWorkload) assert.equal(written, 300);
        else assert.ok(written > 0, 'some writes got through');
        assert.deepEqual(await fingerprint(victims), before, 'the victim file and tree are unchanged');
        // The agent's own directories never became the workload's.
        const live = join(out, await readlink(join(out, '..data')));
        const st = await stat(live);
        assert.deepEqual([st.uid, st.mode & 0o7777], [0, 0o755]);
        if (!ownedByWorkload) assert.equal(allowed, 0, 'a version directory is not writable by the workload');
        else assert.ok(allowed > 0, 'the attacker did get to swap entries of its own directory');
        // The layout still reads as one consistent version.
        assert.equal((await lstat(join(out, 'svid.pem'))).isSymbolicLink(), true);
      });
    }

    it('removeWorkloadFiles never follows a version directory swapped for a symlink', async function () {
      const victims = await plantVictims(tmp);
      const before = await fingerprint(victims);
      const out = join(tmp, 'out');
      await mkdir(out, { mode: 0o755 });
      await chown(out, NOBODY, NOBODY);
      for (let round = 0; round < 30; round++) {
        await writeWorkloadFiles(files(round), { dir: out, uid: NOBODY, gid: NOBODY, at: T0, clock: () => T0 });
        const attacker = startAttacker(out, victims, join(tmp, `stop-${round}`));
        await attacker.started;
        try {
          await removeWorkloadFiles(out, undefined, undefined, { uid: NOBODY, gid: NOBODY }).catch((err: unknown) => {
            if (!(err instanceof SvidkitError) || err.code !== 'ERR_AGENT_WRITE') throw err;
          });
        } finally {
          await attacker.stop();
        }
      }
      assert.deepEqual(await fingerprint(victims), before);
    });
  });

  it('refuses, quickly and for that workload only, an output directory flooded with entries', async function () {
    const out = join(tmp, 'out');
    await writeWorkloadFiles(files(0), { dir: out, at: T0, clock: () => T0 });
    const before = await snapshot(out);
    for (let i = 0; i < 1100; i++) await symlink('/nonexistent', join(out, `junk${i}`));
    await assert.rejects(writeWorkloadFiles(files(1), { dir: out, at: T0, clock: () => T0 }), {
      code: 'ERR_AGENT_WRITE',
      message: `agent: cannot write ${out}: it holds more than 1024 entries; remove what is not the agent's layout`,
    });
    for (let i = 0; i < 1100; i++) await rm(join(out, `junk${i}`));
    assert.deepEqual(await snapshot(out), before, 'the refused write left the live version as it was');
  });

  describe('output directories that others control', function () {
    const refusal = (p: Promise<unknown>, pattern: RegExp) =>
      assert.rejects(p, (err: unknown) => {
        assert.ok(err instanceof SvidkitError, String(err));
        assert.equal(err.code, 'ERR_AGENT_UNSAFE_DIR');
        assert.match(err.message, pattern);
        return true;
      });

    it('refuses a symlinked output directory and leaves its target alone', async function () {
      const victims = await plantVictims(tmp);
      const before = await fingerprint(victims);
      const out = join(tmp, 'out');
      await symlink(victims.dir, out);
      await refusal(writeWorkloadFiles(files(0), { dir: out, at: T0, clock: () => T0 }), /through a symlink/);
      await refusal(resolveOutputDir(out), /the output directory is a symlink/);
      await refusal(removeWorkloadFiles(out), /through a symlink/);
      assert.deepEqual(await fingerprint(victims), before);
    });

    it('refuses an output directory writable by every user, and one under a parent that is', async function () {
      const open = join(tmp, 'open');
      await mkdir(open);
      await chmod(open, 0o777);
      await refusal(writeWorkloadFiles(files(0), { dir: open, at: T0, clock: () => T0 }), /writable by every user/);
      await refusal(resolveOutputDir(open), /writable by every user \(mode 0777\)/);
      await refusal(resolveOutputDir(join(open, 'out')), new RegExp(`${open} is not safe`));
      assert.deepEqual(await snapshot(open), {});
    });

    it('accepts a parent with the sticky bit (as /tmp), a workload-owned directory and missing components', async function () {
      const sticky = join(tmp, 'sticky');
      await mkdir(sticky);
      await chmod(sticky, 0o1777);
      assert.equal(await resolveOutputDir(join(sticky, 'a', 'b')), join(sticky, 'a', 'b'));
      await writeWorkloadFiles(files(0), { dir: join(sticky, 'a', 'b'), at: T0, clock: () => T0 });
      assert.equal((await stat(join(sticky, 'a'))).mode & 0o7777, 0o755);
      if (isRoot) {
        const mine = join(tmp, 'mine');
        await mkdir(mine, { mode: 0o700 });
        await chown(mine, NOBODY, NOBODY);
        assert.equal(await resolveOutputDir(mine, { uid: NOBODY }), mine);
        await refusal(resolveOutputDir(mine, { uid: 1000 }), /owned by uid 65534/);
      }
    });

    it('refuses a parent owned by another user (root)', async function () {
      if (!isRoot) this.skip(); // only root can give a directory to another uid
      const theirs = join(tmp, 'theirs');
      await mkdir(theirs, { mode: 0o755 });
      await chown(theirs, 4242, 4242);
      await refusal(resolveOutputDir(join(theirs, 'out')), /owned by uid 4242/);
    });

    it('follows a symlink above the output directory only when root or the agent placed it', async function () {
      const real = join(tmp, 'real');
      await mkdir(real);
      await symlink(real, join(tmp, 'via'));
      assert.equal(await resolveOutputDir(join(tmp, 'via', 'out')), join(real, 'out'));
      if (isRoot) {
        const shared = join(tmp, 'shared');
        await mkdir(shared, { mode: 0o755 });
        await chown(shared, NOBODY, NOBODY);
        await symlink(real, join(shared, 'link'));
        await refusal(resolveOutputDir(join(shared, 'link', 'out'), { uid: NOBODY }), /another user could have placed/);
      }
      // The writer itself takes only real paths: what the agent resolved at start.
      await refusal(
        writeWorkloadFiles(files(0), { dir: join(tmp, 'via', 'out'), at: T0, clock: () => T0 }),
        /through a symlink/,
      );
      assert.equal(existsSync(join(real, 'out')), false);
    });
  });

  describe('the real agent daemon', function () {
    let ca: RunningCa | undefined;
    const td = TrustDomain.parse('example.org');
    const token = generateJoinToken();
    const agentId = agentIdForJoinToken(td, token);

    const startCa = async (dir: string) => {
      ca = await run(
        parseCaConfig(
          {
            trust_domain: 'example.org',
            data_dir: join(dir, 'ca'),
            listen: { port: 0 },
            observability: { port: 0 },
            attestation: { join_token: {} },
          },
          dir,
        ),
        { logger: quiet('svidkit-ca') },
      );
      await writeFile(join(dir, 'bundle.pem'), ca.context.keys.bundle().x509.toPem());
      await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
      await ca.context.store.createEntry({
        spiffeId: 'spiffe://example.org/ns/prod/sa/web',
        parentId: agentId.toString(),
        x509SvidTtlSeconds: 6,
        jwtSvidTtlSeconds: 60,
        dnsNames: [],
      });
    };
    afterEach(async function () {
      await ca?.close(500);
      ca = undefined;
    });

    const config = (dir: string, workload: Record<string, unknown>, dataDir = join(dir, 'agent')) =>
      parseAgentConfig(
        {
          trust_domain: 'example.org',
          data_dir: dataDir,
          ca: { address: `127.0.0.1:${ca!.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
          attestation: { join_token: token },
          observability: { port: 0 },
          backoff: { min: '100ms', max: '1s' },
          workloads: [{ spiffe_id: 'spiffe://example.org/ns/prod/sa/web', ...workload }],
        },
        dir,
      );

    it('refuses to start with a symlinked output directory, saying which and why', async function () {
      await startCa(tmp);
      const victims = await plantVictims(tmp);
      const before = await fingerprint(victims);
      await symlink(victims.dir, join(tmp, 'out'));
      await assert.rejects(
        runAgent(config(tmp, { output_dir: join(tmp, 'out') }), { logger: quiet('svidkit-agent') }),
        { code: 'ERR_AGENT_UNSAFE_DIR', message: /out: the output directory is a symlink/ },
      );
      assert.deepEqual(await fingerprint(victims), before);
    });

    it('refuses a data_dir that others can write', async function () {
      await startCa(tmp);
      await mkdir(join(tmp, 'agent'));
      await chmod(join(tmp, 'agent'), 0o777);
      await assert.rejects(
        runAgent(config(tmp, { output_dir: join(tmp, 'out') }), { logger: quiet('svidkit-agent') }),
        { code: 'ERR_AGENT_UNSAFE_DIR', message: /writable by group or other users \(mode 0777\)/ },
      );
    });

    it('refuses output directories that are one directory once symlinks are resolved', async function () {
      await startCa(tmp);
      await mkdir(join(tmp, 'real'));
      await symlink(join(tmp, 'real'), join(tmp, 'alias'));
      const cfg = parseAgentConfig(
        {
          trust_domain: 'example.org',
          data_dir: join(tmp, 'agent'),
          ca: { address: `127.0.0.1:${ca!.nodePort}`, bundle_file: join(tmp, 'bundle.pem') },
          attestation: { join_token: token },
          observability: { port: 0 },
          workloads: [
            { spiffe_id: 'spiffe://example.org/ns/prod/sa/web', output_dir: join(tmp, 'real', 'w') },
            { spiffe_id: 'spiffe://example.org/ns/prod/sa/api', output_dir: join(tmp, 'alias', 'w', 'api') },
          ],
        },
        tmp,
      );
      await assert.rejects(runAgent(cfg, { logger: quiet('svidkit-agent') }), {
        code: 'ERR_AGENT_UNSAFE_DIR',
        message: /workloads\[0\]\.output_dir .* and workloads\[1\]\.output_dir .* one is inside the other/,
      });
    });

    it('keeps rotating while a workload (uid 65534) attacks its own output directory', async function () {
      if (!isRoot || !hasSetpriv) this.skip(); // the attacker runs as another uid, the files are chowned to it
      await startCa(tmp);
      const victims = await plantVictims(tmp);
      const before = await fingerprint(victims);
      const out = join(tmp, 'out');
      await mkdir(out, { mode: 0o755 });
      await chown(out, NOBODY, NOBODY);
      const agent = await runAgent(config(tmp, { output_dir: out, uid: NOBODY, gid: NOBODY }), {
        logger: quiet('svidkit-agent'),
      });
      const attacker = startAttacker(out, victims, join(tmp, 'stop'));
      try {
        // Each rotation is a new write (and a removal of the version before): wait for five of them.
        const seen = new Set<string>();
        const started = Date.now();
        while (seen.size < 5) {
          // A guard against a hang, not a performance check.
          if (Date.now() - started > 90_000) throw new Error(`only ${seen.size} SVIDs in 90 s`);
          await new Promise((r) => setTimeout(r, 50));
          const status = agent.agent.status()[0]!;
          if (status.serial) seen.add(status.serial);
        }
      } finally {
        await attacker.stop();
        await agent.close();
      }
      assert.deepEqual(await fingerprint(victims), before);
    });
  });
});
