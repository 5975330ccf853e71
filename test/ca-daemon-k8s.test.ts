import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { parseCaConfig } from '../lib/ca/config.js';
import { run, type RunningCa } from '../lib/ca/daemon.js';
import type { BatchNewX509SvidResponse__Output } from '../lib/generated/svidkit/ca/v1/BatchNewX509SvidResponse.js';
import { caProto } from '../lib/ca-api/proto.js';
import { generateKeyPair, privateKeyToPem } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { Certificate } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { psatClaims, signPsat } from './helpers/k8s.js';
import { rejectsStatus } from './helpers/assert.js';
import type {
  AttestAgentResponse__Output,
  GeneratedAdminClient as AdminClient,
  ListAgentsResponse__Output,
  NodeClient,
} from '../lib/ca-api/index.js';

function call<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res!))));
}

describe('svidkit-ca daemon: Kubernetes attestation, key-type policy and the admin API over mTLS', function () {
  this.timeout(60_000);
  const ISSUER = 'https://kubernetes.default.svc.cluster.local';
  const clusterKey = generateKeyPair('rsa-2048');
  let dir: string;
  let ca: RunningCa;
  let roots: string;
  const agentKey = generateKeyPair();
  let agentChain = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-ca-k8s-'));
    const jwks = {
      keys: [{ ...clusterKey.publicKey.export({ format: 'jwk' }), kid: 'cluster-key-1', use: 'sig', alg: 'RS256' }],
    };
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks));
    const config = parseCaConfig(
      {
        trust_domain: 'example.org',
        data_dir: join(dir, 'ca'),
        listen: { port: 0 },
        observability: { port: 0 },
        admin: { mtls: { port: 0, admin_ids: ['spiffe://example.org/ops/admin'] } },
        allowed_key_types: ['ec-p256', 'ec-p384'],
        attestation: {
          k8s_psat: {
            clusters: [
              {
                name: 'prod-1',
                issuer: ISSUER,
                audience: 'svidkit-ca',
                jwks_file: 'jwks.json',
                allow: [{ namespace: 'svidkit', service_account: 'svidkit-agent' }],
              },
            ],
          },
        },
      },
      dir,
    );
    ca = await run(config, { logger: createLogger({ name: 'svidkit-ca', destination: new PassThrough().resume() }) });
    roots = ca.context.keys.bundle().x509.toPem();
  });
  after(async () => {
    await ca?.close(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  const node = (withAgent: boolean): NodeClient =>
    new (caProto().svidkit.ca.v1.Node)(
      `localhost:${ca.nodePort}`,
      withAgent
        ? credentials.createSsl(
            Buffer.from(roots),
            Buffer.from(privateKeyToPem(agentKey.privateKey)),
            Buffer.from(agentChain),
          )
        : credentials.createSsl(Buffer.from(roots)),
    ) as unknown as NodeClient;
  const psat = (aud: string) =>
    signPsat(
      psatClaims({ iss: ISSUER, aud, now: Math.floor(Date.now() / 1000), nodeName: 'node-1' }),
      clusterKey.privateKey,
      {
        alg: 'RS256',
        kid: 'cluster-key-1',
      },
    );

  it('attests an agent with a projected service-account token', async () => {
    const c = node(false);
    const res = await call<AttestAgentResponse__Output>(async (cb) =>
      c.AttestAgent({ k8sPsat: { token: await psat('svidkit-ca') }, csr: buildCsr({ key: agentKey.privateKey }) }, cb),
    );
    assert.equal(res.svid!.spiffeId, 'spiffe://example.org/svidkit/agent/k8s_psat/prod-1/node-1');
    agentChain = res.svid!.certChain.map((d) => Certificate.fromDer(d).toPem()).join('');
    c.close();
  });

  it('refuses a token for another audience and counts the failure in /metrics', async () => {
    const c = node(false);
    const token = await psat('someone-else');
    await rejectsStatus(
      call((cb) => c.AttestAgent({ k8sPsat: { token }, csr: buildCsr({ key: agentKey.privateKey }) }, cb)),
      status.PERMISSION_DENIED,
    );
    c.close();
    const metrics = await (await fetch(`http://127.0.0.1:${ca.observabilityPort}/metrics`)).text();
    assert.match(metrics, /svidkit_ca_attestation_failures_total\{type="k8sPsat"\} 1/);
  });

  it('refuses CSRs of key types the policy does not allow, per batch item', async () => {
    const entry = await ca.context.store.createEntry({
      spiffeId: 'spiffe://example.org/ns/a/sa/b',
      parentId: 'spiffe://example.org/svidkit/agent/k8s_psat/prod-1/node-1',
      x509SvidTtlSeconds: 300,
      jwtSvidTtlSeconds: 60,
      dnsNames: [],
    });
    const c = node(true);
    const res = await call<BatchNewX509SvidResponse__Output>((cb) =>
      c.BatchNewX509Svid(
        {
          params: [
            { entryId: entry.id, csr: buildCsr({ key: generateKeyPair('ec-p256').privateKey }) },
            { entryId: entry.id, csr: buildCsr({ key: generateKeyPair('rsa-2048').privateKey }) },
          ],
        },
        cb,
      ),
    );
    assert.deepEqual(
      res.results.map((r) => r.statusCode),
      [status.OK, status.INVALID_ARGUMENT],
    );
    c.close();
  });

  it('serves the admin API over mTLS to admin IDs only', async () => {
    const adminId = SpiffeId.parse('spiffe://example.org/ops/admin');
    const key = generateKeyPair();
    const { issuer } = ca.context.issuer();
    const cert = issuer.issue({
      id: adminId,
      csrDer: buildCsr({ key: key.privateKey }),
      now: new Date(),
      ttlMs: 600_000,
    });
    const admin = (keyPem: string, chainPem: string) =>
      new (caProto().svidkit.ca.v1.Admin)(
        `localhost:${ca.adminTlsPort}`,
        credentials.createSsl(Buffer.from(roots), Buffer.from(keyPem), Buffer.from(chainPem)),
      ) as unknown as AdminClient;
    const ok = admin(privateKeyToPem(key.privateKey), Certificate.fromDer(cert.der).toPem());
    const agents = await call<ListAgentsResponse__Output>((cb) => ok.ListAgents({}, cb));
    assert.deepEqual(
      agents.agents.map((a) => a.spiffeId),
      ['spiffe://example.org/svidkit/agent/k8s_psat/prod-1/node-1'],
    );
    ok.close();
    const notAdmin = admin(privateKeyToPem(agentKey.privateKey), agentChain);
    await rejectsStatus(
      call((cb) => notAdmin.ListAgents({}, cb)),
      status.PERMISSION_DENIED,
    );
    notAdmin.close();
  });
});
