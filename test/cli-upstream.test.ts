/**
 * `svidkit upstream create-root` and `create-intermediate`, run in-process, then the proof that matters:
 * svidkit-ca started in upstream mode with exactly these files publishes the root as its bundle and
 * issues SVIDs that svidkit and openssl both verify against it.
 */
import { strict as assert } from 'node:assert';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { parseCaConfig } from '../lib/ca/config.js';
import { run as runCa, type RunningCa } from '../lib/ca/daemon.js';
import { generateKeyPair, keyTypeOf, loadPrivateKeyPem, privateKeyToPem, samePublicKey } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { keyIdentifier } from '../lib/x509/build.js';
import { Certificate, KeyUsageBit } from '../lib/x509/certificate.js';
import { buildCsr } from '../lib/x509/csr.js';
import { verify } from '../lib/x509svid/index.js';
import { openssl, requireOpenssl } from './helpers/openssl.js';
import { runCli } from './helpers/cli.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

const cli = runCli;

function assertFails(r: { code: number; out: string; err: string }, exit: number, code: string | RegExp): void {
  assert.equal(r.out, '');
  assert.equal(r.code, exit, r.err);
  const pattern = typeof code === 'string' ? new RegExp(`^error ${code}: [^\\n]+\\n$`) : code;
  assert.match(r.err, pattern);
}

function certOf(path: string): Certificate {
  const certs = Certificate.fromPem(readFileSync(path));
  assert.equal(certs.length, 1);
  return certs[0]!;
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function noPrivateKeyIn(text: string): void {
  assert.ok(!text.includes('PRIVATE KEY'), 'output must never carry a private key');
}

describe('svidkit upstream', function () {
  this.timeout(60_000);
  let dir: string;
  const p = (name: string) => join(dir, name);
  const createRoot = (extra: string[] = [], cert = p('root.pem'), key = p('root.key')) =>
    cli(['upstream', 'create-root', '--trust-domain', 'example.org', '--out-cert', cert, '--out-key', key, ...extra]);
  const createIntermediate = (extra: string[] = [], cert = p('ica.pem'), key = p('ica.key')) =>
    cli([
      'upstream',
      'create-intermediate',
      '--root-cert',
      p('root.pem'),
      '--root-key',
      p('root.key'),
      '--out-cert',
      cert,
      '--out-key',
      key,
      ...extra,
    ]);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-upstream-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('create-root', () => {
    it('writes a self-signed CA for the trust domain and its key with mode 0600', async () => {
      const before = Date.now();
      const r = await createRoot();
      assert.equal(r.err, '');
      assert.equal(r.code, 0);
      noPrivateKeyIn(r.out);
      assert.equal(modeOf(p('root.key')), 0o600);

      const root = certOf(p('root.pem'));
      const key = loadPrivateKeyPem(readFileSync(p('root.key')));
      assert.ok(samePublicKey(key, root.publicKey));
      assert.equal(keyTypeOf(root.publicKey), 'ec-p384');
      assert.ok(root.isSelfIssued() && root.isSignedBy(root.publicKey));
      assert.equal(root.subject, 'O=svidkit\nCN=svidkit offline root example.org');
      assert.deepEqual(root.basicConstraints, { cA: true, pathLen: undefined, critical: true });
      assert.deepEqual(root.keyUsage, { bits: KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign, critical: true });
      assert.deepEqual(root.subjectAltName?.uris, ['spiffe://example.org']);
      assert.deepEqual(root.subjectKeyId, keyIdentifier(root.publicKey));
      assert.deepEqual(root.authorityKeyId, root.subjectKeyId);
      // Ten years by default, from about now.
      const tenYears = 87_600 * HOUR;
      assert.ok(Math.abs(root.notAfter.getTime() - (before + tenYears)) < 60_000);
      assert.ok(root.notBefore.getTime() <= before);

      assert.match(r.out, /trust domain: example\.org\n/);
      assert.ok(r.out.includes(`serial:       ${root.serialHex}\n`));
      assert.ok(r.out.includes(`not after:    ${root.notAfter.toISOString()}\n`));
      assert.ok(r.out.includes(`sha256:       ${root.fingerprint256()}\n`));
    });

    it('is a root openssl accepts under -x509_strict', function () {
      requireOpenssl(this);
      const r = openssl(['verify', '-x509_strict', '-CAfile', p('root.pem'), p('root.pem')]);
      assert.equal(r.status, 0, r.output);
    });

    it('takes --key-type, --ttl and --subject-cn', async () => {
      const r = await createRoot(
        ['--key-type', 'rsa-2048', '--ttl', '30d', '--subject-cn', 'Example Corp SPIFFE root'],
        p('rsa-root.pem'),
        p('rsa-root.key'),
      );
      assert.equal(r.code, 0, r.err);
      const root = certOf(p('rsa-root.pem'));
      assert.equal(keyTypeOf(root.publicKey), 'rsa-2048');
      assert.equal(root.subject, 'O=svidkit\nCN=Example Corp SPIFFE root');
      assert.ok(Math.abs(root.notAfter.getTime() - root.notBefore.getTime() - 30 * DAY) < 60_000);
      assert.equal(modeOf(p('rsa-root.key')), 0o600);
    });

    const badDomains: Array<[string, string]> = [
      ['Example.org', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['spiffe://example.org/ns/a', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['', 'ERR_SPIFFEID_TRUST_DOMAIN_MISSING'],
    ];
    for (const [td, code] of badDomains) {
      it(`refuses the trust domain ${JSON.stringify(td)} with exit 1 and ${code}, writing nothing`, async () => {
        const r = await cli([
          'upstream',
          'create-root',
          '--trust-domain',
          td,
          '--out-cert',
          p('bad.pem'),
          '--out-key',
          p('bad.key'),
        ]);
        assertFails(r, 1, code);
        assert.match(r.err, /^error ERR_SPIFFEID_/);
        assert.ok(!existsSync(p('bad.pem')) && !existsSync(p('bad.key')));
      });
    }

    const badValues: Array<[string, string[], string]> = [
      ['a malformed --ttl', ['--ttl', 'ten years'], 'ERR_CONFIG'],
      ['a --ttl below a day', ['--ttl', '1h'], 'ERR_CONFIG'],
      ['an unknown --key-type', ['--key-type', 'dsa-1024'], 'ERR_KEY_UNSUPPORTED'],
      ['an empty --subject-cn', ['--subject-cn', ''], 'ERR_CONFIG'],
    ];
    for (const [name, extra, code] of badValues) {
      it(`refuses ${name} with exit 1 and ${code}`, async () => {
        assertFails(await createRoot(extra, p('bad.pem'), p('bad.key')), 1, code);
        assert.ok(!existsSync(p('bad.pem')) && !existsSync(p('bad.key')));
      });
    }

    it('exits 2 when a required option is missing', async () => {
      const r = await cli(['upstream', 'create-root', '--trust-domain', 'example.org', '--out-cert', p('bad.pem')]);
      assertFails(r, 2, /^error ERR_USAGE: required option '--out-key <file>' not specified\n$/);
    });
  });

  describe('create-intermediate', () => {
    it('signs an intermediate with pathLen 0, AKI = the root SKI and the root trust domain ID', async () => {
      const r = await createIntermediate();
      assert.equal(r.err, '');
      assert.equal(r.code, 0);
      noPrivateKeyIn(r.out);
      assert.equal(modeOf(p('ica.key')), 0o600);

      const root = certOf(p('root.pem'));
      const ica = certOf(p('ica.pem'));
      assert.ok(samePublicKey(loadPrivateKeyPem(readFileSync(p('ica.key'))), ica.publicKey));
      assert.equal(keyTypeOf(ica.publicKey), 'ec-p256');
      assert.ok(ica.isSignedBy(root.publicKey));
      assert.deepEqual(ica.issuerDer, root.subjectDer);
      assert.equal(ica.subject, 'O=svidkit\nCN=svidkit intermediate example.org');
      assert.deepEqual(ica.basicConstraints, { cA: true, pathLen: 0, critical: true });
      assert.deepEqual(ica.keyUsage, { bits: KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign, critical: true });
      assert.deepEqual(ica.subjectAltName?.uris, ['spiffe://example.org']);
      assert.deepEqual(ica.subjectKeyId, keyIdentifier(ica.publicKey));
      assert.deepEqual(ica.authorityKeyId, root.subjectKeyId);
      assert.ok(Math.abs(ica.notAfter.getTime() - ica.notBefore.getTime() - 720 * HOUR) < 60_000);
      assert.ok(ica.notAfter <= root.notAfter);

      assert.ok(r.out.includes(`subject:      O=svidkit, CN=svidkit intermediate example.org\n`));
      assert.ok(r.out.includes(`serial:       ${ica.serialHex}\n`));
      assert.ok(r.out.includes(`not after:    ${ica.notAfter.toISOString()}\n`));
      // The configuration block it prints is valid YAML naming the three files.
      const yaml = parseYaml(r.out.slice(r.out.indexOf('\nca:\n') + 1)) as unknown;
      assert.deepEqual(yaml, {
        ca: { upstream: { cert_file: p('ica.pem'), key_file: p('ica.key'), bundle_file: p('root.pem') } },
      });
    });

    it('passes openssl verify -x509_strict against the root', function () {
      requireOpenssl(this);
      const r = openssl(['verify', '-x509_strict', '-CAfile', p('root.pem'), p('ica.pem')]);
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /ica\.pem: OK/);
    });

    it("caps notAfter at the root's notAfter and takes --path-len and --key-type", async function () {
      const short = (n: string) => p(`short-${n}`);
      assert.equal((await createRoot(['--ttl', '48h'], short('root.pem'), short('root.key'))).code, 0);
      const r = await cli([
        'upstream',
        'create-intermediate',
        '--root-cert',
        short('root.pem'),
        '--root-key',
        short('root.key'),
        '--out-cert',
        short('ica.pem'),
        '--out-key',
        short('ica.key'),
        '--ttl',
        '720h',
        '--path-len',
        '1',
        '--key-type',
        'ec-p384',
      ]);
      assert.equal(r.code, 0, r.err);
      const root = certOf(short('root.pem'));
      const ica = certOf(short('ica.pem'));
      assert.equal(ica.notAfter.getTime(), root.notAfter.getTime());
      assert.ok(ica.notBefore >= root.notBefore);
      assert.equal(ica.basicConstraints?.pathLen, 1);
      assert.equal(keyTypeOf(ica.publicKey), 'ec-p384');
      assert.match(r.out, /not after: {4}\S+ \(capped at the root's notAfter\)\n/);
      requireOpenssl(this);
      const v = openssl(['verify', '-x509_strict', '-CAfile', short('root.pem'), short('ica.pem')]);
      assert.equal(v.status, 0, v.output);
    });

    it('refuses a root key that does not belong to the root with exit 1 and ERR_X509SVID_KEY_MISMATCH', async () => {
      writeFileSync(p('other.key'), privateKeyToPem(generateKeyPair('ec-p384').privateKey), { mode: 0o600 });
      const r = await cli([
        'upstream',
        'create-intermediate',
        '--root-cert',
        p('root.pem'),
        '--root-key',
        p('other.key'),
        '--out-cert',
        p('bad.pem'),
        '--out-key',
        p('bad.key'),
      ]);
      assertFails(r, 1, 'ERR_X509SVID_KEY_MISMATCH');
      assert.ok(!existsSync(p('bad.pem')) && !existsSync(p('bad.key')));
    });

    it('refuses an intermediate given as the root (not self-signed)', async () => {
      const r = await cli([
        'upstream',
        'create-intermediate',
        '--root-cert',
        p('ica.pem'),
        '--root-key',
        p('ica.key'),
        '--out-cert',
        p('bad.pem'),
        '--out-key',
        p('bad.key'),
      ]);
      assertFails(r, 1, 'ERR_CA_UPSTREAM_BUNDLE');
    });

    it('refuses a malformed --path-len with exit 1 and a missing --root-key with exit 2', async () => {
      assertFails(await createIntermediate(['--path-len', '-1'], p('bad.pem'), p('bad.key')), 1, 'ERR_CONFIG');
      const r = await cli([
        'upstream',
        'create-intermediate',
        '--root-cert',
        p('root.pem'),
        '--out-cert',
        'x',
        '--out-key',
        'y',
      ]);
      assertFails(r, 2, 'ERR_USAGE');
    });
  });

  describe('existing files', () => {
    it('are never overwritten without --force (ERR_IO), and nothing is written when one output exists', async () => {
      const rootPem = readFileSync(p('root.pem'));
      const rootKey = readFileSync(p('root.key'));
      assertFails(
        await createRoot(),
        1,
        /^error ERR_IO: io: \S+root\.pem exists; refusing to overwrite it without --force\n$/,
      );
      assert.deepEqual(readFileSync(p('root.pem')), rootPem);
      assert.deepEqual(readFileSync(p('root.key')), rootKey);

      const icaPem = readFileSync(p('ica.pem'));
      assertFails(await createIntermediate(), 1, 'ERR_IO');
      assert.deepEqual(readFileSync(p('ica.pem')), icaPem);

      // Only the key exists: the certificate is not written either.
      writeFileSync(p('lonely.key'), 'placeholder');
      assertFails(await createIntermediate([], p('lonely.pem'), p('lonely.key')), 1, 'ERR_IO');
      assert.ok(!existsSync(p('lonely.pem')));
      assert.equal(readFileSync(p('lonely.key'), 'utf8'), 'placeholder');
    });

    it('are replaced with --force, the key again 0600, a symlink replaced rather than followed', async () => {
      const cert = p('forced.pem');
      const key = p('forced.key');
      assert.equal((await createIntermediate([], cert, key)).code, 0);
      const first = certOf(cert);
      chmodSync(key, 0o644);
      assert.equal((await createIntermediate(['--force'], cert, key)).code, 0);
      assert.notEqual(certOf(cert).serialHex, first.serialHex);
      assert.equal(modeOf(key), 0o600);
      assert.ok(samePublicKey(loadPrivateKeyPem(readFileSync(key)), certOf(cert).publicKey));

      writeFileSync(p('victim.txt'), 'untouched');
      symlinkSync(p('victim.txt'), p('link.key'));
      assert.equal((await createIntermediate(['--force'], cert, p('link.key'))).code, 0);
      assert.equal(readFileSync(p('victim.txt'), 'utf8'), 'untouched');
      assert.ok(!lstatSync(p('link.key')).isSymbolicLink());
      assert.equal(modeOf(p('link.key')), 0o600);
    });

    it('never lets an output replace the root key, even with --force (exit 2)', async () => {
      const rootKey = readFileSync(p('root.key'));
      assertFails(await createIntermediate(['--force'], p('x.pem'), p('root.key')), 2, 'ERR_USAGE');
      assert.deepEqual(readFileSync(p('root.key')), rootKey);
      assertFails(await createRoot(['--force'], p('same'), p('same')), 2, 'ERR_USAGE');
    });
  });

  describe('svidkit-ca in upstream mode with these files', () => {
    let caDir: string;
    let ca: RunningCa | undefined;
    let upstream: { cert_file: string; key_file: string; bundle_file: string };
    let logText = '';
    const logStream = new PassThrough();
    logStream.on('data', (d: Buffer) => {
      logText += d.toString();
    });
    const q = (name: string) => join(caDir, name);

    before(async () => {
      caDir = mkdtempSync(join(tmpdir(), 'svidkit-upstream-ca-'));
      const root = await cli([
        'upstream',
        'create-root',
        '--trust-domain',
        'example.org',
        '--out-cert',
        q('root.pem'),
        '--out-key',
        q('root.key'),
      ]);
      assert.equal(root.code, 0, root.err);
      const ica = await cli([
        'upstream',
        'create-intermediate',
        '--root-cert',
        q('root.pem'),
        '--root-key',
        q('root.key'),
        '--out-cert',
        q('ica.pem'),
        '--out-key',
        q('ica.key'),
      ]);
      assert.equal(ica.code, 0, ica.err);
      // The configuration lines the command printed, as an operator would paste them.
      upstream = (parseYaml(ica.out.slice(ica.out.indexOf('\nca:\n') + 1)) as { ca: { upstream: typeof upstream } }).ca
        .upstream;
      const config = parseCaConfig(
        {
          trust_domain: 'example.org',
          data_dir: q('ca'),
          listen: { port: 0 },
          observability: { port: 0 },
          ca: { upstream },
        },
        caDir,
      );
      ca = await runCa(config, { logger: createLogger({ name: 'svidkit-ca', destination: logStream }) });
    });

    after(async () => {
      await ca?.close(1000);
      rmSync(caDir, { recursive: true, force: true });
    });

    it('starts with the offline root as its whole X.509 bundle', () => {
      assert.deepEqual(upstream, { cert_file: q('ica.pem'), key_file: q('ica.key'), bundle_file: q('root.pem') });
      assert.equal(ca!.context.keys.mode, 'upstream');
      const authorities = ca!.context.keys.bundle().x509.authorities();
      assert.deepEqual(
        authorities.map((c) => c.der),
        [certOf(q('root.pem')).der],
      );
    });

    it('issues a workload SVID that verifies with svidkit and openssl against the root', function () {
      const root = certOf(q('root.pem'));
      const ica = certOf(q('ica.pem'));
      const id = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
      const pair = generateKeyPair('ec-p256');
      const { issuer, chain } = ca!.context.issuer();
      assert.deepEqual(chain, [ica.der]);
      const issued = issuer.issue({
        id,
        csrDer: buildCsr({ key: pair.privateKey, uris: [id.toString()] }),
        now: new Date(),
        ttlMs: 10 * 60_000,
      });
      const leaf = Certificate.fromDer(issued.der);
      assert.deepEqual(leaf.authorityKeyId, ica.subjectKeyId);
      assert.ok(leaf.notAfter <= ica.notAfter);

      const verified = verify([leaf, ...chain.map((d) => Certificate.fromDer(d))], ca!.context.keys.bundle().x509);
      assert.equal(verified.id.toString(), id.toString());
      assert.deepEqual(
        verified.chain.map((c) => c.fingerprint256()),
        [leaf, ica, root].map((c) => c.fingerprint256()),
      );

      requireOpenssl(this);
      writeFileSync(q('leaf.pem'), leaf.toPem());
      const r = openssl([
        'verify',
        '-x509_strict',
        '-CAfile',
        q('root.pem'),
        '-untrusted',
        q('ica.pem'),
        q('leaf.pem'),
      ]);
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /leaf\.pem: OK/);
    });

    it('never logs a private key', () => {
      assert.ok(logText.includes('svidkit-ca ready'));
      noPrivateKeyIn(logText);
    });
  });
});
