/**
 * Tests of lib/store on SQLite: every Datastore method (on an in-memory store with a pinned clock),
 * the single-use join token under concurrency, and how a file store behaves when its process is
 * killed with SIGKILL, when another process holds the lock, and when the file is corrupt, foreign
 * or written by a newer svidkit. Refusals are checked for their exact error code, and corrupt
 * files for being left byte for byte as they were.
 */
import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { isSvidkitError } from '../lib/errors/index.js';
import {
  type CaKeyState,
  type Datastore,
  type NewCaKeyRecord,
  type NewRegistrationEntry,
  SCHEMA_VERSION,
  SqliteStore,
} from '../lib/store/index.js';
import { MIGRATIONS, SCHEMA_TABLE_SQL } from '../lib/store/schema.js';
import { rejectsCode } from './helpers/assert.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const STORE_MODULE_URL = pathToFileURL(fileURLToPath(new URL('../lib/store/index.js', import.meta.url))).href;
const BETTER_SQLITE_URL = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const TD = 'spiffe://example.org';
const AGENT = `${TD}/spire/agent/join_token/abc`;

/** A clock the test moves by hand, so createdAt/updatedAt are exact. */
function manualClock(start = T0): { clock: () => Date; advance: (ms: number) => void; now: () => Date } {
  let t = start;
  return { clock: () => new Date(t), advance: (ms) => void (t += ms), now: () => new Date(t) };
}

/** What the CA stores for a join token (lib/attest's hashJoinToken computes the same). */
function hashJoinToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function entry(spiffePath: string, parentId = AGENT): NewRegistrationEntry {
  return {
    spiffeId: `${TD}${spiffePath}`,
    parentId,
    x509SvidTtlSeconds: 3600,
    jwtSvidTtlSeconds: 300,
    dnsNames: [],
    selectors: [],
  };
}

function caKey(id: string, kind: 'x509' | 'jwt', state: CaKeyState, extra: Partial<NewCaKeyRecord> = {}) {
  return {
    id,
    kind,
    state,
    notAfter: new Date(T0 + 86_400_000),
    publicData: kind === 'x509' ? `-----BEGIN CERTIFICATE-----\n${id}\n-----END CERTIFICATE-----\n` : `{"kid":"${id}"}`,
    ...extra,
  } satisfies NewCaKeyRecord;
}

/** A child node process whose stdout arrives line by line. */
class Child {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  private readonly waiters: { pred: (line: string) => boolean; resolve: () => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(script: string, args: string[]) {
    this.proc = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) {
        if (w.pred(line)) w.resolve();
        else this.waiters.push(w);
      }
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        if (code !== 0 && signal === null) process.stderr.write(`child ${script} failed:\n${stderr}\n`);
        resolve({ code, signal });
      });
    });
  }

  /** Resolves at the first line (already seen or future) that satisfies `pred`; rejects if the child exits first. */
  waitFor(pred: (line: string) => boolean): Promise<void> {
    if (this.lines.some(pred)) return Promise.resolve();
    return Promise.race([
      new Promise<void>((resolve) => this.waiters.push({ pred, resolve })),
      this.exited.then(({ code, signal }) => {
        if (!this.lines.some(pred)) throw new Error(`child exited (code ${code}, signal ${signal}) before the line`);
      }),
    ]);
  }
}

let tmp: string;

/** Gives each test of the calling describe a fresh temp dir in `tmp` (hooks at file level would be global). */
function useTmpDir(): void {
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'svidkit-store-'));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });
}

/** Writes a small ESM script into the temp dir and returns its path. */
function script(name: string, body: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, body);
  return file;
}

/** A file store with `n` entries, closed cleanly so the WAL is folded into the main file. */
async function makeStoreFile(file: string, n: number): Promise<void> {
  const store = await SqliteStore.open(file);
  for (let i = 0; i < n; i++) {
    await store.createEntry({ ...entry(`/w/${i}`), dnsNames: [`w${i}.example.org`, 'x'.repeat(200)] });
  }
  await store.close();
  assert.equal(fs.existsSync(`${file}-wal`), false);
}

// ---------------------------------------------------------------------------------------------
// Methods, on an in-memory store
// ---------------------------------------------------------------------------------------------

describe('store: SqliteStore methods', () => {
  let store: SqliteStore;
  let time: ReturnType<typeof manualClock>;

  beforeEach(async () => {
    time = manualClock();
    store = await SqliteStore.open(':memory:', { clock: time.clock });
  });
  afterEach(async () => {
    await store.close();
  });

  it('is a Datastore', () => {
    const ds: Datastore = store;
    assert.equal(ds, store);
    assert.equal(store.path, ':memory:');
  });

  describe('registration entries', () => {
    it('createEntry assigns a UUID and createdAt, and getEntry returns the same record', async () => {
      const input = { ...entry('/ns/a/sa/b'), dnsNames: ['b.example.org', 'b.a.svc'] };
      const created = await store.createEntry(input);
      assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(created, { ...input, id: created.id, createdAt: new Date(T0) });
      assert.deepEqual(await store.getEntry(created.id), created);
    });

    it('getEntry of an unknown id is undefined', async () => {
      assert.equal(await store.getEntry('00000000-0000-4000-8000-000000000000'), undefined);
    });

    it('a duplicate (spiffeId, parentId) pair is ERR_STORE_CONFLICT; other pairs are fine', async () => {
      await store.createEntry(entry('/a'));
      await rejectsCode(store.createEntry({ ...entry('/a'), x509SvidTtlSeconds: 60 }), 'ERR_STORE_CONFLICT');
      await store.createEntry(entry('/a', `${TD}/other-agent`));
      await store.createEntry(entry('/b'));
      assert.equal((await store.listEntries()).length, 3);
    });

    it('listEntries filters by parentId and/or spiffeId, oldest first', async () => {
      const other = `${TD}/agent2`;
      const a1 = await store.createEntry(entry('/a', AGENT));
      time.advance(1);
      const b1 = await store.createEntry(entry('/b', AGENT));
      time.advance(1);
      const a2 = await store.createEntry(entry('/a', other));
      const cases: { filter: Parameters<Datastore['listEntries']>[0]; want: string[] }[] = [
        { filter: undefined, want: [a1.id, b1.id, a2.id] },
        { filter: {}, want: [a1.id, b1.id, a2.id] },
        { filter: { parentId: AGENT }, want: [a1.id, b1.id] },
        { filter: { parentId: other }, want: [a2.id] },
        { filter: { spiffeId: `${TD}/a` }, want: [a1.id, a2.id] },
        { filter: { parentId: other, spiffeId: `${TD}/a` }, want: [a2.id] },
        { filter: { parentId: other, spiffeId: `${TD}/b` }, want: [] },
        { filter: { parentId: `${TD}/nobody` }, want: [] },
      ];
      for (const { filter, want } of cases) {
        const got = await store.listEntries(filter);
        assert.deepEqual(
          got.map((e) => e.id),
          want,
          JSON.stringify(filter),
        );
      }
    });

    it('deleteEntry removes the entry; an unknown or already deleted id is ERR_STORE_NOT_FOUND', async () => {
      const e = await store.createEntry(entry('/a'));
      await store.deleteEntry(e.id);
      assert.equal(await store.getEntry(e.id), undefined);
      await rejectsCode(store.deleteEntry(e.id), 'ERR_STORE_NOT_FOUND');
      await rejectsCode(store.deleteEntry('no-such-id'), 'ERR_STORE_NOT_FOUND');
      // The pair is free again after deletion.
      await store.createEntry(entry('/a'));
    });

    it('createEntry stores selectors in their canonical form: checked, de-duplicated, sorted', async () => {
      const created = await store.createEntry({
        ...entry('/w'),
        selectors: ['unix:uid:1000', 'unix:gid:50', 'unix:uid:1000', 'unix:path:/usr/bin/node'],
      });
      const want = ['unix:gid:50', 'unix:path:/usr/bin/node', 'unix:uid:1000'];
      assert.deepEqual(created.selectors, want);
      assert.deepEqual((await store.getEntry(created.id))?.selectors, want);
      assert.deepEqual((await store.listEntries({ spiffeId: `${TD}/w` }))[0]?.selectors, want);
      // Absent selectors are none, as for every entry before selectors existed.
      const bare: NewRegistrationEntry = {
        spiffeId: `${TD}/bare`,
        parentId: AGENT,
        x509SvidTtlSeconds: 3600,
        jwtSvidTtlSeconds: 300,
        dnsNames: [],
      };
      assert.deepEqual((await store.createEntry(bare)).selectors, []);
    });

    it('one (spiffeId, parentId) pair may be registered once per set of selectors, as SPIRE allows', async () => {
      await store.createEntry(entry('/a'));
      await store.createEntry({ ...entry('/a'), selectors: ['unix:uid:1000'] });
      await store.createEntry({ ...entry('/a'), selectors: ['unix:uid:1000', 'unix:gid:50'] });
      // The same set in another order, or with a repeat, is the same entry.
      await rejectsCode(
        store.createEntry({ ...entry('/a'), selectors: ['unix:gid:50', 'unix:uid:1000', 'unix:gid:50'] }),
        'ERR_STORE_CONFLICT',
        { message: /with the same selectors already exists/ },
      );
      await rejectsCode(store.createEntry(entry('/a')), 'ERR_STORE_CONFLICT', {
        message: /with no selectors already exists/,
      });
      assert.equal((await store.listEntries()).length, 3);
    });

    const badEntries: { name: string; patch: Partial<NewRegistrationEntry> }[] = [
      { name: 'an invalid selector', patch: { selectors: ['unix:uid:root'] } },
      { name: 'a selector of an unknown type', patch: { selectors: ['docker:label:x'] } },
      { name: 'too many selectors', patch: { selectors: Array.from({ length: 33 }, (_, i) => `unix:uid:${i}`) } },
      { name: 'selectors that are not a list', patch: { selectors: 'unix:uid:1' as unknown as string[] } },
      { name: 'empty spiffeId', patch: { spiffeId: '' } },
      { name: 'empty parentId', patch: { parentId: '' } },
      { name: 'zero x509 TTL', patch: { x509SvidTtlSeconds: 0 } },
      { name: 'fractional JWT TTL', patch: { jwtSvidTtlSeconds: 1.5 } },
      { name: 'negative JWT TTL', patch: { jwtSvidTtlSeconds: -1 } },
      { name: 'DNS name not a string', patch: { dnsNames: [7 as unknown as string] } },
      { name: 'empty DNS name', patch: { dnsNames: [''] } },
    ];
    for (const { name, patch } of badEntries) {
      it(`createEntry refuses ${name} with ERR_INTERNAL`, async () => {
        await rejectsCode(store.createEntry({ ...entry('/a'), ...patch }), 'ERR_INTERNAL', { prefix: 'store: ' });
        assert.deepEqual(await store.listEntries(), []);
      });
    }
  });

  describe('join tokens', () => {
    it('createJoinToken stores the hash with its expiry and creation time', async () => {
      const hash = hashJoinToken('t1');
      const expiresAt = new Date(T0 + 600_000);
      assert.deepEqual(await store.createJoinToken(hash, expiresAt), { hash, expiresAt, createdAt: new Date(T0) });
    });

    it('a hash that is already known is ERR_STORE_CONFLICT', async () => {
      const hash = hashJoinToken('t1');
      await store.createJoinToken(hash, new Date(T0 + 600_000));
      await rejectsCode(store.createJoinToken(hash, new Date(T0 + 900_000)), 'ERR_STORE_CONFLICT');
    });

    const notHashes: { name: string; value: string }[] = [
      { name: 'a raw token', value: 'raw-secret-join-token-0123456789' },
      { name: 'an uppercase digest', value: hashJoinToken('t').toUpperCase() },
      { name: 'a digest one character short', value: hashJoinToken('t').slice(1) },
    ];
    for (const { name, value } of notHashes) {
      it(`refuses ${name} where a hash belongs, with ERR_INTERNAL and without echoing it`, async () => {
        for (const p of [
          store.createJoinToken(value, new Date(T0 + 1000)),
          store.consumeJoinToken(value, new Date(T0)),
        ]) {
          await assert.rejects(p, (err: unknown) => {
            assert.ok(isSvidkitError(err, 'ERR_INTERNAL'));
            assert.ok(!err.message.includes(value));
            return true;
          });
        }
      });
    }

    const consumeCases: { name: string; setup: (hash: string) => Promise<void>; at: number; want: boolean }[] = [
      { name: 'a fresh token', setup: (h) => mk(h, T0 + 60_000), at: T0, want: true },
      { name: 'a token one millisecond before expiry', setup: (h) => mk(h, T0 + 1), at: T0, want: true },
      { name: 'a token at its expiry instant', setup: (h) => mk(h, T0), at: T0, want: false },
      { name: 'an expired token', setup: (h) => mk(h, T0 - 1), at: T0, want: false },
      { name: 'an unknown token', setup: async () => undefined, at: T0, want: false },
      {
        name: 'a replayed token',
        setup: async (h) => {
          await mk(h, T0 + 60_000);
          assert.equal(await store.consumeJoinToken(h, new Date(T0)), true);
        },
        at: T0 + 1,
        want: false,
      },
    ];
    async function mk(hash: string, expires: number): Promise<void> {
      await store.createJoinToken(hash, new Date(expires));
    }
    for (const { name, setup, at, want } of consumeCases) {
      it(`consumeJoinToken of ${name} is ${want}`, async () => {
        const hash = hashJoinToken(name);
        await setup(hash);
        assert.equal(await store.consumeJoinToken(hash, new Date(at)), want);
        // Whatever the first answer, a token never works twice.
        assert.equal(await store.consumeJoinToken(hash, new Date(at)), false);
      });
    }

    it('50 concurrent consumeJoinToken calls on one hash yield exactly one true', async () => {
      const hash = hashJoinToken('contended');
      await store.createJoinToken(hash, new Date(T0 + 60_000));
      const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeJoinToken(hash, new Date(T0))));
      assert.equal(results.filter((r) => r).length, 1);
    });

    it('consuming one token leaves the others usable', async () => {
      const [a, b] = [hashJoinToken('a'), hashJoinToken('b')];
      await store.createJoinToken(a, new Date(T0 + 60_000));
      await store.createJoinToken(b, new Date(T0 + 60_000));
      assert.equal(await store.consumeJoinToken(a, new Date(T0)), true);
      assert.equal(await store.consumeJoinToken(b, new Date(T0)), true);
    });
  });

  describe('attested agents', () => {
    const expiresAt = new Date(T0 + 3_600_000);

    it('upsertAgent creates an unbanned agent, then updates it keeping createdAt', async () => {
      const created = await store.upsertAgent({
        spiffeId: AGENT,
        attestationType: 'join_token',
        serial: '01',
        expiresAt,
      });
      assert.deepEqual(created, {
        spiffeId: AGENT,
        attestationType: 'join_token',
        serial: '01',
        expiresAt,
        banned: false,
        createdAt: new Date(T0),
        updatedAt: new Date(T0),
      });
      time.advance(5000);
      const later = new Date(T0 + 7_200_000);
      const updated = await store.upsertAgent({
        spiffeId: AGENT,
        attestationType: 'k8s_psat',
        serial: 'ff02',
        expiresAt: later,
      });
      assert.deepEqual(updated, {
        ...created,
        attestationType: 'k8s_psat',
        serial: 'ff02',
        expiresAt: later,
        updatedAt: new Date(T0 + 5000),
      });
      assert.deepEqual(await store.getAgent(AGENT), updated);
    });

    it('getAgent of an unknown agent is undefined and isBanned is false', async () => {
      assert.equal(await store.getAgent(AGENT), undefined);
      assert.equal(await store.isBanned(AGENT), false);
    });

    it('listAgents returns every agent ordered by SPIFFE ID', async () => {
      for (const id of ['c', 'a', 'b']) {
        await store.upsertAgent({ spiffeId: `${TD}/agent/${id}`, attestationType: 'k8s_psat', serial: id, expiresAt });
      }
      assert.deepEqual(
        (await store.listAgents()).map((a) => a.serial),
        ['a', 'b', 'c'],
      );
    });

    it('banAgent bans; a later upsert does not lift the ban', async () => {
      await store.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: '01', expiresAt });
      assert.equal(await store.isBanned(AGENT), false);
      time.advance(1000);
      const banned = await store.banAgent(AGENT);
      assert.equal(banned.banned, true);
      assert.deepEqual(banned.updatedAt, new Date(T0 + 1000));
      assert.equal(await store.isBanned(AGENT), true);
      time.advance(1000);
      const again = await store.upsertAgent({
        spiffeId: AGENT,
        attestationType: 'join_token',
        serial: '02',
        expiresAt,
      });
      assert.equal(again.banned, true);
      assert.equal(await store.isBanned(AGENT), true);
      // Banning twice is harmless and does not move updatedAt.
      time.advance(1000);
      assert.deepEqual((await store.banAgent(AGENT)).updatedAt, again.updatedAt);
    });

    it('banAgent of an unknown agent is ERR_STORE_NOT_FOUND', async () => {
      await rejectsCode(store.banAgent(AGENT), 'ERR_STORE_NOT_FOUND');
    });

    it('renewAgent moves the record only for the current or the previous serial', async () => {
      await store.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: 'a0', expiresAt });
      time.advance(1000);
      const later = new Date(T0 + 7_200_000);
      const r1 = await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'a0', serial: 'a1', expiresAt: later });
      assert.equal(r1?.serial, 'a1');
      assert.equal(r1?.previousSerial, 'a0');
      assert.deepEqual(r1?.expiresAt, later);
      assert.deepEqual(r1?.updatedAt, new Date(T0 + 1000));
      const r2 = await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'a1', serial: 'a2', expiresAt: later });
      assert.equal(r2?.previousSerial, 'a1');
      // a0 is two renewals old: nothing changes.
      time.advance(1000);
      assert.equal(
        await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'a0', serial: 'x', expiresAt: later }),
        undefined,
      );
      assert.deepEqual(await store.getAgent(AGENT), r2);
      // The previous serial may renew (its successor was lost) and stays the previous one.
      const r3 = await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'a1', serial: 'a3', expiresAt: later });
      assert.equal(r3?.serial, 'a3');
      assert.equal(r3?.previousSerial, 'a1');
      assert.equal(
        await store.renewAgent({ spiffeId: `${TD}/unknown`, presentedSerial: 'a1', serial: 'a4', expiresAt: later }),
        undefined,
      );
      await rejectsCode(
        store.renewAgent({ spiffeId: AGENT, presentedSerial: 'a3', serial: 'a3', expiresAt: later }),
        'ERR_INTERNAL',
        { prefix: 'store: ' },
      );
    });

    it('confirmAgentSerial ends the grace only for the current serial; an attestation ends it too', async () => {
      await store.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: 'b0', expiresAt });
      await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'b0', serial: 'b1', expiresAt });
      await store.confirmAgentSerial(AGENT, 'b0');
      assert.equal((await store.getAgent(AGENT))?.previousSerial, 'b0', 'the previous serial confirms nothing');
      await store.confirmAgentSerial(AGENT, 'b1');
      const confirmed = await store.getAgent(AGENT);
      assert.equal(confirmed?.previousSerial, undefined);
      assert.ok(!('previousSerial' in confirmed!));
      await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'b1', serial: 'b2', expiresAt });
      const attested = await store.upsertAgent({
        spiffeId: AGENT,
        attestationType: 'join_token',
        serial: 'c0',
        expiresAt,
      });
      assert.equal(attested.previousSerial, undefined);
      assert.equal(
        await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'b2', serial: 'x', expiresAt }),
        undefined,
      );
    });

    it('renewAgent refuses a banned agent', async () => {
      await store.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: 'd0', expiresAt });
      await store.banAgent(AGENT);
      assert.equal(
        await store.renewAgent({ spiffeId: AGENT, presentedSerial: 'd0', serial: 'd1', expiresAt }),
        undefined,
      );
      assert.equal((await store.getAgent(AGENT))?.serial, 'd0');
    });

    it('upsertAgent refuses an unknown attestation type and an invalid date with ERR_INTERNAL', async () => {
      await rejectsCode(
        store.upsertAgent({ spiffeId: AGENT, attestationType: 'x509pop' as 'join_token', serial: '01', expiresAt }),
        'ERR_INTERNAL',
        { prefix: 'store: ' },
      );
      await rejectsCode(
        store.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: '01', expiresAt: new Date(NaN) }),
        'ERR_INTERNAL',
        { prefix: 'store: ' },
      );
    });
  });

  describe('CA key journal', () => {
    it('putCaKey stores a record (keyPath optional) and listCaKeys returns it, by kind or all', async () => {
      const x = await store.putCaKey(caKey('x1', 'x509', 'active', { keyPath: '/var/lib/svidkit/x1.key' }));
      assert.deepEqual(x, {
        ...caKey('x1', 'x509', 'active', { keyPath: '/var/lib/svidkit/x1.key' }),
        tainted: false,
        createdAt: new Date(T0),
        updatedAt: new Date(T0),
      });
      time.advance(1);
      const j = await store.putCaKey(caKey('j1', 'jwt', 'active'));
      assert.equal('keyPath' in j, false);
      time.advance(1);
      const x2 = await store.putCaKey(caKey('x2', 'x509', 'prepared'));
      assert.deepEqual(await store.listCaKeys(), [x, j, x2]);
      assert.deepEqual(await store.listCaKeys('x509'), [x, x2]);
      assert.deepEqual(await store.listCaKeys('jwt'), [j]);
    });

    it('putCaKey refuses a duplicate id, a second active key of a kind and a tainted active key', async () => {
      await store.putCaKey(caKey('x1', 'x509', 'active'));
      const cases: { name: string; key: NewCaKeyRecord }[] = [
        { name: 'duplicate id', key: caKey('x1', 'x509', 'prepared') },
        { name: 'second active x509', key: caKey('x2', 'x509', 'active') },
        { name: 'tainted active', key: caKey('j1', 'jwt', 'active', { tainted: true }) },
      ];
      for (const { name, key } of cases) {
        await assert.rejects(store.putCaKey(key), (err: unknown) => isSvidkitError(err, 'ERR_STORE_CONFLICT'), name);
      }
      assert.deepEqual(
        (await store.listCaKeys()).map((k) => k.id),
        ['x1'],
      );
    });

    it('activating a prepared key retires the active key of that kind, and only that kind', async () => {
      await store.putCaKey(caKey('x1', 'x509', 'active'));
      await store.putCaKey(caKey('j1', 'jwt', 'active'));
      await store.putCaKey(caKey('x2', 'x509', 'prepared'));
      time.advance(1000);
      const x2 = await store.setCaKeyState('x2', 'active');
      assert.equal(x2.state, 'active');
      assert.deepEqual(x2.updatedAt, new Date(T0 + 1000));
      const states = Object.fromEntries((await store.listCaKeys()).map((k) => [k.id, k.state]));
      assert.deepEqual(states, { x1: 'old', j1: 'active', x2: 'active' });
    });

    it('setCaKeyState moves forward, treats the same state as a no-op and refuses going back', async () => {
      await store.putCaKey(caKey('k', 'jwt', 'prepared'));
      const steps: { to: CaKeyState; ok: boolean }[] = [
        { to: 'active', ok: true },
        { to: 'active', ok: true },
        { to: 'prepared', ok: false },
        { to: 'old', ok: true },
        { to: 'active', ok: false },
        { to: 'dropped', ok: true },
        { to: 'old', ok: false },
      ];
      for (const { to, ok } of steps) {
        const before = (await store.listCaKeys())[0]!;
        time.advance(10);
        if (ok) {
          const after = await store.setCaKeyState('k', to);
          assert.equal(after.state, to);
          const moved = before.state !== to;
          assert.deepEqual(after.updatedAt, moved ? time.now() : before.updatedAt, `to ${to}`);
        } else {
          await rejectsCode(store.setCaKeyState('k', to), 'ERR_STORE_CONFLICT');
          assert.deepEqual((await store.listCaKeys())[0], before);
        }
      }
    });

    it('a prepared key may be dropped without ever being active', async () => {
      await store.putCaKey(caKey('k', 'x509', 'prepared'));
      assert.equal((await store.setCaKeyState('k', 'dropped')).state, 'dropped');
    });

    it('taintCaKey marks a key tainted, and a tainted key cannot become active', async () => {
      await store.putCaKey(caKey('x1', 'x509', 'active'));
      await store.putCaKey(caKey('x2', 'x509', 'prepared'));
      time.advance(1000);
      const t = await store.taintCaKey('x2');
      assert.equal(t.tainted, true);
      assert.deepEqual(t.updatedAt, new Date(T0 + 1000));
      await rejectsCode(store.setCaKeyState('x2', 'active'), 'ERR_STORE_CONFLICT', { message: /tainted/ });
      // The refused activation must not have retired the current key.
      assert.equal((await store.listCaKeys('x509')).find((k) => k.id === 'x1')!.state, 'active');
      // An active key can be tainted too (compromise); it stays active until the CA rotates.
      const x1 = await store.taintCaKey('x1');
      assert.deepEqual([x1.state, x1.tainted], ['active', true]);
    });

    it('setCaKeyState and taintCaKey of an unknown id are ERR_STORE_NOT_FOUND', async () => {
      await rejectsCode(store.setCaKeyState('nope', 'active'), 'ERR_STORE_NOT_FOUND');
      await rejectsCode(store.taintCaKey('nope'), 'ERR_STORE_NOT_FOUND');
    });
  });

  describe('bundle sequence', () => {
    it('starts at 0 and nextBundleSequence returns 1, 2, 3 ...', async () => {
      assert.equal(await store.currentBundleSequence(), 0);
      assert.equal(await store.nextBundleSequence(), 1);
      assert.equal(await store.nextBundleSequence(), 2);
      assert.equal(await store.currentBundleSequence(), 2);
    });

    it('concurrent nextBundleSequence calls get distinct consecutive values', async () => {
      const got = await Promise.all(Array.from({ length: 20 }, () => store.nextBundleSequence()));
      assert.deepEqual(
        [...got].sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(await store.currentBundleSequence(), 20);
    });
  });

  describe('close', () => {
    it('is idempotent, and every method afterwards is ERR_STORE_IO', async () => {
      const s = await SqliteStore.open(':memory:');
      await s.close();
      await s.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['createEntry', () => s.createEntry(entry('/a'))],
        ['getEntry', () => s.getEntry('x')],
        ['listEntries', () => s.listEntries()],
        ['deleteEntry', () => s.deleteEntry('x')],
        ['createJoinToken', () => s.createJoinToken(hashJoinToken('t'), new Date(T0))],
        ['consumeJoinToken', () => s.consumeJoinToken(hashJoinToken('t'), new Date(T0))],
        [
          'upsertAgent',
          () => s.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: '1', expiresAt: new Date(T0) }),
        ],
        ['getAgent', () => s.getAgent(AGENT)],
        ['listAgents', () => s.listAgents()],
        ['banAgent', () => s.banAgent(AGENT)],
        ['isBanned', () => s.isBanned(AGENT)],
        ['putCaKey', () => s.putCaKey(caKey('k', 'jwt', 'prepared'))],
        ['listCaKeys', () => s.listCaKeys()],
        ['setCaKeyState', () => s.setCaKeyState('k', 'active')],
        ['taintCaKey', () => s.taintCaKey('k')],
        ['nextBundleSequence', () => s.nextBundleSequence()],
        ['currentBundleSequence', () => s.currentBundleSequence()],
      ];
      for (const [name, call] of calls) {
        await assert.rejects(call(), (err: unknown) => isSvidkitError(err, 'ERR_STORE_IO'), name);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// File stores
// ---------------------------------------------------------------------------------------------

describe('store: SqliteStore files', () => {
  useTmpDir();

  it('creates a missing directory 0700 and the file 0600, and leaves an existing directory alone', async () => {
    const dir = path.join(tmp, 'state', 'ca');
    const file = path.join(dir, 'datastore.sqlite3');
    const store = await SqliteStore.open(file);
    try {
      assert.equal(store.path, file);
      assert.equal(mode(dir), 0o700);
      assert.equal(mode(file), 0o600);
      await store.createEntry(entry('/a'));
      // SQLite gives its WAL the main file's mode.
      assert.equal(mode(`${file}-wal`), 0o600);
    } finally {
      await store.close();
    }

    const shared = path.join(tmp, 'shared');
    fs.mkdirSync(shared, { mode: 0o755 });
    fs.chmodSync(shared, 0o755);
    const s2 = await SqliteStore.open(path.join(shared, 'ca.db'));
    await s2.close();
    assert.equal(mode(shared), 0o755);
    assert.equal(mode(path.join(shared, 'ca.db')), 0o600);
  });

  it('uses the WAL journal and records the schema version', async () => {
    const file = path.join(tmp, 'ca.db');
    const store = await SqliteStore.open(file);
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.prepare('SELECT version FROM svidkit_schema').pluck().get(), SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it('migrates a schema 1 store to the current schema, keeping its agents', async () => {
    const file = path.join(tmp, 'v1.db');
    const db = new Database(file);
    db.exec(SCHEMA_TABLE_SQL);
    db.exec(MIGRATIONS[0]!.sql);
    db.prepare('INSERT INTO svidkit_schema (id, version) VALUES (1, 1)').run();
    db.prepare(
      `INSERT INTO attested_agents (spiffe_id, attestation_type, serial, expires_at, banned, created_at, updated_at)
       VALUES (?, 'join_token', 'aa01', ?, 0, ?, ?)`,
    ).run(AGENT, T0 + 3_600_000, T0, T0);
    db.close();

    const store = await SqliteStore.open(file, { clock: manualClock().clock });
    try {
      assert.deepEqual(await store.getAgent(AGENT), {
        spiffeId: AGENT,
        attestationType: 'join_token',
        serial: 'aa01',
        expiresAt: new Date(T0 + 3_600_000),
        banned: false,
        createdAt: new Date(T0),
        updatedAt: new Date(T0),
      });
      const renewed = await store.renewAgent({
        spiffeId: AGENT,
        presentedSerial: 'aa01',
        serial: 'aa02',
        expiresAt: new Date(T0 + 7_200_000),
      });
      assert.equal(renewed?.previousSerial, 'aa01');
    } finally {
      await store.close();
    }
    const ro = new Database(file, { readonly: true });
    try {
      assert.equal(ro.prepare('SELECT version FROM svidkit_schema').pluck().get(), SCHEMA_VERSION);
    } finally {
      ro.close();
    }
  });

  it('migrates a schema 2 store with entries: every entry survives, with no selectors, in its order', async () => {
    // The released migrations are frozen, so running the first two is exactly what svidkit of
    // schema 2 made; the rows are written in its column layout, as its store wrote them.
    const file = path.join(tmp, 'v2.db');
    const db = new Database(file);
    db.exec(SCHEMA_TABLE_SQL);
    for (const m of MIGRATIONS.filter((m) => m.version <= 2)) db.exec(m.sql);
    db.prepare('INSERT INTO svidkit_schema (id, version) VALUES (1, 2)').run();
    const insert = db.prepare(
      `INSERT INTO registration_entries
         (id, spiffe_id, parent_id, x509_svid_ttl_seconds, jwt_svid_ttl_seconds, dns_names, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    // Same creation time, ids in the opposite order: only the rowid keeps b before a.
    insert.run('ffffffff-0000-4000-8000-000000000001', `${TD}/b`, AGENT, 600, 300, '["b.example.org"]', T0);
    insert.run('00000000-0000-4000-8000-000000000002', `${TD}/a`, AGENT, 3600, 60, '[]', T0);
    insert.run('77777777-0000-4000-8000-000000000003', `${TD}/a`, `${TD}/agent2`, 3600, 60, '[]', T0 + 1);
    db.prepare(
      `INSERT INTO attested_agents (spiffe_id, attestation_type, serial, previous_serial, expires_at, banned, created_at, updated_at)
       VALUES (?, 'join_token', 'aa02', 'aa01', ?, 0, ?, ?)`,
    ).run(AGENT, T0 + 3_600_000, T0, T0);
    db.close();

    const store = await SqliteStore.open(file, { clock: manualClock(T0 + 10).clock });
    try {
      assert.deepEqual(await store.listEntries(), [
        {
          id: 'ffffffff-0000-4000-8000-000000000001',
          spiffeId: `${TD}/b`,
          parentId: AGENT,
          x509SvidTtlSeconds: 600,
          jwtSvidTtlSeconds: 300,
          dnsNames: ['b.example.org'],
          selectors: [],
          createdAt: new Date(T0),
        },
        {
          id: '00000000-0000-4000-8000-000000000002',
          spiffeId: `${TD}/a`,
          parentId: AGENT,
          x509SvidTtlSeconds: 3600,
          jwtSvidTtlSeconds: 60,
          dnsNames: [],
          selectors: [],
          createdAt: new Date(T0),
        },
        {
          id: '77777777-0000-4000-8000-000000000003',
          spiffeId: `${TD}/a`,
          parentId: `${TD}/agent2`,
          x509SvidTtlSeconds: 3600,
          jwtSvidTtlSeconds: 60,
          dnsNames: [],
          selectors: [],
          createdAt: new Date(T0 + 1),
        },
      ]);
      assert.equal((await store.listEntries({ spiffeId: `${TD}/a` })).length, 2);
      assert.equal((await store.getAgent(AGENT))?.previousSerial, 'aa01');
      // The old uniqueness still holds for entries without selectors; the new one allows a selector set.
      await rejectsCode(store.createEntry(entry('/a')), 'ERR_STORE_CONFLICT');
      const withUid = await store.createEntry({ ...entry('/a'), selectors: ['unix:uid:1000'] });
      assert.deepEqual(withUid.selectors, ['unix:uid:1000']);
    } finally {
      await store.close();
    }

    // A migrated store has exactly the schema of a new one.
    const fresh = path.join(tmp, 'fresh.db');
    await (await SqliteStore.open(fresh)).close();
    const schemaOf = (f: string) => {
      const ro = new Database(f, { readonly: true });
      try {
        return {
          version: ro.prepare('SELECT version FROM svidkit_schema').pluck().get(),
          objects: ro
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .all(),
        };
      } finally {
        ro.close();
      }
    };
    const migrated = schemaOf(file);
    assert.equal(migrated.version, SCHEMA_VERSION);
    assert.deepEqual(migrated, schemaOf(fresh));
  });

  it('an entry whose stored selectors were edited into an invalid or non-canonical list is ERR_STORE_CORRUPT', async () => {
    const file = path.join(tmp, 'ca.db');
    const s1 = await SqliteStore.open(file);
    const e = await s1.createEntry({ ...entry('/w'), selectors: ['unix:uid:1'] });
    await s1.close();
    for (const stored of ['not json', '["unix:uid:x"]', '["unix:uid:2","unix:uid:1"]', '["unix:uid:1","unix:uid:1"]']) {
      const db = new Database(file);
      db.prepare('UPDATE registration_entries SET selectors = ? WHERE id = ?').run(stored, e.id);
      db.close();
      const s2 = await SqliteStore.open(file);
      try {
        await rejectsCode(s2.getEntry(e.id), 'ERR_STORE_CORRUPT', { message: /selectors/ });
        await rejectsCode(s2.listEntries(), 'ERR_STORE_CORRUPT');
      } finally {
        await s2.close();
      }
    }
  });

  it('an empty existing file is taken as a new store', async () => {
    const file = path.join(tmp, 'empty.db');
    fs.writeFileSync(file, '', { mode: 0o600 });
    const store = await SqliteStore.open(file);
    await store.createEntry(entry('/a'));
    await store.close();
  });

  it('reopening keeps every kind of record', async () => {
    const file = path.join(tmp, 'ca.db');
    const time = manualClock();
    const s1 = await SqliteStore.open(file, { clock: time.clock });
    const e = await s1.createEntry({ ...entry('/a'), dnsNames: ['a.example.org'] });
    const hashUsed = hashJoinToken('used');
    const hashFresh = hashJoinToken('fresh');
    await s1.createJoinToken(hashUsed, new Date(T0 + 60_000));
    await s1.createJoinToken(hashFresh, new Date(T0 + 60_000));
    assert.equal(await s1.consumeJoinToken(hashUsed, new Date(T0)), true);
    await s1.upsertAgent({ spiffeId: AGENT, attestationType: 'join_token', serial: 'aa', expiresAt: new Date(T0 + 1) });
    await s1.upsertAgent({ spiffeId: `${TD}/bad`, attestationType: 'k8s_psat', serial: 'bb', expiresAt: new Date(T0) });
    await s1.banAgent(`${TD}/bad`);
    await s1.putCaKey(caKey('x1', 'x509', 'active', { keyPath: '/k/x1' }));
    await s1.putCaKey(caKey('j1', 'jwt', 'prepared'));
    await s1.taintCaKey('j1');
    await s1.nextBundleSequence();
    await s1.nextBundleSequence();
    const before = {
      entries: await s1.listEntries(),
      agents: await s1.listAgents(),
      keys: await s1.listCaKeys(),
    };
    await s1.close();

    const s2 = await SqliteStore.open(file, { clock: time.clock });
    try {
      assert.deepEqual(await s2.getEntry(e.id), e);
      assert.deepEqual(await s2.listEntries(), before.entries);
      assert.deepEqual(await s2.listAgents(), before.agents);
      assert.equal(await s2.isBanned(`${TD}/bad`), true);
      assert.deepEqual(await s2.listCaKeys(), before.keys);
      assert.equal(await s2.currentBundleSequence(), 2);
      assert.equal(await s2.nextBundleSequence(), 3);
      assert.equal(await s2.consumeJoinToken(hashUsed, new Date(T0)), false);
      assert.equal(await s2.consumeJoinToken(hashFresh, new Date(T0)), true);
      await rejectsCode(s2.createEntry(entry('/a')), 'ERR_STORE_CONFLICT');
    } finally {
      await s2.close();
    }
  });

  it('never stores the raw join token', async () => {
    const file = path.join(tmp, 'ca.db');
    const token = `jt-${randomBytes(16).toString('hex')}`;
    const store = await SqliteStore.open(file);
    await store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 60_000));
    await store.close();
    assert.equal(fs.readFileSync(file).includes(token), false);
    assert.equal(fs.readFileSync(file).includes(hashJoinToken(token)), true);
  });

  it('two connections to one file still let a join token through only once', async () => {
    const file = path.join(tmp, 'ca.db');
    const a = await SqliteStore.open(file);
    const b = await SqliteStore.open(file);
    try {
      const hash = hashJoinToken('shared');
      await a.createJoinToken(hash, new Date(T0 + 60_000));
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).consumeJoinToken(hash, new Date(T0))),
      );
      assert.equal(results.filter((r) => r).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a path that is a directory, or under a regular file, is ERR_STORE_IO', async () => {
    await rejectsCode(SqliteStore.open(tmp), 'ERR_STORE_IO');
    const plain = path.join(tmp, 'plain');
    fs.writeFileSync(plain, 'x');
    await rejectsCode(SqliteStore.open(path.join(plain, 'ca.db')), 'ERR_STORE_IO');
    assert.equal(fs.readFileSync(plain, 'utf8'), 'x');
  });

  it('survives kill -9 mid-write: every reported commit is there and the file passes quick_check', async function () {
    const file = path.join(tmp, 'ca.db');
    const writer = script(
      'writer.mjs',
      `import { SqliteStore } from ${JSON.stringify(STORE_MODULE_URL)};
const store = await SqliteStore.open(process.argv[2]);
for (let i = 0; ; i++) {
  await store.createEntry({
    spiffeId: 'spiffe://example.org/w/' + i,
    parentId: 'spiffe://example.org/agent',
    x509SvidTtlSeconds: 3600,
    jwtSvidTtlSeconds: 300,
    dnsNames: ['w' + i + '.example.org'],
  });
  const seq = await store.nextBundleSequence();
  // stdout to a pipe is synchronous on Linux: once this line is out, the commit above returned.
  process.stdout.write('committed ' + i + ' ' + seq + '\\n');
}
`,
    );
    const KILL_AFTER = 150;
    const child = new Child(writer, [file]);
    await child.waitFor((line) => line.startsWith(`committed ${KILL_AFTER} `));
    child.proc.kill('SIGKILL');
    const { signal } = await child.exited;
    assert.equal(signal, 'SIGKILL');

    const reported = child.lines.map((line) => {
      const m = /^committed (\d+) (\d+)$/.exec(line);
      assert.ok(m, `unexpected child output: ${line}`);
      return { i: Number(m[1]), seq: Number(m[2]) };
    });
    assert.ok(reported.length > KILL_AFTER);
    // Killed, not closed: the WAL is still there and reopening must recover from it.
    assert.ok(fs.existsSync(`${file}-wal`));

    const check = new Database(file, { readonly: true });
    try {
      assert.deepEqual(check.pragma('quick_check'), [{ quick_check: 'ok' }]);
    } finally {
      check.close();
    }

    const store = await SqliteStore.open(file);
    try {
      const ids = new Set((await store.listEntries()).map((e) => e.spiffeId));
      for (const { i } of reported) assert.ok(ids.has(`${TD}/w/${i}`), `entry ${i} was reported committed but is lost`);
      // At most the one write in flight at the kill may be there unreported.
      assert.ok(ids.size >= reported.length && ids.size <= reported.length + 1, `${ids.size} entries`);
      assert.ok((await store.currentBundleSequence()) >= reported.at(-1)!.seq);
    } finally {
      await store.close();
    }
  });

  describe('refuses damaged or foreign files and leaves them unchanged', () => {
    const cases: { name: string; make: (file: string) => Promise<void>; message?: RegExp }[] = [
      {
        name: 'random bytes',
        make: async (file) => fs.writeFileSync(file, randomBytes(16384)),
        message: /not an SQLite database/,
      },
      {
        name: 'a text file',
        make: async (file) => fs.writeFileSync(file, 'trust_domain = "example.org"\n'.repeat(50)),
        message: /not an SQLite database/,
      },
      {
        name: 'a file shorter than the SQLite header',
        make: async (file) => fs.writeFileSync(file, Buffer.from('SQLite format 3\0', 'latin1')),
        message: /not an SQLite database/,
      },
      {
        name: 'an SQLite header followed by garbage',
        make: async (file) =>
          fs.writeFileSync(file, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), randomBytes(8176)])),
      },
      {
        name: 'a store whose middle pages were overwritten',
        make: async (file) => {
          await makeStoreFile(file, 400);
          const buf = fs.readFileSync(file);
          const pageSize = buf.readUInt16BE(16) === 1 ? 65536 : buf.readUInt16BE(16);
          const pages = buf.length / pageSize;
          assert.ok(pages >= 8, `only ${pages} pages`);
          const start = Math.floor(pages / 2) * pageSize;
          buf.fill(0xa5, start, start + 2 * pageSize);
          fs.writeFileSync(file, buf);
        },
      },
      {
        name: 'a store truncated to half its pages',
        make: async (file) => {
          await makeStoreFile(file, 400);
          const buf = fs.readFileSync(file);
          const pageSize = buf.readUInt16BE(16);
          fs.writeFileSync(file, buf.subarray(0, Math.floor(buf.length / pageSize / 2) * pageSize));
        },
      },
      {
        name: 'an SQLite database that is not a svidkit store',
        make: async (file) => {
          const db = new Database(file);
          db.exec("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('alice')");
          db.close();
        },
        message: /not a svidkit store/,
      },
      {
        name: 'a store with a newer schema version',
        make: async (file) => {
          await makeStoreFile(file, 3);
          const db = new Database(file);
          db.prepare('UPDATE svidkit_schema SET version = ?').run(SCHEMA_VERSION + 1);
          db.close();
        },
        message: new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than`),
      },
    ];
    for (const { name, make, message } of cases) {
      it(`${name} -> ERR_STORE_CORRUPT`, async () => {
        const file = path.join(tmp, 'ca.db');
        await make(file);
        const before = sha256File(file);
        const size = fs.statSync(file).size;
        await rejectsCode(SqliteStore.open(file), 'ERR_STORE_CORRUPT', { message: message });
        // Twice, to be sure a first refusal did not repair, rewrite or truncate anything.
        await rejectsCode(SqliteStore.open(file), 'ERR_STORE_CORRUPT', { message: message });
        assert.equal(fs.statSync(file).size, size);
        assert.equal(sha256File(file), before);
      });
    }
  });

  describe('another process holding the lock', () => {
    const holders: { name: string; sql: string[] }[] = [
      { name: 'a write transaction (BEGIN IMMEDIATE)', sql: ['BEGIN IMMEDIATE'] },
      {
        name: 'an exclusive lock that also blocks readers',
        sql: ['PRAGMA locking_mode = EXCLUSIVE', 'BEGIN EXCLUSIVE'],
      },
    ];

    function holdLock(file: string, sql: string[]): Child {
      const holder = script(
        'holder.mjs',
        `const { default: Database } = await import(${JSON.stringify(BETTER_SQLITE_URL)});
const db = new Database(process.argv[2], { fileMustExist: true });
for (const sql of JSON.parse(process.argv[3])) db.exec(sql);
process.stdout.write('locked\\n');
// Hold the lock until the test closes our stdin.
process.stdin.on('end', () => { db.close(); process.exit(0); });
process.stdin.resume();
`,
      );
      return new Child(holder, [file, JSON.stringify(sql)]);
    }

    async function release(child: Child): Promise<void> {
      child.proc.stdin!.end();
      const { code } = await child.exited;
      assert.equal(code, 0);
    }

    for (const { name, sql } of holders) {
      it(`open fails with ERR_STORE_LOCKED while another process holds ${name}`, async () => {
        const file = path.join(tmp, 'ca.db');
        await makeStoreFile(file, 5);
        const child = holdLock(file, sql);
        try {
          await child.waitFor((line) => line === 'locked');
          await rejectsCode(SqliteStore.open(file, { busyTimeoutMs: 200 }), 'ERR_STORE_LOCKED', { message: /locked/ });
        } finally {
          await release(child);
        }
        // Once the lock is gone the same file opens with everything in it.
        const store = await SqliteStore.open(file, { busyTimeoutMs: 200 });
        assert.equal((await store.listEntries()).length, 5);
        await store.close();
      });
    }

    it('a write on an open store fails with ERR_STORE_LOCKED while another process holds the write lock', async () => {
      const file = path.join(tmp, 'ca.db');
      const store = await SqliteStore.open(file, { busyTimeoutMs: 200 });
      try {
        await store.createEntry(entry('/a'));
        const child = holdLock(file, ['BEGIN IMMEDIATE']);
        try {
          await child.waitFor((line) => line === 'locked');
          await rejectsCode(store.createEntry(entry('/b')), 'ERR_STORE_LOCKED');
          await rejectsCode(store.nextBundleSequence(), 'ERR_STORE_LOCKED');
          // WAL readers are not blocked by a writer.
          assert.equal((await store.listEntries()).length, 1);
        } finally {
          await release(child);
        }
        await store.createEntry(entry('/b'));
        assert.equal((await store.listEntries()).length, 2);
      } finally {
        await store.close();
      }
    });
  });
});
