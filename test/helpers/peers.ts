/**
 * Finds the real peers the interop tests run against (openssl, curl, nginx, Go, Python's grpcio and
 * PyJWT) on PATH at run time, with their versions, and the SPIFFE peers (SPIRE, go-spiffe, py-spiffe)
 * that test/interop/build-peers.sh installs into the peer cache. Outside CI a missing peer skips its
 * suite with a one-line reason; with CI=true a missing peer fails the run, because .ci/run installs
 * every one.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A peer that was found: what to run and the version to name in titles and output. */
export interface Peer {
  readonly found: true;
  /** Short name, e.g. "nginx". */
  readonly name: string;
  /** The executable to run (for Python peers: the interpreter). */
  readonly path: string;
  /** Name and version as it should appear in a test title, e.g. "nginx 1.22.1". */
  readonly label: string;
  /** Extra facts some peers need (the protoc plugin for Python stubs, nginx's build flags). */
  readonly extra: Readonly<Record<string, string>>;
}

/** A peer that was not found, and why. */
export interface MissingPeer {
  readonly found: false;
  readonly name: string;
  readonly reason: string;
  readonly label: string;
}

export type PeerLookup = Peer | MissingPeer;

/** The peers the interop suites use. */
export type PeerName =
  'openssl' | 'curl' | 'nginx' | 'go' | 'python-grpc' | 'python-jwt' | 'spire' | 'go-spiffe' | 'py-spiffe';

/** The SPIRE release the Workload API interop tests run (test/interop/build-spire.sh builds it). */
export const SPIRE_VERSION = 'v1.13.3';

// Daemons such as nginx live in sbin directories, which a non-root PATH usually leaves out.
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000, ...options });
  return { ok: r.status === 0, out: `${String(r.stdout ?? '')}${String(r.stderr ?? '')}` };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Every executable named `name` on PATH (then in the sbin directories), first match first, no duplicates. */
export function whichAll(name: string, extraDirs: readonly string[] = []): string[] {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), ...extraDirs].filter((d) => d !== '');
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (!isExecutable(candidate)) continue;
    let real = candidate;
    try {
      real = realpathSync(candidate);
    } catch {
      // keep the unresolved path
    }
    if (seen.has(real)) continue;
    seen.add(real);
    out.push(candidate);
  }
  return out;
}

/** The first executable named `name` on PATH, or undefined. */
export function which(name: string, extraDirs: readonly string[] = []): string | undefined {
  return whichAll(name, extraDirs)[0];
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function missing(name: string, reason: string): MissingPeer {
  return { found: false, name, reason, label: `${name} (missing: ${reason})` };
}

function found(name: string, path: string, version: string, extra: Record<string, string> = {}): Peer {
  return { found: true, name, path, label: `${name} ${version}`, extra: Object.freeze(extra) };
}

function findOpenssl(): PeerLookup {
  const path = which('openssl');
  if (!path) return missing('openssl', 'openssl is not on PATH');
  const r = run(path, ['version']);
  const m = /OpenSSL (\S+)/.exec(r.out);
  if (!r.ok || !m) return missing('openssl', `\`openssl version\` failed: ${r.out.trim().split('\n')[0] ?? ''}`);
  return found('OpenSSL', path, m[1]!);
}

function findCurl(): PeerLookup {
  const path = which('curl');
  if (!path) return missing('curl', 'curl is not on PATH');
  const r = run(path, ['--version']);
  const m = /^curl (\S+).*?\b((?:OpenSSL|GnuTLS|NSS|wolfSSL|mbedTLS|BoringSSL|LibreSSL|rustls)\/\S+)/im.exec(r.out);
  if (!r.ok || !m) return missing('curl', `\`curl --version\` did not name a TLS library`);
  return found('curl', path, `${m[1]!} (${m[2]!})`);
}

function findNginx(): PeerLookup {
  const path = which('nginx', SBIN_DIRS);
  if (!path) return missing('nginx', 'nginx is not on PATH');
  // `nginx -V` writes the version and the configure arguments to stderr.
  const r = run(path, ['-V']);
  const m = /nginx version: nginx\/(\S+)/.exec(r.out);
  if (!r.ok || !m) return missing('nginx', '`nginx -V` failed');
  if (!r.out.includes('--with-http_ssl_module')) return missing('nginx', 'nginx was built without http_ssl_module');
  return found('nginx', path, m[1]!, { configure: r.out });
}

/** The environment for `go` that keeps it off the network and out of the user's home and caches. */
export function goEnv(tmp: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: tmp,
    GOCACHE: join(tmp, 'gocache'),
    GOPATH: join(tmp, 'gopath'),
    GOENV: 'off',
    GOFLAGS: '',
    GOTOOLCHAIN: 'local',
    GOPROXY: 'off',
    GOWORK: 'off',
    CGO_ENABLED: '0',
  };
}

function findGo(): PeerLookup {
  const path = which('go');
  if (!path) return missing('go', 'go is not on PATH');
  const r = run(path, ['version'], { env: { ...process.env, GOTOOLCHAIN: 'local' } });
  const m = /go version go(\S+)/.exec(r.out);
  if (!r.ok || !m) return missing('go', '`go version` failed');
  return found('Go', path, `${m[1]!} crypto/x509`);
}

/**
 * The first `python3` on PATH (then the sbin directories) that imports every module in `modules`,
 * and what `probe` prints there. A version manager's shim usually comes first on PATH and lacks
 * Debian's packages, which are installed for the system interpreter, so each candidate is tried.
 */
function findPython(modules: string[], probe: string): { path: string; out: string } | undefined {
  for (const py of whichAll('python3')) {
    const r = run(py, ['-c', `import ${modules.join(', ')}\n${probe}`]);
    if (r.ok) return { path: py, out: r.out.trim() };
  }
  return undefined;
}

function findPythonGrpc(): PeerLookup {
  const py = findPython(
    ['sys', 'grpc', 'google.protobuf'],
    'print(grpc.__version__, google.protobuf.__version__, sys.version.split()[0])',
  );
  if (!py) return missing('grpcio', 'no python3 on PATH imports grpc and google.protobuf');
  const [grpcVersion, protobufVersion, pythonVersion] = py.out.split(/\s+/);
  // Stubs are generated at test time: grpc_tools if it is there, else protoc with grpc_python_plugin.
  const tools = run(py.path, ['-c', 'import grpc_tools.protoc']);
  let generator: Record<string, string>;
  if (tools.ok) {
    generator = { generator: 'grpc_tools' };
  } else {
    const protoc = which('protoc');
    const plugin = which('grpc_python_plugin');
    if (!protoc || !plugin) {
      return missing('grpcio', 'neither grpc_tools nor protoc with grpc_python_plugin is available to generate stubs');
    }
    const v = run(protoc, ['--version']);
    generator = { generator: 'protoc', protoc, plugin, protocVersion: v.out.trim() };
  }
  return found(
    'Python grpcio',
    py.path,
    `${grpcVersion} (protobuf ${protobufVersion}, Python ${pythonVersion} at ${py.path})`,
    generator,
  );
}

function findPythonJwt(): PeerLookup {
  const py = findPython(
    ['sys', 'jwt', 'cryptography'],
    'print(jwt.__version__, cryptography.__version__, sys.version.split()[0])',
  );
  if (!py) return missing('PyJWT', 'no python3 on PATH imports jwt and cryptography');
  const [jwtVersion, cryptoVersion, pythonVersion] = py.out.split(/\s+/);
  return found(
    'PyJWT',
    py.path,
    `${jwtVersion} (cryptography ${cryptoVersion}, Python ${pythonVersion} at ${py.path})`,
  );
}

/**
 * The cache the SPIFFE peers are built and installed into, outside the repository, as
 * test/interop/build-peers.sh computes it.
 */
export function peerCache(): string {
  const explicit = process.env['SVIDKIT_PEER_CACHE'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg ? xdg : join(process.env['HOME'] || homedir(), '.cache'), 'svidkit-peers');
}

// The repository's test/interop (this file runs from dist/test/helpers).
const INTEROP_SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'interop');
const BUILD_HINT = 'run test/interop/build-peers.sh';

function findSpire(): PeerLookup {
  const bin = join(peerCache(), `spire-${SPIRE_VERSION}`, 'bin');
  const server = join(bin, 'spire-server');
  const agent = join(bin, 'spire-agent');
  if (!isExecutable(server) || !isExecutable(agent)) {
    return missing('SPIRE', `spire-server and spire-agent ${SPIRE_VERSION} are not in ${bin} (${BUILD_HINT})`);
  }
  // A build from the module proxy has no release stamp: it prints e.g. "1.13.3-dev-unk" on stderr.
  const r = run(server, ['--version']);
  const m = /(\d+\.\d+\.\d+)\S*/.exec(r.out);
  if (!m) return missing('SPIRE', `\`spire-server --version\` failed: ${r.out.trim().split('\n')[0] ?? ''}`);
  return found('SPIRE', server, m[1]!, { server, agent, reported: m[0] });
}

/** The environment for building the go-spiffe client offline, from the module cache build-peers.sh filled. */
export function goOfflineEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOFLAGS: '-mod=readonly -buildvcs=false',
    GOTOOLCHAIN: 'local',
    GOPROXY: 'off',
    GOWORK: 'off',
    CGO_ENABLED: '0',
  };
}

function findGoSpiffe(): PeerLookup {
  const go = which('go');
  if (!go) return missing('go-spiffe', 'go is not on PATH');
  const dir = join(INTEROP_SRC, 'gospiffe');
  // Asks the module cache, offline: present only when build-peers.sh (or a build) downloaded it.
  const r = run(go, ['list', '-m', '-f', '{{.Version}} {{.Dir}}', 'github.com/spiffe/go-spiffe/v2'], {
    cwd: dir,
    env: goOfflineEnv(),
  });
  const [version, moduleDir] = r.out.trim().split(/\s+/);
  if (!r.ok || !version || !moduleDir || !isDirectory(moduleDir)) {
    return missing('go-spiffe', `github.com/spiffe/go-spiffe/v2 is not in Go's module cache (${BUILD_HINT})`);
  }
  const goVersion = /go version go(\S+)/.exec(run(go, ['version'], { env: goOfflineEnv() }).out)?.[1] ?? '?';
  // The client is built into the cache from this checkout's sources; one built from other sources
  // (an older checkout, another branch) would answer another set of flags.
  const built = join(peerCache(), 'gospiffe');
  const source = createHash('sha256');
  for (const f of ['main.go', 'go.mod', 'go.sum']) source.update(readFileSync(join(dir, f)));
  let recorded = '';
  try {
    recorded = readFileSync(join(built, 'source.sha256'), 'utf8').trim();
  } catch {
    // left empty: reported below
  }
  if (recorded !== source.digest('hex')) {
    return missing(
      'go-spiffe',
      `the client in ${built} was not built from test/interop/gospiffe as it is (${BUILD_HINT})`,
    );
  }
  return found('go-spiffe', go, `${version} (Go ${goVersion})`, { source: dir, binary: join(built, 'gospiffe') });
}

function findPySpiffe(): PeerLookup {
  const req = join(INTEROP_SRC, 'pyspiffe', 'requirements.txt');
  let pinned: string | undefined;
  try {
    pinned = /^spiffe==(\S+)$/m.exec(readFileSync(req, 'utf8'))?.[1];
  } catch {
    pinned = undefined;
  }
  if (!pinned) return missing('py-spiffe', `${req} pins no spiffe version`);
  const py = join(peerCache(), `pyspiffe-${pinned}`, 'venv', 'bin', 'python');
  if (!isExecutable(py)) return missing('py-spiffe', `no venv with spiffe ${pinned} at ${py} (${BUILD_HINT})`);
  const r = run(py, [
    '-c',
    'import sys, grpc, spiffe\nfrom importlib.metadata import version\nprint(version("spiffe"), grpc.__version__, sys.version.split()[0])',
  ]);
  const [version, grpcVersion, pythonVersion] = r.out.trim().split(/\s+/);
  if (!r.ok || !version) return missing('py-spiffe', `${py} does not import spiffe`);
  return found('py-spiffe', py, `${version} (grpcio ${grpcVersion}, Python ${pythonVersion})`, {
    client: join(INTEROP_SRC, 'pyspiffe', 'client.py'),
  });
}

const FINDERS: Record<PeerName, () => PeerLookup> = {
  openssl: findOpenssl,
  curl: findCurl,
  nginx: findNginx,
  go: findGo,
  'python-grpc': findPythonGrpc,
  'python-jwt': findPythonJwt,
  spire: findSpire,
  'go-spiffe': findGoSpiffe,
  'py-spiffe': findPySpiffe,
};

const cache = new Map<PeerName, PeerLookup>();

/** Looks a peer up once per process (describe titles need the version before any test runs). */
export function peer(name: PeerName): PeerLookup {
  let hit = cache.get(name);
  if (!hit) {
    hit = FINDERS[name]();
    cache.set(name, hit);
  }
  return hit;
}

/**
 * For a before() hook: returns the peers when all are present. Otherwise, outside CI it prints one
 * line saying what is missing and skips the suite; with CI=true it throws, failing the run.
 */
export function requirePeers<N extends PeerName[]>(ctx: Mocha.Context, ...names: N): { [K in keyof N]: Peer } {
  const lookups = names.map(peer);
  const absent = lookups.filter((p): p is MissingPeer => !p.found);
  if (absent.length === 0) return lookups as { [K in keyof N]: Peer };
  const why = absent.map((p) => `${p.name}: ${p.reason}`).join('; ');
  if (process.env['CI'] === 'true') throw new Error(`interop peer required in CI is missing (${why})`);
  process.stdout.write(`      skipped: ${why}\n`);
  ctx.skip();
}

/** Writes one indented line under the current test, as the other suites report what they measured. */
export function note(text: string): void {
  process.stdout.write(`      (${text})\n`);
}
