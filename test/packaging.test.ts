/**
 * The two packages this repository publishes, checked as npm packs them and as Node loads them from an
 * otherwise empty project, offline: the library (`svidkit`, the repository's root manifest) ships only
 * the library's modules, needs no native addon and none of the daemons' dependencies, and loads
 * everything but svidkit/grpc without grpc-js; the daemons and CLI (`svidkit-daemons`, staged from the
 * same build by tools/stage-daemons.ts) are a self-contained package whose binaries start.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { builtinModules } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stageDaemons } from '../tools/stage-daemons.js';
import { tempDir } from './helpers/agent-fs.js';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DAEMONS_DIR = join(ROOT, 'packages', 'svidkit-daemons');

/** The fields of a package.json this test reads. */
interface Manifest {
  name: string;
  version: string;
  type?: string;
  bin?: Record<string, string>;
  exports: Record<string, string | { types: string; default: string }>;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** One entry of package-lock.json's "packages" map. */
interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  hasInstallScript?: boolean;
  dev?: boolean;
  link?: boolean;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const LIB = readJson<Manifest>(join(ROOT, 'package.json'));
const DAEMONS = readJson<Manifest>(join(DAEMONS_DIR, 'package.json'));
const LOCK = readJson<{ packages: Record<string, LockEntry> }>(join(ROOT, 'package-lock.json')).packages;

/** The library modules item by item, as the library's manifest exports them. */
const LIBRARY_MODULES = [
  'spiffeid',
  'x509svid',
  'jwtsvid',
  'bundle',
  'source',
  'tls',
  'grpc',
  'jwtauth',
  'authorize',
  'workloadapi',
];
/** Folders whose modules load the optional peers at run time with import() (never statically), so they load without them. */
const DYNAMIC_PEER_FOLDERS = ['dist/lib/source/', 'dist/lib/workloadapi/'];
/** Folders of lib/ that belong to the daemons, the CLI or the demo mesh, never to the library. */
const DAEMON_FOLDERS = ['agent', 'attest', 'ca', 'ca-api', 'cli', 'config', 'doctor', 'mesh', 'observe', 'store'];
/** Packages only the daemons use: none may be reachable from the library's dependencies. */
const DAEMON_ONLY = ['better-sqlite3', 'koffi', 'pino', 'yaml', 'commander', 'prom-client', 'zod'];
const BUILTINS = new Set(builtinModules);

/** Every file target of an exports map ('./x' paths without the './'). */
function exportTargets(m: Manifest): string[] {
  return Object.values(m.exports)
    .flatMap((e) => (typeof e === 'string' ? [e] : [e.types, e.default]))
    .map((t) => posix.normalize(t));
}

/** The files `npm pack` puts into the package in `dir`, without running its scripts. */
async function packedFiles(dir: string): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: dir });
  const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
  return pack!.files.map((f) => f.path).sort();
}

/** The module specifiers a built .js or .d.ts file imports or re-exports (statements at line start, and import()). */
function specifiersOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '');
  const out: string[] = [];
  const statement = /^\s*(?:(?:import|export)\b[^'"\n]*?\bfrom|\}\s*from|import)\s*['"]([^'"]+)['"]/gm;
  for (const m of code.matchAll(statement)) out.push(m[1]!);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

/** True when the built `file` imports `peer` other than through import(): a type-only import in a .d.ts does not count. */
function importsPeerStatically(pkgDir: string, file: string, peer: string): boolean {
  if (file.endsWith('.d.ts')) return false;
  const text = readFileSync(join(pkgDir, file), 'utf8').replace(/\bimport\(\s*['"][^'"]+['"]\s*\)/g, '');
  return specifiersOf(text).some((s) => packageOf(s) === peer);
}

/** The npm package a bare specifier names ('@scope/name' or 'name'). */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The lockfile key of `name` as resolved from the package at lockfile key `from` (Node's lookup). */
function resolveInLock(name: string, from: string): string | undefined {
  for (let base = from; ;) {
    const key = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (LOCK[key] !== undefined) return key;
    if (base === '') return undefined;
    const at = base.lastIndexOf('/node_modules/');
    base = at < 0 ? '' : base.slice(0, at);
  }
}

/** Lockfile keys of every package a production install of `deps` brings in (optional peers left out). */
function installClosure(deps: string[]): Set<string> {
  const seen = new Set<string>();
  const queue = deps.map((d) => resolveInLock(d, ''));
  while (queue.length > 0) {
    const key = queue.pop();
    assert.ok(key !== undefined, 'a dependency is missing from package-lock.json');
    if (seen.has(key)) continue;
    seen.add(key);
    const e = LOCK[key]!;
    const optionalPeers = new Set(
      Object.entries(e.peerDependenciesMeta ?? {})
        .filter(([, v]) => v.optional)
        .map(([k]) => k),
    );
    const next = [
      ...Object.keys(e.dependencies ?? {}),
      ...Object.keys(e.peerDependencies ?? {}).filter((p) => !optionalPeers.has(p)),
    ];
    for (const n of next) queue.push(resolveInLock(n, key));
    for (const n of Object.keys(e.optionalDependencies ?? {})) {
      const k = resolveInLock(n, key);
      if (k !== undefined) queue.push(k);
    }
  }
  return seen;
}

/** Links each top-level package of `closure` from the repository's node_modules into `dir`/node_modules. */
function linkDependencies(dir: string, closure: Iterable<string>): void {
  for (const key of closure) {
    if (key.lastIndexOf('node_modules/') !== 0) continue; // nested ones come with their parent
    const to = join(dir, key);
    mkdirSync(dirname(to), { recursive: true });
    if (!existsSync(to)) symlinkSync(join(ROOT, key), to, 'dir');
  }
}

/** Runs `node --input-type=module -e <code>` in `cwd`; resolves to what it printed. */
async function nodeIn(cwd: string, code: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], { cwd });
  return stdout;
}

/** Checks that every relative import of the packed files stays inside the pack, and names what the bare ones use. */
function importsOf(pkgDir: string, files: string[]): Map<string, string[]> {
  const packed = new Set(files);
  const bare = new Map<string, string[]>();
  for (const f of files.filter((x) => x.endsWith('.js') || x.endsWith('.d.ts'))) {
    for (const spec of specifiersOf(readFileSync(join(pkgDir, f), 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = posix.normalize(posix.join(posix.dirname(f), spec));
        const candidates = f.endsWith('.d.ts') ? [target.replace(/\.js$/, '.d.ts'), target] : [target];
        assert.ok(
          candidates.some((c) => packed.has(c)),
          `${f} imports ${spec}, which the package does not hold`,
        );
      } else if (!spec.startsWith('node:') && !BUILTINS.has(spec)) {
        const p = packageOf(spec);
        bare.set(p, [...(bare.get(p) ?? []), f]);
      }
    }
  }
  return bare;
}

describe('packaging', function () {
  this.timeout(120_000);
  let work: string;

  before(async function () {
    work = await tempDir('svidkit-pack-');
  });
  after(function () {
    rmSync(work, { recursive: true, force: true });
  });

  describe('the library package (svidkit)', function () {
    let files: string[];
    before(async function () {
      files = await packedFiles(ROOT);
    });

    it('exports the library modules and nothing of the daemons, and has no binaries', function () {
      const subpaths = Object.keys(LIB.exports);
      for (const m of LIBRARY_MODULES) assert.ok(subpaths.includes(`./${m}`), `svidkit/${m} is not exported`);
      for (const m of DAEMON_FOLDERS)
        assert.ok(!subpaths.includes(`./${m}`), `svidkit/${m} belongs to svidkit-daemons`);
      assert.equal(LIB.bin, undefined, 'the binaries belong to svidkit-daemons');
      assert.equal(LIB.type, 'module');
    });

    it('packs every export target, and no daemon, CLI, demo mesh, test, bench or source map file', function () {
      for (const t of exportTargets(LIB)) assert.ok(files.includes(t), `export target ${t} is not packed`);
      const stray = files.filter(
        (f) =>
          DAEMON_FOLDERS.some((d) => f.startsWith(`dist/lib/${d}/`)) ||
          /^(cmd|test|bench|examples|tools|lib|deploy|certs|packages)\//.test(f) ||
          /^dist\/(cmd|test|bench|examples|tools)\//.test(f) ||
          f.startsWith('dist/lib/generated/svidkit/') ||
          f.startsWith('protos/svidkit/') ||
          f.endsWith('.map'),
      );
      assert.deepEqual(stray, [], 'files that do not belong in the library package');
    });

    it('imports only packed files, its dependencies, and grpc-js and proto-loader from svidkit/grpc alone', function () {
      const bare = importsOf(ROOT, files);
      const declared = new Set([...Object.keys(LIB.dependencies ?? {}), ...Object.keys(LIB.peerDependencies ?? {})]);
      for (const [p, users] of bare) {
        assert.ok(declared.has(p), `${users[0]} imports ${p}, which the library's manifest does not declare`);
      }
      for (const peer of Object.keys(LIB.peerDependencies ?? {})) {
        assert.equal(LIB.peerDependenciesMeta?.[peer]?.optional, true, `${peer} must be an optional peer dependency`);
        assert.ok(!(peer in (LIB.dependencies ?? {})), `${peer} must not also be a dependency`);
        const outside = (bare.get(peer) ?? []).filter(
          (f) =>
            !f.startsWith('dist/lib/grpc/') &&
            !(f.startsWith('dist/lib/generated/') && f.endsWith('.d.ts')) &&
            !(DYNAMIC_PEER_FOLDERS.some((d) => f.startsWith(d)) && !importsPeerStatically(ROOT, f, peer)),
        );
        assert.deepEqual(outside, [], `${peer} is imported outside svidkit/grpc`);
      }
      assert.ok(LIB.peerDependencies?.['@grpc/grpc-js'], 'grpc-js is a peer dependency');
    });

    it('installs without a native addon, an install script or any of the daemons’ dependencies', function () {
      const closure = installClosure(Object.keys(LIB.dependencies ?? {}));
      const names = [...closure].map((k) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length));
      for (const d of DAEMON_ONLY) assert.ok(!names.includes(d), `the library installs ${d}`);
      const scripted = [...closure].filter((k) => LOCK[k]!.hasInstallScript === true);
      assert.deepEqual(scripted, [], 'packages with install scripts (a native build) in the library’s install');
      for (const k of closure) assert.ok(!existsSync(join(ROOT, k, 'binding.gyp')), `${k} has a binding.gyp`);
      assert.ok(closure.size <= 20, `the library installs ${closure.size} packages`);
    });

    it('loads from an empty project: every module without grpc-js, and svidkit/grpc once grpc-js is there', async function () {
      const project = join(work, 'library');
      mkdirSync(join(project, 'node_modules', 'svidkit'), { recursive: true });
      const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
        cwd: ROOT,
      });
      const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
      await run('tar', [
        '-xzf',
        join(work, filename),
        '-C',
        join(project, 'node_modules', 'svidkit'),
        '--strip-components=1',
      ]);
      linkDependencies(project, installClosure(Object.keys(LIB.dependencies ?? {})));

      const plain = Object.keys(LIB.exports).filter((s) => s !== './grpc' && s !== './package.json');
      const loaded = await nodeIn(
        project,
        `for (const s of ${JSON.stringify(plain)}) { const m = await import('svidkit' + s.slice(1)); ` +
          `if (Object.keys(m).length === 0) throw new Error(s + ' exports nothing'); console.log(s); }`,
      );
      assert.deepEqual(loaded.trim().split('\n'), plain);
      const id = await nodeIn(
        project,
        `import { SpiffeId } from 'svidkit'; console.log(SpiffeId.parse('spiffe://example.org/a').path);`,
      );
      assert.equal(id.trim(), '/a');
      // The Workload API client loads grpc-js when it connects, and says so when it is missing.
      const missing = await nodeIn(
        project,
        `const { WorkloadApiSource } = await import('svidkit/source'); ` +
          `await WorkloadApiSource.open({ address: 'unix:///nonexistent/api.sock' }).catch((e) => console.log(e.code));`,
      );
      assert.equal(missing.trim(), 'ERR_WORKLOADAPI_GRPC_MISSING');

      await assert.rejects(nodeIn(project, `await import('svidkit/grpc');`), (err: Error & { stderr?: string }) => {
        assert.match(err.stderr ?? '', /ERR_MODULE_NOT_FOUND[\s\S]*@grpc\//);
        return true;
      });
      linkDependencies(project, installClosure(Object.keys(LIB.peerDependencies ?? {})));
      const grpc = await nodeIn(
        project,
        `const g = await import('svidkit/grpc'); console.log(typeof g.mtlsServerCredentials);`,
      );
      assert.equal(grpc.trim(), 'function');
    });
  });

  describe('the daemons package (svidkit-daemons)', function () {
    let dir: string;
    let files: string[];
    before(async function () {
      dir = join(work, 'daemons', 'node_modules', 'svidkit-daemons');
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(DAEMONS_DIR, 'package.json'), join(dir, 'package.json'));
      copyFileSync(join(DAEMONS_DIR, 'README.md'), join(dir, 'README.md'));
      stageDaemons(dir);
      files = await packedFiles(dir);
    });

    it('is a workspace of the repository, at the library’s version, with the three binaries', function () {
      assert.deepEqual(LIB.workspaces, ['packages/svidkit-daemons']);
      assert.equal(DAEMONS.version, LIB.version);
      assert.equal(DAEMONS.type, 'module');
      assert.deepEqual(Object.keys(DAEMONS.bin ?? {}).sort(), ['svidkit', 'svidkit-agent', 'svidkit-ca']);
    });

    it('packs its binaries and exports, and no demo mesh, test, bench or source map file', function () {
      for (const t of [...exportTargets(DAEMONS), ...Object.values(DAEMONS.bin ?? {}).map((b) => posix.normalize(b))]) {
        assert.ok(files.includes(t), `${t} is not packed`);
      }
      const stray = files.filter(
        (f) =>
          f.startsWith('dist/lib/mesh/') || /^(dist\/)?(test|bench|examples|tools)\//.test(f) || f.endsWith('.map'),
      );
      assert.deepEqual(stray, [], 'files that do not belong in the daemons package');
    });

    it('declares every package its files import, with the library’s ranges for the shared ones', function () {
      const bare = importsOf(dir, files);
      for (const [p, users] of bare) {
        assert.ok(
          p in (DAEMONS.dependencies ?? {}),
          `${users[0]} imports ${p}, which svidkit-daemons does not declare`,
        );
      }
      for (const [p, range] of Object.entries({ ...LIB.dependencies, ...LIB.peerDependencies })) {
        const ours = DAEMONS.dependencies?.[p];
        assert.ok(ours !== undefined, `svidkit-daemons runs the library, so it needs ${p}`);
        if (p in (LIB.dependencies ?? {}))
          assert.equal(ours, range, `${p}: the two packages ask for different versions`);
      }
    });

    it('starts each binary from the staged package', async function () {
      const project = join(work, 'daemons');
      linkDependencies(project, installClosure(Object.keys(DAEMONS.dependencies ?? {})));
      for (const [name, bin] of Object.entries(DAEMONS.bin ?? {})) {
        const { stdout } = await run(process.execPath, [join(dir, bin), '--help'], { cwd: project });
        assert.match(stdout, new RegExp(`Usage: ${name}\\b`), `${name} --help`);
      }
    });
  });
});
