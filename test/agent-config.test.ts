/**
 * Tests of lib/agent/config: defaults, a full file, every refusal with the exact key path in its
 * message, environment and flag overrides, and the ways a file mode can be written in YAML.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  type AgentConfig,
  DEFAULT_FILE_NAMES,
  DEFAULT_PSAT_TOKEN_FILE,
  loadAgentConfig,
  MAX_WORKLOADS,
  parseAgentConfig,
} from '../lib/agent/config.js';
import { CA_SERVER_PATH, caServerId } from '../lib/ca-api/index.js';
import { isSvidkitError } from '../lib/errors/index.js';

const TOKEN = 'Zm9vYmFyLWpvaW4tdG9rZW4tZm9yLXRlc3Rz';

type Doc = Record<string, unknown>;

/** The smallest valid document: a bootstrap bundle and an attestation method. */
function base(extra: Doc = {}): Doc {
  return { ca: { bundle_file: 'bundle.pem' }, attestation: { join_token: TOKEN }, ...extra };
}

/** `base` with the given workloads; each gets a distinct ID and output directory unless it sets its own. */
function withWorkloads(...ws: Doc[]): Doc {
  return base({
    workloads: ws.map((w, i) => ({ spiffe_id: `spiffe://example.org/w${i}`, output_dir: `out/w${i}`, ...w })),
  });
}

/** Workload 3 of four is the one under test, so messages must say workloads[3]. */
function fourth(w: Doc): Doc {
  return withWorkloads({}, {}, {}, w);
}

describe('agent configuration', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-agent-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const parse = (doc: unknown): AgentConfig => parseAgentConfig(doc, dir);

  describe('defaults', () => {
    it('needs only a bundle and an attestation method', () => {
      const c = parse(base());
      assert.equal(c.trustDomain.name, 'example.org');
      assert.equal(c.dataDir, join(dir, 'data', 'agent'));
      assert.equal(c.logLevel, 'info');
      assert.deepEqual(
        { ...c.ca, spiffeId: c.ca.spiffeId.toString() },
        {
          address: '127.0.0.1:8081',
          host: '127.0.0.1',
          port: 8081,
          serverName: 'localhost',
          spiffeId: 'spiffe://example.org/svidkit/ca',
          bundleFile: join(dir, 'bundle.pem'),
        },
      );
      assert.equal(c.attestation.method, 'join_token');
      assert.deepEqual(c.observability, { address: '127.0.0.1', port: 8091 });
      assert.deepEqual(c.workloads, []);
      assert.deepEqual(c.rotation, { fraction: 0.5, jitter: 0.1 });
      assert.deepEqual(c.backoff, { minMs: 1000, maxMs: 60_000 });
      assert.equal(c.entrySyncMs, 5000);
      assert.deepEqual(c.warnings, []);
    });

    it("checks the CA's serving ID at the path the CA daemon issues it for", () => {
      // One definition (lib/ca-api) serves both daemons; the agent expects what the CA presents.
      assert.equal(CA_SERVER_PATH, '/svidkit/ca');
      const c = parse(base({ trust_domain: 'prod.example.com' }));
      assert.ok(c.ca.spiffeId.equals(caServerId('prod.example.com')));
      assert.equal(c.ca.spiffeId.toString(), 'spiffe://prod.example.com/svidkit/ca');
    });

    it('gives a workload its defaults', () => {
      const [w] = parse(withWorkloads({})).workloads;
      assert.ok(w);
      assert.equal(w.index, 0);
      assert.equal(w.spiffeId.toString(), 'spiffe://example.org/w0');
      assert.equal(w.outputDir, join(dir, 'out', 'w0'));
      assert.equal(w.uid, undefined);
      assert.equal(w.gid, undefined);
      assert.equal(w.certMode, 0o644);
      assert.equal(w.keyMode, 0o600);
      assert.equal(w.keyType, 'ec-p256');
      assert.deepEqual(w.jwtAudiences, []);
      assert.deepEqual(w.fileNames, DEFAULT_FILE_NAMES);
      assert.equal(w.reload, undefined);
    });

    it('reads k8s_psat with its default token file, and an empty value as unset', () => {
      const c = parse({ ca: { bundle_file: 'b.pem' }, attestation: { k8s_psat: {} } });
      assert.deepEqual(c.attestation, { method: 'k8s_psat', tokenFile: DEFAULT_PSAT_TOKEN_FILE, cluster: undefined });
      const w = parse(withWorkloads({ uid: null, gid: null, reload: null, cert_mode: null })).workloads[0];
      assert.equal(w?.uid, undefined);
      assert.equal(w?.reload, undefined);
      assert.equal(w?.certMode, 0o644);
    });

    it('checks the name the CA serving SVID carries (localhost) by default, and accepts bracketed IPv6', () => {
      const dns = parse(base({ ca: { address: 'ca.svidkit.svc:8081', bundle_file: 'b.pem' } }));
      assert.equal(dns.ca.serverName, 'localhost');
      assert.equal(dns.ca.host, 'ca.svidkit.svc');
      const v6 = parse(base({ ca: { address: '[::1]:9000', bundle_file: 'b.pem' } }));
      assert.deepEqual([v6.ca.host, v6.ca.port, v6.ca.serverName], ['::1', 9000, 'localhost']);
      const named = parse(base({ ca: { address: '10.0.0.5:8081', server_name: 'ca.internal', bundle_file: 'b.pem' } }));
      assert.equal(named.ca.serverName, 'ca.internal');
    });

    it('refuses insecure bootstrap: never trust a CA on first use', () => {
      assert.throws(() => parse({ ca: { insecure_bootstrap: true }, attestation: { join_token: TOKEN } }), {
        code: 'ERR_CONFIG',
        message: /ca\.insecure_bootstrap: is not supported/,
      });
    });

    it('accepts 1000 workloads', () => {
      const ws = Array.from({ length: MAX_WORKLOADS }, (_, i) => ({
        spiffe_id: `spiffe://example.org/ns/n${i % 10}/sa/w${i}`,
        output_dir: `/run/svidkit/n${i % 10}/w${i}`,
      }));
      assert.equal(parse(base({ workloads: ws })).workloads.length, MAX_WORKLOADS);
    });
  });

  describe('a full file', () => {
    it('reads every key', async () => {
      const path = file(
        'full.yaml',
        `
trust_domain: prod.example.com
data_dir: /var/lib/svidkit-agent
log_level: debug
ca:
  address: svidkit-ca.svidkit.svc:8443
  bundle_file: /etc/svidkit/ca-bundle.pem
  server_name: ca.prod.example.com
attestation:
  k8s_psat:
    token_file: /var/run/secrets/tokens/agent
    cluster: prod-1
observability: { address: 0.0.0.0, port: 9091 }
workloads:
  - spiffe_id: spiffe://prod.example.com/ns/shop/sa/web
    output_dir: /run/svidkit/web
    uid: 1000
    gid: 2000
    cert_mode: 0644
    key_mode: 0640
    key_type: ec-p384
    jwt_audiences: [payments, https://api.example.com]
    file_names: { svid: tls.crt, key: tls.key, bundle: ca.crt, spiffe_bundle: bundle.json, jwt_bundle: jwks.json, jwt_dir: tokens, meta: svid.json }
    reload:
      signal: { pid_file: /run/nginx.pid, signal: SIGHUP }
  - spiffe_id: spiffe://prod.example.com/ns/shop/sa/api
    output_dir: api-certs
    cert_mode: '0444'
    key_mode: 0o400
    key_type: ed25519
    reload:
      exec: { command: [./bin/reload, --graceful], timeout: 5s }
  - spiffe_id: spiffe://prod.example.com/ns/shop/sa/batch
    output_dir: /run/svidkit/batch
    reload:
      exec: { command: [systemctl, reload, batch] }
rotation: { fraction: 0.6, jitter: 0.05 }
backoff: { min: 500ms, max: 2m }
entry_sync_interval: 20s
`,
      );
      const c = await loadAgentConfig({ configFile: path, baseDir: dir });
      assert.equal(c.trustDomain.name, 'prod.example.com');
      assert.equal(c.dataDir, '/var/lib/svidkit-agent');
      assert.equal(c.logLevel, 'debug');
      assert.equal(c.ca.address, 'svidkit-ca.svidkit.svc:8443');
      assert.equal(c.ca.port, 8443);
      assert.equal(c.ca.serverName, 'ca.prod.example.com');
      assert.equal(c.ca.bundleFile, '/etc/svidkit/ca-bundle.pem');
      assert.equal(c.ca.spiffeId.toString(), 'spiffe://prod.example.com/svidkit/ca');
      assert.deepEqual(c.attestation, {
        method: 'k8s_psat',
        tokenFile: '/var/run/secrets/tokens/agent',
        cluster: 'prod-1',
      });
      assert.deepEqual(c.observability, { address: '0.0.0.0', port: 9091 });
      assert.deepEqual(c.rotation, { fraction: 0.6, jitter: 0.05 });
      assert.deepEqual(c.backoff, { minMs: 500, maxMs: 120_000 });
      assert.equal(c.entrySyncMs, 20_000);

      const [web, api, batch] = c.workloads;
      assert.ok(web && api && batch);
      assert.equal(web.spiffeId.toString(), 'spiffe://prod.example.com/ns/shop/sa/web');
      assert.equal(web.outputDir, '/run/svidkit/web');
      assert.deepEqual([web.uid, web.gid], [1000, 2000]);
      // Unquoted leading-zero modes are octal, as everyone who writes them means.
      assert.equal(web.certMode, 0o644);
      assert.equal(web.keyMode, 0o640);
      assert.equal(web.keyType, 'ec-p384');
      assert.deepEqual(web.jwtAudiences, ['payments', 'https://api.example.com']);
      assert.deepEqual(web.fileNames, {
        svid: 'tls.crt',
        key: 'tls.key',
        bundle: 'ca.crt',
        spiffeBundle: 'bundle.json',
        jwtBundle: 'jwks.json',
        jwtDir: 'tokens',
        meta: 'svid.json',
      });
      assert.deepEqual(web.reload, { signal: { pidFile: '/run/nginx.pid', signal: 'SIGHUP' } });

      assert.equal(api.outputDir, join(dir, 'api-certs'));
      assert.equal(api.certMode, 0o444);
      assert.equal(api.keyMode, 0o400);
      assert.equal(api.keyType, 'ed25519');
      assert.deepEqual(api.fileNames, DEFAULT_FILE_NAMES);
      assert.deepEqual(api.reload, { exec: { command: [join(dir, 'bin', 'reload'), '--graceful'], timeoutMs: 5000 } });
      // A bare program name is left for PATH lookup.
      assert.deepEqual(batch.reload, { exec: { command: ['systemctl', 'reload', 'batch'], timeoutMs: 30_000 } });
    });
  });

  describe('workload_api', () => {
    it('is off unless socket_path is set, and has bounded defaults when it is', () => {
      assert.equal(parse(base()).workloadApi, undefined);
      const c = parse(base({ workload_api: { socket_path: 'agent/public/api.sock' } }));
      assert.deepEqual(c.workloadApi, {
        socketPath: join(dir, 'agent', 'public', 'api.sock'),
        discoverPath: false,
        maxBinaryBytes: 256 * 1024 * 1024,
        maxConnections: 4096,
        maxStreamsPerCaller: 64,
      });
    });

    it('takes the socket path from SVIDKIT_AGENT_WORKLOAD_API_SOCKET_PATH', async () => {
      const c = await loadAgentConfig({
        configFile: file('wl.yaml', 'ca: { bundle_file: b.pem }\nattestation: { join_token_file: /etc/token }\n'),
        baseDir: dir,
        env: { SVIDKIT_AGENT_WORKLOAD_API_SOCKET_PATH: '/run/svidkit-agent/public/api.sock' },
      });
      assert.equal(c.workloadApi?.socketPath, '/run/svidkit-agent/public/api.sock');
    });
  });

  describe('file modes', () => {
    const parsed: Array<[string, unknown, number]> = [
      ["the string '0644'", '0644', 0o644],
      ["the string '644'", '644', 0o644],
      ["the string '0o640'", '0o640', 0o640],
      ['the number 0o640', 0o640, 0o640],
      ['the number 420', 420, 0o644],
      ["the string '000'", '000', 0],
    ];
    for (const [name, value, mode] of parsed) {
      it(`reads cert_mode given as ${name}`, () => {
        assert.equal(parse(withWorkloads({ cert_mode: value })).workloads[0]?.certMode, mode);
      });
    }

    // How YAML spells the mode in a file -> the mode. YAML 1.2 alone would read 0400 as 400 = 0o620.
    const spelt: Array<[string, number]> = [
      ['0400', 0o400],
      ['0440', 0o440],
      ['0600', 0o600],
      ["'0600'", 0o600],
      ['"0640"', 0o640],
      ['0o600', 0o600],
      ['384', 0o600],
    ];
    for (const [yaml, mode] of spelt) {
      it(`reads key_mode: ${yaml} in a file as ${mode.toString(8).padStart(4, '0')}`, async () => {
        const path = file(
          'mode.yaml',
          `ca: { bundle_file: b.pem }\nattestation: { join_token: ${TOKEN} }\n` +
            `workloads:\n  - { spiffe_id: spiffe://example.org/a, output_dir: /tmp/a, cert_mode: 0444 }\n` +
            `  - spiffe_id: spiffe://example.org/b\n    output_dir: /tmp/b\n    key_mode: ${yaml}\n`,
        );
        const c = await loadAgentConfig({ configFile: path });
        assert.equal(c.workloads[1]?.keyMode, mode);
        assert.equal(c.workloads[0]?.certMode, 0o444);
      });
    }

    it('refuses an unquoted decimal-looking mode with a hint', async () => {
      const path = file(
        'decimal.yaml',
        `ca: { bundle_file: b.pem }\nattestation: { join_token: ${TOKEN} }\n` +
          `workloads:\n  - { spiffe_id: spiffe://example.org/a, output_dir: /tmp/a, cert_mode: 644 }\n`,
      );
      await assert.rejects(loadAgentConfig({ configFile: path }), {
        code: 'ERR_CONFIG',
        message: `config: ${path}: workloads[0].cert_mode: 644 is not a file mode from 0 to 0o777; write it quoted ('0640') or as 0o640`,
      });
    });
  });

  describe('refusals', () => {
    // [what, document, exact key path]. Every one must be ERR_CONFIG with "config: <path>: " in front.
    const refusals: Array<[string, Doc, string]> = [
      ['an unknown top-level key', base({ trust_domian: 'x.org' }), 'trust_domian'],
      ['an invalid trust domain', base({ trust_domain: 'Example.org' }), 'trust_domain'],
      ['an unknown log level', base({ log_level: 'verbose' }), 'log_level'],
      ['a data_dir that is not a string', base({ data_dir: 5 }), 'data_dir'],
      ['a CA address without a port', base({ ca: { address: 'localhost', bundle_file: 'b' } }), 'ca.address'],
      ['a CA address with port 0', base({ ca: { address: '127.0.0.1:0', bundle_file: 'b' } }), 'ca.address'],
      ['a CA address with port 65536', base({ ca: { address: 'ca:65536', bundle_file: 'b' } }), 'ca.address'],
      ['an unbracketed IPv6 address', base({ ca: { address: '::1:8081', bundle_file: 'b' } }), 'ca.address'],
      ['a bad IPv4 address', base({ ca: { address: '999.1.1.1:80', bundle_file: 'b' } }), 'ca.address'],
      ['a host with a space', base({ ca: { address: 'c a:80', bundle_file: 'b' } }), 'ca.address'],
      ['an IP as server name', base({ ca: { server_name: '10.0.0.1', bundle_file: 'b' } }), 'ca.server_name'],
      ['no bundle', base({ ca: {} }), 'ca.bundle_file'],
      [
        'a bundle together with insecure bootstrap',
        base({ ca: { bundle_file: 'b', insecure_bootstrap: true } }),
        'ca.insecure_bootstrap',
      ],
      ['insecure_bootstrap: "yes"', base({ ca: { insecure_bootstrap: 'yes' } }), 'ca.insecure_bootstrap'],
      ['an unknown CA key', base({ ca: { bundle_file: 'b', bundel_file: 'c' } }), 'ca.bundel_file'],
      ['no attestation method', base({ attestation: {} }), 'attestation'],
      [
        'a Workload API socket path too long for a Unix socket',
        base({ workload_api: { socket_path: `/run/${'s'.repeat(120)}.sock` } }),
        'workload_api.socket_path',
      ],
      [
        'a Workload API socket directly in data_dir',
        base({ data_dir: '/var/lib/svidkit-agent', workload_api: { socket_path: '/var/lib/svidkit-agent/api.sock' } }),
        'workload_api.socket_path',
      ],
      [
        'a Workload API socket inside a workload output directory',
        { ...withWorkloads({ output_dir: '/run/w' }), workload_api: { socket_path: '/run/w/sub/api.sock' } },
        'workload_api.socket_path',
      ],
      ['discover_path: "yes"', base({ workload_api: { discover_path: 'yes' } }), 'workload_api.discover_path'],
      [
        '0 streams per caller',
        base({ workload_api: { max_streams_per_caller: 0 } }),
        'workload_api.max_streams_per_caller',
      ],
      ['an unknown workload_api key', base({ workload_api: { socket: '/run/a.sock' } }), 'workload_api.socket'],
      [
        'two attestation methods',
        base({ attestation: { join_token: TOKEN, k8s_psat: { cluster: 'c' } } }),
        'attestation',
      ],
      [
        'join_token and join_token_file',
        base({ attestation: { join_token: TOKEN, join_token_file: 't' } }),
        'attestation',
      ],
      ['a malformed join token', base({ attestation: { join_token: 'short!' } }), 'attestation.join_token'],
      ['an empty join token file', base({ attestation: { join_token_file: '' } }), 'attestation.join_token_file'],
      [
        'a cluster name with a slash',
        base({ attestation: { k8s_psat: { cluster: 'a/b' } } }),
        'attestation.k8s_psat.cluster',
      ],
      [
        'an unknown k8s_psat key',
        base({ attestation: { k8s_psat: { audience: 'x' } } }),
        'attestation.k8s_psat.audience',
      ],
      ['an unknown attestation key', base({ attestation: { join_token: TOKEN, x509pop: {} } }), 'attestation.x509pop'],
      ['an observability port out of range', base({ observability: { port: 70000 } }), 'observability.port'],
      ['workloads as a mapping', base({ workloads: { a: 1 } }), 'workloads'],
      ['a workload that is a string', base({ workloads: ['spiffe://example.org/a'] }), 'workloads[0]'],
      ['a workload without spiffe_id', fourth({ spiffe_id: undefined }), 'workloads[3].spiffe_id'],
      ['an invalid SPIFFE ID', fourth({ spiffe_id: 'spiffe://example.org/a//b' }), 'workloads[3].spiffe_id'],
      ['an ID of another trust domain', fourth({ spiffe_id: 'spiffe://other.org/a' }), 'workloads[3].spiffe_id'],
      ['an ID without a path', fourth({ spiffe_id: 'spiffe://example.org' }), 'workloads[3].spiffe_id'],
      ["the CA's own ID", fourth({ spiffe_id: 'spiffe://example.org/svidkit/ca' }), 'workloads[3].spiffe_id'],
      ['an ID under /svidkit', fourth({ spiffe_id: 'spiffe://example.org/svidkit/agent/x' }), 'workloads[3].spiffe_id'],
      ['a workload without output_dir', fourth({ output_dir: undefined }), 'workloads[3].output_dir'],
      ['a negative uid', fourth({ uid: -1 }), 'workloads[3].uid'],
      ['a uid of 2^31', fourth({ uid: 2 ** 31 }), 'workloads[3].uid'],
      ['a fractional gid', fourth({ gid: 1.5 }), 'workloads[3].gid'],
      ['a gid as a string', fourth({ gid: '100' }), 'workloads[3].gid'],
      ['a cert mode with a 9', fourth({ cert_mode: '0999' }), 'workloads[3].cert_mode'],
      ['a cert mode with the sticky bit', fourth({ cert_mode: '1644' }), 'workloads[3].cert_mode'],
      ['a cert mode number above 0o777', fourth({ cert_mode: 0o1644 }), 'workloads[3].cert_mode'],
      ['a decimal 644 as cert mode', fourth({ cert_mode: 644 }), 'workloads[3].cert_mode'],
      ['a cert mode that is a boolean', fourth({ cert_mode: true }), 'workloads[3].cert_mode'],
      ['a world-readable key mode', fourth({ key_mode: '0644' }), 'workloads[3].key_mode'],
      ['a key mode with other-read only', fourth({ key_mode: '0604' }), 'workloads[3].key_mode'],
      ['a key mode with other-execute', fourth({ key_mode: '0601' }), 'workloads[3].key_mode'],
      ['a world-readable key mode as a number', fourth({ key_mode: 0o644 }), 'workloads[3].key_mode'],
      ['a key mode nobody can read', fourth({ key_mode: '0200' }), 'workloads[3].key_mode'],
      ['a cert mode anyone can write', fourth({ cert_mode: '0666' }), 'workloads[3].cert_mode'],
      ['a cert mode the group can write', fourth({ cert_mode: '0664' }), 'workloads[3].cert_mode'],
      ['a cert mode other users can write', fourth({ cert_mode: '0646' }), 'workloads[3].cert_mode'],
      ['a cert mode with group write as a number', fourth({ cert_mode: 0o660 }), 'workloads[3].cert_mode'],
      ['a key mode the group can write', fourth({ key_mode: '0660' }), 'workloads[3].key_mode'],
      ['a key mode the group can only write', fourth({ key_mode: '0620' }), 'workloads[3].key_mode'],
      ['a key mode anyone can write', fourth({ key_mode: '0622' }), 'workloads[3].key_mode'],
      ['an unknown key type', fourth({ key_type: 'dsa' }), 'workloads[3].key_type'],
      ['audiences as a string', fourth({ jwt_audiences: 'a' }), 'workloads[3].jwt_audiences'],
      [
        '17 audiences',
        fourth({ jwt_audiences: Array.from({ length: 17 }, (_, i) => `a${i}`) }),
        'workloads[3].jwt_audiences',
      ],
      ['an empty audience', fourth({ jwt_audiences: ['a', ''] }), 'workloads[3].jwt_audiences'],
      ['a repeated audience', fourth({ jwt_audiences: ['a', 'b', 'a'] }), 'workloads[3].jwt_audiences[2]'],
      ['an audience with a newline', fourth({ jwt_audiences: ['a\nb'] }), 'workloads[3].jwt_audiences[0]'],
      ['an unknown file name key', fourth({ file_names: { cert: 'x' } }), 'workloads[3].file_names.cert'],
      ['a file name with a slash', fourth({ file_names: { svid: 'a/b.pem' } }), 'workloads[3].file_names.svid'],
      ['a file name starting with ..', fourth({ file_names: { key: '..data' } }), 'workloads[3].file_names.key'],
      ['a file name "."', fourth({ file_names: { jwt_dir: '.' } }), 'workloads[3].file_names.jwt_dir'],
      ['two files with one name', fourth({ file_names: { meta: 'svid.pem' } }), 'workloads[3].file_names.meta'],
      ['an empty reload', fourth({ reload: {} }), 'workloads[3].reload'],
      [
        'a reload with both signal and exec',
        fourth({ reload: { signal: { pid_file: 'p' }, exec: { command: ['x'] } } }),
        'workloads[3].reload',
      ],
      ['an unknown reload kind', fourth({ reload: { http: {} } }), 'workloads[3].reload'],
      ['a signal without pid_file', fourth({ reload: { signal: {} } }), 'workloads[3].reload.signal.pid_file'],
      [
        'a signal name without SIG',
        fourth({ reload: { signal: { pid_file: 'p', signal: 'HUP' } } }),
        'workloads[3].reload.signal.signal',
      ],
      [
        'an unknown signal',
        fourth({ reload: { signal: { pid_file: 'p', signal: 'SIGFOO' } } }),
        'workloads[3].reload.signal.signal',
      ],
      ['an empty command', fourth({ reload: { exec: { command: [] } } }), 'workloads[3].reload.exec.command'],
      [
        'a command given as a shell string',
        fourth({ reload: { exec: { command: 'nginx -s reload' } } }),
        'workloads[3].reload.exec.command',
      ],
      [
        'a command with a non-string',
        fourth({ reload: { exec: { command: ['kill', 1] } } }),
        'workloads[3].reload.exec.command',
      ],
      [
        'a command timeout of an hour',
        fourth({ reload: { exec: { command: ['x'], timeout: '1h' } } }),
        'workloads[3].reload.exec.timeout',
      ],
      [
        'a shell option',
        fourth({ reload: { exec: { command: ['x'], shell: true } } }),
        'workloads[3].reload.exec.shell',
      ],
      ['an unknown workload key', fourth({ outputdir: 'x' }), 'workloads[3].outputdir'],
      [
        'a repeated SPIFFE ID',
        withWorkloads({}, {}, { spiffe_id: 'spiffe://example.org/w0' }),
        'workloads[2].spiffe_id',
      ],
      ['a repeated output_dir', withWorkloads({}, { output_dir: join('out', 'w0') }), 'workloads[1].output_dir'],
      [
        'an output_dir inside another',
        withWorkloads({ output_dir: '/run/a' }, { output_dir: '/run/a/b/c' }),
        'workloads[1].output_dir',
      ],
      [
        'an output_dir around another',
        withWorkloads({ output_dir: '/run/a/b' }, { output_dir: '/run/a' }),
        'workloads[0].output_dir',
      ],
      ['the data_dir as output_dir', fourth({ output_dir: 'data/agent' }), 'workloads[3].output_dir'],
      ['an output_dir inside data_dir', fourth({ output_dir: 'data/agent/w' }), 'workloads[3].output_dir'],
      ['an output_dir around data_dir', fourth({ output_dir: 'data' }), 'workloads[3].output_dir'],
      ['the root as output_dir', fourth({ output_dir: '/' }), 'workloads[3].output_dir'],
      [
        '1001 workloads',
        base({ workloads: Array.from({ length: 1001 }, (_, i) => ({ spiffe_id: `spiffe://example.org/${i}` })) }),
        'workloads',
      ],
      ['a fraction of 0.95', base({ rotation: { fraction: 0.95 } }), 'rotation.fraction'],
      ['a fraction as a word', base({ rotation: { fraction: 'half' } }), 'rotation.fraction'],
      ['a jitter of 0.6', base({ rotation: { jitter: 0.6 } }), 'rotation.jitter'],
      ['a negative jitter', base({ rotation: { jitter: -0.1 } }), 'rotation.jitter'],
      ['fraction × (1 + jitter) above 0.95', base({ rotation: { fraction: 0.9, jitter: 0.1 } }), 'rotation.jitter'],
      ['an unknown rotation key', base({ rotation: { fraktion: 0.5 } }), 'rotation.fraktion'],
      ['rotation as a list', base({ rotation: [0.5] }), 'rotation'],
      ['a backoff min of 10ms', base({ backoff: { min: '10ms' } }), 'backoff.min'],
      ['a backoff max of 1h', base({ backoff: { max: '1h' } }), 'backoff.max'],
      ['a backoff max below min', base({ backoff: { min: '30s', max: '10s' } }), 'backoff.max'],
      ['a backoff as a word', base({ backoff: { min: 'soon' } }), 'backoff.min'],
      ['an entry sync interval of 100ms', base({ entry_sync_interval: '100ms' }), 'entry_sync_interval'],
      ['an entry sync interval of 1h', base({ entry_sync_interval: '1h' }), 'entry_sync_interval'],
    ];
    for (const [name, doc, path] of refusals) {
      it(`refuses ${name} at ${path}`, () => {
        assert.throws(
          () => parse(doc),
          (err: unknown) => {
            assert.ok(isSvidkitError(err, 'ERR_CONFIG'), `not ERR_CONFIG: ${String(err)}`);
            assert.ok(err.message.startsWith(`config: ${path}: `), err.message);
            return true;
          },
        );
      });
    }

    it('names both entries when two workloads clash', () => {
      assert.throws(() => parse(withWorkloads({}, {}, { spiffe_id: 'spiffe://example.org/w0' })), {
        message: 'config: workloads[2].spiffe_id: spiffe://example.org/w0 is also workloads[0].spiffe_id',
      });
      assert.throws(() => parse(withWorkloads({ output_dir: '/srv/x' }, {}, { output_dir: '/srv/x/' })), {
        message: 'config: workloads[2].output_dir: /srv/x is also workloads[0].output_dir',
      });
      assert.throws(() => parse(withWorkloads({ output_dir: '/srv/x' }, { output_dir: '/srv/x/y' })), {
        message:
          'config: workloads[1].output_dir: /srv/x/y is inside workloads[0].output_dir (/srv/x); give each workload its own directory',
      });
    });

    it('explains a world-readable key mode', () => {
      assert.throws(() => parse(fourth({ key_mode: '0644' })), {
        message:
          'config: workloads[3].key_mode: 0644 gives other users (the last digit) access to the private key of spiffe://example.org/w3; use 0600 or 0640',
      });
    });

    it('explains a cert or key mode that lets the group or other users write, naming the key and the workload', () => {
      const cases: Array<[Doc, string]> = [
        [
          fourth({ cert_mode: '0666' }),
          'config: workloads[3].cert_mode: 0666 lets the group and other users write the SVID and bundle files of spiffe://example.org/w3; use 0644 or 0640',
        ],
        [
          fourth({ cert_mode: 0o664 }),
          'config: workloads[3].cert_mode: 0664 lets the group (the middle digit) write the SVID and bundle files of spiffe://example.org/w3; use 0644 or 0640',
        ],
        [
          fourth({ cert_mode: '0642' }),
          'config: workloads[3].cert_mode: 0642 lets other users (the last digit) write the SVID and bundle files of spiffe://example.org/w3; use 0644 or 0640',
        ],
        [
          fourth({ key_mode: '0660' }),
          'config: workloads[3].key_mode: 0660 lets the group (the middle digit) write the private key and JWT-SVID files of spiffe://example.org/w3; use 0600 or 0640',
        ],
        [
          fourth({ key_mode: '0666' }),
          'config: workloads[3].key_mode: 0666 lets the group and other users write the private key and JWT-SVID files of spiffe://example.org/w3; use 0600 or 0640',
        ],
      ];
      for (const [doc, message] of cases) assert.throws(() => parse(doc), { code: 'ERR_CONFIG', message });
      // The modes that keep writing to the owner (the agent, or the workload's uid) still pass.
      for (const [certMode, keyMode] of [
        ['0644', '0600'],
        ['0640', '0640'],
        ['0444', '0400'],
        ['0755', '0440'],
      ] as const) {
        const w = parse(fourth({ cert_mode: certMode, key_mode: keyMode })).workloads[3]!;
        assert.equal(w.certMode, parseInt(certMode, 8));
        assert.equal(w.keyMode, parseInt(keyMode, 8));
      }
    });

    it('never repeats a join token in a message', () => {
      const near = `${TOKEN}!`;
      assert.throws(
        () => parse(base({ attestation: { join_token: near } })),
        (err: unknown) => isSvidkitError(err, 'ERR_CONFIG') && !err.message.includes(TOKEN),
      );
    });

    it('names the file as well as the key when loading from a file', async () => {
      const path = file(
        'bad.yaml',
        `ca: { bundle_file: b.pem }\nattestation: { join_token: ${TOKEN} }\nworkloads:\n` +
          [0, 1, 2, 3].map((i) => `  - { spiffe_id: spiffe://example.org/w${i}, output_dir: /tmp/w${i} }\n`).join('') +
          `  - { spiffe_id: spiffe://example.org/w4, output_dir: /tmp/w4, key_mode: '0666' }\n`,
      );
      await assert.rejects(loadAgentConfig({ configFile: path }), {
        code: 'ERR_CONFIG',
        message: new RegExp(`^config: ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: workloads\\[4\\]\\.key_mode: `),
      });
      const typo = file('typo.yaml', 'ca: { bundle_file: b.pem, adress: x }\n');
      await assert.rejects(loadAgentConfig({ configFile: typo }), {
        message: `config: ${typo}: ca.adress: unknown key`,
      });
    });

    it('reports a missing file by name', async () => {
      await assert.rejects(loadAgentConfig({ configFile: join(dir, 'absent.yaml') }), {
        code: 'ERR_CONFIG',
        message: /cannot read .*absent\.yaml \(ENOENT\)/,
      });
    });
  });

  describe('overrides', () => {
    it('applies SVIDKIT_AGENT_* over the file and flags over both', async () => {
      const path = file(
        'over.yaml',
        `trust_domain: file.org\nca: { address: 'file:1', bundle_file: b.pem }\n` +
          `attestation: { join_token_file: /etc/token }\nobservability: { port: 1000 }\n`,
      );
      const c = await loadAgentConfig({
        configFile: path,
        baseDir: dir,
        env: {
          SVIDKIT_AGENT_TRUST_DOMAIN: 'env.org',
          SVIDKIT_AGENT_CA_ADDRESS: 'ca.env.org:8443',
          SVIDKIT_AGENT_OBSERVABILITY_PORT: '2000',
          SVIDKIT_AGENT_ROTATION_FRACTION: '0.4',
          SVIDKIT_AGENT_ROTATION_JITTER: '0.2',
          SVIDKIT_AGENT_BACKOFF_MAX: '2m',
          SVIDKIT_AGENT_LOG_LEVEL: 'warn',
          SVIDKIT_AGENT_UNRELATED: 'ignored',
        },
        flags: new Map([
          ['trust_domain', 'flag.org'],
          ['backoff.min', '2s'],
        ]),
      });
      assert.equal(c.trustDomain.name, 'flag.org');
      assert.equal(c.ca.address, 'ca.env.org:8443');
      assert.equal(c.ca.serverName, 'localhost');
      assert.equal(c.ca.spiffeId.toString(), 'spiffe://flag.org/svidkit/ca');
      assert.equal(c.observability.port, 2000);
      assert.deepEqual(c.rotation, { fraction: 0.4, jitter: 0.2 });
      assert.deepEqual(c.backoff, { minMs: 2000, maxMs: 120_000 });
      assert.equal(c.logLevel, 'warn');
      assert.deepEqual(c.attestation, { method: 'join_token_file', tokenFile: '/etc/token' });
    });

    it('reports a bad environment value by key', async () => {
      await assert.rejects(
        loadAgentConfig({
          env: {
            SVIDKIT_AGENT_CA_BUNDLE_FILE: 'b.pem',
            SVIDKIT_AGENT_JOIN_TOKEN: TOKEN,
            SVIDKIT_AGENT_OBSERVABILITY_PORT: '99999',
          },
        }),
        { code: 'ERR_CONFIG', message: /^config: observability\.port: / },
      );
    });

    it('takes the join token from SVIDKIT_AGENT_JOIN_TOKEN in place of the file settings', async () => {
      const path = file('token.yaml', 'ca: { bundle_file: b.pem }\nattestation: { join_token_file: /etc/token }\n');
      const c = await loadAgentConfig({ configFile: path, env: { SVIDKIT_AGENT_JOIN_TOKEN: TOKEN } });
      assert.equal(c.attestation.method, 'join_token');
      assert.ok(c.attestation.method === 'join_token' && c.attestation.token === TOKEN);
      // The token never shows when the configuration is logged.
      assert.ok(!JSON.stringify(c).includes(TOKEN));
      assert.ok(!inspect(c, { depth: 10 }).includes(TOKEN));
      // Without a file, the environment alone is enough.
      const bare = await loadAgentConfig({
        env: { SVIDKIT_AGENT_JOIN_TOKEN: TOKEN, SVIDKIT_AGENT_CA_BUNDLE_FILE: '/etc/ca.pem' },
      });
      assert.equal(bare.attestation.method, 'join_token');
      assert.equal(bare.ca.bundleFile, '/etc/ca.pem');
    });

    it('refuses SVIDKIT_AGENT_JOIN_TOKEN with a k8s_psat file, naming the file', async () => {
      const path = file('psat.yaml', 'ca: { bundle_file: b.pem }\nattestation: { k8s_psat: { cluster: c1 } }\n');
      await assert.rejects(loadAgentConfig({ configFile: path, env: { SVIDKIT_AGENT_JOIN_TOKEN: TOKEN } }), {
        code: 'ERR_CONFIG',
        message: `config: ${path}: attestation: SVIDKIT_AGENT_JOIN_TOKEN is set but attestation.k8s_psat is configured; use one method`,
      });
    });

    it('does not let the environment turn on insecure bootstrap', async () => {
      await assert.rejects(
        loadAgentConfig({ env: { SVIDKIT_AGENT_CA_INSECURE_BOOTSTRAP: 'true', SVIDKIT_AGENT_JOIN_TOKEN: TOKEN } }),
        { code: 'ERR_CONFIG', message: /^config: ca\.bundle_file: is required/ },
      );
    });
  });
});
