/**
 * Tests of lib/observe: secrets never reach a log line (checked on the raw bytes written), metric
 * text is exactly what Prometheus expects (golden strings), and the HTTP endpoint answers probes
 * and scrapes on a real socket.
 */
import { strict as assert } from 'node:assert';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import { Writable } from 'node:stream';
import {
  audit,
  Counter,
  createLogger,
  DROPPED_SERIES_METRIC,
  Gauge,
  Histogram,
  isSecretKey,
  MAX_LABEL_VALUE_LENGTH,
  MAX_REDACT_ENTRIES,
  MAX_REDACT_STRING,
  PROMETHEUS_CONTENT_TYPE,
  REDACTED,
  redactSecrets,
  Registry,
  startObservabilityServer,
  type ObservabilityServer,
} from '../lib/observe/index.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A destination that keeps every byte pino writes; pino writes synchronously to it. */
function capture(): { write(s: string): void; readonly text: string; lines(): Record<string, unknown>[] } {
  let text = '';
  return {
    write(s: string) {
      text += s;
    },
    get text() {
      return text;
    },
    lines() {
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A real ES256 compact JWS, signed with a key made for the test. */
function makeJwt(key: KeyObject): string {
  const input = `${b64url({ alg: 'ES256', kid: 'k1', typ: 'JWT' })}.${b64url({ sub: 'spiffe://example.org/w', aud: ['a'], exp: 2e9 })}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${input}.${sig}`;
}

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PKCS8_PEM = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const SEC1_PEM = ec.privateKey.export({ type: 'sec1', format: 'pem' }) as string;
const RSA_PEM = rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
const JWT = makeJwt(ec.privateKey);
const OPAQUE_BEARER = 'opaqueS3cretValue_0123456789';

/** Every fragment of a secret that must not appear in output: whole values, each PEM body line, each JWT segment. */
function forbiddenFragments(): string[] {
  const pemLines = [PKCS8_PEM, SEC1_PEM, RSA_PEM].flatMap((p) =>
    p.split('\n').filter((l) => l.length > 0 && !l.startsWith('-----')),
  );
  // JSON escapes the newlines of a PEM; check the escaped form too.
  const escaped = [PKCS8_PEM, SEC1_PEM, RSA_PEM].map((p) => JSON.stringify(p).slice(1, -1));
  return [PKCS8_PEM, SEC1_PEM, RSA_PEM, ...escaped, ...pemLines, JWT, ...JWT.split('.'), OPAQUE_BEARER];
}

function assertClean(raw: string): void {
  for (const f of forbiddenFragments()) {
    assert.ok(!raw.includes(f), `output leaks a secret fragment: ${f.slice(0, 24)}...`);
  }
  // Every line stays valid JSON after redaction.
  for (const line of raw.split('\n').filter((l) => l !== '')) JSON.parse(line);
}

// ---------------------------------------------------------------------------------------------
// Logger
// ---------------------------------------------------------------------------------------------

describe('observe/log', () => {
  it('writes one parseable JSON object per line with name, level, time and msg', () => {
    const out = capture();
    const log = createLogger({ name: 'svidkit-ca', destination: out });
    log.info({ agent: 'spiffe://example.org/spire/agent/join_token/x' }, 'agent attested');
    log.warn('renewal late by %d s', 12);
    log.debug('not written at info');
    assert.ok(out.text.endsWith('\n'));
    const lines = out.lines();
    assert.equal(lines.length, 2);
    const [first, second] = lines;
    assert.equal(first?.name, 'svidkit-ca');
    assert.equal(first?.level, 'info');
    assert.equal(first?.msg, 'agent attested');
    assert.equal(first?.agent, 'spiffe://example.org/spire/agent/join_token/x');
    assert.equal(typeof first?.time, 'string');
    assert.ok(!Number.isNaN(Date.parse(first?.time as string)));
    assert.equal(second?.level, 'warn');
    assert.equal(second?.msg, 'renewal late by 12 s');
  });

  it('honours the level option', () => {
    const out = capture();
    const log = createLogger({ name: 't', level: 'debug', destination: out });
    log.debug('shown');
    log.trace('hidden');
    assert.deepEqual(
      out.lines().map((l) => l.msg),
      ['shown'],
    );
  });

  it('writes to a plain writable stream', async () => {
    const chunks: Buffer[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
    const log = createLogger({ name: 'stream', destination: stream });
    log.info({ token: 'abc' }, 'via stream');
    await new Promise<void>((resolve) => setImmediate(resolve));
    const line = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    assert.equal(line.msg, 'via stream');
    assert.equal(line.token, REDACTED);
  });

  it('never writes a private key, a JWT or a bearer credential, wherever it is put', () => {
    const out = capture();
    const log = createLogger({ name: 'leak', level: 'trace', destination: out });
    const authz = `authorization: Bearer ${OPAQUE_BEARER}`;

    // In the message, directly and through format arguments.
    log.info(`loaded key ${PKCS8_PEM}`);
    log.info('loaded key %s and token %s', SEC1_PEM, JWT);
    log.info(`request header ${authz}`);
    log.info('object arg %j', { pem: RSA_PEM });
    // Split across format arguments, so the secret exists only in the joined message.
    log.info('-----BEGIN PRIVATE KEY-----%s', PKCS8_PEM.split('\n')[1]);
    // In nested objects and arrays, under innocent keys.
    log.info({ entry: { deep: { deeper: { value: PKCS8_PEM } } }, list: ['x', [JWT, { h: authz }]] }, 'nested');
    log.info({ headers: { authorization: `Bearer ${OPAQUE_BEARER}` } }, 'headers');
    log.info({ req: { headers: { Authorization: `Bearer ${OPAQUE_BEARER}` } } }, 'capitalised header');
    // Under secret-looking keys at any depth, whatever the value looks like.
    log.info({ a: { b: { c: { join_token: OPAQUE_BEARER, privateKey: 'x', password: OPAQUE_BEARER } } } }, 'keys');
    // In errors: message, stack, cause, own properties, AggregateError members, leading error argument.
    const cause = new Error(`inner ${authz}`);
    const err = new Error(`csr rejected for ${JWT}`, { cause });
    Object.assign(err, { detail: { pem: RSA_PEM } });
    log.error(err);
    log.error(err, 'with message');
    log.error({ err }, 'under err');
    log.error({ error: new AggregateError([new Error(SEC1_PEM)], 'many') }, 'aggregate');
    // Maps, sets and class instances.
    log.info({ m: new Map([['k', JWT]]), s: new Set([PKCS8_PEM]) }, 'collections');
    // Child bindings and message prefixes bypass the log-call hook; the line pass still catches them.
    log
      .child({ bound: JWT, nested: { token: OPAQUE_BEARER } })
      .child({ deeper: { a: { password: OPAQUE_BEARER } } })
      .info('grandchild');
    log.child({}, { msgPrefix: `${authz} ` }).info('prefixed');
    // Binary key material.
    log.info({ der: ec.privateKey.export({ type: 'pkcs8', format: 'der' }), keyObject: ec.privateKey }, 'binary');

    const raw = out.text;
    assertClean(raw);
    assert.ok(raw.includes(REDACTED));
    const lines = out.lines();
    assert.equal(lines.length, 17);
    // The surrounding text survives, so lines stay useful.
    assert.equal(lines[0]?.msg, `loaded key ${REDACTED}\n`);
    assert.equal(lines[2]?.msg, `request header authorization: Bearer ${REDACTED}`);
    const errLine = lines[9] as { msg: string; err: { type: string; message: string; cause: { message: string } } };
    assert.equal(errLine.msg, `csr rejected for ${REDACTED}`);
    assert.equal(errLine.err.type, 'Error');
    assert.equal(errLine.err.cause.message, `inner authorization: Bearer ${REDACTED}`);
    assert.equal((lines[16] as { keyObject: string }).keyObject, '[KeyObject private]');
  });

  it('redactSecrets copies without modifying the input and bounds depth, width and length', () => {
    const input = { token: 't', nested: { jwt: JWT, ok: 'fine', n: 1, big: 10n } };
    const before = JSON.stringify({ ...input, nested: { ...input.nested, big: '10' } });
    const copy = redactSecrets(input) as { token: string; nested: Record<string, unknown> };
    assert.equal(copy.token, REDACTED);
    assert.deepEqual(copy.nested, { jwt: REDACTED, ok: 'fine', n: 1, big: '10' });
    assert.equal(JSON.stringify({ ...input, nested: { ...input.nested, big: '10' } }), before);

    // Cycles.
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    assert.deepEqual(redactSecrets(cyclic), { name: 'loop', self: '[Circular]' });

    // Depth.
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 50; i++) deep = { d: deep };
    assert.ok(JSON.stringify(redactSecrets(deep)).includes('[Truncated]'));

    // Width.
    const wide = redactSecrets(Array.from({ length: 10_000 }, (_, i) => i)) as unknown[];
    assert.equal(wide.length, MAX_REDACT_ENTRIES + 1);
    assert.equal(wide.at(-1), `...${10_000 - MAX_REDACT_ENTRIES} more`);

    // Length, and a key cut in half by truncation is still redacted.
    const long = 'x'.repeat(MAX_REDACT_STRING - 20) + PKCS8_PEM;
    const cut = redactSecrets(long) as string;
    assert.ok(cut.length <= MAX_REDACT_STRING);
    assert.ok(!cut.includes('-----BEGIN'));
    assert.equal(redactSecrets(cut), cut);

    // Bytes and key objects are described, not dumped.
    assert.equal(redactSecrets(Buffer.from([1, 2, 3])), '[Binary 3 bytes]');
    assert.equal(redactSecrets(ec.publicKey), '[KeyObject public]');
  });

  it('recognises secret key names whatever their casing or separators', () => {
    for (const k of ['token', 'join_token', 'accessToken', 'privateKey', 'private_key', 'PRIVATE-KEY', 'password']) {
      assert.ok(isSecretKey(k), k);
    }
    for (const k of ['secret', 'clientSecret', 'authorization', 'Authorization', 'key', 'jwt', 'cookie']) {
      assert.ok(isSecretKey(k), k);
    }
    for (const k of ['serial', 'spiffe_id', 'agent', 'not_after', 'sha256', 'kid', 'keyType', 'audience']) {
      assert.ok(!isSecretKey(k), k);
    }
  });

  it('audit writes exactly one line with audit: true and the issuance fields', () => {
    const out = capture();
    const log = createLogger({ name: 'svidkit-ca', destination: out });
    const fields = {
      serial: '5f3a9c',
      spiffe_id: 'spiffe://example.org/ns/a/sa/b',
      agent: 'spiffe://example.org/spire/agent/join_token/abc',
      not_after: '2030-01-01T00:00:00.000Z',
      sha256: 'ab'.repeat(32),
    };
    audit(log, fields);
    const lines = out.lines();
    assert.equal(lines.length, 1);
    const line = lines[0]!;
    const { time, pid, hostname, ...rest } = line;
    assert.equal(typeof time, 'string');
    assert.equal(typeof pid, 'number');
    assert.equal(typeof hostname, 'string');
    assert.deepEqual(rest, { level: 'info', name: 'svidkit-ca', ...fields, audit: true, msg: 'audit' });
  });

  it('audit lines survive a higher log level, cannot be turned off by a field, and respect silent', () => {
    const out = capture();
    const log = createLogger({ name: 'ca', level: 'error', destination: out });
    audit(log, { serial: '1', audit: false });
    audit(log, { serial: '2' }, 'svid issued');
    log.info('dropped by level');
    assert.deepEqual(
      out.lines().map((l) => [l.serial, l.audit, l.msg]),
      [
        ['1', true, 'audit'],
        ['2', true, 'svid issued'],
      ],
    );

    const quiet = capture();
    audit(createLogger({ name: 'q', level: 'silent', destination: quiet }), { serial: '3' });
    assert.equal(quiet.text, '');
  });
});

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

describe('observe/metrics', () => {
  it('renders a labeled counter', async () => {
    const c = new Counter({ name: 'svidkit_svids_issued_total', help: 'SVIDs issued.', labelNames: ['kind'] });
    c.inc({ kind: 'x509' });
    c.inc({ kind: 'x509' }, 2);
    c.inc({ kind: 'jwt' });
    assert.equal(await c.get({ kind: 'x509' }), 3);
    assert.equal(await c.get({ kind: 'none' }), 0);
    assert.equal(
      await c.render(),
      '# HELP svidkit_svids_issued_total SVIDs issued.\n' +
        '# TYPE svidkit_svids_issued_total counter\n' +
        'svidkit_svids_issued_total{kind="x509"} 3\n' +
        'svidkit_svids_issued_total{kind="jwt"} 1\n',
    );
  });

  it('renders an unlabeled counter as 0 before its first increment', async () => {
    const c = new Counter({ name: 'up_total', help: 'h' });
    assert.equal(await c.render(), '# HELP up_total h\n# TYPE up_total counter\nup_total 0\n');
    c.inc();
    c.inc(1.5);
    assert.equal(await c.render(), '# HELP up_total h\n# TYPE up_total counter\nup_total 2.5\n');
  });

  it('refuses negative and non-finite amounts', () => {
    const c = new Counter({ name: 'c_total', help: 'h' });
    assert.throws(() => c.inc(-1), RangeError);
    assert.throws(() => c.inc(undefined, Number.NaN), RangeError);
    assert.throws(() => c.inc(Infinity), RangeError);
    const g = new Gauge({ name: 'g', help: 'h' });
    assert.throws(() => g.set(Number.NaN), RangeError);
  });

  it('renders gauges: set, inc, dec and labels', async () => {
    const g = new Gauge({ name: 'svidkit_agents_connected', help: 'Agents connected.', labelNames: ['cluster'] });
    g.set(5, { cluster: 'a' });
    g.inc({ cluster: 'a' });
    g.dec({ cluster: 'a' }, 3);
    g.dec({ cluster: 'b' });
    assert.equal(
      await g.render(),
      '# HELP svidkit_agents_connected Agents connected.\n' +
        '# TYPE svidkit_agents_connected gauge\n' +
        'svidkit_agents_connected{cluster="a"} 3\n' +
        'svidkit_agents_connected{cluster="b"} -1\n',
    );
    const u = new Gauge({ name: 'queue', help: 'q' });
    u.inc(4);
    u.dec();
    assert.equal(await u.render(), '# HELP queue q\n# TYPE queue gauge\nqueue 3\n');
  });

  it('renders a gauge computed at scrape time', async () => {
    let expiresAt = 3600;
    const g = new Gauge({
      name: 'svidkit_ca_expiry_seconds',
      help: 'Seconds until CA expiry.',
      collect: () => expiresAt,
    });
    assert.equal(
      await g.render(),
      '# HELP svidkit_ca_expiry_seconds Seconds until CA expiry.\n' +
        '# TYPE svidkit_ca_expiry_seconds gauge\n' +
        'svidkit_ca_expiry_seconds 3600\n',
    );
    expiresAt = 1800;
    assert.ok((await g.render()).endsWith('svidkit_ca_expiry_seconds 1800\n'));
    assert.throws(() => g.set(1), TypeError);

    const labeled = new Gauge({
      name: 'bundle_keys',
      help: 'Keys per trust domain.',
      labelNames: ['td'],
      collect: () => [
        { labels: { td: 'a.org' }, value: 2 },
        { labels: { td: 'b.org' }, value: Infinity },
      ],
    });
    assert.equal(
      await labeled.render(),
      '# HELP bundle_keys Keys per trust domain.\n# TYPE bundle_keys gauge\nbundle_keys{td="a.org"} 2\nbundle_keys{td="b.org"} +Inf\n',
    );

    const broken = new Gauge({
      name: 'broken',
      help: 'h',
      collect: () => {
        throw new Error('datastore down');
      },
    });
    assert.equal(await broken.render(), '# HELP broken h\n# TYPE broken gauge\n');
    assert.equal(broken.collectErrors, 1);
  });

  it('renders a histogram with cumulative buckets, _sum and _count', async () => {
    const h = new Histogram({
      name: 'svidkit_sign_seconds',
      help: 'Signing latency.',
      labelNames: ['alg'],
      buckets: [0.25, 1, 2.5],
    });
    for (const v of [0.25, 0.5, 0.5, 2, 4]) h.observe(v, { alg: 'ES256' });
    h.observe(0.1, { alg: 'RS256' });
    assert.equal(
      await h.render(),
      '# HELP svidkit_sign_seconds Signing latency.\n' +
        '# TYPE svidkit_sign_seconds histogram\n' +
        'svidkit_sign_seconds_bucket{alg="ES256",le="0.25"} 1\n' +
        'svidkit_sign_seconds_bucket{alg="ES256",le="1"} 3\n' +
        'svidkit_sign_seconds_bucket{alg="ES256",le="2.5"} 4\n' +
        'svidkit_sign_seconds_bucket{alg="ES256",le="+Inf"} 5\n' +
        'svidkit_sign_seconds_sum{alg="ES256"} 7.25\n' +
        'svidkit_sign_seconds_count{alg="ES256"} 5\n' +
        'svidkit_sign_seconds_bucket{alg="RS256",le="0.25"} 1\n' +
        'svidkit_sign_seconds_bucket{alg="RS256",le="1"} 1\n' +
        'svidkit_sign_seconds_bucket{alg="RS256",le="2.5"} 1\n' +
        'svidkit_sign_seconds_bucket{alg="RS256",le="+Inf"} 1\n' +
        'svidkit_sign_seconds_sum{alg="RS256"} 0.1\n' +
        'svidkit_sign_seconds_count{alg="RS256"} 1\n',
    );
    const empty = new Histogram({ name: 'empty_seconds', help: 'h', buckets: [1] });
    assert.equal(
      await empty.render(),
      '# HELP empty_seconds h\n# TYPE empty_seconds histogram\n' +
        'empty_seconds_bucket{le="1"} 0\nempty_seconds_bucket{le="+Inf"} 0\nempty_seconds_sum 0\nempty_seconds_count 0\n',
    );
  });

  it('escapes label values and HELP text', async () => {
    const c = new Counter({ name: 'esc_total', help: 'back\\slash and\nnewline "quoted"', labelNames: ['v'] });
    c.inc({ v: 'a\\b"c\nd' });
    assert.equal(
      await c.render(),
      '# HELP esc_total back\\\\slash and\\nnewline "quoted"\n' +
        '# TYPE esc_total counter\n' +
        'esc_total{v="a\\\\b\\"c\\nd"} 1\n',
    );
  });

  it('throws TypeError at creation for invalid metric and label names', () => {
    for (const name of ['', '1abc', 'a-b', 'a b', 'é', 'a.b']) {
      assert.throws(() => new Counter({ name, help: 'h' }), TypeError, name);
    }
    for (const name of ['ok', 'ok_total', ':colon:ok', '_x']) new Counter({ name, help: 'h' });
    for (const label of ['', '1a', 'a-b', 'a:b', '__reserved']) {
      assert.throws(() => new Gauge({ name: 'g', help: 'h', labelNames: [label] }), TypeError, label);
    }
    assert.throws(() => new Gauge({ name: 'g', help: 'h', labelNames: ['a', 'a'] }), TypeError);
    assert.throws(() => new Histogram({ name: 'h', help: 'h', labelNames: ['le'] }), TypeError);
    assert.throws(() => new Histogram({ name: 'h', help: 'h', buckets: [1, 1] }), TypeError);
    assert.throws(() => new Histogram({ name: 'h', help: 'h', buckets: [Infinity] }), TypeError);
    assert.throws(() => new Histogram({ name: 'h', help: 'h', buckets: [] }), TypeError);
    const c = new Counter({ name: 'c_total', help: 'h', labelNames: ['a'] });
    assert.throws(() => c.inc({ b: 'x' }), TypeError);
  });

  it('caps series per metric, drops new label sets and counts them', async () => {
    const r = new Registry();
    const c = r.register(new Counter({ name: 'req_total', help: 'h', labelNames: ['path'], maxSeries: 3 }));
    for (let i = 0; i < 5; i++) c.inc({ path: `/p${i}` });
    c.inc({ path: '/p0' }, 10); // existing series still count past the cap
    c.inc({ path: 'x'.repeat(MAX_LABEL_VALUE_LENGTH + 1) });
    assert.equal(c.droppedSeries, 3);
    assert.equal(
      await r.render(),
      '# HELP req_total h\n# TYPE req_total counter\n' +
        'req_total{path="/p0"} 11\nreq_total{path="/p1"} 1\nreq_total{path="/p2"} 1\n' +
        `# HELP ${DROPPED_SERIES_METRIC} Label sets refused because a metric reached its series cap.\n` +
        `# TYPE ${DROPPED_SERIES_METRIC} counter\n` +
        `${DROPPED_SERIES_METRIC}{metric="req_total"} 3\n`,
    );
  });

  it('holds the default cap of 1000 series against many distinct label values', async () => {
    const h = new Histogram({ name: 'lat_seconds', help: 'h', labelNames: ['peer'], buckets: [1] });
    for (let i = 0; i < 5000; i++) h.observe(0.5, { peer: `attacker-${i}` });
    assert.equal(h.droppedSeries, 4000);
    const countLines = (await h.render()).split('\n').filter((l) => l.startsWith('lat_seconds_count{'));
    assert.equal(countLines.length, 1000);
  });

  it('registry renders metrics in registration order and refuses duplicates', async () => {
    const r = new Registry();
    const a = r.register(new Gauge({ name: 'a', help: 'A.' }));
    r.register(new Counter({ name: 'b_total', help: 'B.' }));
    a.set(1);
    assert.equal(r.get('a'), a);
    assert.equal(
      await r.render(),
      '# HELP a A.\n# TYPE a gauge\na 1\n# HELP b_total B.\n# TYPE b_total counter\nb_total 0\n',
    );
    assert.throws(() => r.register(new Gauge({ name: 'a', help: 'again' })), TypeError);
    assert.throws(() => r.register(new Counter({ name: DROPPED_SERIES_METRIC, help: 'x' })), TypeError);
  });
});

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

describe('observe/http', () => {
  let server: ObservabilityServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  function url(path: string): string {
    return `http://127.0.0.1:${server!.port}${path}`;
  }

  it('serves /metrics, /healthz and /readyz, and flips readiness', async () => {
    const registry = new Registry();
    registry.register(new Counter({ name: 'svids_total', help: 'SVIDs.' })).inc(7);
    let isReady = false;
    server = await startObservabilityServer({ port: 0, registry, ready: async () => isReady });
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);

    const metrics = await fetch(url('/metrics'));
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers.get('content-type'), PROMETHEUS_CONTENT_TYPE);
    assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(await metrics.text(), '# HELP svids_total SVIDs.\n# TYPE svids_total counter\nsvids_total 7\n');

    const health = await fetch(url('/healthz'));
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok\n');

    const notReady = await fetch(url('/readyz'));
    assert.equal(notReady.status, 503);
    assert.equal(await notReady.text(), 'not ready\n');
    isReady = true;
    const ready = await fetch(url('/readyz?verbose=1'));
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'ready\n');
    assert.equal(ready.headers.get('cache-control'), 'no-store');
  });

  it('answers 503 when live() is false or ready() fails, and reports the failure', async () => {
    const errors: unknown[] = [];
    server = await startObservabilityServer({
      port: 0,
      registry: new Registry(),
      live: () => false,
      ready: () => {
        throw new Error('datastore unreachable');
      },
      onError: (e) => errors.push(e),
    });
    const health = await fetch(url('/healthz'));
    assert.equal(health.status, 503);
    await health.text();
    const ready = await fetch(url('/readyz'));
    assert.equal(ready.status, 503);
    assert.equal(await ready.text(), 'not ready\n');
    assert.equal(errors.length, 1);
  });

  it('answers "not ready" when ready() never settles', async () => {
    server = await startObservabilityServer({
      port: 0,
      registry: new Registry(),
      ready: () => new Promise<boolean>(() => {}),
      readyTimeoutMs: 20,
    });
    const res = await fetch(url('/readyz'));
    assert.equal(res.status, 503);
    await res.text();
  });

  it('answers 404 for other paths, 405 for other methods, and HEAD without a body', async () => {
    server = await startObservabilityServer({ port: 0, registry: new Registry(), ready: () => true });
    for (const path of ['/', '/metrics/', '/nope', '/healthz/extra']) {
      const res = await fetch(url(path));
      assert.equal(res.status, 404, path);
      await res.text();
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await fetch(url('/metrics'), { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
      await res.text();
    }
    // A body is never read: the answer comes back and the connection is closed.
    const withBody = await fetch(url('/readyz'), { method: 'POST', body: 'x'.repeat(100_000) });
    assert.equal(withBody.status, 405);
    await withBody.text();

    const head = await fetch(url('/healthz'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '3');
    assert.equal(await head.text(), '');
  });

  it('close() frees the port and may be called twice', async () => {
    server = await startObservabilityServer({ port: 0, registry: new Registry(), ready: () => true });
    const { port } = server;
    // Leave a keep-alive connection open: close() must not wait for it.
    await (await fetch(url('/healthz'))).text();
    await server.close();
    await server.close();
    server = undefined;
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
    const probe = createNetServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  it('rejects a bad port and a port in use', async () => {
    await assert.rejects(
      startObservabilityServer({ port: 70000, registry: new Registry(), ready: () => true }),
      TypeError,
    );
    server = await startObservabilityServer({ port: 0, registry: new Registry(), ready: () => true });
    await assert.rejects(
      startObservabilityServer({ port: server.port, registry: new Registry(), ready: () => true }),
      /EADDRINUSE/,
    );
  });
});
