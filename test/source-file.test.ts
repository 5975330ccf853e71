/**
 * Tests of lib/source/file.ts with real files in temporary directories and a real chokidar watcher:
 * the agent's ..data layout, spiffe-helper and cert-manager plain files, refusal of invalid or
 * half-written sets, the periodic re-read, JWT-SVIDs by audience, close(), and error messages that
 * never quote file contents. Waits are on events; the only time limit is a guard against hangs.
 */
import { strict as assert } from 'node:assert';
import { type KeyObject } from 'node:crypto';
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeWorkloadFiles } from '../lib/agent/writer.js';
import { tokenFileName } from '../lib/layout/index.js';
import { BundleSet, importJwtAuthority, JwtBundle, SpiffeBundle } from '../lib/bundle/index.js';
import { type ErrorCode, SvidkitError } from '../lib/errors/index.js';
import { generateKeyPair } from '../lib/keys/index.js';
import { FileSource, type FileSourceOptions } from '../lib/source/index.js';
import { TrustDomain } from '../lib/spiffeid/index.js';
import type { X509Svid } from '../lib/x509svid/index.js';
import { tempDir } from './helpers/agent-fs.js';
import { TestCa } from './helpers/ca.js';
import { craft } from './helpers/jwt.js';
import { assertCode, rejectsCode } from './helpers/assert.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Only a guard against a hang: every wait below ends on an event long before this. */
const HANG_GUARD_MS = 15_000;

/** Counts onUpdate calls and collects onError reports; waits for a condition on either. */
class Recorder {
  updates = 0;
  readonly errors: SvidkitError[] = [];
  readonly #wakers = new Set<() => void>();

  /** The onError option. */
  readonly onError = (err: SvidkitError): void => {
    this.errors.push(err);
    this.#wake();
  };

  /** Counts the updates of `source`. */
  attach(source: FileSource): this {
    source.onUpdate(() => {
      this.updates++;
      this.#wake();
    });
    return this;
  }

  #wake(): void {
    for (const w of [...this.#wakers]) w();
  }

  /** Resolves once `pred` holds, re-checked after every update and error. */
  until(pred: () => boolean, what: string): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wakers.delete(check);
        reject(new Error(`hang guard: still waiting for ${what}`));
      }, HANG_GUARD_MS);
      const check = (): void => {
        if (!pred()) return;
        clearTimeout(timer);
        this.#wakers.delete(check);
        resolve();
      };
      this.#wakers.add(check);
    });
  }

  /** Resolves with the first reported error of `code` from index `from` on. */
  async error(code: ErrorCode, from = 0): Promise<SvidkitError> {
    const find = (): SvidkitError | undefined => this.errors.slice(from).find((e) => e.code === code);
    await this.until(() => find() !== undefined, `an error ${code}`);
    return find()!;
  }
}

/** Every text an error carries along its cause chain: message, String() and stack. */
function textsOf(err: unknown): string {
  const out: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && depth < 10; depth++) {
    if (e instanceof Error) {
      out.push(e.message, String(e), e.stack ?? '');
      e = e.cause;
    } else {
      out.push(String(e));
      e = undefined;
    }
  }
  return out.join('\n');
}

/** Writes a file by rename, as careful tools do: a reader sees the old or the new file, whole. */
async function writeAtomic(path: string, data: string): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

/** Points `dir/..data` at `target` by rename, as the atomic writer swaps it. */
async function swapData(dir: string, target: string): Promise<void> {
  await symlink(target, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
}

describe('source: FileSource', function () {
  const td = TrustDomain.parse('example.org');
  let root: TestCa;
  let jwtKey: KeyObject;
  let bundles: BundleSet;
  let dir: string;
  const sources: FileSource[] = [];

  /** An SVID valid around the real current time. */
  function freshSvid(path = '/workload'): X509Svid {
    const now = Date.now();
    return root.svid(path, { notBefore: new Date(now - MINUTE), notAfter: new Date(now + HOUR) });
  }

  function token(aud: string, expSeconds = Math.floor(Date.now() / 1000) + 300): string {
    return craft(
      { alg: 'ES256', kid: 'k1', typ: 'JWT' },
      { sub: 'spiffe://example.org/workload', aud: [aud], exp: expSeconds },
      jwtKey,
    );
  }

  let version = 0;
  async function deliver(target: string, svid: X509Svid, tokens = new Map<string, string>()): Promise<void> {
    await writeWorkloadFiles({ svid, bundles, jwtTokens: tokens, version: ++version }, { dir: target });
  }

  async function open(target: string, opts: FileSourceOptions = {}): Promise<FileSource> {
    const s = await FileSource.open(target, opts);
    sources.push(s);
    return s;
  }

  before(function () {
    const now = Date.now();
    root = TestCa.root({ notBefore: new Date(now - 24 * HOUR), notAfter: new Date(now + 24 * HOUR) });
    jwtKey = generateKeyPair('ec-p256').privateKey;
    const jwk = jwtKey.export({ format: 'jwk' });
    const jwt = new JwtBundle(td, [importJwtAuthority('k1', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y })]);
    bundles = new BundleSet([new SpiffeBundle(td, { x509: root.bundle(), jwt })]);
  });

  beforeEach(async function () {
    dir = await tempDir('svidkit-source-');
  });

  afterEach(async function () {
    for (const s of sources.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('svidkit layout', function () {
    it('loads the SVID, the bundles and the JWT-SVIDs of the current version', async function () {
      const svid = freshSvid();
      await deliver(dir, svid, new Map([['spiffe://example.org/api', token('spiffe://example.org/api')]]));
      const s = await open(dir);
      assert.equal(s.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
      assert.equal(s.getX509Svid().id.toString(), 'spiffe://example.org/workload');
      assert.ok(s.getX509BundleForTrustDomain(td)?.hasAuthority(root.cert));
      assert.ok(s.getJwtBundleForTrustDomain(td)?.findAuthority('k1'));
      assert.equal(s.getBundleSet().size, 1);
      assert.equal(s.getX509BundleForTrustDomain(TrustDomain.parse('other.org')), undefined);
      const st = s.status();
      assert.equal(st.serial, svid.leaf.serialHex);
      assert.equal(st.notAfter?.getTime(), svid.expiresAt.getTime());
      assert.equal(st.spiffeId, 'spiffe://example.org/workload');
      assert.equal(st.layout, 'svidkit');
      assert.equal(st.lastError, undefined);
      assert.equal(st.closed, false);
    });

    it('follows a new writer version: one onUpdate, then the new SVID', async function () {
      const first = freshSvid();
      await deliver(dir, first);
      const rec = new Recorder();
      const s = await open(dir, { onError: rec.onError });
      rec.attach(s);
      const second = freshSvid();
      await deliver(dir, second);
      await rec.until(() => rec.updates >= 1, 'the update');
      assert.equal(s.getX509Svid().leaf.serialHex, second.leaf.serialHex);
      // Reads of the same version change nothing and notify no one.
      await s.refresh();
      await s.refresh();
      assert.equal(rec.updates, 1);
      assert.deepEqual(rec.errors, []);
      assert.equal(s.status().serial, second.leaf.serialHex);
    });

    it('keeps the last good set when a new version holds an expired SVID, and reports it', async function () {
      const good = freshSvid();
      await deliver(dir, good);
      const rec = new Recorder();
      const s = await open(dir, { onError: rec.onError });
      rec.attach(s);

      // A version the writer would refuse, made by hand: an expired leaf with the current bundles.
      const now = Date.now();
      const expired = root.svid('/workload', { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) });
      const current = join(dir, await readlink(join(dir, '..data')));
      const bad = join(dir, '..manual_expired');
      await mkdir(join(bad, 'jwt'), { recursive: true });
      await writeFile(join(bad, 'svid.pem'), expired.certificatesPem());
      await writeFile(join(bad, 'svid_key.pem'), expired.privateKeyPem(), { mode: 0o600 });
      for (const f of ['svid_bundle.pem', 'bundle.spiffe.json', 'jwt_bundle.json', 'meta.json']) {
        await writeFile(join(bad, f), await readFile(join(current, f)));
      }
      await swapData(dir, '..manual_expired');

      const err = await rec.error('ERR_SOURCE_INVALID');
      assert.ok(err.message.startsWith('source: '), err.message);
      assert.equal((err.cause as SvidkitError | undefined)?.code, 'ERR_X509SVID_EXPIRED');
      assert.equal(s.getX509Svid().leaf.serialHex, good.leaf.serialHex);
      assert.equal(rec.updates, 0);
      assert.equal(s.status().lastErrorCode, 'ERR_SOURCE_INVALID');
      assert.match(s.status().lastError ?? '', /expired/);

      // The next good version is taken, and clears the error.
      const next = freshSvid();
      await deliver(dir, next);
      await rec.until(() => rec.updates >= 1, 'the update after the bad version');
      assert.equal(s.getX509Svid().leaf.serialHex, next.leaf.serialHex);
      assert.equal(s.status().lastError, undefined);
    });

    it('reads custom file names', async function () {
      const names = { svid: 'cert.pem', key: 'key.pem', bundle: 'ca.pem', jwtDir: 'tokens' };
      const svid = freshSvid();
      await writeWorkloadFiles(
        { svid, bundles, jwtTokens: new Map([['api', token('api')]]), version: 1 },
        { dir, names },
      );
      const s = await open(dir, { names });
      assert.equal(s.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
      assert.equal(s.getJwtSvid('api').length > 0, true);
    });

    it('uses svid_bundle.pem as the own trust domain roots when bundle.spiffe.json is absent', async function () {
      const svid = freshSvid();
      await mkdir(join(dir, '..v1'));
      await writeFile(join(dir, '..v1', 'svid.pem'), svid.certificatesPem());
      await writeFile(join(dir, '..v1', 'svid_key.pem'), svid.privateKeyPem());
      await writeFile(join(dir, '..v1', 'svid_bundle.pem'), root.cert.toPem());
      await swapData(dir, '..v1');
      const s = await open(dir);
      assert.equal(s.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
      assert.ok(s.getX509BundleForTrustDomain(td)?.hasAuthority(root.cert));
      assert.equal(s.getJwtBundleForTrustDomain(td)?.size, 0);
    });
  });

  describe('JWT-SVIDs', function () {
    it('gives each audience its token, follows new tokens and refuses expired ones', async function () {
      let nowMs = Date.now();
      const clock = (): Date => new Date(nowMs);
      const api = 'spiffe://example.org/api';
      const web = 'https://web.example.org/a b?c';
      const svid = freshSvid();
      const t1 = token(api);
      const t2 = token(web);
      await deliver(
        dir,
        svid,
        new Map([
          [api, t1],
          [web, t2],
        ]),
      );
      const rec = new Recorder();
      const s = await open(dir, { clock, onError: rec.onError });
      rec.attach(s);
      assert.equal(s.getJwtSvid(api), t1);
      assert.equal(s.getJwtSvid(web), t2);
      assert.deepEqual(s.status().jwtSvidFiles.sort(), [tokenFileName(api), tokenFileName(web)].sort());
      const missing = assertCode(() => s.getJwtSvid('spiffe://example.org/other'), 'ERR_SOURCE_NO_SVID');
      assert.match(missing.message, /other/);

      // Only the token changes: that is an update too.
      const t3 = token(api, Math.floor(nowMs / 1000) + 600);
      await deliver(dir, svid, new Map([[api, t3]]));
      await rec.until(() => rec.updates >= 1, 'the token update');
      assert.equal(s.getJwtSvid(api), t3);
      assertCode(() => s.getJwtSvid(web), 'ERR_SOURCE_NO_SVID');
      assert.equal(rec.updates, 1);

      nowMs += 11 * MINUTE;
      const expired = assertCode(() => s.getJwtSvid(api), 'ERR_SOURCE_NO_SVID');
      assert.match(expired.message, /expired/);
      assert.ok(!textsOf(expired).includes(t3));
      assert.equal(s.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
    });

    it('leaves out a token file that is not a JWS, keeps the rest, and does not quote it', async function () {
      const svid = freshSvid();
      await deliver(dir, svid, new Map([['api', token('api')]]));
      const current = await readlink(join(dir, '..data'));
      const secret = 'SECRETMARKER-token-content';
      await writeFile(join(dir, current, 'jwt', 'bad.token'), `${secret}\n`);
      const rec = new Recorder();
      const s = await open(dir, { onError: rec.onError });
      const err = await rec.error('ERR_SOURCE_INVALID_JWT');
      assert.match(err.message, /bad\.token/);
      assert.ok(!textsOf(err).includes('SECRET'));
      assert.ok(!(s.status().lastError ?? '').includes('SECRET'));
      assert.equal(s.getJwtSvid('api').split('.').length, 3);
      assertCode(() => s.getJwtSvid('bad'), 'ERR_SOURCE_NO_SVID');
    });
  });

  describe('plain layouts', function () {
    async function writeHelperFiles(target: string, svid: X509Svid): Promise<void> {
      await writeAtomic(join(target, 'svid.pem'), svid.certificatesPem());
      await writeAtomic(join(target, 'svid_key.pem'), svid.privateKeyPem());
      await writeAtomic(join(target, 'svid_bundle.pem'), root.cert.toPem());
    }

    it('spiffe-helper: loads svid.pem, svid_key.pem, svid_bundle.pem and jwt_bundle.json, and updates', async function () {
      const first = freshSvid();
      await writeHelperFiles(dir, first);
      const jwks = bundles.get(td)!.jwt.toJwks();
      await writeAtomic(join(dir, 'jwt_bundle.json'), JSON.stringify({ [td.name]: jwks }));
      const rec = new Recorder();
      const s = await open(dir, { layout: 'spiffe-helper', onError: rec.onError });
      rec.attach(s);
      assert.equal(s.getX509Svid().leaf.serialHex, first.leaf.serialHex);
      assert.ok(s.getX509BundleForTrustDomain(td)?.hasAuthority(root.cert));
      assert.ok(s.getJwtBundleForTrustDomain(td)?.findAuthority('k1'));
      assertCode(() => s.getJwtSvid('api'), 'ERR_SOURCE_NO_SVID');

      const second = freshSvid();
      await writeAtomic(join(dir, 'svid_key.pem'), second.privateKeyPem());
      await writeAtomic(join(dir, 'svid.pem'), second.certificatesPem());
      await rec.until(() => rec.updates >= 1, 'the update');
      // Only complete pairs are accepted, so the one update is the new pair.
      assert.equal(rec.updates, 1);
      assert.equal(s.getX509Svid().leaf.serialHex, second.leaf.serialHex);
      await s.refresh();
      assert.equal(rec.updates, 1);
    });

    it('cert-manager: loads tls.crt, tls.key, ca.crt, and updates', async function () {
      const first = freshSvid();
      await writeAtomic(join(dir, 'tls.crt'), first.certificatesPem());
      await writeAtomic(join(dir, 'tls.key'), first.privateKeyPem());
      await writeAtomic(join(dir, 'ca.crt'), root.cert.toPem());
      const rec = new Recorder();
      const s = await open(dir, { layout: 'cert-manager', onError: rec.onError });
      rec.attach(s);
      assert.equal(s.getX509Svid().leaf.serialHex, first.leaf.serialHex);
      assert.ok(s.getX509BundleForTrustDomain(td)?.hasAuthority(root.cert));

      const second = freshSvid();
      await writeAtomic(join(dir, 'tls.crt'), second.certificatesPem());
      await writeAtomic(join(dir, 'tls.key'), second.privateKeyPem());
      await rec.until(() => rec.updates >= 1, 'the update');
      assert.equal(rec.updates, 1);
      assert.equal(s.getX509Svid().leaf.serialHex, second.leaf.serialHex);
      assert.equal(s.status().layout, 'cert-manager');
    });

    it('cert-manager: reads a Secret volume through its own ..data version', async function () {
      async function version(name: string, svid: X509Svid): Promise<void> {
        await mkdir(join(dir, name));
        await writeFile(join(dir, name, 'tls.crt'), svid.certificatesPem());
        await writeFile(join(dir, name, 'tls.key'), svid.privateKeyPem());
        await writeFile(join(dir, name, 'ca.crt'), root.cert.toPem());
      }
      const first = freshSvid();
      await version('..v1', first);
      await swapData(dir, '..v1');
      for (const f of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(`..data/${f}`, join(dir, f));
      const rec = new Recorder();
      const s = await open(dir, { layout: 'cert-manager', onError: rec.onError });
      rec.attach(s);
      assert.equal(s.getX509Svid().leaf.serialHex, first.leaf.serialHex);

      const second = freshSvid();
      await version('..v2', second);
      await swapData(dir, '..v2');
      await rec.until(() => rec.updates >= 1, 'the update');
      assert.equal(s.getX509Svid().leaf.serialHex, second.leaf.serialHex);
      assert.deepEqual(rec.errors, []);
    });

    it('does not accept a half-written pair (new cert, old key); the completed write is accepted', async function () {
      const first = freshSvid();
      await writeHelperFiles(dir, first);
      const rec = new Recorder();
      const s = await open(dir, { layout: 'spiffe-helper', onError: rec.onError });
      rec.attach(s);

      const second = freshSvid();
      await writeAtomic(join(dir, 'svid.pem'), second.certificatesPem());
      const err = await rec.error('ERR_SOURCE_KEY_MISMATCH');
      assert.match(err.message, /svid_key\.pem/);
      assert.ok(!textsOf(err).includes(second.privateKeyPem().split('\n')[1]!));
      assert.equal(s.getX509Svid().leaf.serialHex, first.leaf.serialHex);
      assert.equal(rec.updates, 0);

      await writeAtomic(join(dir, 'svid_key.pem'), second.privateKeyPem());
      await rec.until(() => rec.updates >= 1, 'the completed pair');
      assert.equal(s.getX509Svid().leaf.serialHex, second.leaf.serialHex);
      assert.equal(rec.updates, 1);
    });

    it('refuses a file larger than its bound', async function () {
      const svid = freshSvid();
      await writeHelperFiles(dir, svid);
      await writeFile(join(dir, 'svid.pem'), svid.certificatesPem() + '#'.repeat(70 * 1024));
      const err = await rejectsCode(FileSource.open(dir, { layout: 'spiffe-helper' }), 'ERR_SOURCE_READ');
      assert.match(err.message, /svid\.pem .*larger than 65536 bytes/);
    });
  });

  describe('without a watcher', function () {
    it('the periodic re-read picks up a change', async function () {
      await deliver(dir, freshSvid());
      const rec = new Recorder();
      const s = await open(dir, { watch: false, pollIntervalMs: 20, onError: rec.onError });
      rec.attach(s);
      const next = freshSvid();
      await deliver(dir, next);
      await rec.until(() => rec.updates >= 1, 'the polled update');
      assert.equal(s.getX509Svid().leaf.serialHex, next.leaf.serialHex);
    });
  });

  describe('open() fails closed', function () {
    it('on an empty directory', async function () {
      const err = await rejectsCode(FileSource.open(dir), 'ERR_SOURCE_READ');
      assert.match(err.message, /\.\.data/);
      const plain = await rejectsCode(FileSource.open(dir, { layout: 'cert-manager' }), 'ERR_SOURCE_READ');
      assert.match(plain.message, /tls\.key .*does not exist/);
    });

    it('on a missing directory', async function () {
      const err = await rejectsCode(FileSource.open(join(dir, 'nope')), 'ERR_SOURCE_READ');
      assert.match(err.message, /does not exist/);
    });

    it('on a directory whose only set is expired', async function () {
      const now = Date.now();
      const expired = root.svid('/workload', { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) });
      await writeAtomic(join(dir, 'svid.pem'), expired.certificatesPem());
      await writeAtomic(join(dir, 'svid_key.pem'), expired.privateKeyPem());
      await writeAtomic(join(dir, 'svid_bundle.pem'), root.cert.toPem());
      const err = await rejectsCode(FileSource.open(dir, { layout: 'spiffe-helper' }), 'ERR_SOURCE_INVALID');
      assert.equal((err.cause as SvidkitError | undefined)?.code, 'ERR_X509SVID_EXPIRED');
    });

    it('refuses bad options with a TypeError', async function () {
      await assert.rejects(FileSource.open(dir, { layout: 'nginx' as never }), TypeError);
      await assert.rejects(FileSource.open(dir, { names: { svid: '../svid.pem' } }), /source: names\.svid/);
      await assert.rejects(FileSource.open(dir, { pollIntervalMs: -1 }), TypeError);
      await assert.rejects(FileSource.open(''), TypeError);
    });
  });

  describe('lifetime', function () {
    it('getX509Svid refuses the last good SVID once it expired at clock()', async function () {
      let nowMs = Date.now();
      const svid = freshSvid();
      await deliver(dir, svid);
      const s = await open(dir, { clock: () => new Date(nowMs), pollIntervalMs: 0 });
      assert.equal(s.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
      nowMs = svid.expiresAt.getTime() + 1;
      const err = assertCode(() => s.getX509Svid(), 'ERR_SOURCE_NO_SVID');
      assert.match(err.message, /expired/);
    });

    it('close() stops events: no listener runs afterwards', async function () {
      await deliver(dir, freshSvid());
      const rec = new Recorder();
      const s = await open(dir, { onError: rec.onError, pollIntervalMs: 10 });
      rec.attach(s);
      const witness = new Recorder();
      witness.attach(await open(dir));
      await s.close();
      assert.equal(s.status().closed, true);

      const next = freshSvid();
      await deliver(dir, next);
      // The witness saw the change, so the watcher events of the closed source would have come too.
      await witness.until(() => witness.updates >= 1, 'the witness update');
      await s.refresh();
      assert.equal(rec.updates, 0);
      assert.deepEqual(rec.errors, []);
      assert.notEqual(s.status().serial, next.leaf.serialHex);
      const late = s.onUpdate(() => assert.fail('listener after close'));
      late();
      await s.close();
    });

    it('an unsubscribed listener is not called; a throwing listener is reported', async function () {
      await deliver(dir, freshSvid());
      const rec = new Recorder();
      const s = await open(dir, { onError: rec.onError });
      let removed = 0;
      const off = s.onUpdate(() => removed++);
      off();
      s.onUpdate(() => {
        throw new Error('listener bug');
      });
      rec.attach(s);
      await deliver(dir, freshSvid());
      await rec.until(() => rec.updates >= 1, 'the update');
      assert.equal(removed, 0);
      const err = await rec.error('ERR_SOURCE_LISTENER');
      assert.match(err.message, /listener/);
    });
  });

  describe('error messages', function () {
    it('never quote the contents of a key, a bundle or a JWT bundle', async function () {
      const secret = 'SECRETMARKERabcdef0123456789';
      const svid = freshSvid();
      await writeAtomic(join(dir, 'svid.pem'), svid.certificatesPem());
      await writeAtomic(join(dir, 'svid_key.pem'), svid.privateKeyPem());
      await writeAtomic(join(dir, 'svid_bundle.pem'), root.cert.toPem());
      const rec = new Recorder();
      const s = await open(dir, { layout: 'spiffe-helper', onError: rec.onError });

      const check = (err: SvidkitError): void => {
        assert.ok(err.message.startsWith('source: '), err.message);
        assert.ok(!textsOf(err).includes('SECRET'), textsOf(err));
        assert.ok(!(s.status().lastError ?? '').includes('SECRET'));
      };

      await writeAtomic(
        join(dir, 'svid_key.pem'),
        `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`,
      );
      check(await rec.error('ERR_SOURCE_INVALID'));
      await writeAtomic(join(dir, 'svid_key.pem'), svid.privateKeyPem());
      // Lets every read that began before the repair finish, so that later errors are the next file's.
      await s.refresh();

      let from = rec.errors.length;
      await writeAtomic(join(dir, 'svid_bundle.pem'), `{"${secret}": ${secret}}`);
      const bundleErr = await rec.error('ERR_SOURCE_INVALID', from);
      check(bundleErr);
      assert.match(bundleErr.message, /svid_bundle\.pem/);
      await writeAtomic(join(dir, 'svid_bundle.pem'), root.cert.toPem());
      await s.refresh();

      from = rec.errors.length;
      await writeAtomic(join(dir, 'jwt_bundle.json'), `{"keys": [${secret}]}`);
      const jwtErr = await rec.error('ERR_SOURCE_INVALID', from);
      check(jwtErr);
      assert.match(jwtErr.message, /jwt_bundle\.json/);
      assert.equal(s.getX509Svid().leaf.serialHex, svid.leaf.serialHex);
    });
  });
});
