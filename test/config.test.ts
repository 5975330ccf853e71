import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCaConfig, parseCaConfig } from '../lib/ca/config.js';
import { parseDuration } from '../lib/config/index.js';
import type { ErrorCode } from '../lib/errors/index.js';

describe('configuration', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  describe('parseDuration', () => {
    const good: Array<[unknown, number]> = [
      ['30s', 30_000],
      ['5m', 300_000],
      ['1h30m', 5_400_000],
      ['250ms', 250],
      ['2d', 172_800_000],
      [90, 90_000],
    ];
    for (const [input, ms] of good)
      it(`reads ${JSON.stringify(input)}`, () => assert.equal(parseDuration(input, 'k'), ms));
    for (const input of ['', '5', '1 h', '-5s', 'h', '5x', -1, Number.NaN, null]) {
      it(`refuses ${JSON.stringify(input)}`, () =>
        assert.throws(() => parseDuration(input, 'a.b'), { code: 'ERR_CONFIG', message: /^config: a\.b: / }));
    }
  });

  describe('svidkit-ca', () => {
    it('has working defaults with no file at all', async () => {
      const c = await loadCaConfig({ baseDir: dir });
      assert.equal(c.trustDomain.name, 'example.org');
      assert.equal(c.dataDir, join(dir, 'data', 'ca'));
      assert.equal(c.admin.socket, join(dir, 'data', 'ca', 'admin.sock'));
      assert.equal(c.ca.ttlMs, 24 * 3600_000);
      assert.equal(c.defaultX509SvidTtlMs, 3600_000);
      assert.equal(c.defaultJwtSvidTtlMs, 300_000);
      assert.deepEqual(c.listen, { address: '127.0.0.1', port: 8081 });
      assert.equal(c.ca.keyType, 'ec-p256');
      assert.equal(c.ca.upstream, undefined);
    });

    it('reads every key of a full file', async () => {
      const path = file(
        'full.yaml',
        `
trust_domain: prod.example.com
data_dir: /var/lib/svidkit-ca
log_level: debug
listen: { address: 0.0.0.0, port: 9443 }
admin:
  socket: /run/svidkit/admin.sock
  mtls: { address: 0.0.0.0, port: 9444, admin_ids: [spiffe://prod.example.com/ops/admin] }
observability: { address: 0.0.0.0, port: 9090 }
ca:
  key_type: ec-p384
  ttl: 48h
  jwt_key_type: rsa-2048
  upstream: { cert_file: ica.pem, key_file: ica.key, bundle_file: root.pem }
x509_svid_ttl: 2h
jwt_svid_ttl: 10m
attestation:
  join_token: { default_ttl: 1h }
  k8s_psat:
    clusters:
      - name: prod-1
        issuer: https://kubernetes.default.svc.cluster.local
        audience: svidkit-ca
        jwks_file: jwks.json
        allow: [{ namespace: svidkit, service_account: svidkit-agent }]
limits: { max_batch: 50, max_message_bytes: 65536 }
`,
      );
      const c = await loadCaConfig({ configFile: path, baseDir: dir });
      assert.equal(c.trustDomain.name, 'prod.example.com');
      assert.equal(c.logLevel, 'debug');
      assert.deepEqual(c.admin.mtls, {
        address: '0.0.0.0',
        port: 9444,
        adminIds: ['spiffe://prod.example.com/ops/admin'],
      });
      assert.equal(c.ca.keyType, 'ec-p384');
      assert.equal(c.ca.jwtKeyType, 'rsa-2048');
      assert.equal(c.ca.upstream?.certFile, join(dir, 'ica.pem'));
      assert.equal(c.defaultX509SvidTtlMs, 2 * 3600_000);
      assert.equal(c.joinTokenDefaultTtlMs, 3600_000);
      assert.equal(c.k8sPsat[0]?.jwksFile, join(dir, 'jwks.json'));
      assert.deepEqual(c.k8sPsat[0]?.allow, [{ namespace: 'svidkit', serviceAccount: 'svidkit-agent' }]);
      assert.equal(c.limits.maxBatch, 50);
      assert.equal(c.limits.maxMessageBytes, 65536);
      assert.equal(c.limits.unauthenticated.maxMessageBytes, 32 * 1024);
    });

    it('applies environment variables over the file and flags over both', async () => {
      const path = file('over.yaml', 'trust_domain: file.org\nlisten: { port: 1000 }\n');
      const c = await loadCaConfig({
        configFile: path,
        env: { SVIDKIT_CA_TRUST_DOMAIN: 'env.org', SVIDKIT_CA_LISTEN_PORT: '2000', SVIDKIT_CA_CA_TTL: '12h' },
        flags: new Map([['trust_domain', 'flag.org']]),
      });
      assert.equal(c.trustDomain.name, 'flag.org');
      assert.equal(c.listen.port, 2000);
      assert.equal(c.ca.ttlMs, 12 * 3600_000);
    });

    const refusals: Array<[string, unknown, ErrorCode, RegExp]> = [
      ['an unknown top-level key', { trust_domian: 'x.org' }, 'ERR_CONFIG', /trust_domian: unknown key/],
      ['an unknown nested key', { listen: { prot: 1 } }, 'ERR_CONFIG', /listen\.prot: unknown key/],
      ['a port out of range', { listen: { port: 70000 } }, 'ERR_CONFIG', /listen\.port: must be an integer/],
      ['a bad duration', { ca: { ttl: 'one day' } }, 'ERR_CONFIG', /ca\.ttl: .*not a duration/],
      ['a CA TTL under 10 minutes', { ca: { ttl: '5m' } }, 'ERR_CONFIG', /ca\.ttl: must be between/],
      ['an SVID TTL longer than CA TTL / 6', { ca: { ttl: '6h' }, x509_svid_ttl: '2h' }, 'ERR_CONFIG', /x509_svid_ttl/],
      ['an unknown key type', { ca: { key_type: 'dsa' } }, 'ERR_CONFIG', /ca\.key_type: must be one of/],
      ['Ed25519 for JWT keys', { ca: { jwt_key_type: 'ed25519' } }, 'ERR_CONFIG', /ca\.jwt_key_type/],
      [
        'an unknown allowed key type',
        { allowed_key_types: ['ec-p256', 'dsa'] },
        'ERR_CONFIG',
        /allowed_key_types\[1\]/,
      ],
      ['an invalid trust domain', { trust_domain: 'Example.org' }, 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR', /spiffeid/],
      ['a list where a mapping belongs', { listen: [1] }, 'ERR_CONFIG', /listen: must be a mapping/],
      [
        'a handshake timeout of a minute and more',
        { limits: { handshake_timeout: '2m' } },
        'ERR_CONFIG',
        /limits\.handshake_timeout: must be between/,
      ],
      [
        'more unauthenticated connections than connections',
        { limits: { max_connections: 100, unauthenticated: { max_connections: 101 } } },
        'ERR_CONFIG',
        /limits\.unauthenticated\.max_connections: must be an integer/,
      ],
      [
        'an unauthenticated message limit too small for AttestAgent',
        { limits: { unauthenticated: { max_message_bytes: 16384 } } },
        'ERR_CONFIG',
        /limits\.unauthenticated\.max_message_bytes/,
      ],
      [
        'a cluster without a name',
        { attestation: { k8s_psat: { clusters: [{ issuer: 'x', audience: 'y' }] } } },
        'ERR_CONFIG',
        /clusters\[0\]\.name/,
      ],
    ];
    for (const [name, doc, code, message] of refusals) {
      it(`refuses ${name}`, () => assert.throws(() => parseCaConfig(doc, dir), { code, message }));
    }

    it('refuses YAML aliases (no expansion attacks) and repeated keys', async () => {
      const alias = file('alias.yaml', 'a: &x [1, 2]\nb: *x\n');
      await assert.rejects(loadCaConfig({ configFile: alias }), { code: 'ERR_CONFIG' });
      const dup = file('dup.yaml', 'trust_domain: a.org\ntrust_domain: b.org\n');
      await assert.rejects(loadCaConfig({ configFile: dup }), { code: 'ERR_CONFIG' });
    });

    it('refuses a missing or oversized file with the path in the message', async () => {
      await assert.rejects(loadCaConfig({ configFile: join(dir, 'nope.yaml') }), {
        code: 'ERR_CONFIG',
        message: /cannot read .*nope\.yaml \(ENOENT\)/,
      });
      const big = file('big.yaml', `# ${'x'.repeat(300 * 1024)}\n`);
      await assert.rejects(loadCaConfig({ configFile: big }), { code: 'ERR_CONFIG', message: /larger than/ });
    });
  });
});
