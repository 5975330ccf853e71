/**
 * Interop 1: every kind of X.509-SVID chain svidkit-ca issues, for every CA key type and every
 * workload key type, checked by two verifiers nobody here wrote: `openssl verify -x509_strict` and a
 * Go program that uses only crypto/x509. The chains come from a real CA through a real agent's files
 * (plus the agent's own SVID and the CA's serving SVID), and from a CA in upstream mode whose chains
 * carry an intermediate.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { run as cli } from '../lib/cli/index.js';
import { KEY_TYPES, type KeyType } from '../lib/keys/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { parseChainPem } from '../lib/x509svid/index.js';
import { goEnv, note, peer, requirePeers } from './helpers/peers.js';
import { INTEROP_DIR, type Mesh, startMesh } from './interop/mesh.js';

const execFileP = promisify(execFile);

/** One chain to check: leaf first, then intermediates, and the roots it must verify against. */
interface Case {
  readonly name: string;
  readonly id: string;
  readonly chain: readonly Certificate[];
  readonly rootsPem: string;
}

/** Runs a command; resolves with its exit status and everything it printed. */
async function runTool(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ status: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { ...options, maxBuffer: 16 * 1024 * 1024 });
    return { status: 0, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return { status: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

/** The chain the CA's Node port presents (leaf and intermediates), read with node:tls. */
function servingChain(mesh: Mesh): Promise<Certificate[]> {
  const roots = parseChainPem(mesh.rootsPem());
  const isRoot = (der: Buffer) => roots.some((r) => r.der.equals(der));
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port: mesh.ca.nodePort,
        servername: 'localhost',
        ca: mesh.rootsPem(),
        ALPNProtocols: ['h2'],
      },
      () => {
        const out: Certificate[] = [];
        let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
        while (c && c.raw && !isRoot(c.raw)) {
          out.push(Certificate.fromDer(c.raw));
          c = c.issuerCertificate === c ? undefined : c.issuerCertificate;
        }
        socket.destroy();
        resolve(out);
      },
    );
    socket.once('error', reject);
  });
}

async function upstreamFiles(dir: string): Promise<{ cert_file: string; key_file: string; bundle_file: string }> {
  const io = { stdout: () => undefined, stderr: () => undefined, stdin: () => Readable.from([]) };
  const p = (n: string) => join(dir, n);
  const root = await cli(
    [
      'upstream',
      'create-root',
      '--trust-domain',
      'example.org',
      '--out-cert',
      p('root.pem'),
      '--out-key',
      p('root.key'),
    ],
    io,
  );
  const ica = await cli(
    [
      'upstream',
      'create-intermediate',
      '--root-cert',
      p('root.pem'),
      '--root-key',
      p('root.key'),
      '--out-cert',
      p('ica.pem'),
      '--out-key',
      p('ica.key'),
    ],
    io,
  );
  assert.equal(root, 0);
  assert.equal(ica, 0);
  return { cert_file: p('ica.pem'), key_file: p('ica.key'), bundle_file: p('root.pem') };
}

const openssl = peer('openssl');
const go = peer('go');

describe('X.509-SVID chains from svidkit-ca, checked by verifiers written elsewhere', function () {
  this.timeout(300_000);
  let dir: string;
  const cases: Case[] = [];
  const caseDir = (c: Case) => join(dir, 'cases', c.name);

  before(async function () {
    if (!openssl.found && !go.found) requirePeers(this, 'openssl', 'go');
    dir = await mkdtemp(join(tmpdir(), 'svidkit-interop-x509-'));
    const collect = async (mesh: Mesh, label: string) => {
      for (const kt of KEY_TYPES) {
        const files = mesh.files(`leaf-${kt}`);
        cases.push({
          name: `${label}.leaf-${kt}`,
          id: mesh.id(`leaf-${kt}`),
          chain: parseChainPem(readFileSync(files.svid)),
          rootsPem: readFileSync(files.bundle, 'utf8'),
        });
      }
      const agentSvid = await mesh.agentSvid();
      cases.push({
        name: `${label}.agent`,
        id: agentSvid.id.toString(),
        chain: agentSvid.certificates,
        rootsPem: mesh.rootsPem(),
      });
      cases.push({
        name: `${label}.ca-serving`,
        id: `spiffe://${mesh.trustDomain}/svidkit/ca`,
        chain: await servingChain(mesh),
        rootsPem: mesh.rootsPem(),
      });
    };
    const workloads = KEY_TYPES.map((kt: KeyType) => ({ name: `leaf-${kt}`, keyType: kt }));
    for (const caKeyType of KEY_TYPES) {
      const mesh = await startMesh({ ca: { key_type: caKeyType }, workloads });
      try {
        await collect(mesh, `ca-${caKeyType}`);
      } finally {
        await mesh.close();
      }
    }
    const upstreamDir = join(dir, 'upstream');
    mkdirSync(upstreamDir);
    const mesh = await startMesh({ ca: { upstream: await upstreamFiles(upstreamDir) }, workloads });
    try {
      await collect(mesh, 'upstream');
    } finally {
      await mesh.close();
    }
    for (const c of cases) {
      mkdirSync(caseDir(c), { recursive: true });
      writeFileSync(join(caseDir(c), 'leaf.pem'), c.chain[0]!.toPem());
      writeFileSync(join(caseDir(c), 'chain.pem'), c.chain.map((x) => x.toPem()).join(''));
      writeFileSync(
        join(caseDir(c), 'intermediates.pem'),
        c.chain
          .slice(1)
          .map((x) => x.toPem())
          .join(''),
      );
      writeFileSync(join(caseDir(c), 'roots.pem'), c.rootsPem);
    }
    const upstreamCases = cases.filter((c) => c.name.startsWith('upstream.'));
    assert.ok(
      upstreamCases.every((c) => c.chain.length === 2),
      'upstream chains carry the intermediate',
    );
    note(`${cases.length} chains: ${KEY_TYPES.length} CA key types and upstream mode, each key type of leaf`);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe(`${openssl.label} verify -x509_strict`, () => {
    before(function () {
      requirePeers(this, 'openssl');
    });

    it('accepts every chain with the bundle, for both TLS roles, and reads the one URI SAN', async () => {
      const path = openssl.found ? openssl.path : 'openssl';
      const failures: string[] = [];
      for (const c of cases) {
        const d = caseDir(c);
        const untrusted = c.chain.length > 1 ? ['-untrusted', join(d, 'intermediates.pem')] : [];
        for (const purpose of ['sslclient', 'sslserver']) {
          const r = await runTool(path, [
            'verify',
            '-x509_strict',
            '-purpose',
            purpose,
            '-CAfile',
            join(d, 'roots.pem'),
            ...untrusted,
            join(d, 'leaf.pem'),
          ]);
          if (r.status !== 0 || !/leaf\.pem: OK/.test(r.output)) failures.push(`${c.name} ${purpose}: ${r.output}`);
        }
        const san = await runTool(path, ['x509', '-noout', '-ext', 'subjectAltName', '-in', join(d, 'leaf.pem')]);
        const uris = [...san.output.matchAll(/URI:(\S+?)(?:,|\s|$)/g)].map((m) => m[1]);
        if (san.status !== 0 || uris.length !== 1 || uris[0] !== c.id) {
          failures.push(`${c.name}: openssl read the URI SANs ${JSON.stringify(uris)}, want [${c.id}]`);
        }
      }
      assert.deepEqual(failures, []);
      note(`${cases.length} chains × 2 purposes OK`);
    });

    it('refuses a chain against another CA of the same trust domain (the check is not vacuous)', async () => {
      const path = openssl.found ? openssl.path : 'openssl';
      const [a, b] = [
        cases.find((c) => c.name === 'ca-ec-p256.leaf-ec-p256')!,
        cases.find((c) => c.name === 'ca-ec-p384.leaf-ec-p256')!,
      ];
      const r = await runTool(path, [
        'verify',
        '-x509_strict',
        '-CAfile',
        join(caseDir(b), 'roots.pem'),
        join(caseDir(a), 'leaf.pem'),
      ]);
      assert.notEqual(r.status, 0, r.output);
      assert.match(r.output, /unable to get local issuer certificate/);
    });
  });

  describe(`${go.label} (standard library only: Verify with ExtKeyUsageAny)`, () => {
    let goTmp: string;
    let binary: string;
    before(async function () {
      requirePeers(this, 'go');
      goTmp = await mkdtemp(join(tmpdir(), 'svidkit-interop-go-'));
      binary = join(goTmp, 'x509check');
      const path = go.found ? go.path : 'go';
      // A single file outside any module builds with the standard library alone; nothing is fetched.
      const r = await runTool(path, ['build', '-o', binary, join(INTEROP_DIR, 'x509check', 'main.go')], {
        env: goEnv(goTmp),
        cwd: goTmp,
      });
      assert.equal(r.status, 0, `go build failed:\n${r.output}`);
    });
    after(async () => {
      if (goTmp) await rm(goTmp, { recursive: true, force: true });
    });

    it('accepts every chain with the bundle and reads exactly one spiffe:// URI SAN', async () => {
      const r = await runTool(binary, [...cases.map(caseDir), join(dir, 'cases', 'no-such-case')]);
      assert.equal(r.status, 0, r.output);
      const lines = r.output
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const [header, ...results] = lines;
      assert.match(String(header!['go']), /^go\d/);
      const missing = results.pop()!;
      assert.equal(missing['ok'], false, 'a case without files is reported, not skipped');
      assert.equal(results.length, cases.length);
      const failures = results.filter((res, i) => res['ok'] !== true || res['uri'] !== cases[i]!.id);
      assert.deepEqual(failures, []);
      const algs = new Set(
        results.map((res) => `${String(res['key_algorithm'])}/${String(res['signature_algorithm'])}`),
      );
      note(
        `${results.length} chains OK with ${String(header!['go'])}; key/signature algorithms: ${[...algs].join(', ')}`,
      );
    });

    it('refuses a chain against another CA of the same trust domain', async () => {
      const a = cases.find((c) => c.name === 'ca-ec-p256.leaf-ec-p256')!;
      const b = cases.find((c) => c.name === 'ca-ec-p384.leaf-ec-p256')!;
      const mixed = join(dir, 'cases', 'mixed');
      mkdirSync(mixed);
      writeFileSync(join(mixed, 'chain.pem'), readFileSync(join(caseDir(a), 'chain.pem')));
      writeFileSync(join(mixed, 'roots.pem'), readFileSync(join(caseDir(b), 'roots.pem')));
      const r = await runTool(binary, [mixed]);
      const res = JSON.parse(r.output.trim().split('\n')[1]!) as Record<string, unknown>;
      assert.equal(res['ok'], false);
      assert.match(String(res['error']), /unknown authority/);
    });
  });
});
