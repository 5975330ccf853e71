/**
 * Tests of lib/agent/writer.ts: the ..data symlink layout, the content of every file, the swap and
 * clean-up of versions, name and audience checks, refusals that leave the previous version byte for
 * byte, write failures (EACCES, ENOSPC, chown) that do the same, and readers that never see a
 * certificate of one version with the key of another while the files are rewritten.
 */
import { strict as assert } from 'node:assert';
import type { KeyObject } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readWorkloadFiles } from '../lib/agent/writer-read.js';
import { removeWorkloadFiles, type WorkloadFiles, type WriteOptions, writeWorkloadFiles } from '../lib/agent/writer.js';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import {
  DEFAULT_FILE_NAMES,
  type FileNames,
  MAX_JWT_AUDIENCES,
  resolveFileNames,
  tokenFileName,
} from '../lib/layout/index.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import { X509Svid } from '../lib/x509svid/index.js';
import { faultyFs, snapshot, tempDir } from './helpers/agent-fs.js';
import { T0, TestCa } from './helpers/ca.js';
import { craft } from './helpers/jwt.js';
import { rejectsCode } from './helpers/assert.js';

const HOUR = 3600_000;
const isRoot = process.getuid?.() === 0;
const VERSION_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[A-Za-z0-9]{6}$/;

/** The errno code of an error's cause. */
function causeCode(err: Error): unknown {
  return (err.cause as NodeJS.ErrnoException | undefined)?.code;
}

/** The `..`-prefixed directories of `dir`: version directories, current or leftover. */
async function versionDirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    if (name.startsWith('..') && (await lstat(join(dir, name))).isDirectory()) out.push(name);
  }
  return out.sort();
}

describe('agent writer', function () {
  const td = TrustDomain.parse('example.org');
  const otherTd = TrustDomain.parse('other.org');
  let root: TestCa;
  let inter: TestCa;
  let other: TestCa;
  let jwtKey: KeyObject;
  let bundles: BundleSet;
  let svidA: X509Svid;
  let svidB: X509Svid;
  let tmp: string;
  let dir: string;

  before(function () {
    root = TestCa.root();
    inter = root.intermediate();
    other = TestCa.root({ trustDomain: 'other.org' });
    const jwtPair = generateKeyPair();
    jwtKey = jwtPair.privateKey;
    const otherJwt = generateKeyPair().publicKey;
    bundles = new BundleSet([
      new SpiffeBundle(td, {
        x509: root.bundle(),
        jwt: new JwtBundle(td, [importJwtAuthority('k1', jwtPair.publicKey.export({ format: 'jwk' }))]),
        sequence: 7,
      }),
      new SpiffeBundle(otherTd, {
        x509: other.bundle(),
        jwt: new JwtBundle(otherTd, [importJwtAuthority('o1', otherJwt.export({ format: 'jwk' }))]),
      }),
    ]);
    svidA = inter.svid('/ns/default/sa/web');
    svidB = inter.svid('/ns/default/sa/web');
  });

  beforeEach(async function () {
    tmp = await tempDir();
    dir = join(tmp, 'out');
  });

  afterEach(async function () {
    await chmod(tmp, 0o755).catch(() => undefined);
    await chmod(dir, 0o755).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  });

  const tokenCache = new Map<string, string>();
  /** A JWT-SVID for the workload, signed with the trust domain's JWT key; one per audience (ECDSA is randomized). */
  function token(aud: string): string {
    let t = tokenCache.get(aud);
    if (t === undefined) tokenCache.set(aud, (t = mint(aud)));
    return t;
  }

  function mint(aud: string): string {
    return craft(
      { alg: 'ES256', kid: 'k1', typ: 'JWT' },
      { sub: svidA.id.toString(), aud: [aud], exp: Math.floor(T0.getTime() / 1000) + 300 },
      jwtKey,
    );
  }

  function files(svid: X509Svid, extra: Partial<WorkloadFiles> = {}): WorkloadFiles {
    return { svid, bundles, jwtTokens: new Map(), version: 1, ...extra };
  }

  function opts(extra: Partial<WriteOptions> = {}): WriteOptions {
    return { dir, at: T0, clock: () => T0, ...extra };
  }

  describe('layout', function () {
    it('writes a hidden version directory, a relative ..data link and relative stable links', async function () {
      const tokens = new Map([['https://api.example.org', token('https://api.example.org')]]);
      const { versionDir } = await writeWorkloadFiles(files(svidA, { jwtTokens: tokens }), opts());

      const target = await readlink(join(dir, '..data'));
      assert.match(target, VERSION_DIR);
      assert.ok(target.startsWith('..2026_06_01_12_00_00.'), `version dir ${target} is not named after the clock`);
      assert.equal(versionDir, join(dir, target));
      assert.deepEqual(await versionDirs(dir), [target]);

      const entries = (await readdir(dir)).sort();
      assert.deepEqual(entries, ['..data', target, ...Object.values(DEFAULT_FILE_NAMES)].sort());
      for (const name of Object.values(DEFAULT_FILE_NAMES)) {
        assert.ok((await lstat(join(dir, name))).isSymbolicLink(), `${name} is not a symlink`);
        assert.equal(await readlink(join(dir, name)), `..data/${name}`);
      }

      const modes: Record<string, number> = {
        'svid.pem': 0o644,
        'svid_key.pem': 0o600,
        'svid_bundle.pem': 0o644,
        'bundle.spiffe.json': 0o644,
        'jwt_bundle.json': 0o644,
        'meta.json': 0o644,
        'jwt/https___api.example.org.token': 0o600,
        jwt: 0o755,
        '.': 0o755,
      };
      for (const [name, mode] of Object.entries(modes)) {
        const st = await lstat(join(versionDir, name));
        assert.ok(!st.isSymbolicLink(), `${name} in the version dir is a symlink`);
        assert.equal((st.mode & 0o777).toString(8), mode.toString(8), `mode of ${name}`);
      }
    });

    it('honours certMode and keyMode whatever the umask', async function () {
      const old = process.umask(0o077);
      try {
        const tokens = new Map([['a', token('a')]]);
        const { versionDir } = await writeWorkloadFiles(
          files(svidA, { jwtTokens: tokens }),
          opts({ certMode: 0o640, keyMode: 0o400 }),
        );
        assert.equal((await stat(join(versionDir, 'svid.pem'))).mode & 0o777, 0o640);
        assert.equal((await stat(join(versionDir, 'svid_key.pem'))).mode & 0o777, 0o400);
        assert.equal((await stat(join(versionDir, 'jwt/a.token'))).mode & 0o777, 0o400);
        assert.equal((await stat(versionDir)).mode & 0o777, 0o755);
      } finally {
        process.umask(old);
      }
    });
  });

  describe('content', function () {
    it('writes the chain, key, own roots, bundle set, JWT bundles, tokens and meta', async function () {
      const tokens = new Map([
        ['spiffe://example.org/db', token('spiffe://example.org/db')],
        ['https://api.example.org/v1', token('https://api.example.org/v1')],
      ]);
      const written = new Date(T0.getTime() + 5000);
      await writeWorkloadFiles(files(svidA, { jwtTokens: tokens, version: 42 }), opts({ clock: () => written }));
      const read = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');

      const svidPem = await read('svid.pem');
      const parsed = X509Svid.parse(svidPem, await read('svid_key.pem'));
      assert.equal(parsed.id.toString(), 'spiffe://example.org/ns/default/sa/web');
      assert.equal(parsed.leaf.serialHex, svidA.leaf.serialHex);
      assert.equal(parsed.certificates.length, 2, 'leaf and intermediate');
      assert.equal(svidPem, svidA.certificatesPem());
      assert.equal(await read('svid_key.pem'), svidA.privateKeyPem());

      assert.equal(await read('svid_bundle.pem'), root.bundle().toPem(), 'only the own trust domain roots');

      const set = BundleSet.parse(await read('bundle.spiffe.json'));
      assert.equal(set.size, 2);
      assert.ok(set.get(td)!.x509.hasAuthority(root.cert));
      assert.ok(set.get(otherTd)!.x509.hasAuthority(other.cert));
      assert.equal(set.get(td)!.sequence, 7);
      assert.deepEqual(JSON.parse(await read('bundle.spiffe.json')), bundles.toJson());

      const jwks = JSON.parse(await read('jwt_bundle.json')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(jwks).sort(), ['example.org', 'other.org']);
      assert.deepEqual(jwks['example.org'], bundles.get(td)!.jwt.toJwks());
      assert.equal(JwtBundle.parse(td, JSON.stringify(jwks['example.org'])).findAuthority('k1')?.kid, 'k1');
      assert.ok(JwtBundle.parse(otherTd, JSON.stringify(jwks['other.org'])).findAuthority('o1'));

      assert.deepEqual((await readdir(join(dir, 'jwt'))).sort(), [
        'https___api.example.org_v1.token',
        'spiffe___example.org_db.token',
      ]);
      assert.equal(await read('jwt/spiffe___example.org_db.token'), `${token('spiffe://example.org/db')}\n`);

      assert.deepEqual(JSON.parse(await read('meta.json')), {
        spiffe_id: 'spiffe://example.org/ns/default/sa/web',
        serial: svidA.leaf.serialHex,
        not_after: svidA.expiresAt.toISOString(),
        version: 42,
        written_at: written.toISOString(),
      });

      const snap = await readWorkloadFiles(dir);
      assert.equal(snap.svidPem, svidPem);
      assert.equal(snap.keyPem, svidA.privateKeyPem());
      assert.equal(snap.bundlePem, root.bundle().toPem());
      assert.equal(snap.meta.version, 42);
      assert.equal(snap.versionDir, join(dir, await readlink(join(dir, '..data'))));
    });

    it('writes an empty jwt directory when there are no tokens', async function () {
      await writeWorkloadFiles(files(svidA), opts());
      assert.deepEqual(await readdir(join(dir, 'jwt')), []);
    });
  });

  describe('versions', function () {
    it('swaps ..data on a second write and removes the old version directory', async function () {
      const first = await writeWorkloadFiles(files(svidA, { jwtTokens: new Map([['a', token('a')]]) }), opts());
      const linksBefore = await Promise.all(Object.values(DEFAULT_FILE_NAMES).map((n) => lstat(join(dir, n))));
      const second = await writeWorkloadFiles(files(svidB, { version: 2 }), opts());

      assert.notEqual(second.versionDir, first.versionDir);
      assert.equal(await readlink(join(dir, '..data')), basename(second.versionDir));
      assert.deepEqual(await versionDirs(dir), [basename(second.versionDir)]);
      // The stable links were right already and are left alone (same inodes).
      const linksAfter = await Promise.all(Object.values(DEFAULT_FILE_NAMES).map((n) => lstat(join(dir, n))));
      assert.deepEqual(
        linksAfter.map((s) => s.ino),
        linksBefore.map((s) => s.ino),
      );
      const snap = await readWorkloadFiles(dir);
      assert.equal(snap.meta.serial, svidB.leaf.serialHex);
      assert.equal(snap.meta.version, 2);
      X509Svid.parse(snap.svidPem, snap.keyPem);
      assert.deepEqual(await readdir(join(dir, 'jwt')), [], 'the token of the old version is gone');
    });

    it('serializes concurrent writes to one directory', async function () {
      const results = await Promise.all(
        [1, 2, 3, 4, 5].map((v) => writeWorkloadFiles(files(v % 2 ? svidA : svidB, { version: v }), opts())),
      );
      const last = results[4]!.versionDir;
      assert.equal(await readlink(join(dir, '..data')), basename(last));
      assert.deepEqual(await versionDirs(dir), [basename(last)]);
      assert.equal((await readWorkloadFiles(dir)).meta.version, 5);
    });

    it('cleans up what an interrupted write left behind', async function () {
      await writeWorkloadFiles(files(svidA), opts());
      const debris = join(dir, '..2020_01_01_00_00_00.abcdef');
      await mkdir(debris);
      await writeFile(join(debris, 'svid.pem'), 'half');
      await symlink('..2020_01_01_00_00_00.abcdef', join(dir, '..data_tmp'));
      await symlink('..data/gone', join(dir, '..link_tmp'));
      const { versionDir } = await writeWorkloadFiles(files(svidB, { version: 2 }), opts());
      const hidden = (await readdir(dir)).filter((n) => n.startsWith('..'));
      assert.deepEqual(hidden.sort(), ['..data', basename(versionDir)].sort());
    });

    it('replaces a regular file at a stable name (a non-atomic writer before us) with a link', async function () {
      await mkdir(dir);
      await writeFile(join(dir, 'svid.pem'), 'old, written in place');
      await writeWorkloadFiles(files(svidA), opts());
      assert.equal(await readlink(join(dir, 'svid.pem')), '..data/svid.pem');
    });

    it('refuses, before writing anything, a directory where a link must go', async function () {
      await writeWorkloadFiles(files(svidA), opts());
      await rm(join(dir, 'jwt'));
      await mkdir(join(dir, 'jwt'));
      const before = await snapshot(dir);
      const err = await rejectsCode(writeWorkloadFiles(files(svidB), opts()), 'ERR_AGENT_WRITE');
      assert.match(err.message, /"jwt" is a directory/);
      assert.deepEqual(await snapshot(dir), before);
    });
  });

  describe('file names', function () {
    const custom: FileNames = {
      svid: 'tls.crt',
      key: 'tls.key',
      bundle: 'ca.crt',
      spiffeBundle: 'bundles.json',
      jwtBundle: 'jwks.json',
      jwtDir: 'tokens',
      meta: 'status.json',
    };

    it('writes custom names, and drops them when the names change back', async function () {
      await mkdir(dir);
      await writeFile(join(dir, 'notes.txt'), 'not ours');
      await symlink('notes.txt', join(dir, 'user-link'));
      const tokens = new Map([['a', token('a')]]);
      await writeWorkloadFiles(files(svidA, { jwtTokens: tokens }), opts({ names: custom }));
      for (const name of Object.values(custom)) assert.equal(await readlink(join(dir, name)), `..data/${name}`);
      assert.equal(await readFile(join(dir, 'tokens/a.token'), 'utf8'), `${token('a')}\n`);
      const snap = await readWorkloadFiles(dir, custom);
      X509Svid.parse(snap.svidPem, snap.keyPem);
      assert.equal(snap.bundlePem, root.bundle().toPem());

      await writeWorkloadFiles(files(svidB, { jwtTokens: tokens }), opts());
      const names = (await readdir(dir)).filter((n) => !n.startsWith('..')).sort();
      assert.deepEqual(names, [...Object.values(DEFAULT_FILE_NAMES), 'notes.txt', 'user-link'].sort());
      assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'not ours');
      assert.equal(await readlink(join(dir, 'user-link')), 'notes.txt');
    });

    it('merges partial names with the defaults', function () {
      assert.deepEqual(resolveFileNames({ key: 'key.pem' }), { ...DEFAULT_FILE_NAMES, key: 'key.pem' });
      assert.deepEqual(resolveFileNames({ key: undefined }), DEFAULT_FILE_NAMES);
    });

    const bad: [string, Record<string, unknown>][] = [
      ['empty', { svid: '' }],
      ['slash', { svid: 'certs/svid.pem' }],
      ['absolute', { key: '/etc/passwd' }],
      ['dot', { bundle: '.' }],
      ['dot-dot', { meta: '..' }],
      ['..-prefixed', { jwtDir: '..data' }],
      ['..-prefixed name', { jwtBundle: '..x.json' }],
      ['NUL', { svid: 'a\0b' }],
      ['256 bytes', { svid: 'x'.repeat(256) }],
      ['256 bytes in UTF-8', { svid: 'é'.repeat(128) }],
      ['not a string', { svid: 42 }],
      ['two fields, one name', { svid: 'same.pem', key: 'same.pem' }],
      ['custom name equal to a default', { meta: 'svid.pem' }],
      ['unknown field', { svidKey: 'k.pem' }],
    ];
    for (const [label, names] of bad) {
      it(`refuses a bad name (${label}) with TypeError before touching the disk`, async function () {
        const run = writeWorkloadFiles(files(svidA), opts({ names: names as Partial<FileNames> }));
        await assert.rejects(run, TypeError);
        await assert.rejects(stat(dir), { code: 'ENOENT' });
      });
    }

    it('accepts a 255-byte name', async function () {
      await writeWorkloadFiles(files(svidA), opts({ names: { meta: 'm'.repeat(255) } }));
      assert.equal(await readlink(join(dir, 'm'.repeat(255))), `..data/${'m'.repeat(255)}`);
    });
  });

  describe('options', function () {
    const bad: [string, Partial<WriteOptions>, Partial<WorkloadFiles>][] = [
      ['certMode above 0o777', { certMode: 0o4755 }, {}],
      ['negative keyMode', { keyMode: -1 }, {}],
      ['negative uid', { uid: -1 }, {}],
      ['fractional gid', { gid: 1.5 }, {}],
      ['empty dir', { dir: '' }, {}],
      ['invalid at', { at: new Date(NaN) }, {}],
      ['negative version', {}, { version: -1 }],
      ['fractional version', {}, { version: 1.5 }],
    ];
    for (const [label, o, f] of bad) {
      it(`refuses ${label} with TypeError`, async function () {
        await assert.rejects(writeWorkloadFiles(files(svidA, f), opts(o)), TypeError);
        await assert.rejects(stat(dir), { code: 'ENOENT' });
      });
    }
  });

  describe('JWT audiences', function () {
    const names: [string, string][] = [
      ['../../etc/passwd', '.._.._etc_passwd.token'],
      ['spiffe://x/../../y', 'spiffe___x_.._.._y.token'],
      ['https://api.example.org:8443/v1?x=1', 'https___api.example.org_8443_v1_x_1.token'],
      ['..', '...token'],
      ['a b\\c', 'a_b_c.token'],
      ['über', '_ber.token'],
      ['\u{1F600}', '_.token'],
      ['plain-Name_1.2', 'plain-Name_1.2.token'],
    ];
    for (const [aud, file] of names) {
      it(`names the token of ${JSON.stringify(aud)} ${file}`, function () {
        assert.equal(tokenFileName(aud), file);
      });
    }

    it('keeps every token file inside the jwt directory of the version', async function () {
      const tokens = new Map(names.map(([aud]) => [aud, token(aud)]));
      const { versionDir } = await writeWorkloadFiles(files(svidA, { jwtTokens: tokens }), opts());
      assert.deepEqual(await readdir(tmp), ['out'], 'nothing written next to the output dir');
      assert.deepEqual((await readdir(join(dir, 'jwt'))).sort(), names.map(([, f]) => f).sort());
      for (const [aud, file] of names) {
        const real = await realpath(join(dir, 'jwt', file));
        assert.equal(dirname(real), join(await realpath(versionDir), 'jwt'));
        assert.equal(await readFile(real, 'utf8'), `${token(aud)}\n`);
      }
      const all = Object.keys(await snapshot(tmp));
      const outside = all.filter((p) => p !== 'out' && !p.startsWith('out/'));
      assert.deepEqual(outside, [], 'entries outside the output dir');
      const tokenFiles = all.filter((p) => p.endsWith('.token'));
      assert.equal(tokenFiles.length, names.length);
      for (const p of tokenFiles) assert.match(p, /^out\/\.\.[^/]+\/jwt\/[^/]+\.token$/);
    });

    const refused: [string, Map<string, string>][] = [
      [
        'two audiences with one file name',
        new Map([
          ['a/b', 'x.y.z'],
          ['a:b', 'x.y.z'],
        ]),
      ],
      ['an empty audience', new Map([['', 'x.y.z']])],
      ['an audience too long for a file name', new Map([['a'.repeat(250), 'x.y.z']])],
      ['a token that is not a compact JWS', new Map([['a', 'secret-token-value with spaces']])],
      ['a token with a newline', new Map([['a', 'x.y.z\nextra']])],
      ['a token over the size limit', new Map([['a', `${'x'.repeat(20000)}.y.z`]])],
      ['too many audiences', new Map(Array.from({ length: MAX_JWT_AUDIENCES + 1 }, (_, i) => [`a${i}`, 'x.y.z']))],
    ];
    for (const [label, tokens] of refused) {
      it(`refuses ${label} with ERR_AGENT_INVALID_JWT and changes nothing`, async function () {
        await writeWorkloadFiles(files(svidA), opts());
        const before = await snapshot(dir);
        const err = await rejectsCode(
          writeWorkloadFiles(files(svidB, { jwtTokens: tokens }), opts()),
          'ERR_AGENT_INVALID_JWT',
        );
        assert.ok(!err.message.includes('secret-token-value'), 'a token must never appear in a message');
        assert.deepEqual(await snapshot(dir), before);
      });
    }

    it('accepts the longest audience that fits in a file name', async function () {
      const aud = 'a'.repeat(255 - '.token'.length);
      await writeWorkloadFiles(files(svidA, { jwtTokens: new Map([[aud, token(aud)]]) }), opts());
      assert.deepEqual(await readdir(join(dir, 'jwt')), [`${aud}.token`]);
    });
  });

  describe('refusing an SVID', function () {
    const cases: [string, () => { svid: X509Svid; at?: Date }, ErrorCode | undefined][] = [
      [
        'an expired SVID',
        () => ({
          svid: inter.svid('/w', {
            notBefore: new Date(T0.getTime() - 2 * HOUR),
            notAfter: new Date(T0.getTime() - 1000),
          }),
        }),
        'ERR_X509SVID_EXPIRED',
      ],
      [
        'an SVID checked after its expiry',
        () => ({ svid: svidA, at: new Date(T0.getTime() + 2 * HOUR) }),
        'ERR_X509SVID_EXPIRED',
      ],
      [
        'an SVID not yet valid',
        () => ({ svid: svidA, at: new Date(T0.getTime() - 2 * HOUR) }),
        'ERR_X509SVID_NOT_YET_VALID',
      ],
      [
        'a chain from another CA of the same trust domain',
        () => ({ svid: TestCa.root().svid('/w') }),
        'ERR_X509SVID_UNTRUSTED',
      ],
      [
        'a chain of a trust domain without a bundle',
        () => ({ svid: TestCa.root({ trustDomain: 'nobody.org' }).svid('/w') }),
        'ERR_X509SVID_NO_BUNDLE',
      ],
      [
        'a key that does not match the leaf',
        () => ({
          // X509Svid refuses such a pair; a look-alike object shows that the writer checks again.
          svid: {
            id: svidA.id,
            certificates: svidA.certificates,
            leaf: svidA.leaf,
            expiresAt: svidA.expiresAt,
            privateKey: svidB.privateKey,
          } as unknown as X509Svid,
        }),
        undefined,
      ],
    ];
    for (const [label, make, cause] of cases) {
      it(`refuses ${label} with ERR_AGENT_INVALID_SVID and leaves the previous version byte for byte`, async function () {
        await writeWorkloadFiles(files(svidA, { jwtTokens: new Map([['a', token('a')]]) }), opts());
        const before = await snapshot(dir);
        const { svid, at } = make();
        const err = await rejectsCode(
          writeWorkloadFiles(files(svid), opts({ at: at ?? T0 })),
          'ERR_AGENT_INVALID_SVID',
        );
        if (cause) assert.equal((err.cause as SvidkitError).code, cause);
        else assert.match(err.message, /private key does not match/);
        assert.deepEqual(await snapshot(dir), before);
      });
    }

    it('refuses an invalid SVID on the first write without creating the directory', async function () {
      await rejectsCode(writeWorkloadFiles(files(TestCa.root().svid('/w')), opts()), 'ERR_AGENT_INVALID_SVID');
      await assert.rejects(stat(dir), { code: 'ENOENT' });
    });
  });

  describe('write failures', function () {
    async function prepared(): Promise<Record<string, unknown>> {
      await writeWorkloadFiles(
        files(svidA, {
          jwtTokens: new Map([
            ['a', token('a')],
            ['b', token('b')],
          ]),
        }),
        opts(),
      );
      return snapshot(dir);
    }

    it('EACCES on a read-only output directory (non-root)', async function () {
      if (isRoot) this.skip(); // root ignores permission bits; the injected EACCES below covers root
      const before = await prepared();
      await chmod(dir, 0o555);
      const err = await rejectsCode(writeWorkloadFiles(files(svidB), opts()), 'ERR_AGENT_WRITE');
      assert.equal(err.message, `agent: cannot write ${dir}: EACCES`);
      assert.equal(causeCode(err), 'EACCES');
      await chmod(dir, 0o755);
      assert.deepEqual(await snapshot(dir), before);
    });

    it('EACCES when the version directory cannot be created (injected)', async function () {
      const before = await prepared();
      const err = await rejectsCode(
        writeWorkloadFiles(files(svidB), opts(), faultyFs('mkdtemp', 'EACCES')),
        'ERR_AGENT_WRITE',
      );
      assert.equal(err.message, `agent: cannot write ${dir}: EACCES`);
      assert.equal(causeCode(err), 'EACCES');
      assert.deepEqual(await snapshot(dir), before);
    });

    it('ENOTDIR when the output path is a regular file', async function () {
      await writeFile(dir, 'a file');
      const err = await rejectsCode(writeWorkloadFiles(files(svidA), opts()), 'ERR_AGENT_WRITE');
      assert.match(err.message, /: (EEXIST|ENOTDIR)$/);
      assert.equal(await readFile(dir, 'utf8'), 'a file');
    });

    it('ENOSPC halfway through the writes: previous files intact, no leftover version directory', async function () {
      const before = await prepared();
      const tokens = new Map([
        ['a', token('a')],
        ['b', token('b')],
        ['c', token('c')],
      ]);
      const counter = faultyFs('write', 'ENOSPC', Infinity);
      const probe = join(tmp, 'probe');
      await writeWorkloadFiles(files(svidB, { jwtTokens: tokens }), opts({ dir: probe }), counter);
      const total = counter.calls.get('write')!;
      assert.ok(total >= 9, `expected a write per file, saw ${total}`);

      for (const nth of [1, Math.ceil(total / 2), total]) {
        const err = await rejectsCode(
          writeWorkloadFiles(files(svidB, { jwtTokens: tokens }), opts(), faultyFs('write', 'ENOSPC', nth)),
          'ERR_AGENT_WRITE',
        );
        assert.equal(err.message, `agent: cannot write ${dir}: ENOSPC`);
        assert.equal(causeCode(err), 'ENOSPC');
        assert.deepEqual(await snapshot(dir), before, `after a failure at write ${nth}`);
      }
    });

    const faults: [string, Parameters<typeof faultyFs>[0], string][] = [
      ['fsync of a file', 'sync', 'EIO'],
      ['the ..data_tmp symlink', 'symlink', 'EROFS'],
      ['the rename over ..data', 'rename', 'EIO'],
      ['opening a file', 'open', 'EMFILE'],
    ];
    for (const [label, op, code] of faults) {
      it(`${code} at ${label}: previous version untouched`, async function () {
        const before = await prepared();
        const err = await rejectsCode(writeWorkloadFiles(files(svidB), opts(), faultyFs(op, code)), 'ERR_AGENT_WRITE');
        assert.equal(err.message, `agent: cannot write ${dir}: ${code}`);
        assert.deepEqual(await snapshot(dir), before);
      });
    }

    it('a failure after the swap is reported, the new version stays live and the next write repairs', async function () {
      await mkdir(dir);
      // The first symlink is ..data_tmp; the second, a stable name, fails after ..data already moved.
      const err = await rejectsCode(
        writeWorkloadFiles(files(svidA), opts(), faultyFs('symlink', 'ENOSPC', 2)),
        'ERR_AGENT_WRITE',
      );
      assert.equal(err.message, `agent: cannot write ${dir}: ENOSPC`);
      const live = await readWorkloadFiles(dir);
      assert.equal(live.meta.serial, svidA.leaf.serialHex);
      await assert.rejects(lstat(join(dir, 'svid.pem')), { code: 'ENOENT' });
      await writeWorkloadFiles(files(svidB, { version: 2 }), opts());
      for (const name of Object.values(DEFAULT_FILE_NAMES))
        assert.equal(await readlink(join(dir, name)), `..data/${name}`);
      assert.equal((await versionDirs(dir)).length, 1);
    });

    it('a failure on the very first write leaves no ..data and no version directory', async function () {
      await rejectsCode(writeWorkloadFiles(files(svidA), opts(), faultyFs('write', 'ENOSPC', 3)), 'ERR_AGENT_WRITE');
      assert.deepEqual(await readdir(dir), []);
      await rejectsCode(readWorkloadFiles(dir), 'ERR_AGENT_READ');
    });
  });

  describe('ownership', function () {
    it('chowns every file of a version to uid:gid and keeps its directories the agent’s (root)', async function () {
      if (!isRoot) this.skip();
      const { versionDir } = await writeWorkloadFiles(
        files(svidA, { jwtTokens: new Map([['a', token('a')]]) }),
        opts({ uid: 1234, gid: 1234 }),
      );
      const { jwtDir, ...fileNames } = DEFAULT_FILE_NAMES;
      for (const name of [...Object.values(fileNames), `${jwtDir}/a.token`]) {
        const st = await stat(join(versionDir, name));
        assert.deepEqual([st.uid, st.gid], [1234, 1234], name);
      }
      // A directory the workload owned would let it swap entries between the agent's calls.
      for (const name of ['.', jwtDir]) {
        const st = await stat(join(versionDir, name));
        assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [0, 0, 0o755], name);
      }
      assert.equal((await stat(join(versionDir, 'svid_key.pem'))).mode & 0o777, 0o600);
    });

    it('chowns only the group when only gid is given (root)', async function () {
      if (!isRoot) this.skip();
      const { versionDir } = await writeWorkloadFiles(files(svidA), opts({ gid: 4321 }));
      const st = await stat(join(versionDir, 'svid_key.pem'));
      assert.deepEqual([st.uid, st.gid], [0, 4321]);
    });

    it('reports a chown the process may not do as ERR_AGENT_WRITE (non-root)', async function () {
      if (isRoot) this.skip();
      const before = await prepared();
      const uid = process.getuid!() === 1234 ? 1235 : 1234;
      const err = await rejectsCode(writeWorkloadFiles(files(svidB), opts({ uid })), 'ERR_AGENT_WRITE');
      assert.match(err.message, /chown to \d+:- failed; it needs root or CAP_CHOWN/);
      assert.deepEqual(await snapshot(dir), before);
    });

    it('reports an injected EPERM from chown clearly and keeps the previous version', async function () {
      const before = await prepared();
      const err = await rejectsCode(
        writeWorkloadFiles(files(svidB), opts({ uid: 1234, gid: 1234 }), faultyFs('chown', 'EPERM')),
        'ERR_AGENT_WRITE',
      );
      assert.equal(
        err.message,
        `agent: cannot write ${dir}: EPERM (chown to 1234:1234 failed; it needs root or CAP_CHOWN)`,
      );
      assert.equal(causeCode(err), 'EPERM');
      assert.deepEqual(await snapshot(dir), before);
    });

    async function prepared(): Promise<Record<string, unknown>> {
      await writeWorkloadFiles(files(svidA), opts());
      return snapshot(dir);
    }
  });

  describe('reading and removing', function () {
    it('readWorkloadFiles refuses a directory without ..data', async function () {
      await mkdir(dir);
      const err = await rejectsCode(readWorkloadFiles(dir), 'ERR_AGENT_READ');
      assert.match(err.message, /no \.\.data link \(ENOENT\)/);
    });

    it('readWorkloadFiles refuses a ..data that leaves the directory', async function () {
      await mkdir(dir);
      await symlink('../elsewhere', join(dir, '..data'));
      await rejectsCode(readWorkloadFiles(dir), 'ERR_AGENT_READ');
    });

    it('removeWorkloadFiles removes the layout and nothing else', async function () {
      await mkdir(dir);
      await writeFile(join(dir, 'notes.txt'), 'not ours');
      await symlink('notes.txt', join(dir, 'user-link'));
      await writeWorkloadFiles(files(svidA, { jwtTokens: new Map([['a', token('a')]]) }), opts());
      await removeWorkloadFiles(dir);
      assert.deepEqual((await readdir(dir)).sort(), ['notes.txt', 'user-link']);
      await removeWorkloadFiles(dir);
      await removeWorkloadFiles(join(tmp, 'missing'));
    });
  });

  describe('readers during rewrites', function () {
    it('never pair one version’s certificate with another’s key (200 rewrites, 10,000 reads)', async function () {
      this.timeout(600_000); // 200 rewrites with a dozen fsyncs each; a guard against hangs, not a threshold
      const WRITES = 200;
      const READS = 10_000;
      const svids = [svidA, svidB];
      await writeWorkloadFiles(files(svidA, { version: 0 }), opts());
      const serials = new Map(svids.map((s) => [s.leaf.serialHex, 0]));
      let mismatches = 0;
      let firstMismatch: unknown;
      let retries = 0;
      let writing = true;
      let readsDuringWrites = 0;

      /** Reads the pair through the stable names, resolving ..data once (through svid.pem's real path). */
      async function viaStableNames(): Promise<[string, string]> {
        for (let attempt = 0; ; attempt++) {
          try {
            const cert = await realpath(join(dir, 'svid.pem'));
            const key = join(dirname(cert), basename(await readlink(join(dir, 'svid_key.pem'))));
            return await Promise.all([readFile(cert, 'utf8'), readFile(key, 'utf8')]);
          } catch (err) {
            // The version just resolved was replaced and removed: resolve again.
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 50) throw err;
            retries++;
          }
        }
      }

      async function writer(): Promise<void> {
        try {
          for (let i = 1; i <= WRITES; i++) {
            await writeWorkloadFiles(files(svids[i % 2]!, { version: i }), opts());
          }
        } finally {
          writing = false;
        }
      }

      let next = 0;
      async function reader(): Promise<void> {
        for (let i = next++; i < READS; i = next++) {
          if (writing) readsDuringWrites++;
          let pair: [string, string];
          if (i % 2 === 0) {
            const snap = await readWorkloadFiles(dir);
            pair = [snap.svidPem, snap.keyPem];
          } else {
            pair = await viaStableNames();
          }
          try {
            const svid = X509Svid.parse(pair[0], pair[1]);
            serials.set(svid.leaf.serialHex, (serials.get(svid.leaf.serialHex) ?? 0) + 1);
          } catch (err) {
            mismatches++;
            firstMismatch ??= err;
          }
        }
      }

      await Promise.all([writer(), reader(), reader(), reader(), reader()]);
      assert.equal(mismatches, 0, `mismatched pairs, first: ${String(firstMismatch)}`);
      assert.equal(next - 4, READS);
      assert.deepEqual([...serials.keys()].sort(), svids.map((s) => s.leaf.serialHex).sort());
      assert.ok(
        [...serials.values()].every((n) => n > 0),
        `both versions must be seen: ${[...serials.values()].join('/')}`,
      );
      const final = await readWorkloadFiles(dir);
      assert.equal(final.meta.version, WRITES);
      assert.equal((await versionDirs(dir)).length, 1);
      this.test!.title += ` [${readsDuringWrites} reads during writes, ${retries} stable-name re-resolves]`;
    });
  });
});
