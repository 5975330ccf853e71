/**
 * Static checks of the Kubernetes base (deploy/kubernetes) and the Dockerfile: neither can be applied
 * or built in the test suite, so every invariant that would otherwise only show up in a cluster is
 * checked here, and each failure names the file and the object. The daemons' configurations embedded
 * in ConfigMaps are parsed with the daemons' own parsers, and everything that has to agree with them
 * (ports, probes, the Service, the token audience and path, the mounted files) is compared to the
 * parsed values rather than to copies of the numbers.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import {
  ENV_PREFIX as AGENT_ENV_PREFIX,
  OVERRIDABLE_KEYS as AGENT_OVERRIDABLE_KEYS,
  parseAgentConfig,
  type AgentConfig,
} from '../lib/agent/config.js';
import { PsatAttestor } from '../lib/attest/index.js';
import { OVERRIDABLE_KEYS as CA_OVERRIDABLE_KEYS, parseCaConfig, type CaConfig } from '../lib/ca/config.js';
import { applyOverrides, envOverrides } from '../lib/config/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BASE_DIR = 'deploy/kubernetes';
const BASE = join(ROOT, BASE_DIR);
/** Pod-template annotation listing the containers allowed to run as root, each with its reason. */
const ROOT_ANNOTATION = 'svidkit.io/runs-as-root';
const CA_BINARY = 'svidkit-ca';
const AGENT_BINARY = 'svidkit-agent';
/** The manifest of the package the images hold: the daemons and the CLI. */
const DAEMONS_MANIFEST = 'packages/svidkit-daemons/package.json';

// ---- The shapes of the Kubernetes objects this test reads (only the fields it looks at). ----

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface KeyRef {
  name: string;
  key?: string;
  optional?: boolean;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; configMapKeyRef?: KeyRef; secretKeyRef?: KeyRef };
}
interface HttpProbe {
  httpGet?: { path?: string; port: number | string };
}
interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
interface PodSecurityContext extends SecurityContext {
  fsGroup?: number;
  supplementalGroups?: number[];
}
interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
  subPathExpr?: string;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: KeyRef; secretRef?: KeyRef }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: HttpProbe;
  readinessProbe?: HttpProbe;
  startupProbe?: HttpProbe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: Mount[];
}
interface Items {
  items?: { key: string; path: string }[];
}
interface ProjectedSource {
  serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string };
  configMap?: KeyRef & Items;
  secret?: KeyRef & Items;
}
interface Volume {
  name: string;
  configMap?: KeyRef & Items;
  secret?: { secretName: string; optional?: boolean } & Items;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  hostPath?: { path: string; type?: string };
  emptyDir?: Record<string, unknown>;
  projected?: { sources: ProjectedSource[] };
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: PodSecurityContext;
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
}
interface Controller {
  replicas?: number;
  strategy?: { type?: string };
  selector: { matchLabels: Record<string, string> };
  template: { metadata: Meta; spec: PodSpec };
}
interface ServiceSpec {
  selector: Record<string, string>;
  ports: { name?: string; port: number; targetPort?: number | string }[];
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  data?: Record<string, string>;
  spec?: unknown;
}

/** One object of the base with the file it came from. */
interface Manifest {
  file: string;
  obj: K8sObject;
}

/** A pod template with its controller, for messages. */
interface Pod {
  m: Manifest;
  namespace: string;
  meta: Meta;
  spec: PodSpec;
}

function where(m: Manifest, container?: Container): string {
  const o = `${m.file}: ${m.obj.kind}/${m.obj.metadata?.name ?? '(no name)'}`;
  return container ? `${o} container ${container.name}` : o;
}

function podOf(m: Manifest): Pod | undefined {
  if (m.obj.kind !== 'Deployment' && m.obj.kind !== 'DaemonSet' && m.obj.kind !== 'StatefulSet') return undefined;
  const spec = m.obj.spec as Controller;
  return { m, namespace: m.obj.metadata.namespace ?? '', meta: spec.template.metadata, spec: spec.template.spec };
}

function allContainers(pod: Pod): Container[] {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
}

// ---- Loading the base. ----

/** Kubernetes reads manifests as YAML 1.1 (0440 is octal there); so does this test. */
function loadManifests(file: string): Manifest[] {
  const text = readFileSync(join(BASE, file), 'utf8');
  const docs = parseAllDocuments(text, { version: '1.1', uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const out: Manifest[] = [];
  for (const [i, doc] of list.entries()) {
    assert.deepEqual(
      doc.errors.map((e) => e.message),
      [],
      `${BASE_DIR}/${file}: document ${i + 1} is not valid YAML`,
    );
    const obj = doc.toJS() as K8sObject | null;
    if (obj === null) continue;
    const here = `${BASE_DIR}/${file}: document ${i + 1}`;
    assert.ok(typeof obj.apiVersion === 'string' && typeof obj.kind === 'string', `${here} has no apiVersion or kind`);
    assert.ok(typeof obj.metadata?.name === 'string', `${here} (${obj.kind}) has no metadata.name`);
    out.push({ file: `${BASE_DIR}/${file}`, obj });
  }
  return out;
}

// ---- The Dockerfile. ----

interface Stage {
  name: string;
  from: string;
  /** The stage this one builds on, when FROM names an earlier stage. */
  parent?: Stage;
  user?: string;
  workdir: string;
  entrypoint?: string[];
  cmd?: string[];
  runs: string[];
  copies: { from?: string; dest: string }[];
}

/** Instructions of a Dockerfile: continuation lines joined, comments and blank lines dropped. */
function dockerInstructions(text: string): { op: string; rest: string }[] {
  const out: { op: string; rest: string }[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = pending + line;
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ op: m[1]!.toUpperCase(), rest: m[2]! });
  }
  assert.equal(pending, '', 'Dockerfile: the last instruction ends with a line continuation');
  return out;
}

function execForm(op: string, rest: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(rest);
  } catch {
    assert.fail(`Dockerfile: ${op} ${rest} is not in exec form (a JSON array): signals would go to a shell`);
  }
  assert.ok(Array.isArray(value) && value.every((v) => typeof v === 'string'), `Dockerfile: ${op} ${rest}`);
  return value as string[];
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const { op, rest } of dockerInstructions(text)) {
    if (op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(m, `Dockerfile: cannot read FROM ${rest}`);
      const parent = stages.find((s) => s.name === m[1]);
      stages.push({
        name: m[2] ?? String(stages.length),
        from: m[1]!,
        parent,
        workdir: parent?.workdir ?? '/',
        runs: [],
        copies: [],
      });
      continue;
    }
    const stage = stages[stages.length - 1];
    assert.ok(stage !== undefined || op === 'ARG', `Dockerfile: ${op} before the first FROM`);
    if (stage === undefined) continue;
    if (op === 'USER') stage.user = rest;
    else if (op === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, rest);
    else if (op === 'ENTRYPOINT') stage.entrypoint = execForm(op, rest);
    else if (op === 'CMD') stage.cmd = execForm(op, rest);
    else if (op === 'RUN') stage.runs.push(rest);
    else if (op === 'COPY' || op === 'ADD') {
      const words = rest.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const dest = words[words.length - 1]!;
      stage.copies.push({ from, dest: posix.resolve(stage.workdir, dest) });
    }
  }
  return stages;
}

/** A stage's USER, ENTRYPOINT, CMD and COPY destinations, including what it inherits. */
function effective(stage: Stage): { user?: string; entrypoint?: string[]; cmd?: string[]; copies: string[] } {
  const chain: Stage[] = [];
  for (let s: Stage | undefined = stage; s; s = s.parent) chain.unshift(s);
  let user: string | undefined;
  let entrypoint: string[] | undefined;
  let cmd: string[] | undefined;
  const copies: string[] = [];
  for (const s of chain) {
    user = s.user ?? user;
    if (s.entrypoint) {
      entrypoint = s.entrypoint;
      cmd = undefined; // a new ENTRYPOINT resets an inherited CMD
    }
    cmd = s.cmd ?? cmd;
    copies.push(...s.copies.map((c) => c.dest));
  }
  return { user, entrypoint, cmd, copies };
}

/** `dist/cmd/<name>.js` named by an argument list, as a repository-relative path. */
function distScript(argv: readonly string[] | undefined): string | undefined {
  for (const a of argv ?? []) {
    const m = /(?:^|\/)(dist\/cmd\/[\w.-]+\.js)$/.exec(a);
    if (m) return m[1];
  }
  return undefined;
}

/** `svidkit-ca` for `registry.example.com/team/svidkit-ca:0.1.0`. */
function imageRepoName(image: string): string {
  const noDigest = image.split('@')[0]!;
  const lastSlash = noDigest.lastIndexOf('/');
  const tail = noDigest.slice(lastSlash + 1);
  return tail.split(':')[0]!;
}

function imageTag(image: string): string | undefined {
  const noDigest = image.split('@')[0]!;
  const tail = noDigest.slice(noDigest.lastIndexOf('/') + 1);
  return tail.includes(':') ? tail.slice(tail.indexOf(':') + 1) : undefined;
}

// ---- Paths inside a container. ----

function under(parent: string, path: string): boolean {
  const p = posix.normalize(parent).replace(/\/$/, '');
  return path === p || path.startsWith(p + '/');
}

/** The mount that holds `path` in `container` (the deepest one), with its volume. */
function mountFor(pod: Pod, container: Container, path: string): { mount: Mount; volume: Volume; rel: string } {
  const mounts = (container.volumeMounts ?? []).filter((m) => under(m.mountPath, path));
  mounts.sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mount = mounts[0];
  assert.ok(
    mount,
    `${where(pod.m, container)}: ${path} is on no volume; the root filesystem is read-only, so nothing would be there`,
  );
  const volume = (pod.spec.volumes ?? []).find((v) => v.name === mount.name);
  assert.ok(volume, `${where(pod.m, container)}: volumeMount ${mount.name} names no volume`);
  return { mount, volume, rel: posix.relative(mount.mountPath, path) };
}

/** The ConfigMap key a file in a configMap volume comes from. */
function configMapKeyAt(volume: Volume, rel: string): { name: string; key: string } | undefined {
  if (!volume.configMap) return undefined;
  const item = volume.configMap.items?.find((i) => i.path === rel);
  if (volume.configMap.items && !item) return undefined;
  return { name: volume.configMap.name, key: item?.key ?? rel };
}

function isNotLoopback(address: string): boolean {
  return !/^(127\.|localhost$|::1$|\[::1\]$)/.test(address);
}

/** The port number a probe or Service targets, with named ports resolved against the container. */
function portNumber(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** The value of `--config`/`-c` in an argument list. */
function configFlag(argv: readonly string[]): string | undefined {
  for (const [i, a] of argv.entries()) {
    if (a === '--config' || a === '-c') return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

// ---- The tests. ----

describe('deployment: Kubernetes base and Dockerfile (static checks)', function () {
  let manifests: Manifest[];
  let kustomization: { resources?: string[]; [k: string]: unknown };
  let stages: Stage[];
  let pods: Pod[];
  let namespace: string;

  /** A daemon's container, its pod, its parsed configuration and where the file came from. */
  interface Daemon<C> {
    pod: Pod;
    container: Container;
    config: C;
    configMap: string;
  }
  let ca: Daemon<CaConfig>;
  let agent: Daemon<AgentConfig>;
  let daemonsLoaded = false;

  function find(kind: string, name: string): Manifest | undefined {
    return manifests.find((m) => m.obj.kind === kind && m.obj.metadata.name === name);
  }

  function stageOf(image: string): Stage | undefined {
    return stages.find((s) => s.name === imageRepoName(image));
  }

  /** The binary a container runs: its command if it names one, else its image's ENTRYPOINT. */
  function binaryOf(container: Container): string | undefined {
    const script = container.command ? distScript(container.command) : undefined;
    if (script) return posix.basename(script, '.js');
    if (container.command) return undefined;
    const stage = stageOf(container.image);
    const ep = stage ? distScript(effective(stage).entrypoint) : undefined;
    return ep ? posix.basename(ep, '.js') : undefined;
  }

  function argvOf(container: Container): string[] {
    if (container.args) return container.args;
    const stage = stageOf(container.image);
    return (stage && effective(stage).cmd) ?? [];
  }

  function configMapText(m: Manifest, container: Container, name: string, key: string): string {
    const cm = find('ConfigMap', name);
    assert.ok(cm, `${where(m, container)}: ConfigMap ${name} is not in the base`);
    const text = cm.obj.data?.[key];
    assert.ok(typeof text === 'string', `${where(cm)} has no key ${key}, which ${where(m, container)} reads`);
    return text;
  }

  /** Finds the one container running `binary`, reads its --config from the ConfigMap it mounts. */
  function daemon(binary: string): {
    pod: Pod;
    container: Container;
    doc: unknown;
    configMap: string;
    env: Record<string, string>;
  } {
    const found = pods.flatMap((pod) =>
      pod.spec.containers.filter((c) => binaryOf(c) === binary).map((c) => ({ pod, c })),
    );
    assert.equal(found.length, 1, `the base must run ${binary} in exactly one container (found ${found.length})`);
    const { pod, c } = found[0]!;
    const argv = argvOf(c);
    const known = binary === AGENT_BINARY ? ['run', '--config', '-c'] : ['--config', '-c'];
    for (const a of argv) {
      if (a.startsWith('-') && !known.includes(a.split('=')[0]!)) {
        assert.fail(`${where(pod.m, c)}: argument ${a} is not understood by this test; put it in the config file`);
      }
    }
    const file = configFlag(argv);
    assert.ok(file, `${where(pod.m, c)}: no --config argument`);
    const { volume, rel } = mountFor(pod, c, file);
    const ref = configMapKeyAt(volume, rel);
    assert.ok(ref, `${where(pod.m, c)}: ${file} does not come from a ConfigMap`);
    const text = configMapText(pod.m, c, ref.name, ref.key);
    // The daemons read their files exactly like this (lib/config readConfigFile).
    const doc: unknown = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true }) ?? {};
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
    return { pod, container: c, doc, configMap: `${where(find('ConfigMap', ref.name)!)} key ${ref.key}`, env };
  }

  before(function () {
    const kText = readFileSync(join(BASE, 'kustomization.yaml'), 'utf8');
    kustomization = parseYaml(kText, { version: '1.1' }) as typeof kustomization;
    const files = readdirSync(BASE).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    manifests = files.sort().flatMap((f) => loadManifests(f));
    stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    pods = manifests.map(podOf).filter((p): p is Pod => p !== undefined);
    const namespaces = manifests.filter((m) => m.obj.kind === 'Namespace');
    assert.equal(namespaces.length, 1, `${BASE_DIR}: the base defines one Namespace`);
    namespace = namespaces[0]!.obj.metadata.name;
  });

  /**
   * Finds the two daemons and parses their configurations; a hook of each group that needs them, so
   * that a broken daemon fails those groups and leaves the Dockerfile checks to say why.
   */
  function loadDaemons(): void {
    if (daemonsLoaded) return;
    const c = daemon(CA_BINARY);
    let caConfig: CaConfig;
    try {
      caConfig = parseCaConfig(
        applyOverrides(c.doc, envOverrides('SVIDKIT_CA', CA_OVERRIDABLE_KEYS, c.env)),
        stageOf(c.container.image)?.workdir,
      );
    } catch (err) {
      assert.fail(`${c.configMap}: svidkit-ca refuses its configuration: ${(err as Error).message}`);
    }
    ca = { pod: c.pod, container: c.container, config: caConfig, configMap: c.configMap };

    const a = daemon(AGENT_BINARY);
    let agentConfig: AgentConfig;
    try {
      agentConfig = parseAgentConfig(
        applyOverrides(a.doc, envOverrides(AGENT_ENV_PREFIX, AGENT_OVERRIDABLE_KEYS, a.env)),
        stageOf(a.container.image)?.workdir,
      );
    } catch (err) {
      assert.fail(`${a.configMap}: svidkit-agent refuses its configuration: ${(err as Error).message}`);
    }
    agent = { pod: a.pod, container: a.container, config: agentConfig, configMap: a.configMap };
    daemonsLoaded = true;
  }

  describe('the kustomize base', function () {
    before(loadDaemons);

    it('kustomization.yaml lists exactly the YAML files of the directory, each once', function () {
      const listed = kustomization.resources ?? [];
      const file = `${BASE_DIR}/kustomization.yaml`;
      assert.equal(new Set(listed).size, listed.length, `${file} lists a resource twice`);
      const present = readdirSync(BASE).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
      const missing = present.filter((f) => !listed.includes(f));
      const orphans = listed.filter((f) => !present.includes(f));
      assert.deepEqual(missing, [], `${file} does not list ${missing.join(', ')}`);
      assert.deepEqual(orphans, [], `${file} lists ${orphans.join(', ')}, which is not a file here`);
      for (const key of ['configMapGenerator', 'secretGenerator', 'patches', 'components']) {
        assert.equal(kustomization[key], undefined, `${file}: ${key} belongs in an overlay (docs/kubernetes.md)`);
      }
    });

    it('defines each object once, every namespaced object in the base namespace', function () {
      const seen = new Map<string, string>();
      for (const m of manifests) {
        const id = `${m.obj.kind}/${m.obj.metadata.namespace ?? ''}/${m.obj.metadata.name}`;
        assert.ok(!seen.has(id), `${where(m)} is also defined in ${seen.get(id)}`);
        seen.set(id, m.file);
        if (m.obj.kind !== 'Namespace') {
          assert.equal(m.obj.metadata.namespace, namespace, `${where(m)} is not in namespace ${namespace}`);
        }
      }
    });

    it('has the objects a deployment needs', function () {
      const kinds = manifests.map((m) => m.obj.kind);
      for (const kind of ['Namespace', 'ServiceAccount', 'ConfigMap', 'PersistentVolumeClaim', 'Service']) {
        assert.ok(kinds.includes(kind), `${BASE_DIR}: no ${kind}`);
      }
      assert.equal(ca.pod.m.obj.kind, 'Deployment', `${where(ca.pod.m)}: the CA runs as a Deployment`);
      assert.equal(agent.pod.m.obj.kind, 'DaemonSet', `${where(agent.pod.m)}: the agent runs as a DaemonSet`);
    });

    it('controllers select their own pods, and the CA Service selects the CA pod only', function () {
      for (const pod of pods) {
        const selector = (pod.m.obj.spec as Controller).selector.matchLabels;
        for (const [k, v] of Object.entries(selector)) {
          assert.equal(pod.meta.labels?.[k], v, `${where(pod.m)}: the selector's ${k}=${v} is not on its pod template`);
        }
      }
      const svc = caService();
      const matches = pods.filter((p) => Object.entries(svc.spec.selector).every(([k, v]) => p.meta.labels?.[k] === v));
      assert.deepEqual(
        matches.map((p) => where(p.m)),
        [where(ca.pod.m)],
        `${where(svc.m)} must select the CA's pods and nothing else`,
      );
    });

    it('runs the CA as a single pod, replaced with Recreate (single-writer SQLite)', function () {
      const spec = ca.pod.m.obj.spec as Controller;
      assert.equal(spec.replicas, 1, `${where(ca.pod.m)}: replicas must be 1`);
      assert.equal(spec.strategy?.type, 'Recreate', `${where(ca.pod.m)}: strategy must be Recreate`);
      const { volume } = mountFor(ca.pod, ca.container, ca.config.dataDir);
      assert.ok(volume.persistentVolumeClaim, `${where(ca.pod.m)}: data_dir ${ca.config.dataDir} is not on a PVC`);
      const pvc = find('PersistentVolumeClaim', volume.persistentVolumeClaim.claimName)!;
      const modes = (pvc.obj.spec as { accessModes?: string[] }).accessModes;
      assert.deepEqual(modes, ['ReadWriteOnce'], `${where(pvc)}: one writer, ReadWriteOnce`);
    });
  });

  describe('pods and containers', function () {
    it('every volumeMount names a volume of its pod, every volume is mounted, no mount inside a read-only one', function () {
      for (const pod of pods) {
        const volumes = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v]));
        const used = new Set<string>();
        for (const c of allContainers(pod)) {
          const paths = new Set<string>();
          for (const mount of c.volumeMounts ?? []) {
            assert.ok(volumes.has(mount.name), `${where(pod.m, c)}: volumeMount ${mount.name} names no volume`);
            assert.ok(!paths.has(mount.mountPath), `${where(pod.m, c)}: two mounts at ${mount.mountPath}`);
            paths.add(mount.mountPath);
            used.add(mount.name);
          }
          // A ConfigMap, Secret or projected volume is read-only: no mount point can be created in it.
          for (const inner of c.volumeMounts ?? []) {
            for (const outer of c.volumeMounts ?? []) {
              const v = volumes.get(outer.name)!;
              if (inner === outer || !under(outer.mountPath, inner.mountPath)) continue;
              assert.ok(
                !(v.configMap || v.secret || v.projected),
                `${where(pod.m, c)}: ${inner.mountPath} is inside the read-only volume ${outer.name}`,
              );
            }
          }
        }
        for (const name of volumes.keys())
          assert.ok(used.has(name), `${where(pod.m)}: volume ${name} is never mounted`);
      }
    });

    it('every ConfigMap, Secret, PVC and ServiceAccount referred to is in the base or optional', function () {
      const need = (pod: Pod, kind: string, name: string, optional: boolean | undefined, what: string) => {
        if (optional === true) return;
        assert.ok(find(kind, name), `${where(pod.m)}: ${what} refers to ${kind} ${name}, which is not in the base`);
      };
      for (const pod of pods) {
        need(pod, 'ServiceAccount', pod.spec.serviceAccountName ?? 'default', false, 'serviceAccountName');
        for (const v of pod.spec.volumes ?? []) {
          if (v.configMap) need(pod, 'ConfigMap', v.configMap.name, v.configMap.optional, `volume ${v.name}`);
          if (v.secret) need(pod, 'Secret', v.secret.secretName, v.secret.optional, `volume ${v.name}`);
          if (v.persistentVolumeClaim) {
            need(pod, 'PersistentVolumeClaim', v.persistentVolumeClaim.claimName, false, `volume ${v.name}`);
          }
          for (const s of v.projected?.sources ?? []) {
            if (s.configMap) need(pod, 'ConfigMap', s.configMap.name, s.configMap.optional, `volume ${v.name}`);
            if (s.secret) need(pod, 'Secret', s.secret.name, s.secret.optional, `volume ${v.name}`);
          }
        }
        for (const c of allContainers(pod)) {
          for (const e of c.env ?? []) {
            const cm = e.valueFrom?.configMapKeyRef;
            const sec = e.valueFrom?.secretKeyRef;
            if (cm) need(pod, 'ConfigMap', cm.name, cm.optional, `env ${e.name} of ${c.name}`);
            if (sec) need(pod, 'Secret', sec.name, sec.optional, `env ${e.name} of ${c.name}`);
          }
          for (const e of c.envFrom ?? []) {
            if (e.configMapRef)
              need(pod, 'ConfigMap', e.configMapRef.name, e.configMapRef.optional, `envFrom of ${c.name}`);
            if (e.secretRef) need(pod, 'Secret', e.secretRef.name, e.secretRef.optional, `envFrom of ${c.name}`);
          }
        }
      }
    });

    it('no container is privileged or can gain privileges; all capabilities dropped; seccomp RuntimeDefault', function () {
      for (const pod of pods) {
        for (const h of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
          assert.notEqual(pod.spec[h], true, `${where(pod.m)}: ${h}`);
        }
        for (const c of allContainers(pod)) {
          const sc = c.securityContext ?? {};
          assert.notEqual(sc.privileged, true, `${where(pod.m, c)} is privileged`);
          assert.equal(
            sc.allowPrivilegeEscalation,
            false,
            `${where(pod.m, c)}: allowPrivilegeEscalation must be false`,
          );
          assert.ok(sc.capabilities?.drop?.includes('ALL'), `${where(pod.m, c)}: capabilities must drop ALL`);
          assert.deepEqual(sc.capabilities?.add ?? [], [], `${where(pod.m, c)} adds capabilities`);
          assert.equal(sc.readOnlyRootFilesystem, true, `${where(pod.m, c)}: readOnlyRootFilesystem must be true`);
          const seccomp = sc.seccompProfile ?? pod.spec.securityContext?.seccompProfile;
          assert.equal(seccomp?.type, 'RuntimeDefault', `${where(pod.m, c)}: seccompProfile must be RuntimeDefault`);
        }
      }
    });

    it('containers run as non-root, except those the pod template lists with a reason', function () {
      for (const pod of pods) {
        const note = pod.meta.annotations?.[ROOT_ANNOTATION];
        const exempt = new Map<string, string>();
        for (const entry of (note ?? '').split(';').filter((s) => s.trim() !== '')) {
          const m = /^\s*([\w-]+)\s*:\s*(\S.*)$/.exec(entry);
          assert.ok(m, `${where(pod.m)}: ${ROOT_ANNOTATION} entry "${entry}" is not "<container>: <reason>"`);
          exempt.set(m[1]!, m[2]!);
        }
        for (const c of allContainers(pod)) {
          const psc = pod.spec.securityContext ?? {};
          const sc = c.securityContext ?? {};
          const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
          const uid = sc.runAsUser ?? psc.runAsUser;
          if (exempt.has(c.name)) {
            assert.equal(uid, 0, `${where(pod.m, c)} is listed in ${ROOT_ANNOTATION} but does not run as uid 0`);
            exempt.delete(c.name);
            continue;
          }
          assert.equal(nonRoot, true, `${where(pod.m, c)}: runAsNonRoot must be true`);
          assert.notEqual(uid, 0, `${where(pod.m, c)}: runAsUser 0 with runAsNonRoot`);
          const image = stageOf(c.image);
          const imageUser = image ? effective(image).user : undefined;
          assert.ok(
            (uid !== undefined && uid > 0) || (imageUser !== undefined && /^[1-9]\d*(:\d+)?$/.test(imageUser)),
            `${where(pod.m, c)}: no numeric non-root uid from runAsUser or the image's USER`,
          );
        }
        assert.deepEqual([...exempt.keys()], [], `${where(pod.m)}: ${ROOT_ANNOTATION} names unknown containers`);
      }
    });

    it('every container has resource requests and limits and an image pinned to a tag', function () {
      for (const pod of pods) {
        for (const c of allContainers(pod)) {
          for (const kind of ['requests', 'limits'] as const) {
            for (const r of ['cpu', 'memory']) {
              assert.ok(c.resources?.[kind]?.[r] !== undefined, `${where(pod.m, c)}: no resources.${kind}.${r}`);
            }
          }
          const tag = imageTag(c.image);
          assert.ok(
            tag !== undefined && tag !== 'latest',
            `${where(pod.m, c)}: image ${c.image} must be pinned to a tag other than latest`,
          );
        }
      }
    });

    it('no pod gets a Kubernetes API token: nothing in the base calls the API', function () {
      for (const pod of pods) {
        assert.equal(pod.spec.automountServiceAccountToken, false, `${where(pod.m)}: automountServiceAccountToken`);
        const projected = (pod.spec.volumes ?? []).flatMap((v) => v.projected?.sources ?? []);
        for (const s of projected) {
          if (s.serviceAccountToken) {
            assert.ok(s.serviceAccountToken.audience, `${where(pod.m)}: a projected token without its own audience`);
          }
        }
      }
    });
  });

  describe('the daemons and the manifests agree', function () {
    before(loadDaemons);

    it('the CA listens where its Service, container ports and probes point', function () {
      const c = ca.config;
      const here = where(ca.pod.m, ca.container);
      assert.ok(isNotLoopback(c.listen.address), `${ca.configMap}: listen.address ${c.listen.address} is unreachable`);
      assert.ok(
        isNotLoopback(c.observability.address),
        `${ca.configMap}: observability.address ${c.observability.address} is unreachable for the kubelet's probes`,
      );
      const ports = (ca.container.ports ?? []).map((p) => p.containerPort).sort();
      const expected = [c.listen.port, c.observability.port, ...(c.admin.mtls ? [c.admin.mtls.port] : [])].sort();
      assert.deepEqual(ports, expected, `${here}: containerPorts must be the ports of ${ca.configMap}`);
      checkProbes(ca.pod, ca.container, c.observability.port, ca.configMap);
      const svc = caService();
      const svcPorts = svc.spec.ports.map((p) => portNumber(ca.container, p.targetPort ?? p.port));
      assert.ok(
        svcPorts.includes(c.listen.port),
        `${where(svc.m)} does not target the Node API port ${c.listen.port} of ${here}`,
      );
    });

    it('the agent listens where its container port and probes point', function () {
      const c = agent.config;
      const here = where(agent.pod.m, agent.container);
      assert.ok(
        isNotLoopback(c.observability.address),
        `${agent.configMap}: observability.address ${c.observability.address} is unreachable for the kubelet's probes`,
      );
      const ports = (agent.container.ports ?? []).map((p) => p.containerPort);
      assert.deepEqual(
        ports,
        [c.observability.port],
        `${here}: containerPorts must be the ports of ${agent.configMap}`,
      );
      checkProbes(agent.pod, agent.container, c.observability.port, agent.configMap);
    });

    it("the agent dials the CA Service's DNS name and port, in the CA's trust domain", function () {
      const svc = caService();
      const name = svc.m.obj.metadata.name;
      const ns = svc.m.obj.metadata.namespace;
      const names = [`${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`, `${name}.${ns}`];
      assert.ok(
        names.includes(agent.config.ca.host),
        `${agent.configMap}: ca.address ${agent.config.ca.address} is not the DNS name of ${where(svc.m)} (${names[0]})`,
      );
      const port = svc.spec.ports.find(
        (p) => portNumber(ca.container, p.targetPort ?? p.port) === ca.config.listen.port,
      );
      assert.equal(
        agent.config.ca.port,
        port?.port,
        `${agent.configMap}: ca.address port is not the port of ${where(svc.m)} for the Node API`,
      );
      assert.equal(
        agent.config.trustDomain.name,
        ca.config.trustDomain.name,
        `${agent.configMap}: trust_domain differs from ${ca.configMap}`,
      );
    });

    it("the agent's projected token has the audience, cluster and path the CA and the agent expect", function () {
      const att = agent.config.attestation;
      assert.equal(att.method, 'k8s_psat', `${agent.configMap}: attestation must be k8s_psat in Kubernetes`);
      if (att.method !== 'k8s_psat') return;
      const clusters = ca.config.k8sPsat;
      assert.ok(clusters.length > 0, `${ca.configMap}: attestation.k8s_psat.clusters is empty`);
      // The CA's own startup checks (issuer URL, exactly one key source, allow list).
      try {
        new PsatAttestor(ca.config.trustDomain, clusters);
      } catch (err) {
        assert.fail(`${ca.configMap}: svidkit-ca would not start: ${(err as Error).message}`);
      }
      const cluster = att.cluster === undefined ? clusters[0] : clusters.find((c) => c.name === att.cluster);
      assert.ok(cluster, `${agent.configMap}: cluster ${att.cluster} is not a cluster of ${ca.configMap}`);
      assert.ok(att.cluster !== undefined || clusters.length === 1, `${agent.configMap}: name the cluster`);

      const { mount, volume, rel } = mountFor(agent.pod, agent.container, att.tokenFile);
      const here = where(agent.pod.m, agent.container);
      const token = volume.projected?.sources.find((s) => s.serviceAccountToken?.path === rel)?.serviceAccountToken;
      assert.ok(token, `${here}: ${att.tokenFile} is not a projected service-account token (mount ${mount.name})`);
      assert.equal(token.audience, cluster.audience, `${here}: token audience differs from cluster ${cluster.name}`);
      assert.ok((token.expirationSeconds ?? 3600) >= 600, `${here}: expirationSeconds below the minimum of 600`);
      const allowed = cluster.allow.some(
        (a) => a.namespace === agent.pod.namespace && a.serviceAccount === agent.pod.spec.serviceAccountName,
      );
      assert.ok(
        allowed,
        `${ca.configMap}: cluster ${cluster.name} does not allow ${agent.pod.namespace}/${agent.pod.spec.serviceAccountName}, the service account of ${where(agent.pod.m)}`,
      );

      if (cluster.jwksFile !== undefined) {
        const jwks = mountFor(ca.pod, ca.container, cluster.jwksFile);
        const ref = configMapKeyAt(jwks.volume, jwks.rel);
        assert.ok(ref, `${where(ca.pod.m, ca.container)}: jwks_file ${cluster.jwksFile} is not from a ConfigMap`);
        const doc = JSON.parse(configMapText(ca.pod.m, ca.container, ref.name, ref.key)) as { keys?: unknown };
        assert.ok(Array.isArray(doc.keys), `${where(find('ConfigMap', ref.name)!)}: ${ref.key} is not a JWKS`);
      }
    });

    it('the files each daemon reads and writes are on suitable volumes', function () {
      const writable = (d: Daemon<unknown>, path: string, what: string, kinds: (keyof Volume)[]) => {
        const { mount, volume } = mountFor(d.pod, d.container, path);
        assert.notEqual(mount.readOnly, true, `${where(d.pod.m, d.container)}: ${what} ${path} is mounted read-only`);
        assert.ok(
          kinds.some((k) => volume[k] !== undefined),
          `${where(d.pod.m, d.container)}: ${what} ${path} is on volume ${volume.name}, not on a ${kinds.join(' or ')}`,
        );
        return volume;
      };
      writable(ca, ca.config.dataDir, 'data_dir', ['persistentVolumeClaim']);
      writable(ca, posix.dirname(ca.config.admin.socket), 'admin.socket', ['emptyDir', 'persistentVolumeClaim']);
      const cliSocket = ca.container.env?.find((e) => e.name === 'SVIDKIT_ADMIN_SOCKET')?.value;
      assert.ok(
        cliSocket === undefined || cliSocket === ca.config.admin.socket,
        `${where(ca.pod.m, ca.container)}: SVIDKIT_ADMIN_SOCKET ${cliSocket} is not admin.socket of ${ca.configMap}`,
      );
      const up = ca.config.ca.upstream;
      const upstreamVolume = (ca.pod.spec.volumes ?? []).find((v) => v.secret);
      assert.ok(upstreamVolume, `${where(ca.pod.m)}: no Secret volume for upstream mode`);
      if (up) {
        for (const f of [up.certFile, up.keyFile, up.bundleFile]) {
          const { volume } = mountFor(ca.pod, ca.container, f);
          assert.ok(volume.secret, `${where(ca.pod.m, ca.container)}: upstream file ${f} is not from a Secret`);
        }
      }

      writable(agent, agent.config.dataDir, 'data_dir', ['hostPath']);
      for (const w of agent.config.workloads) {
        writable(agent, w.outputDir, `workloads[${w.index}].output_dir`, ['hostPath']);
      }
      const bundle = mountFor(agent.pod, agent.container, agent.config.ca.bundleFile);
      const ref = configMapKeyAt(bundle.volume, bundle.rel);
      assert.ok(ref, `${where(agent.pod.m, agent.container)}: ca.bundle_file is not from a ConfigMap`);
      configMapText(agent.pod.m, agent.container, ref.name, ref.key);
    });

    it('the sample workload mounts its own SVID directory read-only and reads files the agent writes', function () {
      const agentMount = (path: string) => mountFor(agent.pod, agent.container, path);
      const readers = pods.filter((p) => p !== agent.pod && p !== ca.pod);
      assert.ok(readers.length > 0, `${BASE_DIR}: no sample workload`);
      for (const pod of readers) {
        const psc = pod.spec.securityContext ?? {};
        for (const c of pod.spec.containers) {
          const here = where(pod.m, c);
          const env = new Map((c.env ?? []).map((e) => [e.name, e]));
          for (const mount of c.volumeMounts ?? []) {
            // A mount without a volume is reported by the volumeMount check above.
            const volume = (pod.spec.volumes ?? []).find((v) => v.name === mount.name);
            if (!volume?.hostPath) continue;
            const hostPath = volume.hostPath.path;
            assert.equal(mount.readOnly, true, `${here}: SVID mount ${mount.name} must be readOnly`);
            // Where the directory is inside the agent's container: its hostPath mount plus the subpath.
            const agentSide = agent.pod.spec.volumes!.find((v) => v.hostPath?.path === hostPath);
            assert.ok(agentSide, `${here}: hostPath ${hostPath} is not one the agent writes`);
            const agentMountPath = agent.container.volumeMounts!.find((m) => m.name === agentSide.name)!.mountPath;
            const sub = (mount.subPathExpr ?? mount.subPath ?? '').replace(/\$\((\w+)\)/g, (_, name: string) => {
              const field = env.get(name)?.valueFrom?.fieldRef?.fieldPath;
              if (field === 'metadata.namespace') return pod.namespace;
              if (field === 'spec.serviceAccountName') return pod.spec.serviceAccountName ?? 'default';
              if (field === 'metadata.name') return assert.fail(`${here}: pod names change; no subPathExpr from them`);
              return assert.fail(`${here}: subPathExpr uses $(${name}), which is not from the downward API`);
            });
            assert.ok(sub !== '', `${here}: ${mount.name} mounts all workloads' directories; use subPathExpr`);
            const dir = posix.join(agentMountPath, sub);
            const w = agent.config.workloads.find((x) => x.outputDir === dir);
            assert.ok(w, `${here}: no workload of ${agent.configMap} writes ${dir}`);
            assert.equal(agentMount(w.outputDir).volume.name, agentSide.name);
            assert.equal(
              w.spiffeId.path,
              `/ns/${pod.namespace}/sa/${pod.spec.serviceAccountName}`,
              `${agent.configMap}: workloads[${w.index}] writes the directory of ${pod.namespace}/${pod.spec.serviceAccountName} but its SPIFFE ID is ${w.spiffeId}`,
            );

            // Every path the container is given inside the mount is a file the agent writes there.
            const names = Object.values(w.fileNames);
            for (const e of c.env ?? []) {
              if (e.value === undefined || !under(mount.mountPath, e.value)) continue;
              const rel = posix.relative(mount.mountPath, e.value);
              const first = rel.split('/')[0]!;
              assert.ok(
                names.includes(first) && (rel === first || first === w.fileNames.jwtDir),
                `${here}: env ${e.name}=${e.value} is not a file the agent writes (${names.join(', ')})`,
              );
            }
            assert.ok(
              (c.env ?? []).some((e) => e.value === posix.join(mount.mountPath, w.fileNames.svid)),
              `${here}: is not told where its SVID (${posix.join(mount.mountPath, w.fileNames.svid)}) is`,
            );

            // The key is readable by the workload: through its group, which the agent can give the file.
            const uid = c.securityContext?.runAsUser ?? psc.runAsUser;
            const groups = [
              c.securityContext?.runAsGroup ?? psc.runAsGroup,
              psc.fsGroup,
              ...(psc.supplementalGroups ?? []),
            ];
            const byOwner = w.uid !== undefined && w.uid === uid;
            const byGroup = w.gid !== undefined && groups.includes(w.gid) && (w.keyMode & 0o040) !== 0;
            assert.ok(
              byOwner || byGroup,
              `${here} cannot read its key: workloads[${w.index}] gives it to no uid or gid of it`,
            );
            assert.equal(w.uid, undefined, `${agent.configMap}: workloads[${w.index}].uid needs CAP_CHOWN; use gid`);
            assert.ok(
              w.gid === undefined || (agent.pod.spec.securityContext?.supplementalGroups ?? []).includes(w.gid),
              `${where(agent.pod.m)}: supplementalGroups must include gid ${w.gid} of workloads[${w.index}], or the agent cannot set it`,
            );
          }
        }
      }
    });
  });

  describe('the Dockerfile', function () {
    it('is multi-stage on node:20-slim, the same base image for building and running', function () {
      const external = stages.filter((s) => !s.parent);
      assert.ok(external.length >= 2, 'Dockerfile: a build stage and a runtime stage, both FROM node:20-slim');
      for (const s of external) {
        assert.match(s.from, /^node:20(\.\d+){0,2}-slim(@sha256:[0-9a-f]{64})?$/, `Dockerfile: stage ${s.name}`);
      }
      assert.equal(new Set(external.map((s) => s.from)).size, 1, 'Dockerfile: the native addon needs one base image');
      const build = external.find((s) => s.runs.some((r) => /\bnpm ci\b/.test(r)));
      assert.ok(build, 'Dockerfile: no stage runs npm ci');
      assert.ok(
        build.runs.some((r) => /\btsc\b/.test(r)),
        `Dockerfile: stage ${build.name} does not run tsc`,
      );
      assert.ok(
        build.runs.some((r) => /npm prune --omit=dev/.test(r)),
        `Dockerfile: stage ${build.name} must prune dev dependencies before node_modules is copied`,
      );
    });

    it('runs every image as a numeric non-root user', function () {
      const last = stages[stages.length - 1]!;
      for (const s of stages.filter((x) => x === last || effective(x).entrypoint)) {
        const user = effective(s).user;
        assert.ok(
          user !== undefined && /^[1-9]\d*(:\d+)?$/.test(user),
          `Dockerfile: stage ${s.name} runs as ${user ?? 'root'}; USER must be a numeric non-root uid`,
        );
      }
    });

    it('has an entry point for each binary, each naming a file that tsc builds and the image holds', function () {
      const bins = Object.values(
        (JSON.parse(readFileSync(join(ROOT, DAEMONS_MANIFEST), 'utf8')) as { bin: Record<string, string> }).bin,
      ).map((b) => posix.normalize(b));
      const found = new Set<string>();
      for (const s of stages) {
        const e = effective(s);
        if (!s.entrypoint) continue;
        for (const arg of [...(e.entrypoint ?? []), ...(e.cmd ?? [])]) {
          if (!/dist\//.test(arg)) continue;
          const script = /dist\/.*$/.exec(arg)![0];
          assert.ok(existsSync(join(ROOT, script)), `Dockerfile: stage ${s.name} runs ${arg}; ${script} is not built`);
          assert.ok(
            e.copies.some((dest) => under(dest, arg)),
            `Dockerfile: stage ${s.name} runs ${arg}, which no COPY puts there`,
          );
          found.add(script);
        }
      }
      assert.deepEqual(
        [...found].sort(),
        [...bins].sort(),
        `Dockerfile: entry points must cover ${DAEMONS_MANIFEST} bin`,
      );
    });

    it('builds every image the manifests use, as a target', function () {
      for (const pod of pods) {
        for (const c of allContainers(pod)) {
          assert.ok(stageOf(c.image), `${where(pod.m, c)}: image ${c.image} is no stage of the Dockerfile`);
        }
      }
    });

    it('.dockerignore keeps dependencies, build output, data and git out of the build context', function () {
      const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim().replace(/^\/|\/$/g, ''));
      for (const p of ['node_modules', 'dist', 'data', '.git']) {
        assert.ok(lines.includes(p), `.dockerignore: ${p} is missing`);
      }
    });
  });

  describe('documentation and rendering', function () {
    it('docs/kubernetes.md names every object of the base', function () {
      const doc = readFileSync(join(ROOT, 'docs', 'kubernetes.md'), 'utf8');
      for (const m of manifests) {
        assert.ok(doc.includes(m.obj.metadata.name), `docs/kubernetes.md does not mention ${where(m)}`);
      }
    });

    it('kubectl kustomize renders the base to the same objects', async function () {
      this.timeout(40_000);
      let stdout: string;
      try {
        ({ stdout } = await promisify(execFile)('kubectl', ['kustomize', BASE], {
          timeout: 30_000,
          maxBuffer: 8 * 1024 * 1024,
        }));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          console.log('      (skipped: kubectl is not on PATH)');
          this.skip();
        }
        throw err;
      }
      const rendered = parseAllDocuments(stdout, { version: '1.1' });
      const ids = (Array.isArray(rendered) ? rendered : [])
        .map((d) => d.toJS() as K8sObject)
        .map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)
        .sort();
      const expected = manifests.map((m) => `${m.obj.kind}/${m.obj.metadata.namespace ?? ''}/${m.obj.metadata.name}`);
      assert.deepEqual(ids, expected.sort(), 'kubectl kustomize: the rendered objects differ from the files');
    });
  });

  function caService(): { m: Manifest; spec: ServiceSpec } {
    const services = manifests.filter((m) => m.obj.kind === 'Service');
    const caLabels = ca.pod.meta.labels ?? {};
    const found = services.filter((m) =>
      Object.entries((m.obj.spec as ServiceSpec).selector ?? {}).every(([k, v]) => caLabels[k] === v),
    );
    assert.equal(found.length, 1, `${BASE_DIR}: exactly one Service must select the CA's pods`);
    return { m: found[0]!, spec: found[0]!.obj.spec as ServiceSpec };
  }

  function checkProbes(pod: Pod, c: Container, port: number, source: string): void {
    const here = where(pod.m, c);
    const want = { livenessProbe: '/healthz', readinessProbe: '/readyz' } as const;
    for (const [probe, path] of Object.entries(want) as [keyof typeof want, string][]) {
      const p = c[probe]?.httpGet;
      assert.ok(p, `${here}: no ${probe} over HTTP`);
      assert.equal(p.path, path, `${here}: ${probe} must get ${path}`);
      assert.equal(portNumber(c, p.port), port, `${here}: ${probe} port is not observability.port of ${source}`);
    }
    const startup = c.startupProbe?.httpGet;
    if (c.startupProbe) {
      assert.ok(startup && ['/healthz', '/readyz'].includes(startup.path ?? ''), `${here}: startupProbe path`);
      assert.equal(portNumber(c, startup.port), port, `${here}: startupProbe port is not observability.port`);
    }
  }
});
