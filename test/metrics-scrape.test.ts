/**
 * The /metrics contract over HTTP, now that prom-client renders it: a real CA and a real agent on
 * loopback are scraped and every line is checked against the text exposition format 0.0.4 by a
 * strict parser written here (prom-client renders but does not parse), and a label flood served
 * over a real socket stays capped at the series limit whatever the metric type.
 */
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { prometheusContentType, register as promGlobalRegistry } from 'prom-client';
import { parseAgentConfig } from '../lib/agent/config.js';
import { type RunningAgent, runAgent } from '../lib/agent/daemon.js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../lib/attest/index.js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import {
  Counter,
  createLogger,
  DEFAULT_MAX_SERIES,
  DROPPED_SERIES_METRIC,
  Gauge,
  Histogram,
  MAX_LABEL_VALUE_LENGTH,
  PROMETHEUS_CONTENT_TYPE,
  Registry,
  startObservabilityServer,
  type ObservabilityServer,
} from '../lib/observe/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { tempDir } from './helpers/agent-fs.js';

// ---------------------------------------------------------------------------------------------
// A strict reader of the text exposition format 0.0.4
// ---------------------------------------------------------------------------------------------

/** One sample line. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its HELP, TYPE and samples. */
interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
// A label value may hold any character but a raw quote, backslash or line feed; those come escaped.
const PAIR = `${LABEL}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(${PAIR}(?:,${PAIR})*)\\})? (\\S+)$`);
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)|\+Inf|-Inf|NaN|Nan)$/i;

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * Parses a scrape, throwing on the first line Prometheus would refuse, on a blank line (which
 * Prometheus skips but the daemons have never written, so a scraper's line-based check could
 * trip on one), and on anything that breaks the rules a family must keep: HELP then TYPE once per family before its samples, sample names belonging to
 * the family, no duplicate series, cumulative histogram buckets that end at +Inf and equal _count.
 */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'the scrape ends with a line feed');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: { name: string; family: Family } | undefined;
  const lines = text.slice(0, -1).split('\n');
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    const help = HELP.exec(line);
    if (help) {
      assert.ok(!families.has(help[1]!), `${where}: family declared twice`);
      current = { name: help[1]!, family: { help: unescape(help[2]!), type: '', samples: [] } };
      families.set(help[1]!, current.family);
      continue;
    }
    const type = TYPE.exec(line);
    if (type) {
      assert.ok(current && current.name === type[1] && current.family.type === '', `${where}: TYPE without its HELP`);
      current.family.type = type[2]!;
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `${where}: not a HELP, TYPE or sample line`);
    assert.ok(current && current.family.type !== '', `${where}: sample before its family's TYPE`);
    const [, name, labelText, valueText] = m;
    const suffixes = current.family.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
    assert.ok(
      suffixes.some((s) => name === current!.name + s),
      `${where}: sample outside family ${current.name}`,
    );
    assert.ok(VALUE.test(valueText!), `${where}: bad value`);
    const labels: Record<string, string> = {};
    for (const pair of labelText ? (labelText.match(new RegExp(PAIR, 'g')) ?? []) : []) {
      const eq = pair.indexOf('=');
      const key = pair.slice(0, eq);
      assert.ok(!Object.hasOwn(labels, key), `${where}: label ${key} twice`);
      labels[key] = unescape(pair.slice(eq + 2, -1));
    }
    const id = `${name}${JSON.stringify(labels)}`;
    assert.ok(!seen.has(id), `${where}: duplicate series`);
    seen.add(id);
    current.family.samples.push({ name: name!, labels, value: Number(valueText!.replace(/^Nan$/i, 'NaN')) });
  }
  for (const [name, f] of families) {
    assert.notEqual(f.type, '', `${name} has no TYPE`);
    if (f.type === 'histogram') checkHistogram(name, f);
  }
  return families;
}

/** A bucket's upper bound as a number (+Inf included). */
function bound(s: Sample): number {
  const le = s.labels['le']!;
  return le === '+Inf' ? Infinity : Number(le);
}

function checkHistogram(name: string, f: Family): void {
  const series = new Map<string, Sample[]>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(rest);
    if (!series.has(key)) series.set(key, []);
    if (s.name === `${name}_bucket`) assert.ok(le !== undefined, `${name}: bucket without le`);
    series.get(key)!.push(s);
  }
  for (const [key, samples] of series) {
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    const count = samples.find((s) => s.name === `${name}_count`);
    assert.ok(samples.some((s) => s.name === `${name}_sum`) && count, `${name}${key}: _sum and _count`);
    assert.equal(buckets.at(-1)?.labels['le'], '+Inf', `${name}${key}: last bucket is +Inf`);
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(bound(buckets[i]!) > bound(buckets[i - 1]!), `${name}${key}: le order`);
      assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${name}${key}: buckets are cumulative`);
    }
    assert.equal(buckets.at(-1)!.value, count.value, `${name}${key}: +Inf bucket equals _count`);
  }
}

/** GETs /metrics, checks the content type, and parses the body strictly. */
async function scrape(port: number): Promise<Map<string, Family>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), PROMETHEUS_CONTENT_TYPE);
  return parseExposition(await res.text());
}

/** HELP and TYPE of every family, for comparing a scrape with the daemon's contract. */
function shape(families: Map<string, Family>): Record<string, [string, string]> {
  return Object.fromEntries([...families].map(([n, f]) => [n, [f.type, f.help]]));
}

const quiet = (name: string) => createLogger({ name, destination: new PassThrough().resume() });

/** Waits for a condition; the limit only guards against a hang, it is not a performance check. */
async function until(what: string, cond: () => boolean): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > 60_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------

describe('metrics exposition: a real CA and agent scraped over HTTP', function () {
  this.timeout(120_000);
  let dir: string;
  let ca: RunningCa | undefined;
  let agent: RunningAgent | undefined;
  const td = TrustDomain.parse('example.org');
  const token = generateJoinToken();
  const web = 'spiffe://example.org/ns/prod/sa/web';

  before(async () => {
    dir = await tempDir('svidkit-metrics-');
    ca = await run(
      parseCaConfig(
        { trust_domain: 'example.org', data_dir: join(dir, 'ca'), listen: { port: 0 }, observability: { port: 0 } },
        dir,
      ),
      { logger: quiet('svidkit-ca') },
    );
    writeFileSync(join(dir, 'bundle.pem'), ca.context.keys.bundle().x509.toPem());
    await ca.context.store.createJoinToken(hashJoinToken(token), new Date(Date.now() + 600_000));
    await ca.context.store.createEntry({
      spiffeId: web,
      parentId: agentIdForJoinToken(td, token).toString(),
      x509SvidTtlSeconds: 600,
      jwtSvidTtlSeconds: 60,
      dnsNames: [],
    });
    const config = parseAgentConfig(
      {
        trust_domain: 'example.org',
        data_dir: join(dir, 'agent'),
        ca: { address: `127.0.0.1:${ca.nodePort}`, bundle_file: join(dir, 'bundle.pem') },
        attestation: { join_token: token },
        observability: { port: 0 },
        workloads: [{ spiffe_id: web, output_dir: join(dir, 'out', 'web') }],
      },
      dir,
    );
    agent = await runAgent(config, { logger: quiet('svidkit-agent') });
    await until('the workload written', () => agent!.agent.status().some((w) => w.rotations > 0));
  });
  after(async () => {
    await agent?.close();
    await ca?.close(200);
    await rm(dir, { recursive: true, force: true });
  });

  it("serves the CA's families with their names, types, HELP texts and buckets, from its own registry", async () => {
    const families = await scrape(ca!.observabilityPort);
    assert.deepEqual(shape(families), {
      svidkit_ca_svids_issued_total: ['counter', 'SVIDs issued, by kind and result'],
      svidkit_ca_issue_seconds: ['histogram', 'time to handle one issuance call'],
      svidkit_ca_attestation_failures_total: ['counter', 'refused attestations, by type'],
      svidkit_ca_expiry_seconds: ['gauge', 'seconds until the active X.509 CA expires'],
      [DROPPED_SERIES_METRIC]: ['counter', 'Label sets refused because a metric reached its series cap.'],
    });
    const issued = families.get('svidkit_ca_svids_issued_total')!.samples;
    const ok = issued.find((s) => s.labels['kind'] === 'x509' && s.labels['result'] === 'ok');
    assert.ok(ok && ok.value >= 1, 'the agent attestation issued an X.509 SVID');
    const latency = families.get('svidkit_ca_issue_seconds')!.samples;
    assert.ok(latency.length > 0, 'issuance calls were timed');
    const les = [...new Set(latency.filter((s) => s.name.endsWith('_bucket')).map((s) => s.labels['le']))];
    assert.deepEqual(les, ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '1', '+Inf']);
    const expiry = families.get('svidkit_ca_expiry_seconds')!.samples;
    assert.equal(expiry.length, 1);
    assert.ok(expiry[0]!.value > 0, 'computed at scrape time from the active CA');
    assert.deepEqual(
      families.get(DROPPED_SERIES_METRIC)!.samples.map((s) => [s.labels['metric'], s.value]),
      [
        ['svidkit_ca_svids_issued_total', 0],
        ['svidkit_ca_issue_seconds', 0],
        ['svidkit_ca_attestation_failures_total', 0],
      ],
    );
    // One prom-client Registry per daemon: the header comes from it, and prom-client's global
    // registry, which default process metrics would fill, holds nothing.
    assert.equal(ca!.context.metrics.registry.contentType, prometheusContentType);
    assert.equal(promGlobalRegistry.getMetricsAsArray().length, 0);
  });

  it("serves the agent's families, per-workload series included", async () => {
    const families = await scrape(agent!.observabilityPort);
    assert.deepEqual(shape(families), {
      svidkit_agent_rotations_total: ['counter', 'workload file sets written'],
      svidkit_agent_rotation_failures_total: ['counter', 'failed workload rotations'],
      svidkit_agent_reloads_total: ['counter', 'reload actions fired, by result'],
      svidkit_agent_ca_reachable: ['gauge', '1 when the last CA call succeeded'],
      svidkit_agent_svid_expiry_seconds: ['gauge', 'seconds until each workload SVID expires'],
      [DROPPED_SERIES_METRIC]: ['counter', 'Label sets refused because a metric reached its series cap.'],
    });
    const rotations = families.get('svidkit_agent_rotations_total')!.samples;
    assert.deepEqual(
      rotations.map((s) => s.labels),
      [{ workload: web }],
    );
    assert.ok(rotations[0]!.value >= 1);
    assert.deepEqual(
      families.get('svidkit_agent_ca_reachable')!.samples.map((s) => [s.labels, s.value]),
      [[{}, 1]],
    );
    assert.equal(promGlobalRegistry.getMetricsAsArray().length, 0);
  });
});

describe('metrics exposition: a label flood stays capped', function () {
  this.timeout(60_000);
  let server: ObservabilityServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('keeps DEFAULT_MAX_SERIES series per metric of every type, and counts every refused label set', async () => {
    const registry = new Registry();
    const counter = registry.register(new Counter({ name: 'flood_total', help: 'c', labelNames: ['peer'] }));
    const gauge = registry.register(new Gauge({ name: 'flood_gauge', help: 'g', labelNames: ['peer', 'kind'] }));
    const histogram = registry.register(
      new Histogram({ name: 'flood_seconds', help: 'h', labelNames: ['peer'], buckets: [0.1, 1] }),
    );
    registry.register(
      new Gauge({
        name: 'flood_collected',
        help: 'computed',
        labelNames: ['peer'],
        collect: () =>
          Array.from({ length: 3 * DEFAULT_MAX_SERIES }, (_, i) => ({ labels: { peer: `c${i}` }, value: i })),
      }),
    );
    const flood = 20_000;
    // Values a hostile peer could choose: distinct, with quotes, line feeds, backslashes, colons
    // and commas, all of which must come out escaped and as series of their own.
    for (let i = 0; i < flood; i++) {
      const peer = `p${i}",x:${i},\n\\`;
      counter.inc({ peer });
      gauge.set(i, { peer, kind: `k${i % 3}` });
      histogram.observe(i % 2, { peer });
    }
    const long = 'x'.repeat(MAX_LABEL_VALUE_LENGTH + 1);
    counter.inc({ peer: long });
    // An existing series still counts once the cap is reached.
    counter.inc({ peer: 'p0",x:0,\n\\' }, 41);

    server = await startObservabilityServer({ port: 0, registry, ready: () => true });
    const families = await scrape(server.port);
    const max = DEFAULT_MAX_SERIES;
    assert.equal(families.get('flood_total')!.samples.length, max);
    assert.equal(families.get('flood_gauge')!.samples.length, max);
    assert.equal(families.get('flood_collected')!.samples.length, max);
    const h = families.get('flood_seconds')!.samples;
    assert.equal(h.filter((s) => s.name === 'flood_seconds_count').length, max);
    assert.equal(h.length, max * 5, 'two buckets, +Inf, _sum and _count per series');
    // The first label sets are the ones kept, each with its own value: no two were merged.
    const first = families.get('flood_total')!.samples[0]!;
    assert.deepEqual(first.labels, { peer: 'p0",x:0,\n\\' });
    assert.equal(first.value, 42);
    assert.deepEqual(
      families.get('flood_gauge')!.samples.map((s) => s.value),
      Array.from({ length: max }, (_, i) => i),
    );
    assert.deepEqual(
      Object.fromEntries(families.get(DROPPED_SERIES_METRIC)!.samples.map((s) => [s.labels['metric'], s.value])),
      {
        flood_total: flood - max + 1,
        flood_gauge: flood - max,
        flood_seconds: flood - max,
        flood_collected: 0,
      },
    );
    assert.equal(counter.droppedSeries, flood - max + 1);
  });
});
