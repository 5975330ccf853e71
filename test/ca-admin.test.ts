/**
 * Tests of the Admin service (lib/ca/admin-service.ts) over real gRPC: a grpc-js server on a Unix
 * socket in a temporary directory, backed by a real CaContext (SQLite store, key manager, config,
 * captured logger). Every refusal is checked by its exact status code and leaves the store as it
 * was; every change is checked for its single audit line. A second part serves the handlers over
 * mTLS and plain TCP to show who may call.
 */
import { strict as assert } from 'node:assert';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import {
  type ChannelCredentials,
  type ClientUnaryCall,
  credentials,
  type requestCallback,
  Server,
  ServerCredentials,
  status,
} from '@grpc/grpc-js';
import {
  adminHandlers,
  type AdminServiceOptions,
  isValidDnsName,
  MAX_ENTRY_DNS_NAMES,
  UNIX_SOCKET_CALLER,
} from '../lib/ca/admin-service.js';
import { AGENT_PATH_PREFIX } from '../lib/ca-api/index.js';
import type { CaContext } from '../lib/ca/context.js';
import { MAX_LIVE_KEYS_PER_KIND } from '../lib/ca/keys.js';
import { agentIdForJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { caProto } from '../lib/ca-api/proto.js';
import { generateKeyPair, privateKeyToPem } from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { buildCsr } from '../lib/x509/csr.js';
import { Certificate } from '../lib/x509/certificate.js';
import { TestCa } from './helpers/ca.js';
import { createTestCaContext, type TestCaContext } from './helpers/ca-context.js';
import { rejectsStatus } from './helpers/assert.js';
import type { GeneratedAdminClient as AdminClient, RegistrationEntry as EntryMessage } from '../lib/ca-api/index.js';

const TD = 'example.org';
const ADMIN_ID = 'spiffe://example.org/ops/alice';
const PARENT = 'spiffe://example.org/svidkit/agent/join_token/aaaa';
const OTHER_PARENT = 'spiffe://example.org/svidkit/agent/join_token/bbbb';
const HOUR = 3600_000;

type Unary<Req, Res> = (req: Req, cb: requestCallback<Res>) => ClientUnaryCall;

/** One unary call as a promise. */
function rpc<Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

function shutdown(server: Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

/** A started Admin server and a client of it. */
interface Served {
  client: AdminClient;
  close(): Promise<void>;
}

/** Serves adminHandlers(ctx, options) at `address` and connects a client to it. */
async function serve(
  ctx: CaContext,
  address: string,
  serverCreds: ServerCredentials,
  clientCreds: ChannelCredentials,
  options?: AdminServiceOptions,
  clientOptions: Record<string, string> = {},
): Promise<Served> {
  const server = new Server();
  server.addService(caProto().svidkit.ca.v1.Admin.service, adminHandlers(ctx, options));
  const port = await bind(server, address, serverCreds);
  const target = address.startsWith('unix:') ? address : `127.0.0.1:${port}`;
  const client = new (caProto().svidkit.ca.v1.Admin)(target, clientCreds, clientOptions);
  return {
    client,
    async close() {
      client.close();
      await shutdown(server);
    },
  };
}

/** The audit lines of one event. */
function auditLines(t: TestCaContext, event: string): Record<string, unknown>[] {
  return t.logs.lines().filter((l) => l.event === event);
}

/** A well-formed entry request with the given fields replaced. */
function entry(fields: Partial<EntryMessage> = {}): EntryMessage {
  return {
    spiffeId: 'spiffe://example.org/ns/prod/sa/web',
    parentId: PARENT,
    x509SvidTtlSeconds: 0,
    jwtSvidTtlSeconds: 0,
    dnsNames: [],
    ...fields,
  };
}

describe('ca/admin-service over a Unix socket', function () {
  let t: TestCaContext;
  let srv: Served;
  let c: AdminClient;

  // Shorthands for the typed calls.
  const createEntry = (e: EntryMessage | null) => rpc(c.createEntry.bind(c), { entry: e });
  const listEntries = (parentId = '', spiffeId = '') => rpc(c.listEntries.bind(c), { parentId, spiffeId });
  const deleteEntry = (id: string) => rpc(c.deleteEntry.bind(c), { id });
  const createJoinToken = (ttlSeconds: number) => rpc(c.createJoinToken.bind(c), { ttlSeconds });
  const listAgents = () => rpc(c.listAgents.bind(c), {});
  const banAgent = (spiffeId: string) => rpc(c.banAgent.bind(c), { spiffeId });
  const getCaStatus = () => rpc(c.getCaStatus.bind(c), {});
  const rotateCa = (kind: string) => rpc(c.rotateCa.bind(c), { kind });
  const taintKey = (id: string) => rpc(c.taintKey.bind(c), { id });

  before(async () => {
    t = await createTestCaContext();
    srv = await serve(
      t.ctx,
      `unix://${join(t.dir, 'admin.sock')}`,
      ServerCredentials.createInsecure(),
      credentials.createInsecure(),
    );
    c = srv.client;
  });

  after(async () => {
    await srv?.close();
    await t?.close();
  });

  describe('entries', () => {
    const maxX509 = () => Math.floor(t.keys.maxSvidTtlMs / 1000);
    const maxJwt = () => Math.floor(Math.min(t.keys.maxSvidTtlMs, t.keys.maxJwtSvidTtlMs) / 1000);

    it('creates an entry and returns what the store holds', async () => {
      t.logs.clear();
      const res = await createEntry(
        entry({
          spiffeId: 'spiffe://example.org/ns/prod/sa/api',
          x509SvidTtlSeconds: 600,
          jwtSvidTtlSeconds: 120,
          dnsNames: ['api.prod.svc', '*.api.example.org'],
        }),
      );
      const e = res.entry!;
      assert.match(e.id, /^[0-9a-f-]{36}$/);
      assert.equal(e.spiffeId, 'spiffe://example.org/ns/prod/sa/api');
      assert.equal(e.parentId, PARENT);
      assert.equal(e.x509SvidTtlSeconds, 600);
      assert.equal(e.jwtSvidTtlSeconds, 120);
      assert.deepEqual(e.dnsNames, ['api.prod.svc', '*.api.example.org']);
      assert.equal(e.createdAt, Math.floor(t.clock().getTime() / 1000));
      const stored = await t.store.getEntry(e.id);
      assert.ok(stored);
      assert.deepEqual(
        {
          spiffeId: stored.spiffeId,
          parentId: stored.parentId,
          x509: stored.x509SvidTtlSeconds,
          jwt: stored.jwtSvidTtlSeconds,
          dns: stored.dnsNames,
        },
        { spiffeId: e.spiffeId, parentId: PARENT, x509: 600, jwt: 120, dns: e.dnsNames },
      );
      const lines = auditLines(t, 'admin_entry_created');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.admin, UNIX_SOCKET_CALLER);
      assert.equal(lines[0]?.entry_id, e.id);
      assert.equal(lines[0]?.spiffe_id, e.spiffeId);
      assert.equal(lines[0]?.level, 'info');
    });

    it('fills TTLs of 0 from the configuration defaults', async () => {
      const e = (await createEntry(entry({ spiffeId: 'spiffe://example.org/defaults' }))).entry!;
      assert.equal(e.x509SvidTtlSeconds, t.ctx.config.defaultX509SvidTtlMs / 1000);
      assert.equal(e.jwtSvidTtlSeconds, t.ctx.config.defaultJwtSvidTtlMs / 1000);
    });

    it('reserves /svidkit and what is under it, not names that merely start with it', async () => {
      const e = (await createEntry(entry({ spiffeId: 'spiffe://example.org/svidkitx/web' }))).entry!;
      assert.equal(e.spiffeId, 'spiffe://example.org/svidkitx/web');
    });

    it('accepts the TTL bounds, 32 DNS names and a 253-character name', async () => {
      const long = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
      assert.equal(long.length, 253);
      const names = [long, ...Array.from({ length: MAX_ENTRY_DNS_NAMES - 1 }, (_, i) => `n${i}.example.org`)];
      const low = await createEntry(
        entry({ spiffeId: 'spiffe://example.org/bounds/low', x509SvidTtlSeconds: 30, jwtSvidTtlSeconds: 30 }),
      );
      assert.equal(low.entry?.x509SvidTtlSeconds, 30);
      const high = await createEntry(
        entry({
          spiffeId: 'spiffe://example.org/bounds/high',
          x509SvidTtlSeconds: maxX509(),
          jwtSvidTtlSeconds: maxJwt(),
          dnsNames: names,
        }),
      );
      assert.equal(high.entry?.x509SvidTtlSeconds, maxX509());
      assert.equal(high.entry?.jwtSvidTtlSeconds, maxJwt());
      assert.equal(high.entry?.dnsNames.length, MAX_ENTRY_DNS_NAMES);
    });

    const refusals: { name: string; entry: () => EntryMessage | null; code?: status }[] = [
      { name: 'no entry', entry: () => null },
      { name: 'an empty spiffe_id', entry: () => entry({ spiffeId: '' }) },
      { name: 'a spiffe_id that is no URI', entry: () => entry({ spiffeId: 'web' }) },
      { name: 'a spiffe_id of another scheme', entry: () => entry({ spiffeId: 'https://example.org/web' }) },
      { name: 'an uppercase trust domain', entry: () => entry({ spiffeId: 'spiffe://Example.org/web' }) },
      { name: 'an empty path segment', entry: () => entry({ spiffeId: 'spiffe://example.org/a//b' }) },
      { name: 'a dot segment', entry: () => entry({ spiffeId: 'spiffe://example.org/a/../b' }) },
      { name: 'a trailing slash', entry: () => entry({ spiffeId: 'spiffe://example.org/web/' }) },
      { name: 'a percent-encoded path', entry: () => entry({ spiffeId: 'spiffe://example.org/w%65b' }) },
      { name: 'a query', entry: () => entry({ spiffeId: 'spiffe://example.org/web?x=1' }) },
      { name: 'another trust domain', entry: () => entry({ spiffeId: 'spiffe://other.org/web' }) },
      { name: 'a trust domain ID (no path)', entry: () => entry({ spiffeId: 'spiffe://example.org' }) },
      {
        name: 'an agent ID',
        entry: () => entry({ spiffeId: `spiffe://example.org${AGENT_PATH_PREFIX}join_token/abc` }),
      },
      {
        name: 'an agent ID of another attestor',
        entry: () => entry({ spiffeId: `spiffe://example.org${AGENT_PATH_PREFIX}k8s_psat/c1/node-1` }),
      },
      { name: "the CA's own serving ID", entry: () => entry({ spiffeId: 'spiffe://example.org/svidkit/ca' }) },
      { name: 'the reserved /svidkit path', entry: () => entry({ spiffeId: 'spiffe://example.org/svidkit' }) },
      { name: 'a path under /svidkit/', entry: () => entry({ spiffeId: 'spiffe://example.org/svidkit/web' }) },
      { name: 'an empty parent_id', entry: () => entry({ parentId: '' }) },
      { name: 'an invalid parent_id', entry: () => entry({ parentId: 'agent-1' }) },
      { name: 'a parent_id of another trust domain', entry: () => entry({ parentId: 'spiffe://other.org/agent' }) },
      { name: 'an X.509 TTL under 30 s', entry: () => entry({ x509SvidTtlSeconds: 29 }) },
      { name: 'a negative X.509 TTL', entry: () => entry({ x509SvidTtlSeconds: -60 }) },
      {
        name: 'an X.509 TTL over the maximum',
        entry: () => entry({ x509SvidTtlSeconds: Math.floor(t.keys.maxSvidTtlMs / 1000) + 1 }),
      },
      { name: 'a JWT TTL under 30 s', entry: () => entry({ jwtSvidTtlSeconds: 1 }) },
      {
        name: 'a JWT TTL over the maximum',
        entry: () => entry({ jwtSvidTtlSeconds: Math.floor(t.keys.maxJwtSvidTtlMs / 1000) + 1 }),
      },
      { name: 'a huge TTL', entry: () => entry({ x509SvidTtlSeconds: 2 ** 31 - 1 }) },
      { name: 'an empty DNS name', entry: () => entry({ dnsNames: [''] }) },
      { name: 'a DNS name with an empty label', entry: () => entry({ dnsNames: ['a..example.org'] }) },
      { name: 'a DNS name with a trailing dot', entry: () => entry({ dnsNames: ['example.org.'] }) },
      { name: 'a DNS name with a leading dot', entry: () => entry({ dnsNames: ['.example.org'] }) },
      { name: 'a label starting with a hyphen', entry: () => entry({ dnsNames: ['-web.example.org'] }) },
      { name: 'a label ending with a hyphen', entry: () => entry({ dnsNames: ['web-.example.org'] }) },
      { name: 'an underscore', entry: () => entry({ dnsNames: ['we_b.example.org'] }) },
      { name: 'a space', entry: () => entry({ dnsNames: ['web example.org'] }) },
      { name: 'a non-ASCII letter', entry: () => entry({ dnsNames: ['wéb.example.org'] }) },
      { name: 'a 64-character label', entry: () => entry({ dnsNames: [`${'a'.repeat(64)}.org`] }) },
      {
        name: 'a 254-character name',
        entry: () => entry({ dnsNames: [['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62)].join('.')] }),
      },
      { name: 'a bare wildcard', entry: () => entry({ dnsNames: ['*'] }) },
      { name: 'a wildcard over a top-level domain', entry: () => entry({ dnsNames: ['*.com'] }) },
      { name: 'a wildcard that is not the first label', entry: () => entry({ dnsNames: ['web.*.example.org'] }) },
      { name: 'a partial wildcard label', entry: () => entry({ dnsNames: ['w*.example.org'] }) },
      { name: 'two wildcards', entry: () => entry({ dnsNames: ['*.*.example.org'] }) },
      { name: 'an IPv6 address', entry: () => entry({ dnsNames: ['::1'] }) },
      { name: 'a URI', entry: () => entry({ dnsNames: ['https://web.example.org'] }) },
      { name: 'a repeated DNS name', entry: () => entry({ dnsNames: ['web.example.org', 'WEB.example.org'] }) },
      { name: 'a selector without a type', entry: () => entry({ selectors: ['uid:1000'] }) },
      { name: 'a selector of an unknown type', entry: () => entry({ selectors: ['k8s:ns:default'] }) },
      { name: 'an unknown unix selector', entry: () => entry({ selectors: ['unix:pid:1'] }) },
      { name: 'a uid that is not a number', entry: () => entry({ selectors: ['unix:uid:root'] }) },
      { name: 'a relative unix:path', entry: () => entry({ selectors: ['unix:path:bin/node'] }) },
      { name: 'a short unix:sha256', entry: () => entry({ selectors: ['unix:sha256:abc'] }) },
      { name: 'a selector with a newline', entry: () => entry({ selectors: ['unix:user:www\nx'] }) },
      { name: 'an empty selector', entry: () => entry({ selectors: [''] }) },
      { name: 'a selector of 257 bytes', entry: () => entry({ selectors: [`unix:path:/${'a'.repeat(246)}`] }) },
      {
        name: '33 selectors',
        entry: () => entry({ selectors: Array.from({ length: 33 }, (_, i) => `unix:supplementary_gid:${i}`) }),
      },
      {
        name: `${MAX_ENTRY_DNS_NAMES + 1} DNS names`,
        entry: () =>
          entry({ dnsNames: Array.from({ length: MAX_ENTRY_DNS_NAMES + 1 }, (_, i) => `n${i}.example.org`) }),
      },
    ];
    for (const r of refusals) {
      it(`refuses ${r.name} with INVALID_ARGUMENT and stores nothing`, async () => {
        const before = (await t.store.listEntries()).length;
        t.logs.clear();
        await rejectsStatus(createEntry(r.entry()), r.code ?? status.INVALID_ARGUMENT);
        assert.equal((await t.store.listEntries()).length, before);
        assert.equal(auditLines(t, 'admin_entry_created').length, 0);
      });
    }

    it('refuses a duplicate (spiffe_id, parent_id) with ALREADY_EXISTS, and allows another parent', async () => {
      const e = entry({ spiffeId: 'spiffe://example.org/dup' });
      await createEntry(e);
      const err = await rejectsStatus(createEntry({ ...e, x509SvidTtlSeconds: 60 }), status.ALREADY_EXISTS);
      assert.doesNotMatch(err.details, /store:/);
      const other = await createEntry({ ...e, parentId: OTHER_PARENT });
      assert.equal(other.entry?.parentId, OTHER_PARENT);
      assert.equal((await t.store.listEntries({ spiffeId: e.spiffeId })).length, 2);
    });

    it('creates an entry with selectors, returned canonical, and refuses a bad one with the reason', async () => {
      t.logs.clear();
      const res = await createEntry(
        entry({
          spiffeId: 'spiffe://example.org/ns/prod/sa/sel',
          selectors: ['unix:uid:1000', 'unix:gid:50', 'unix:uid:1000'],
        }),
      );
      assert.deepEqual(res.entry?.selectors, ['unix:gid:50', 'unix:uid:1000']);
      assert.deepEqual((await t.store.getEntry(res.entry!.id))?.selectors, ['unix:gid:50', 'unix:uid:1000']);
      assert.deepEqual(auditLines(t, 'admin_entry_created')[0]?.selectors, ['unix:gid:50', 'unix:uid:1000']);
      const listed = (await listEntries('', 'spiffe://example.org/ns/prod/sa/sel')).entries;
      assert.deepEqual(
        listed.map((e) => e.selectors),
        [['unix:gid:50', 'unix:uid:1000']],
      );

      const bad = await rejectsStatus(
        createEntry(
          entry({ spiffeId: 'spiffe://example.org/ns/prod/sa/sel2', selectors: ['unix:uid:1', 'unix:gid:x'] }),
        ),
        status.INVALID_ARGUMENT,
      );
      assert.equal(
        bad.details,
        'selectors: [1]: "unix:gid:x": gid must be a decimal number without sign or leading zeros',
      );
    });

    it('registers one (spiffe_id, parent_id) once per set of selectors; the same set again is ALREADY_EXISTS', async () => {
      const e = entry({ spiffeId: 'spiffe://example.org/ns/prod/sa/multi' });
      await createEntry(e);
      await createEntry({ ...e, selectors: ['unix:uid:1000'] });
      await createEntry({ ...e, selectors: ['unix:uid:1001'] });
      const dup = await rejectsStatus(
        createEntry({ ...e, selectors: ['unix:uid:1001', 'unix:uid:1001'] }),
        status.ALREADY_EXISTS,
      );
      assert.equal(dup.details, 'an entry for this spiffe_id and parent_id with these selectors already exists');
      const bare = await rejectsStatus(createEntry(e), status.ALREADY_EXISTS);
      assert.equal(bare.details, 'an entry for this spiffe_id and parent_id already exists');
      assert.equal((await t.store.listEntries({ spiffeId: e.spiffeId })).length, 3);
    });

    it('lists entries, filtered by parent_id, spiffe_id or both', async () => {
      const all = (await listEntries()).entries;
      assert.deepEqual(
        all.map((e) => e.id),
        (await t.store.listEntries()).map((e) => e.id),
      );
      const byParent = (await listEntries(OTHER_PARENT)).entries;
      assert.deepEqual(
        byParent.map((e) => e.spiffeId),
        ['spiffe://example.org/dup'],
      );
      const byId = (await listEntries('', 'spiffe://example.org/dup')).entries;
      assert.deepEqual(byId.map((e) => e.parentId).sort(), [OTHER_PARENT, PARENT].sort());
      const both = (await listEntries(PARENT, 'spiffe://example.org/dup')).entries;
      assert.equal(both.length, 1);
      assert.equal(both[0]?.parentId, PARENT);
      assert.equal((await listEntries('', 'spiffe://example.org/nobody')).entries.length, 0);
    });

    it('refuses invalid list filters with INVALID_ARGUMENT', async () => {
      await rejectsStatus(listEntries('not-an-id'), status.INVALID_ARGUMENT);
      await rejectsStatus(listEntries('', 'spiffe://example.org/a//b'), status.INVALID_ARGUMENT);
    });

    it('deletes an entry; an unknown one is NOT_FOUND, a bad id INVALID_ARGUMENT', async () => {
      const e = (await createEntry(entry({ spiffeId: 'spiffe://example.org/to-delete' }))).entry!;
      t.logs.clear();
      assert.deepEqual(await deleteEntry(e.id), {});
      assert.equal(await t.store.getEntry(e.id), undefined);
      const lines = auditLines(t, 'admin_entry_deleted');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.entry_id, e.id);
      assert.equal(lines[0]?.spiffe_id, e.spiffeId);
      assert.equal(lines[0]?.admin, UNIX_SOCKET_CALLER);

      t.logs.clear();
      await rejectsStatus(deleteEntry(e.id), status.NOT_FOUND);
      await rejectsStatus(deleteEntry('00000000-0000-4000-8000-000000000000'), status.NOT_FOUND);
      await rejectsStatus(deleteEntry(''), status.INVALID_ARGUMENT);
      await rejectsStatus(deleteEntry('x'.repeat(129)), status.INVALID_ARGUMENT);
      assert.equal(auditLines(t, 'admin_entry_deleted').length, 0);
    });
  });

  describe('join tokens', () => {
    const issued: string[] = [];

    it('creates a token with the default TTL; the store holds its hash, usable once', async () => {
      t.logs.clear();
      const now = t.clock();
      const res = await createJoinToken(0);
      issued.push(res.token);
      assert.match(res.token, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(res.agentId, agentIdForJoinToken(TD, res.token).toString());
      assert.ok(res.agentId.startsWith(`spiffe://example.org${AGENT_PATH_PREFIX}join_token/`));
      assert.equal(res.expiresAt, Math.floor((now.getTime() + t.ctx.config.joinTokenDefaultTtlMs) / 1000));
      assert.equal(await t.store.consumeJoinToken(hashJoinToken(res.token), t.clock()), true);
      assert.equal(await t.store.consumeJoinToken(hashJoinToken(res.token), t.clock()), false);
      const lines = auditLines(t, 'admin_join_token_created');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.agent_id, res.agentId);
      assert.equal(lines[0]?.admin, UNIX_SOCKET_CALLER);
    });

    it('honours ttl_seconds, including both bounds, and the token expires with it', async () => {
      const now = t.clock().getTime();
      for (const ttl of [10, 3600, 7 * 24 * 3600]) {
        const res = await createJoinToken(ttl);
        issued.push(res.token);
        assert.equal(res.expiresAt, Math.floor(now / 1000) + ttl);
      }
      const short = await createJoinToken(10);
      issued.push(short.token);
      assert.equal(await t.store.consumeJoinToken(hashJoinToken(short.token), new Date(now + 11_000)), false);
    });

    for (const ttl of [1, 9, -10, 7 * 24 * 3600 + 1, 2 ** 31 - 1]) {
      it(`refuses ttl_seconds ${ttl} with INVALID_ARGUMENT`, async () => {
        t.logs.clear();
        await rejectsStatus(createJoinToken(ttl), status.INVALID_ARGUMENT);
        assert.equal(auditLines(t, 'admin_join_token_created').length, 0);
      });
    }

    it('never writes a token to the log', () => {
      assert.ok(issued.length >= 5);
      assert.ok(t.logs.all.includes('admin_join_token_created'));
      for (const token of issued) assert.ok(!t.logs.all.includes(token), 'a join token reached the log');
    });

    it('never writes a token to the log, even at debug level', async () => {
      t.ctx.log.level = 'debug';
      try {
        t.logs.clear();
        const res = await createJoinToken(60);
        assert.ok(t.logs.text.length > 0);
        assert.ok(!t.logs.text.includes(res.token));
      } finally {
        t.ctx.log.level = 'info';
      }
    });
  });

  describe('agents', () => {
    const A1 = 'spiffe://example.org/svidkit/agent/join_token/1111';
    const A2 = 'spiffe://example.org/svidkit/agent/k8s_psat/c1/node-2';

    before(async () => {
      const exp = new Date(t.clock().getTime() + HOUR);
      await t.store.upsertAgent({ spiffeId: A2, attestationType: 'k8s_psat', serial: 'bb02', expiresAt: exp });
      await t.store.upsertAgent({ spiffeId: A1, attestationType: 'join_token', serial: 'aa01', expiresAt: exp });
    });

    it('lists agents ordered by SPIFFE ID', async () => {
      const exp = Math.floor((t.clock().getTime() + HOUR) / 1000);
      assert.deepEqual((await listAgents()).agents, [
        { spiffeId: A1, attestationType: 'join_token', serial: 'aa01', expiresAt: exp, banned: false },
        { spiffeId: A2, attestationType: 'k8s_psat', serial: 'bb02', expiresAt: exp, banned: false },
      ]);
    });

    it('bans an agent: the store and the list show it, the other is untouched', async () => {
      t.logs.clear();
      assert.deepEqual(await banAgent(A2), {});
      assert.equal(await t.store.isBanned(A2), true);
      assert.equal(await t.store.isBanned(A1), false);
      const agents = (await listAgents()).agents;
      assert.deepEqual(
        agents.map((a) => [a.spiffeId, a.banned]),
        [
          [A1, false],
          [A2, true],
        ],
      );
      const lines = auditLines(t, 'admin_agent_banned');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.agent, A2);
      assert.equal(lines[0]?.admin, UNIX_SOCKET_CALLER);
    });

    it('refuses unknown agents with NOT_FOUND and bad IDs with INVALID_ARGUMENT', async () => {
      t.logs.clear();
      await rejectsStatus(banAgent('spiffe://example.org/svidkit/agent/join_token/9999'), status.NOT_FOUND);
      await rejectsStatus(banAgent(''), status.INVALID_ARGUMENT);
      await rejectsStatus(banAgent('node-1'), status.INVALID_ARGUMENT);
      assert.equal(auditLines(t, 'admin_agent_banned').length, 0);
    });
  });

  describe('CA keys', () => {
    const active = (keys: { kind: string; state: string; id: string }[], kind: string) =>
      keys.find((k) => k.kind === kind && k.state === 'active')?.id;

    it('reports the trust domain, the keys and the bundle the Node service sends', async () => {
      const res = await getCaStatus();
      assert.equal(res.trustDomain, TD);
      assert.deepEqual(
        res.keys,
        t.keys.status().map((k) => ({
          id: k.id,
          kind: k.kind,
          state: k.state,
          notAfter: Math.floor(k.notAfter.getTime() / 1000),
          tainted: false,
        })),
      );
      assert.deepEqual(res.keys.map((k) => [k.kind, k.state]).sort(), [
        ['jwt', 'active'],
        ['x509', 'active'],
      ]);
      const bundle = t.keys.bundle();
      assert.deepEqual(res.bundle, {
        trustDomain: TD,
        spiffeBundleJson: JSON.stringify(bundle.toJson()),
        sequence: bundle.sequence,
      });
      const doc = JSON.parse(res.bundle!.spiffeBundleJson) as { keys: { use: string }[] };
      assert.deepEqual(doc.keys.map((k) => k.use).sort(), ['jwt-svid', 'x509-svid']);
    });

    it('rotates the X.509 key only; the old one stays as old and the sequence moves on', async () => {
      const before = await getCaStatus();
      t.logs.clear();
      const res = await rotateCa('x509');
      const x509 = active(res.keys, 'x509');
      assert.ok(x509);
      assert.notEqual(x509, active(before.keys, 'x509'));
      assert.equal(active(res.keys, 'jwt'), active(before.keys, 'jwt'));
      assert.equal(res.keys.find((k) => k.id === active(before.keys, 'x509'))?.state, 'old');
      const after = await getCaStatus();
      assert.ok(after.bundle!.sequence > before.bundle!.sequence);
      assert.equal(t.keys.x509Signer().id, x509);
      const lines = auditLines(t, 'admin_ca_rotated');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.kind, 'x509');
      assert.deepEqual(
        [...(lines[0]?.active_keys as string[])].sort(),
        [active(res.keys, 'x509'), active(res.keys, 'jwt')].sort(),
      );
    });

    it('rotates both keys for an empty kind, and the JWT key alone for "jwt"', async () => {
      const before = await getCaStatus();
      const both = await rotateCa('');
      assert.notEqual(active(both.keys, 'x509'), active(before.keys, 'x509'));
      assert.notEqual(active(both.keys, 'jwt'), active(before.keys, 'jwt'));
      const mid = await getCaStatus();
      assert.ok(mid.bundle!.sequence > before.bundle!.sequence);
      const jwt = await rotateCa('jwt');
      assert.equal(active(jwt.keys, 'x509'), active(both.keys, 'x509'));
      assert.notEqual(active(jwt.keys, 'jwt'), active(both.keys, 'jwt'));
      assert.equal(t.keys.jwtSigner().kid, active(jwt.keys, 'jwt'));
      assert.ok((await getCaStatus()).bundle!.sequence > mid.bundle!.sequence);
    });

    for (const kind of ['both', 'X509', 'JWT', 'rsa', ' x509']) {
      it(`refuses kind ${JSON.stringify(kind)} with INVALID_ARGUMENT`, async () => {
        const before = t.keys.bundle().sequence;
        await rejectsStatus(rotateCa(kind), status.INVALID_ARGUMENT);
        assert.equal(t.keys.bundle().sequence, before);
      });
    }

    it('taints a key: an active one is replaced at once', async () => {
      const before = await getCaStatus();
      const jwtId = active(before.keys, 'jwt')!;
      t.logs.clear();
      assert.deepEqual(await taintKey(jwtId), {});
      const after = await getCaStatus();
      assert.notEqual(active(after.keys, 'jwt'), jwtId);
      assert.equal(
        after.keys.find((k) => k.id === jwtId),
        undefined,
        'a tainted key leaves the bundle',
      );
      assert.ok(!after.bundle!.spiffeBundleJson.includes(jwtId));
      const lines = auditLines(t, 'admin_ca_key_tainted');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]?.ca_key_id, jwtId);
    });

    it('refuses an unknown key id with NOT_FOUND and an empty or overlong one with INVALID_ARGUMENT', async () => {
      t.logs.clear();
      await rejectsStatus(taintKey('0123456789abcdef0123456789abcdef'), status.NOT_FOUND);
      await rejectsStatus(taintKey(''), status.INVALID_ARGUMENT);
      await rejectsStatus(taintKey('k'.repeat(200)), status.INVALID_ARGUMENT);
      assert.equal(auditLines(t, 'admin_ca_key_tainted').length, 0);
    });
  });
});

describe('ca/admin-service: upstream mode', function () {
  let t: TestCaContext;
  let srv: Served;

  before(async () => {
    const now = Date.now();
    const root = TestCa.root({
      subject: [['CN', 'offline root']],
      notBefore: new Date(now - 24 * HOUR),
      notAfter: new Date(now + 365 * 24 * HOUR),
    });
    const intermediate = root.intermediate({
      subject: [['CN', 'svidkit intermediate']],
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 30 * 24 * HOUR),
    });
    t = await createTestCaContext({
      upstream: {
        certPem: intermediate.cert.toPem(),
        keyPem: privateKeyToPem(intermediate.key),
        bundlePem: root.cert.toPem(),
      },
    });
    srv = await serve(
      t.ctx,
      `unix://${join(t.dir, 'admin.sock')}`,
      ServerCredentials.createInsecure(),
      credentials.createInsecure(),
    );
  });

  after(async () => {
    await srv?.close();
    await t?.close();
  });

  it('answers FAILED_PRECONDITION for rotating or tainting the upstream intermediate, and rotates "jwt"', async () => {
    const c = srv.client;
    const x509 = t.keys.x509Signer().id;
    await rejectsStatus(rpc(c.rotateCa.bind(c), { kind: 'x509' }), status.FAILED_PRECONDITION);
    await rejectsStatus(rpc(c.rotateCa.bind(c), { kind: '' }), status.FAILED_PRECONDITION);
    await rejectsStatus(rpc(c.taintKey.bind(c), { id: x509 }), status.FAILED_PRECONDITION);
    assert.equal(t.keys.x509Signer().id, x509);
    const jwtBefore = t.keys.jwtSigner().kid;
    const res = await rpc(c.rotateCa.bind(c), { kind: 'jwt' });
    assert.notEqual(res.keys.find((k) => k.kind === 'jwt' && k.state === 'active')?.id, jwtBefore);
  });

  it('answers FAILED_PRECONDITION once the bundle holds the most keys of a kind', async () => {
    const c = srv.client;
    const live = () => t.keys.status().filter((k) => k.kind === 'jwt').length;
    // The clock stands still, so no old JWT key is dropped and every rotation adds one.
    while (live() < MAX_LIVE_KEYS_PER_KIND) await rpc(c.rotateCa.bind(c), { kind: 'jwt' });
    const sequence = t.keys.bundle().sequence;
    await rejectsStatus(rpc(c.rotateCa.bind(c), { kind: 'jwt' }), status.FAILED_PRECONDITION);
    assert.equal(live(), MAX_LIVE_KEYS_PER_KIND);
    assert.equal(t.keys.bundle().sequence, sequence);
  });
});

describe('ca/admin-service: who may call', function () {
  const MALLORY = 'spiffe://example.org/ops/mallory';
  let t: TestCaContext;
  let rootPem: Buffer;
  const open: Served[] = [];

  /** An X.509-SVID from the test CA: the chain PEM and the key PEM. */
  function svid(id: string, dnsNames: string[] = []): { certPem: Buffer; keyPem: Buffer; key: KeyObject } {
    const pair = generateKeyPair('ec-p256');
    const { issuer, chain } = t.ctx.issuer();
    const cert = issuer.issue({
      id: SpiffeId.parse(id),
      csrDer: buildCsr({ key: pair.privateKey, uris: [id] }),
      now: t.clock(),
      ttlMs: HOUR,
      dnsNames,
    });
    const pem = [cert.der, ...chain].map((d) => Certificate.fromDer(d).toPem()).join('');
    return { certPem: Buffer.from(pem), keyPem: Buffer.from(privateKeyToPem(pair.privateKey)), key: pair.privateKey };
  }

  async function tlsServe(
    options: AdminServiceOptions | undefined,
    clientId: string | undefined,
    requireClientCert = true,
  ): Promise<Served> {
    const server = svid('spiffe://example.org/svidkit/ca', ['localhost']);
    const client = clientId === undefined ? undefined : svid(clientId);
    const s = await serve(
      t.ctx,
      '127.0.0.1:0',
      ServerCredentials.createSsl(
        rootPem,
        [{ cert_chain: server.certPem, private_key: server.keyPem }],
        requireClientCert,
      ),
      credentials.createSsl(rootPem, client?.keyPem ?? null, client?.certPem ?? null),
      options,
      { 'grpc.ssl_target_name_override': 'localhost' },
    );
    open.push(s);
    return s;
  }

  before(async () => {
    t = await createTestCaContext({ config: { admin: { mtls: { admin_ids: [ADMIN_ID] } } } });
    rootPem = Buffer.from(t.keys.bundle().x509.toPem());
  });

  after(async () => {
    for (const s of open) await s.close();
    await t?.close();
  });

  it('over mTLS, serves a configured admin ID and names it in the audit line', async () => {
    const { client: c } = await tlsServe({ transport: 'mtls' }, ADMIN_ID);
    assert.equal((await rpc(c.getCaStatus.bind(c), {})).trustDomain, TD);
    t.logs.clear();
    const res = await rpc(c.createJoinToken.bind(c), { ttlSeconds: 60 });
    const lines = auditLines(t, 'admin_join_token_created');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.admin, ADMIN_ID);
    assert.ok(!t.logs.text.includes(res.token));
  });

  it('over mTLS, refuses any other SPIFFE ID with PERMISSION_DENIED', async () => {
    const { client: c } = await tlsServe({ transport: 'mtls' }, MALLORY);
    await rejectsStatus(rpc(c.getCaStatus.bind(c), {}), status.PERMISSION_DENIED);
    await rejectsStatus(rpc(c.createJoinToken.bind(c), { ttlSeconds: 60 }), status.PERMISSION_DENIED);
    const agent = await tlsServe({ transport: 'mtls' }, `spiffe://example.org${AGENT_PATH_PREFIX}join_token/abcd`);
    await rejectsStatus(rpc(agent.client.listAgents.bind(agent.client), {}), status.PERMISSION_DENIED);
  });

  it('over mTLS, uses explicit adminIds instead of the configured ones', async () => {
    const { client: c } = await tlsServe({ transport: 'mtls', adminIds: [MALLORY] }, MALLORY);
    assert.equal((await rpc(c.getCaStatus.bind(c), {})).trustDomain, TD);
    const alice = await tlsServe({ transport: 'mtls', adminIds: [MALLORY] }, ADMIN_ID);
    await rejectsStatus(rpc(alice.client.getCaStatus.bind(alice.client), {}), status.PERMISSION_DENIED);
  });

  it('over TLS without a client certificate, answers UNAUTHENTICATED', async () => {
    const { client: c } = await tlsServe({ transport: 'mtls' }, undefined, false);
    await rejectsStatus(rpc(c.getCaStatus.bind(c), {}), status.UNAUTHENTICATED);
  });

  it('refuses Unix-socket handlers mounted on a TLS or plain TCP listener', async () => {
    const tls = await tlsServe(undefined, ADMIN_ID);
    await rejectsStatus(rpc(tls.client.getCaStatus.bind(tls.client), {}), status.PERMISSION_DENIED);
    const tlsNoCert = await tlsServe(undefined, undefined, false);
    await rejectsStatus(rpc(tlsNoCert.client.getCaStatus.bind(tlsNoCert.client), {}), status.PERMISSION_DENIED);
    const tcp = await serve(t.ctx, '127.0.0.1:0', ServerCredentials.createInsecure(), credentials.createInsecure());
    open.push(tcp);
    t.logs.clear();
    await rejectsStatus(rpc(tcp.client.createJoinToken.bind(tcp.client), { ttlSeconds: 60 }), status.PERMISSION_DENIED);
    assert.equal(auditLines(t, 'admin_join_token_created').length, 0);
  });

  it('refuses mTLS handlers mounted on a Unix socket with UNAUTHENTICATED', async () => {
    const s = await serve(
      t.ctx,
      `unix://${join(t.dir, 'mtls-handlers.sock')}`,
      ServerCredentials.createInsecure(),
      credentials.createInsecure(),
      { transport: 'mtls' },
    );
    open.push(s);
    await rejectsStatus(rpc(s.client.getCaStatus.bind(s.client), {}), status.UNAUTHENTICATED);
  });
});

describe('ca/admin-service: isValidDnsName', () => {
  const good = ['localhost', 'web', 'a.b', 'WEB.Example.ORG', '*.web.example.org', 'x-1.example.org', '1.2.3.4'];
  const bad = ['', '.', '*', '*.com', 'a..b', '-a.b', 'a-.b', 'a_b.c', 'a.b.', '*.*.a.b', 'a.*.b', 'é.b'];
  for (const n of good) it(`accepts ${JSON.stringify(n)}`, () => assert.equal(isValidDnsName(n), true));
  for (const n of bad) it(`refuses ${JSON.stringify(n)}`, () => assert.equal(isValidDnsName(n), false));
});
