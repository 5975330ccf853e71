/**
 * Requests svidkit-agent's Workload API refuses, sent raw (past the library client's own checks) to a
 * real agent: every one gets a status code and a clear message, and the agent keeps serving the same
 * caller afterwards.
 */
import { strict as assert } from 'node:assert';
import * as http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import type * as GrpcJs from '@grpc/grpc-js';
import { maxCallsPerConnection } from '../lib/agent/workloadapi/server.js';
import { WorkloadApiClient } from '../lib/source/index.js';
import { workloadMetadata } from '../lib/source/workloadapi-watch.js';
import { MAX_AUDIENCE_BYTES, MAX_AUDIENCES_PER_REQUEST, MAX_MESSAGE_BYTES } from '../lib/workloadapi/index.js';
import { startWorkloadMesh, type WorkloadMesh } from './helpers/workload-mesh.js';

type Answer = { code: GrpcJs.status; details: string } | { svids: { spiffeId: string }[] };

describe('Workload API requests svidkit-agent refuses, and serves on', function () {
  this.timeout(120_000);
  const uid = process.getuid?.() ?? 0;
  const workloadId = `spiffe://example.org/requests/uid-${uid}`;
  let mesh: WorkloadMesh;
  let client: WorkloadApiClient;

  before(async () => {
    mesh = await startWorkloadMesh();
    await mesh.createEntry(workloadId, [`unix:uid:${uid}`]);
    client = await WorkloadApiClient.connect({ address: mesh.endpoint });
  });
  after(async () => {
    client?.close();
    await mesh?.close();
  });

  /** FetchJWTSVID exactly as given; resolves with the answer or the status. */
  function fetchJwt(audience: string[], spiffeId = ''): Promise<Answer> {
    const raw = client.raw as unknown as {
      FetchJWTSVID(
        req: { audience: string[]; spiffeId: string },
        md: GrpcJs.Metadata,
        cb: (err: GrpcJs.ServiceError | null, res?: { svids: { spiffeId: string }[] }) => void,
      ): void;
    };
    return new Promise((resolve) =>
      raw.FetchJWTSVID({ audience, spiffeId }, workloadMetadata(client.grpc), (err, res) =>
        resolve(err ? { code: err.code, details: err.details } : res!),
      ),
    );
  }

  it('a connection may carry a bounded number of concurrent calls (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)', async () => {
    const session = http2.connect('http://agent', { createConnection: () => netConnect({ path: mesh.socket }) });
    try {
      const settings = await new Promise<http2.Settings>((resolve, reject) => {
        session.once('remoteSettings', resolve);
        session.once('error', reject);
      });
      assert.equal(settings.maxConcurrentStreams, maxCallsPerConnection({ maxStreamsPerCaller: 64 }));
      assert.ok(maxCallsPerConnection({ maxStreamsPerCaller: 1016 }) > 1016, 'every allowed stream still fits');
    } finally {
      session.destroy();
    }
  });

  const refused = (a: Answer, code: keyof typeof GrpcJs.status, message: RegExp) => {
    assert.ok('code' in a, `expected ${code}, got an answer`);
    assert.equal(a.code, client.grpc.status[code], a.details);
    assert.match(a.details, message);
  };

  const cases: [string, () => Promise<Answer>, keyof typeof GrpcJs.status, RegExp][] = [
    ['no audience', () => fetchJwt([]), 'INVALID_ARGUMENT', /audience must be specified/],
    [
      `${MAX_AUDIENCES_PER_REQUEST + 1} audiences`,
      () => fetchJwt(Array.from({ length: MAX_AUDIENCES_PER_REQUEST + 1 }, (_, i) => `aud-${i}`)),
      'INVALID_ARGUMENT',
      new RegExp(`at most ${MAX_AUDIENCES_PER_REQUEST} audiences`),
    ],
    [
      'an empty audience among good ones',
      () => fetchJwt(['db', '']),
      'INVALID_ARGUMENT',
      new RegExp(`1 to ${MAX_AUDIENCE_BYTES} bytes`),
    ],
    [
      `an audience of ${MAX_AUDIENCE_BYTES + 1} bytes`,
      () => fetchJwt(['a'.repeat(MAX_AUDIENCE_BYTES + 1)]),
      'INVALID_ARGUMENT',
      new RegExp(`1 to ${MAX_AUDIENCE_BYTES} bytes`),
    ],
    [
      'a spiffe_id that is not a SPIFFE ID',
      () => fetchJwt(['db'], 'not-an-id'),
      'INVALID_ARGUMENT',
      /spiffe_id is not a SPIFFE ID \(ERR_SPIFFEID_/,
    ],
    [
      'a spiffe_id the caller has no entry for',
      () => fetchJwt(['db'], 'spiffe://example.org/someone-else'),
      'PERMISSION_DENIED',
      /no identity issued/,
    ],
    [
      'a request larger than the message bound',
      () => fetchJwt(['x'.repeat(MAX_MESSAGE_BYTES + 1)]),
      'RESOURCE_EXHAUSTED',
      /./,
    ],
  ];
  for (const [name, send, code, message] of cases) {
    it(`${name}: ${code}, and the same caller is served right after`, async () => {
      refused(await send(), code, message);
      const ok = await fetchJwt(['db'], workloadId);
      assert.ok('svids' in ok, JSON.stringify(ok));
      assert.deepEqual(
        ok.svids.map((s) => s.spiffeId),
        [workloadId],
      );
    });
  }
});
