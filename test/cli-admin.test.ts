import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseAgentConfig } from '../lib/agent/config.js';
import { runAgent, type RunningAgent } from '../lib/agent/daemon.js';
import { SpiffeBundle, X509Bundle } from '../lib/bundle/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run as runCa, type RunningCa } from '../lib/ca/daemon.js';
import { createLogger } from '../lib/observe/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { runCli } from './helpers/cli.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit.js');
const quiet = (name: string) => createLogger({ name, destination: new PassThrough().resume() });

const cli = runCli;

async function until(what: string, cond: () => boolean, limitMs = 30_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One error line, a code, no stack trace. */
function assertOneLineError(err: string, code: string): void {
  assert.match(err, new RegExp(`^error ${code}: .+\\n$`), err);
  assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
}

describe('svidkit operator CLI against a real CA on its admin socket', function () {
  this.timeout(60_000);
  let dir: string;
  let ca: RunningCa;
  let agent: RunningAgent | undefined;
  let socket: string;
  const admin = (...args: string[]) => cli([...args, '--socket', socket]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-cli-admin-'));
    const config = parseCaConfig(
      { trust_domain: 'example.org', data_dir: join(dir, 'ca'), listen: { port: 0 }, observability: { port: 0 } },
      dir,
    );
    ca = await runCa(config, { logger: quiet('svidkit-ca') });
    socket = ca.adminSocket;
  });
  after(async () => {
    await agent?.close();
    await ca?.close(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  let agentId = '';
  let entryId = '';

  it('token create prints a one-time token and the agent ID it will give (table and --json)', async () => {
    const human = await admin('token', 'create', '--ttl', '300');
    assert.equal(human.code, 0, human.err);
    assert.match(
      human.out,
      /^token: +\S+\nagent id: +spiffe:\/\/example\.org\/svidkit\/agent\/join_token\/[0-9a-f]{64}\nexpires at: /,
    );
    const res = await admin('token', 'create', '--json');
    assert.equal(res.code, 0, res.err);
    const created = JSON.parse(res.out) as { token: string; agent_id: string; expires_at: string };
    assert.ok(created.token.length >= 32);
    assert.ok(Date.parse(created.expires_at) > Date.now());
    agentId = created.agent_id;

    // The bundle an agent needs to bootstrap, exported the way an operator would, then a real agent.
    const bundleFile = join(dir, 'bundle.pem');
    const exported = await admin('bundle', 'export', '--format', 'pem', '--out', bundleFile);
    assert.equal(exported.code, 0, exported.err);
    agent = await runAgent(
      parseAgentConfig(
        {
          trust_domain: 'example.org',
          data_dir: join(dir, 'agent'),
          ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: bundleFile },
          attestation: { join_token: created.token },
          observability: { port: 0 },
          backoff: { min: '100ms', max: '1s' },
          workloads: [{ spiffe_id: 'spiffe://example.org/ns/shop/sa/web', output_dir: join(dir, 'out', 'web') }],
        },
        dir,
      ),
      { logger: quiet('svidkit-agent') },
    );
    await until('the agent attested', () => agent!.agent.agentId?.toString() === agentId);
  });

  it('entry create registers a workload under the agent, which then gets its SVID', async () => {
    const res = await admin(
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/ns/shop/sa/web',
      '--parent-id',
      agentId,
      '--x509-ttl',
      '600',
      '--dns',
      'web.shop.svc',
      '--json',
    );
    assert.equal(res.code, 0, res.err);
    const entry = JSON.parse(res.out) as {
      id: string;
      spiffeId: string;
      dnsNames: string[];
      x509SvidTtlSeconds: number;
    };
    assert.equal(entry.spiffeId, 'spiffe://example.org/ns/shop/sa/web');
    assert.deepEqual(entry.dnsNames, ['web.shop.svc']);
    assert.equal(entry.x509SvidTtlSeconds, 600);
    entryId = entry.id;
    await until('the workload files', () => agent!.agent.ready());
    assert.ok(existsSync(join(dir, 'out', 'web', 'svid.pem')));
  });

  it('doctor passes the files the agent wrote, and checks the CA as a peer', async () => {
    const svidDir = join(dir, 'out', 'web');
    const local = await cli(['doctor', svidDir]);
    assert.equal(local.code, 0, local.out + local.err);
    assert.match(local.out, /OK: an mTLS connection with these files would succeed/);
    const peer = `127.0.0.1:${ca.nodePort}`;
    const good = await cli(['doctor', svidDir, '--peer', peer, '--expect', 'spiffe://example.org/svidkit/ca']);
    assert.equal(good.code, 0, good.out + good.err);
    const wrong = await cli(['doctor', svidDir, '--peer', peer, '--expect', 'spiffe://example.org/ns/shop/sa/db']);
    assert.equal(wrong.code, 1, wrong.out);
    assert.match(wrong.out, /FAIL: /);
  });

  it('entry list shows entries as a table, as JSON, and filtered', async () => {
    const table = await admin('entry', 'list');
    assert.equal(table.code, 0, table.err);
    const lines = table.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID +SPIFFE ID +PARENT ID +X509 TTL +JWT TTL +DNS +SELECTORS$/);
    assert.equal(lines.length, 2);
    assert.ok(lines[1]!.startsWith(entryId));
    assert.ok(lines[1]!.includes('web.shop.svc'));
    const byParent = JSON.parse((await admin('entry', 'list', '--parent-id', agentId, '--json')).out) as unknown[];
    assert.equal(byParent.length, 1);
    const none = JSON.parse(
      (await admin('entry', 'list', '--spiffe-id', 'spiffe://example.org/nobody', '--json')).out,
    ) as unknown[];
    assert.equal(none.length, 0);
  });

  it('entry create takes repeated --selector; entry list shows them; the agent receives them', async () => {
    const web = 'spiffe://example.org/ns/shop/sa/web';
    const human = await admin(
      'entry',
      'create',
      '--spiffe-id',
      web,
      '--parent-id',
      agentId,
      '--selector',
      'unix:uid:1000',
      '--selector',
      'unix:gid:50',
      '--selector',
      'unix:uid:1000',
    );
    assert.equal(human.code, 0, human.err);
    const m = /^created entry (\S+) for \S+ \(parent \S+, selectors unix:gid:50 unix:uid:1000\)\n$/.exec(human.out);
    assert.ok(m, human.out);
    const selectorEntry = m[1]!;

    const table = (await admin('entry', 'list', '--spiffe-id', web)).out.trimEnd().split('\n');
    assert.equal(table.length, 3);
    const row = table.find((l) => l.startsWith(selectorEntry));
    assert.ok(row?.endsWith('  unix:gid:50,unix:uid:1000'), row);
    assert.ok(table.find((l) => l.startsWith(entryId))?.endsWith('  -'));
    const listed = JSON.parse((await admin('entry', 'list', '--json')).out) as { id: string; selectors: string[] }[];
    assert.deepEqual(listed.find((e) => e.id === selectorEntry)?.selectors, ['unix:gid:50', 'unix:uid:1000']);
    assert.deepEqual(listed.find((e) => e.id === entryId)?.selectors, []);

    // The agent holds both entries with their selectors; the file workload keeps the entry without.
    await until('the agent fetched the entry with selectors', () =>
      agent!.agent.authorizedEntries().some((e) => e.id === selectorEntry),
    );
    const held = agent!.agent.authorizedEntries();
    assert.deepEqual(held.find((e) => e.id === selectorEntry)?.selectors, ['unix:gid:50', 'unix:uid:1000']);
    assert.deepEqual(held.find((e) => e.id === entryId)?.selectors, []);
    assert.equal(agent!.agent.status()[0]?.entryId, entryId);

    // The entry with selectors gets an SVID minted ahead of use, held in memory for Workload API callers;
    // a caller missing one of the selectors gets nothing.
    const api = agent!.agent.workloadApi;
    await until(
      'the Workload API SVID',
      () => api.identities.svidsFor(new Set(['unix:gid:50', 'unix:uid:1000'])).length === 1,
    );
    const [served] = api.identities.svidsFor(new Set(['unix:gid:50', 'unix:uid:1000', 'unix:gid:27']));
    assert.equal(served!.svid.id.toString(), web);
    assert.equal(served!.entry.id, selectorEntry);
    assert.deepEqual(api.identities.svidsFor(new Set(['unix:uid:1000'])), []);

    // A caller that matches an entry the agent has not fetched yet: one forced sync, and it is there.
    const fresh = await admin(
      'entry',
      'create',
      '--spiffe-id',
      `${web}-2`,
      '--parent-id',
      agentId,
      '--selector',
      'unix:uid:4242',
    );
    assert.equal(fresh.code, 0, fresh.err);
    await agent!.agent.requestEntrySync();
    assert.deepEqual(
      api.identities.svidsFor(new Set(['unix:uid:4242'])).map((x) => x.svid.id.toString()),
      [`${web}-2`],
    );
    const freshId = /^created entry (\S+) /.exec(fresh.out)![1]!;
    assert.equal((await admin('entry', 'delete', freshId)).code, 0);

    const again = await admin(
      'entry',
      'create',
      '--spiffe-id',
      web,
      '--parent-id',
      agentId,
      '--selector',
      'unix:gid:50',
      '--selector',
      'unix:uid:1000',
    );
    assert.equal(again.code, 1);
    assertOneLineError(again.err, 'ERR_ADMIN_INVALID');
    assert.match(again.err, /with these selectors already exists/);

    assert.equal((await admin('entry', 'delete', selectorEntry)).code, 0);
    await until('the agent dropped the entry', () =>
      agent!.agent.authorizedEntries().every((e) => e.id !== selectorEntry),
    );
    assert.deepEqual(api.identities.svidsFor(new Set(['unix:gid:50', 'unix:uid:1000'])), []);
    assert.equal(agent!.agent.status()[0]?.entryId, entryId);
  });

  it('refuses a bad --selector before calling the CA, with exit 2 and the reason', async () => {
    const create = (...selectors: string[]) =>
      cli([
        'entry',
        'create',
        '--spiffe-id',
        'spiffe://example.org/x',
        '--parent-id',
        agentId,
        ...selectors.flatMap((s) => ['--selector', s]),
        // No CA answers here: a refusal that reached the CA would exit 3.
        '--socket',
        join(dir, 'nothing.sock'),
      ]);
    const cases: { selectors: string[]; message: RegExp }[] = [
      {
        selectors: ['uid:1000'],
        message: /^error ERR_USAGE: cli: --selector: "uid:1000": unknown selector type; expected one of unix\n$/,
      },
      {
        selectors: ['unix:uid:1', 'unix:uid:x'],
        message: /--selector: "unix:uid:x": uid must be a decimal/,
      },
      { selectors: ['unix:path:bin/node'], message: /path must be absolute/ },
      { selectors: ['unix:sha256:ABC'], message: /sha256 must be 64 lowercase hexadecimal digits/ },
      { selectors: [''], message: /must not be empty/ },
      { selectors: Array.from({ length: 40 }, (_, i) => `unix:uid:${i}`), message: /at most 32 selectors per entry/ },
    ];
    for (const c of cases) {
      const res = await create(...c.selectors);
      assert.equal(res.code, 2, res.err);
      assertOneLineError(res.err, 'ERR_USAGE');
      assert.match(res.err, c.message);
    }
  });

  it('refuses bad input with one line and a stable exit code', async () => {
    const malformed = await admin('entry', 'create', '--spiffe-id', 'spiffe://Example.org/x', '--parent-id', agentId);
    assert.equal(malformed.code, 2);
    assertOneLineError(malformed.err, 'ERR_USAGE');
    const reserved = await admin(
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/svidkit/ca',
      '--parent-id',
      agentId,
    );
    assert.equal(reserved.code, 1);
    assertOneLineError(reserved.err, 'ERR_ADMIN_INVALID');
    const badTtl = await admin('token', 'create', '--ttl', 'soon');
    assert.equal(badTtl.code, 2);
    assertOneLineError(badTtl.err, 'ERR_USAGE');
    const unknownEntry = await admin('entry', 'delete', 'no-such-entry');
    assert.equal(unknownEntry.code, 1);
    assertOneLineError(unknownEntry.err, 'ERR_ADMIN_NOT_FOUND');
    const unknownAgent = await admin('agent', 'ban', 'spiffe://example.org/svidkit/agent/join_token/nope');
    assert.equal(unknownAgent.code, 1);
    assertOneLineError(unknownAgent.err, 'ERR_ADMIN_NOT_FOUND');
    const unknownKey = await admin('ca', 'taint', 'no-such-key');
    assert.equal(unknownKey.code, 1);
    assertOneLineError(unknownKey.err, 'ERR_ADMIN_NOT_FOUND');
    const missingOption = await admin('entry', 'create', '--spiffe-id', 'spiffe://example.org/x');
    assert.equal(missingOption.code, 2);
    assertOneLineError(missingOption.err, 'ERR_USAGE');
  });

  it('bundle show and export give the roots the CA serves, as PEM and as SPIFFE JSON', async () => {
    const served = ca.context.keys.bundle();
    const show = await admin('bundle', 'show', '--json');
    assert.equal(show.code, 0, show.err);
    const summary = JSON.parse(show.out) as { trust_domain: string; x509_authorities: { sha256: string }[] };
    assert.equal(summary.trust_domain, 'example.org');
    assert.deepEqual(
      summary.x509_authorities.map((r) => r.sha256),
      served.x509.authorities().map((c) => c.fingerprint256()),
    );
    const human = await admin('bundle', 'show');
    assert.match(human.out, /^trust domain: example\.org\n/);
    assert.ok(human.out.includes(served.x509.authorities()[0]!.fingerprint256()));

    const pem = await admin('bundle', 'export', '--format', 'pem');
    const roots = X509Bundle.parsePem(TrustDomain.parse('example.org'), pem.out);
    assert.equal(roots.size, served.x509.size);
    const spiffe = await admin('bundle', 'export');
    const parsed = SpiffeBundle.parse(TrustDomain.parse('example.org'), spiffe.out);
    assert.equal(parsed.jwt.size, served.jwt.size);
    const file = join(dir, 'bundle.json');
    assert.equal((await admin('bundle', 'export', '--out', file)).code, 0);
    assert.equal(statSync(file).mode & 0o777, 0o644);
    assert.equal(readFileSync(file, 'utf8'), spiffe.out);
  });

  it('ca status lists the keys; ca rotate activates new ones', async () => {
    const before = JSON.parse((await admin('ca', 'status', '--json')).out) as {
      trust_domain: string;
      keys: { id: string; kind: string; state: string }[];
    };
    assert.equal(before.trust_domain, 'example.org');
    const activeX509 = before.keys.find((k) => k.kind === 'x509' && k.state === 'active');
    assert.ok(activeX509, JSON.stringify(before.keys));
    const rotated = await admin('ca', 'rotate', '--kind', 'x509');
    assert.equal(rotated.code, 0, rotated.err);
    assert.match(rotated.out, /^ID +KIND +STATE +NOT AFTER +TAINTED\n/);
    const after = JSON.parse((await admin('ca', 'status', '--json')).out) as typeof before;
    const nowActive = after.keys.find((k) => k.kind === 'x509' && k.state === 'active');
    assert.ok(nowActive && nowActive.id !== activeX509.id, 'a new X.509 key is active');
    const table = await admin('ca', 'status');
    assert.match(table.out, /^trust domain: example\.org\n/);
  });

  it('agent list shows the attested agent; agent ban bans it', async () => {
    const list = await admin('agent', 'list');
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^SPIFFE ID +ATTESTATION +SVID SERIAL +SVID EXPIRES +BANNED\n/);
    assert.ok(list.out.includes(agentId));
    const ban = await admin('agent', 'ban', agentId);
    assert.equal(ban.code, 0, ban.err);
    const agents = JSON.parse((await admin('agent', 'list', '--json')).out) as { spiffeId: string; banned: boolean }[];
    assert.equal(agents.find((a) => a.spiffeId === agentId)?.banned, true);
  });

  it('exits 3 with one line when no CA answers on the socket', async () => {
    const res = await cli(['entry', 'list', '--socket', join(dir, 'nothing.sock'), '--timeout', '2']);
    assert.equal(res.code, 3);
    assertOneLineError(res.err, 'ERR_ADMIN_UNREACHABLE');
    assert.ok(res.err.includes('nothing.sock'));
  });

  it('the built binary gives the same exit codes, and reads SVIDKIT_ADMIN_SOCKET', async () => {
    // Asynchronously: the CA serving the socket runs in this very process.
    const bin = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', env }, (err, stdout, stderr) =>
          resolve({ status: err ? Number(err.code) : 0, stdout, stderr }),
        );
      });
    const ok = await bin(['entry', 'list', '--json'], { ...process.env, SVIDKIT_ADMIN_SOCKET: socket });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as unknown[]).length, 1);
    const down = await bin(['agent', 'list', '--socket', join(dir, 'nothing.sock'), '--timeout', '2']);
    assert.equal(down.status, 3);
    assertOneLineError(down.stderr, 'ERR_ADMIN_UNREACHABLE');
  });
});
