/**
 * The published JSON Schemas of ca.yaml and agent.yaml (docs/schemas/) against the zod schemas the
 * daemons parse with: the generator is run as the real program, in check mode, on the repository's
 * files and on stale copies; and the example configurations must use only keys the schemas know.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { OVERRIDABLE_KEYS as AGENT_KEYS, loadAgentConfig } from '../lib/agent/config.js';
import { OVERRIDABLE_KEYS as CA_KEYS, loadCaConfig } from '../lib/ca/config.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = join(ROOT, 'dist', 'bench', 'config-schemas.js');
const SCHEMAS = join(ROOT, 'docs', 'schemas');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [SCRIPT, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

type Json = Record<string, unknown>;

function schemaOf(name: string): Json {
  return JSON.parse(readFileSync(join(SCHEMAS, name), 'utf8')) as Json;
}

/** Walks `value` along `schema`, failing at the first key the schema does not know. */
function checkKeys(schema: Json, value: unknown, path: string): void {
  if (Array.isArray(value)) {
    const items = schema['items'] as Json | undefined;
    if (items !== undefined) value.forEach((v, i) => checkKeys(items, v, `${path}[${i}]`));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const props = schema['properties'] as Record<string, Json> | undefined;
  assert.ok(props, `${path || '(top level)'} is a mapping in the example but not in the schema`);
  assert.equal(schema['additionalProperties'], false, `${path || '(top level)'} must refuse unknown keys`);
  for (const [k, v] of Object.entries(value)) {
    const key = path ? `${path}.${k}` : k;
    assert.ok(Object.hasOwn(props, k), `the schema does not know ${key}`);
    checkKeys(props[k]!, v, key);
  }
}

/** Every dotted key path the schema describes (list items as `[]`). */
function keyPaths(schema: Json, prefix = ''): string[] {
  const out: string[] = [];
  const props = (schema['properties'] ?? {}) as Record<string, Json>;
  for (const [k, s] of Object.entries(props)) {
    const key = prefix ? `${prefix}.${k}` : k;
    out.push(key, ...keyPaths(s, key));
    const items = s['items'] as Json | undefined;
    if (items !== undefined) out.push(...keyPaths(items, `${key}[]`));
  }
  return out;
}

/** The `name` document of a ConfigMap in deploy/kubernetes, as text. */
function configMapDoc(file: string, name: string): string {
  const cm = parseYaml(readFileSync(join(ROOT, 'deploy', 'kubernetes', file), 'utf8')) as { data: Json };
  return cm.data[name] as string;
}

/** The YAML blocks of a doc file that contain `marker` (the full example of each config page), as text. */
function docExamples(file: string, marker: string): string[] {
  const text = readFileSync(join(ROOT, 'docs', file), 'utf8');
  return [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes(marker));
}

describe('configuration JSON Schemas (docs/schemas)', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-schemas-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('are exactly what the zod schemas generate (npm run schemas rewrites them)', async () => {
    const r = await run('--check');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  it('--check fails, naming each stale or missing file, and a rewrite makes it pass again', async () => {
    const written = await run('--dir', dir);
    assert.equal(written.code, 0, written.stderr);
    for (const name of ['ca.schema.json', 'agent.schema.json']) {
      assert.equal(readFileSync(join(dir, name), 'utf8'), readFileSync(join(SCHEMAS, name), 'utf8'), name);
    }
    assert.equal((await run('--check', '--dir', dir)).code, 0);

    // A key dropped from one file (as after a schema change nobody regenerated) and another file gone.
    const agent = JSON.parse(readFileSync(join(dir, 'agent.schema.json'), 'utf8')) as { properties: Json };
    delete agent.properties['entry_sync_interval'];
    writeFileSync(join(dir, 'agent.schema.json'), JSON.stringify(agent, null, 2) + '\n');
    let r = await run('--check', '--dir', dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /out of date in .*: agent\.schema\.json; run npm run schemas/);
    unlinkSync(join(dir, 'ca.schema.json'));
    r = await run('--check', '--dir', dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /: ca\.schema\.json, agent\.schema\.json; /);

    assert.equal((await run('--dir', dir)).code, 0);
    assert.equal((await run('--check', '--dir', dir)).code, 0);
  });

  const cases = [
    {
      name: 'ca.schema.json',
      examples: () => [configMapDoc('ca-config.yaml', 'ca.yaml'), ...docExamples('ca-config.md', 'trust_domain:')],
      overridable: CA_KEYS,
      load: (configFile: string) => loadCaConfig({ configFile, baseDir: '/' }),
    },
    {
      name: 'agent.schema.json',
      examples: () => [
        configMapDoc('agent-config.yaml', 'agent.yaml'),
        ...docExamples('agent-config.md', 'trust_domain:'),
      ],
      overridable: AGENT_KEYS,
      load: (configFile: string) => loadAgentConfig({ configFile, baseDir: '/' }),
    },
  ];
  for (const c of cases) {
    it(`${c.name} knows every key of the example configurations in deploy/ and docs/`, async () => {
      const schema = schemaOf(c.name);
      const examples = c.examples();
      assert.ok(examples.length >= 2, 'a ConfigMap and at least one doc example');
      for (const [i, text] of examples.entries()) {
        checkKeys(schema, parseYaml(text), '');
        // And the daemon reads each example as it stands, so the editor and the daemon agree on it.
        const file = join(dir, `example-${i}.yaml`);
        writeFileSync(file, text);
        await c.load(file);
      }
    });

    it(`${c.name} describes every key that an environment variable or flag may override`, () => {
      const paths = new Set(keyPaths(schemaOf(c.name)));
      for (const key of c.overridable) assert.ok(paths.has(key), `${key} is overridable but not in ${c.name}`);
    });
  }
});
