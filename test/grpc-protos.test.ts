import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { HealthCheckResponse__Output } from '../lib/generated/grpc/health/v1/HealthCheckResponse.js';
import { HealthService } from '../lib/grpc/health.js';
import { caProto } from '../lib/ca-api/proto.js';
import { healthProto } from '../lib/grpc/protos.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

describe('service definitions', () => {
  it('the generated TypeScript types are up to date with protos/ (run `npm run gen:proto` if this fails)', function () {
    this.timeout(60_000);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // One generator run per output folder (the Workload API has no package, so its types get their own).
    const runs = pkg.scripts['gen:proto']!.split('&&').map((c) => c.trim().split(/\s+/).slice(1));
    const out = mkdtempSync(join(tmpdir(), 'svidkit-gen-'));
    const outDir = (a: string) => {
      const dir = relative('lib/generated', a.slice('--outDir='.length));
      assert.ok(!dir.startsWith('..'), `gen:proto writes outside lib/generated: ${a}`);
      return `--outDir=${join(out, dir)}`;
    };
    try {
      const gen = join(ROOT, 'node_modules', '@grpc', 'proto-loader', 'build', 'bin', 'proto-loader-gen-types.js');
      for (const args of runs) {
        execFileSync(process.execPath, [gen, ...args.map((a) => (a.startsWith('--outDir=') ? outDir(a) : a))], {
          cwd: ROOT,
          stdio: 'pipe',
        });
      }
      const committed = join(ROOT, 'lib', 'generated');
      const want = listFiles(out)
        .map((f) => relative(out, f))
        .sort();
      const have = listFiles(committed)
        .map((f) => relative(committed, f))
        .sort();
      assert.deepEqual(have, want, 'the set of generated files differs');
      for (const f of want) {
        assert.equal(readFileSync(join(committed, f), 'utf8'), readFileSync(join(out, f), 'utf8'), `${f} is stale`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('loads svidkit.ca.v1 with the Node and Admin services', () => {
    const v1 = caProto().svidkit.ca.v1;
    assert.deepEqual(Object.keys(v1.Node.service).sort(), [
      'AttestAgent',
      'BatchNewX509Svid',
      'ListAuthorizedEntries',
      'NewJwtSvid',
      'RenewAgent',
      'WatchBundle',
    ]);
    assert.equal(v1.Node.service.WatchBundle.responseStream, true);
    assert.equal(v1.Node.service.AttestAgent.path, '/svidkit.ca.v1.Node/AttestAgent');
    assert.equal(Object.keys(v1.Admin.service).length, 9);
  });

  describe('grpc.health.v1 over a real loopback server', () => {
    const health = new HealthService(['svidkit.ca.v1.Node']);
    const server = new Server();
    let client: InstanceType<ReturnType<typeof healthProto>['grpc']['health']['v1']['Health']>;

    before(async () => {
      health.addTo(server);
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        ),
      );
      client = new (healthProto().grpc.health.v1.Health)(`127.0.0.1:${port}`, credentials.createInsecure());
    });
    after(() => {
      client.close();
      server.forceShutdown();
    });

    const check = (service: string) =>
      new Promise<{ status?: string; code?: number }>((resolve) =>
        client.Check({ service }, (err, res) => resolve(err ? { code: err.code } : { status: res!.status })),
      );

    it('answers NOT_SERVING until ready, then SERVING, and NOT_FOUND for unknown services', async () => {
      assert.deepEqual(await check(''), { status: 'NOT_SERVING' });
      health.setStatus('', 'SERVING');
      health.setStatus('svidkit.ca.v1.Node', 'SERVING');
      assert.deepEqual(await check(''), { status: 'SERVING' });
      assert.deepEqual(await check('svidkit.ca.v1.Node'), { status: 'SERVING' });
      assert.deepEqual(await check('nope'), { code: status.NOT_FOUND });
    });

    it('streams status changes to watchers', async () => {
      const seen: string[] = [];
      const call = client.Watch({ service: 'svidkit.ca.v1.Node' });
      await new Promise<void>((resolve) => {
        call.on('data', (m: HealthCheckResponse__Output) => {
          seen.push(m.status);
          if (seen.length === 1) health.setStatus('svidkit.ca.v1.Node', 'NOT_SERVING');
          if (seen.length === 2) resolve();
        });
      });
      call.cancel();
      call.on('error', () => {}); // the cancellation itself
      assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']);
    });

    it('tells a watcher of an unknown service so', async () => {
      const call = client.Watch({ service: 'unknown' });
      const first = await new Promise<string>((resolve) =>
        call.once('data', (m: HealthCheckResponse__Output) => resolve(m.status)),
      );
      call.cancel();
      call.on('error', () => {});
      assert.equal(first, 'SERVICE_UNKNOWN');
    });
  });
});
