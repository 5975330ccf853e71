import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeWorkloadFiles } from '../lib/agent/writer.js';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { TestCa } from './helpers/ca.js';

const run = promisify(execFile);
const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples');
const SERVER = 'spiffe://example.org/ns/demo/sa/server';

describe('examples run against files laid out as the agent writes them', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-examples-'));
    const now = Date.now();
    const ca = TestCa.root({ notBefore: new Date(now - 86400_000), notAfter: new Date(now + 86400_000) });
    const jwtKey = generateKeyPair();
    const bundles = new BundleSet([
      new SpiffeBundle(ca.trustDomain, {
        x509: ca.bundle(),
        jwt: new JwtBundle(ca.trustDomain, [importJwtAuthority('k1', jwtKey.publicKey.export({ format: 'jwk' }))]),
      }),
    ]);
    const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
    for (const name of ['server', 'client']) {
      const token = await mintJwtSvid({
        id: SpiffeId.parse(`spiffe://example.org/ns/demo/sa/${name}`),
        audience: SERVER,
        key: jwtKey.privateKey,
        kid: 'k1',
      });
      await writeWorkloadFiles(
        { svid: ca.svid(`/ns/demo/sa/${name}`, window), bundles, jwtTokens: new Map([[SERVER, token]]), version: 1 },
        { dir: join(dir, name) },
      );
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('https-pair: the client reaches the server over mTLS and each sees the other ID', async () => {
    const { stdout } = await run(process.execPath, [join(EXAMPLES, 'https-pair.js'), dir]);
    assert.match(
      stdout,
      /spiffe:\/\/example\.org\/ns\/demo\/sa\/server answered: hello, spiffe:\/\/example\.org\/ns\/demo\/sa\/client/,
    );
  });

  it('grpc-pair: mTLS plus a JWT-SVID for the server audience', async () => {
    const { stdout } = await run(process.execPath, [join(EXAMPLES, 'grpc-pair.js'), dir]);
    assert.match(stdout, /server: call from spiffe:\/\/example\.org\/ns\/demo\/sa\/client/);
    assert.match(stdout, /client: spiffe:\/\/example\.org\/ns\/demo\/sa\/server answered SERVING/);
  });
});
