import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import { mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { SpiffeId } from '../lib/spiffeid/index.js';
import { T0, TestCa } from './helpers/ca.js';
import { runCli } from './helpers/cli.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'svidkit.js');
const AT = T0.toISOString();

const cli = runCli;

describe('svidkit CLI', () => {
  let dir: string;
  const ca = TestCa.root();
  const other = TestCa.root({ trustDomain: 'other.org' });
  const inter = ca.intermediate();
  const svid = inter.svid('/ns/prod/sa/web');
  const jwtKeys = generateKeyPair('ec-p256');
  const files: Record<string, string> = {};

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidkit-cli-'));
    const put = (name: string, content: string) => {
      files[name] = join(dir, name);
      writeFileSync(files[name], content);
    };
    put('chain.pem', svid.certificatesPem());
    put('roots.pem', ca.cert.toPem());
    put('other-roots.pem', other.cert.toPem());
    const spiffe = new SpiffeBundle(ca.trustDomain, {
      x509: ca.bundle(),
      jwt: new JwtBundle(ca.trustDomain, [importJwtAuthority('k1', jwtKeys.publicKey.export({ format: 'jwk' }))]),
      sequence: 3,
    });
    put('bundle.spiffe.json', spiffe.marshal());
    put('set.json', JSON.stringify(new BundleSet([spiffe, other.bundle()]).toJson()));
    put('jwks.json', JSON.stringify({ keys: [{ ...jwtKeys.publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
    put('garbage.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('reading input files', () => {
    it('refuses a FIFO at once instead of waiting for a writer, and a directory', async () => {
      const fifo = join(dir, 'token.fifo');
      execFileSync('mkfifo', [fifo]);
      for (const path of [fifo, dir]) {
        const r = await cli(['jwt', 'verify', '--token', path, '--bundle', files['set.json']!, '--audience', 'api']);
        assert.equal(r.code, 1, r.err);
        assert.match(r.err, /ERR_IO: .*is not a regular file/);
      }
    });
  });

  describe('id parse', () => {
    it('prints the normalized ID and exits 0', async () => {
      assert.deepEqual(await cli(['id', 'parse', 'spiffe://example.org/ns/a']), {
        code: 0,
        out: 'spiffe://example.org/ns/a\n',
        err: '',
      });
    });
    it('prints JSON with --json', async () => {
      const r = await cli(['id', 'parse', '--json', 'spiffe://example.org/ns/a']);
      assert.deepEqual(JSON.parse(r.out), {
        id: 'spiffe://example.org/ns/a',
        trustDomain: 'example.org',
        path: '/ns/a',
      });
    });
    const bad: Array<[string, string]> = [
      ['SPIFFE://example.org/a', 'ERR_SPIFFEID_SCHEME'],
      ['spiffe://Example.org/a', 'ERR_SPIFFEID_TRUST_DOMAIN_CHAR'],
      ['spiffe://example.org/a/', 'ERR_SPIFFEID_PATH_TRAILING_SLASH'],
      ['spiffe://example.org/../a', 'ERR_SPIFFEID_PATH_DOT_SEGMENT'],
      ['', 'ERR_SPIFFEID_EMPTY'],
    ];
    for (const [input, code] of bad) {
      it(`refuses ${JSON.stringify(input)} with exit 1 and ${code}`, async () => {
        const r = await cli(['id', 'parse', input]);
        assert.equal(r.code, 1);
        assert.equal(r.out, '');
        assert.match(r.err, new RegExp(`^error ${code}: spiffeid: [^\\n]+\\n$`));
      });
    }
  });

  describe('svid verify', () => {
    for (const bundle of ['roots.pem', 'bundle.spiffe.json', 'set.json']) {
      it(`verifies against ${bundle}`, async () => {
        const r = await cli(['svid', 'verify', '--svid', files['chain.pem']!, '--bundle', files[bundle]!, '--at', AT]);
        assert.equal(r.err, '');
        assert.equal(r.code, 0);
        assert.equal(r.out, `spiffe://example.org/ns/prod/sa/web\nexpires ${svid.expiresAt.toISOString()}\n`);
      });
    }
    const failures: Array<[string, string[], number, string]> = [
      ['an expired SVID', ['--at', '2027-01-01T00:00:00Z'], 1, 'ERR_X509SVID_EXPIRED'],
      [
        'a bundle of another trust domain',
        ['--bundle', 'other-roots.pem', '--trust-domain', 'other.org'],
        1,
        'ERR_X509SVID_NO_BUNDLE',
      ],
      ["another domain's roots claimed as ours", ['--bundle', 'other-roots.pem'], 1, 'ERR_BUNDLE_TRUST_DOMAIN'],
      ['a missing file', ['--svid', 'missing.pem'], 1, 'ERR_IO'],
      ['a garbage certificate', ['--svid', 'garbage.pem'], 1, 'ERR_X509_MALFORMED'],
      ['a bad --at', ['--at', 'yesterday'], 2, 'ERR_USAGE'],
    ];
    for (const [name, extra, exit, code] of failures) {
      it(`refuses ${name} with exit ${exit} and ${code}`, async () => {
        const opts: Record<string, string> = { '--svid': 'chain.pem', '--bundle': 'roots.pem', '--at': AT };
        for (let i = 0; i < extra.length; i += 2) opts[extra[i]!] = extra[i + 1]!;
        const args = ['svid', 'verify'];
        for (const [k, v] of Object.entries(opts)) args.push(k, k === '--svid' || k === '--bundle' ? join(dir, v) : v);
        const r = await cli(args);
        assert.equal(r.code, exit, r.err);
        assert.equal(r.out, '');
        assert.match(r.err, new RegExp(`^error ${code}: [^\\n]+\\n$`));
      });
    }
    it('refuses a missing required option with exit 2', async () => {
      const r = await cli(['svid', 'verify', '--svid', files['chain.pem']!]);
      assert.equal(r.code, 2);
      assert.match(r.err, /^error ERR_USAGE: .*--bundle/);
    });
  });

  describe('svid inspect', () => {
    it('prints a human summary', async () => {
      const r = await cli(['svid', 'inspect', files['chain.pem']!]);
      assert.equal(r.code, 0);
      assert.match(r.out, /spiffe id:\s+spiffe:\/\/example\.org\/ns\/prod\/sa\/web/);
      assert.match(r.out, new RegExp(`serial:\\s+${svid.leaf.serialHex}`));
      assert.match(r.out, /key type:\s+ec-p256/);
      assert.match(r.out, /issuer:\s+CN=intermediate/);
    });
    it('prints JSON with --json', async () => {
      const r = await cli(['svid', 'inspect', '--json', files['chain.pem']!]);
      const doc = JSON.parse(r.out) as { certificates: Array<Record<string, unknown>> };
      assert.equal(doc.certificates.length, 2);
      assert.equal(doc.certificates[0]!['spiffeId'], 'spiffe://example.org/ns/prod/sa/web');
      assert.equal(doc.certificates[0]!['notAfter'], svid.expiresAt.toISOString());
      assert.equal(doc.certificates[1]!['isCa'], true);
    });
    it('refuses a non-PEM file', async () => {
      const r = await cli(['svid', 'inspect', files['jwks.json']!]);
      assert.equal(r.code, 1);
      assert.match(r.err, /^error ERR_X509SVID_NO_CERTIFICATES: /);
    });
  });

  describe('jwt verify', () => {
    const id = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
    const mint = (audience: string) =>
      mintJwtSvid({ id, audience, key: jwtKeys.privateKey, kid: 'k1', clock: () => T0, ttlSeconds: 300 });

    for (const bundle of ['bundle.spiffe.json', 'set.json', 'jwks.json']) {
      it(`prints the subject with ${bundle}`, async () => {
        writeFileSync(join(dir, 'token'), (await mint('api')) + '\n');
        const r = await cli([
          'jwt',
          'verify',
          '--token',
          join(dir, 'token'),
          '--bundle',
          files[bundle]!,
          '--audience',
          'api',
          '--at',
          AT,
        ]);
        assert.equal(r.err, '');
        assert.deepEqual([r.code, r.out], [0, `${id}\n`]);
      });
    }
    it('reads the token from stdin with -', async () => {
      const r = await cli(
        ['jwt', 'verify', '--token', '-', '--bundle', files['set.json']!, '--audience', 'api', '--at', AT],
        await mint('api'),
      );
      assert.deepEqual([r.code, r.out], [0, `${id}\n`]);
    });
    it('refuses another audience with exit 1', async () => {
      const token = await mint('api');
      const r = await cli(
        ['jwt', 'verify', '--token', '-', '--bundle', files['set.json']!, '--audience', 'db', '--at', AT],
        token,
      );
      assert.equal(r.code, 1);
      assert.match(r.err, /^error ERR_JWTSVID_AUDIENCE: /);
      assert.ok(!r.err.includes(token), 'the token must never be printed');
    });
    it('refuses an expired token with exit 1', async () => {
      const r = await cli(
        [
          'jwt',
          'verify',
          '--token',
          '-',
          '--bundle',
          files['set.json']!,
          '--audience',
          'api',
          '--at',
          '2026-06-01T13:00:00Z',
        ],
        await mint('api'),
      );
      assert.equal(r.code, 1);
      assert.match(r.err, /^error ERR_JWTSVID_EXPIRED: /);
    });
    it('refuses garbage with exit 1', async () => {
      const r = await cli(
        ['jwt', 'verify', '--token', '-', '--bundle', files['set.json']!, '--audience', 'api'],
        'not a token',
      );
      assert.equal(r.code, 1);
      assert.match(r.err, /^error ERR_JWTSVID_MALFORMED: /);
    });
  });

  describe('the installed binary', () => {
    it('exits 0 and 1 with the documented output', () => {
      assert.equal(
        execFileSync(process.execPath, [CLI, 'id', 'parse', 'spiffe://example.org/x'], { encoding: 'utf8' }),
        'spiffe://example.org/x\n',
      );
      const bad = spawnSync(process.execPath, [CLI, 'id', 'parse', 'spiffe://example.org/x/'], {
        encoding: 'utf8',
      });
      assert.equal(bad.status, 1);
      assert.equal(bad.stdout, '');
      assert.match(
        bad.stderr,
        /^error ERR_SPIFFEID_PATH_TRAILING_SLASH: spiffeid: path cannot have a trailing slash\n$/,
      );
    });
    it('exits 2 on an unknown command without a stack trace', () => {
      const r = spawnSync(process.execPath, [CLI, 'frobnicate'], { encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^error ERR_USAGE: unknown command 'frobnicate'\n$/);
    });
  });
});
