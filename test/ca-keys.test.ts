/**
 * Tests of the CA key lifecycle (lib/ca/keys.ts): first start, key files and the journal, restarts,
 * the prepared -> active -> old -> dropped schedule driven by a manual clock, forced rotation, taint,
 * and upstream mode. Every SVID signed along the way is checked with the published bundle through
 * the same verifiers peers use (x509svid.verify, jwtsvid.parseAndValidate).
 */
import { strict as assert } from 'node:assert';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpiffeBundle } from '../lib/bundle/index.js';
import { type CaKeyManagerOptions, CaKeyManager, type UpstreamCa } from '../lib/ca/keys.js';
import { signWorkloadSvid } from '../lib/ca/profile.js';
import { isSvidkitError } from '../lib/errors/index.js';
import { parseAndValidate, mintJwtSvid } from '../lib/jwtsvid/index.js';
import { generateKeyPair, privateKeyToPem, samePublicKey } from '../lib/keys/index.js';
import { createLogger } from '../lib/observe/index.js';
import { SpiffeId, TrustDomain } from '../lib/spiffeid/index.js';
import { type Datastore, SqliteStore } from '../lib/store/index.js';
import { type Certificate, KeyUsageBit } from '../lib/x509/index.js';
import { verify } from '../lib/x509svid/index.js';
import { T0, TestCa } from './helpers/ca.js';
import { captureLog } from './helpers/ca-context.js';
import { rejectsCode } from './helpers/assert.js';

const td = TrustDomain.parse('example.org');
const WORKLOAD = SpiffeId.parse('spiffe://example.org/ns/prod/sa/web');
const AUDIENCE = 'spiffe://example.org/ns/prod/sa/db';
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const CA_TTL = 24 * HOUR;
const workloadKey = generateKeyPair('ec-p256');

// With the default 24 h CA started at T0: the root is valid from T0 - 30 s to T0 + 24 h, so it passes
// half its life at T0 + 12 h - 15 s and 5/6 at T0 + 20 h - 5 s; the JWT key lives T0 .. T0 + 24 h.
const at = (ms: number) => new Date(T0.getTime() + ms);

/** A clock the test moves by hand. */
function manualClock(start = T0) {
  let now = start.getTime();
  return {
    clock: () => new Date(now),
    set: (d: Date) => {
      now = d.getTime();
    },
    now: () => new Date(now),
  };
}

/** Signs a workload X.509-SVID with the active CA at the longest allowed TTL; returns the chain. */
function issueSvid(mgr: CaKeyManager, now: Date): Certificate[] {
  const signer = mgr.x509Signer();
  const leaf = signWorkloadSvid({
    id: WORKLOAD,
    publicKey: workloadKey.publicKey,
    signer,
    now,
    ttlMs: mgr.maxSvidTtlMs,
  });
  return [leaf, ...signer.chain()];
}

async function mintJwt(mgr: CaKeyManager, now: Date): Promise<string> {
  const s = mgr.jwtSigner();
  return mintJwtSvid({
    id: WORKLOAD,
    audience: AUDIENCE,
    key: s.key,
    kid: s.kid,
    alg: s.alg,
    ttlSeconds: mgr.maxJwtSvidTtlMs / SECOND,
    clock: () => now,
  });
}

function x509Ok(chain: Certificate[], bundle: SpiffeBundle, when: Date): boolean {
  try {
    verify(chain, bundle, { at: when });
    return true;
  } catch {
    return false;
  }
}

async function jwtError(token: string, bundle: SpiffeBundle, when: Date): Promise<string | undefined> {
  try {
    await parseAndValidate(token, bundle, AUDIENCE, { clock: () => when, leewaySeconds: 0 });
    return undefined;
  } catch (err) {
    return isSvidkitError(err) ? err.code : String(err);
  }
}

function rootsOf(bundle: SpiffeBundle): string[] {
  return bundle.x509.authorities().map((c) => c.fingerprint256());
}

function kidsOf(bundle: SpiffeBundle): string[] {
  return bundle.jwt.authorities().map((a) => a.kid);
}

function idsIn(mgr: CaKeyManager, kind: 'x509' | 'jwt', state: string): string[] {
  return mgr
    .status()
    .filter((k) => k.kind === kind && k.state === state)
    .map((k) => k.id);
}

describe('CA key lifecycle', () => {
  let tmp: string;
  let n = 0;
  const stores: Datastore[] = [];

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'svidkit-ca-keys-'));
  });
  after(async () => {
    for (const s of stores) await s.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  function freshDir(name: string): string {
    return join(tmp, `${name}-${++n}`);
  }

  async function memoryStore(clock: () => Date): Promise<Datastore> {
    const s = await SqliteStore.open(':memory:', { clock });
    stores.push(s);
    return s;
  }

  async function setup(extra: Partial<CaKeyManagerOptions> = {}) {
    const c = manualClock();
    const store = await memoryStore(c.clock);
    const keyDir = freshDir('keys');
    const mgr = await CaKeyManager.open({ trustDomain: td, store, keyDir, clock: c.clock, ...extra });
    return { c, store, keyDir, mgr };
  }

  describe('first start', () => {
    it('creates one active X.509 root and one JWT key, publishes both with sequence 1', async () => {
      const { store, mgr } = await setup();
      const status = mgr.status();
      assert.equal(status.length, 2);
      assert.deepEqual(status.map((k) => [k.kind, k.state, k.tainted]).sort(), [
        ['jwt', 'active', false],
        ['x509', 'active', false],
      ]);
      assert.equal(await store.currentBundleSequence(), 1);

      const bundle = mgr.bundle();
      assert.equal(bundle.sequence, 1);
      assert.equal(bundle.refreshHint, 300);
      const signer = mgr.x509Signer();
      assert.deepEqual(rootsOf(bundle), [signer.cert.fingerprint256()]);
      assert.deepEqual(kidsOf(bundle), [mgr.jwtSigner().kid]);
      assert.deepEqual(signer.chain(), []);

      // The root: a self-signed CA with keyCertSign, the trust domain ID, 24 h from T0.
      assert.ok(signer.cert.isSelfIssued() && signer.cert.isSignedBy(signer.cert.publicKey));
      assert.equal(signer.cert.basicConstraints?.cA, true);
      assert.ok((signer.cert.keyUsage!.bits & KeyUsageBit.keyCertSign) !== 0);
      assert.deepEqual(signer.cert.subjectAltName?.uris, ['spiffe://example.org']);
      assert.equal(signer.cert.notAfter.getTime(), T0.getTime() + CA_TTL);
      assert.ok(samePublicKey(signer.key, signer.cert.publicKey));
      assert.equal(mgr.maxSvidTtlMs, CA_TTL / 6);
      assert.equal(mgr.jwtSigner().alg, 'ES256');
      assert.equal(mgr.mode, 'embedded');

      // The SPIFFE bundle document round-trips with both keys.
      const parsed = SpiffeBundle.parse(td, bundle.marshal());
      assert.equal(parsed.x509.size, 1);
      assert.equal(parsed.jwt.size, 1);
      assert.equal(parsed.sequence, 1);

      // A fresh SVID of each kind validates with the bundle.
      assert.ok(x509Ok(issueSvid(mgr, T0), bundle, T0));
      assert.equal(await jwtError(await mintJwt(mgr, T0), bundle, T0), undefined);
    });

    it('keeps private keys in 0600 files under a 0700 directory and never in the database', async () => {
      const c = manualClock();
      const dir = freshDir('files');
      const dbPath = join(dir, 'db', 'ca.db');
      const keyDir = join(dir, 'keys');
      const store = await SqliteStore.open(dbPath, { clock: c.clock });
      const mgr = await CaKeyManager.open({ trustDomain: td, store, keyDir, clock: c.clock });
      await mgr.rotate('both'); // more keys, more chances to leak one
      const records = await store.listCaKeys();
      await store.close();

      assert.equal(statSync(keyDir).mode & 0o777, 0o700);
      const keyFiles = readdirSync(keyDir).filter((f) => f.endsWith('.key.pem'));
      // Two active keys have files; the two old ones lost theirs when they stopped signing.
      assert.equal(keyFiles.length, 2);
      for (const r of records) {
        assert.ok(r.keyPath, `record ${r.id} has no key path`);
        assert.equal(existsSync(r.keyPath), r.state === 'active');
        assert.ok(!r.publicData.includes('PRIVATE'));
      }
      const pems: string[] = [];
      for (const f of keyFiles) {
        const st = statSync(join(keyDir, f));
        assert.equal(st.mode & 0o777, 0o600, `${f} has mode ${(st.mode & 0o777).toString(8)}`);
        const pem = readFileSync(join(keyDir, f), 'utf8');
        assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
        pems.push(pem);
      }
      assert.deepEqual(
        readdirSync(keyDir).filter((f) => f.endsWith('.tmp')),
        [],
      );

      const dbFiles = readdirSync(join(dir, 'db')).filter((f) => f.startsWith('ca.db'));
      assert.ok(dbFiles.includes('ca.db'));
      for (const f of dbFiles) {
        const bytes = readFileSync(join(dir, 'db', f));
        assert.equal(bytes.indexOf('PRIVATE KEY'), -1, `${f} contains "PRIVATE KEY"`);
        for (const pem of pems) {
          const body = pem.split('\n')[1]!;
          assert.equal(bytes.indexOf(body), -1, `${f} contains private key bytes`);
        }
      }
    });

    it('refuses a JWT key type without a JWT-SVID algorithm and a too-short CA TTL', async () => {
      const c = manualClock();
      const store = await memoryStore(c.clock);
      const keyDir = freshDir('config');
      await rejectsCode(
        CaKeyManager.open({ trustDomain: td, store, keyDir, clock: c.clock, jwtKeyType: 'ed25519' }),
        'ERR_CA_CONFIG',
        { prefix: 'ca: ', secret: 'PRIVATE KEY' },
      );
      await rejectsCode(
        CaKeyManager.open({ trustDomain: td, store, keyDir, clock: c.clock, caTtlMs: 0 }),
        'ERR_CA_CONFIG',
        { prefix: 'ca: ', secret: 'PRIVATE KEY' },
      );
      assert.deepEqual(await store.listCaKeys(), []);
      assert.equal(await store.currentBundleSequence(), 0);
    });

    it('signs X.509-SVIDs with an Ed25519 root and JWT-SVIDs with an RSA key when asked', async () => {
      const { mgr } = await setup({ keyType: 'ed25519', jwtKeyType: 'rsa-2048' });
      assert.equal(mgr.x509Signer().key.asymmetricKeyType, 'ed25519');
      assert.equal(mgr.jwtSigner().alg, 'RS256');
      assert.ok(x509Ok(issueSvid(mgr, T0), mgr.bundle(), T0));
      assert.equal(await jwtError(await mintJwt(mgr, T0), mgr.bundle(), T0), undefined);
    });
  });

  describe('restart', () => {
    async function fileSetup() {
      const c = manualClock();
      const dir = freshDir('restart');
      const dbPath = join(dir, 'ca.db');
      const keyDir = join(dir, 'keys');
      const open = async () => {
        const store = await SqliteStore.open(dbPath, { clock: c.clock });
        try {
          const mgr = await CaKeyManager.open({ trustDomain: td, store, keyDir, clock: c.clock });
          return { store, mgr };
        } catch (err) {
          await store.close();
          throw err;
        }
      };
      const first = await open();
      return { c, dbPath, keyDir, open, first };
    }

    it('loads the same keys and does not bump the sequence', async () => {
      const { c, open, first } = await fileSetup();
      const cert = first.mgr.x509Signer().cert;
      const kid = first.mgr.jwtSigner().kid;
      const oldToken = await mintJwt(first.mgr, T0);
      await first.store.close();

      c.set(at(HOUR));
      const again = await open();
      try {
        assert.equal(again.mgr.x509Signer().cert.fingerprint256(), cert.fingerprint256());
        assert.ok(samePublicKey(again.mgr.x509Signer().key, cert.publicKey));
        assert.equal(again.mgr.jwtSigner().kid, kid);
        assert.equal(await again.store.currentBundleSequence(), 1);
        assert.equal(again.mgr.bundle().sequence, 1);
        assert.equal(await jwtError(oldToken, again.mgr.bundle(), at(HOUR)), undefined);
        await again.mgr.tick();
        assert.equal(await again.store.currentBundleSequence(), 1);
      } finally {
        await again.store.close();
      }
    });

    for (const kind of ['x509', 'jwt'] as const) {
      it(`refuses to start when the active ${kind} key file is missing, and changes nothing`, async () => {
        const { keyDir, open, first } = await fileSetup();
        const before = await first.store.listCaKeys();
        await first.store.close();
        const victim = before.find((r) => r.kind === kind && r.state === 'active')!;
        unlinkSync(victim.keyPath!);
        const filesBefore = readdirSync(keyDir).sort();
        const contents = filesBefore.map((f) => readFileSync(join(keyDir, f)));

        const err = await rejectsCode(open(), 'ERR_CA_KEY_MISSING', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
        assert.ok(err.message.includes(victim.id));

        assert.deepEqual(readdirSync(keyDir).sort(), filesBefore);
        filesBefore.forEach((f, i) => assert.ok(readFileSync(join(keyDir, f)).equals(contents[i]!), `${f} changed`));
        const store = await SqliteStore.open(join(keyDir, '..', 'ca.db'));
        try {
          assert.deepEqual(await store.listCaKeys(), before);
          assert.equal(await store.currentBundleSequence(), 1);
        } finally {
          await store.close();
        }
      });
    }

    it('refuses a key file that holds another key (ERR_CA_KEY_MISMATCH) without overwriting it', async () => {
      const { open, first } = await fileSetup();
      const active = (await first.store.listCaKeys('x509')).find((r) => r.state === 'active')!;
      await first.store.close();
      const other = privateKeyToPem(generateKeyPair('ec-p256').privateKey);
      writeFileSync(active.keyPath!, other, { mode: 0o600 });
      await rejectsCode(open(), 'ERR_CA_KEY_MISMATCH', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
      assert.equal(readFileSync(active.keyPath!, 'utf8'), other);
      writeFileSync(active.keyPath!, 'not a key\n', { mode: 0o600 });
      await rejectsCode(open(), 'ERR_CA_KEY_MISMATCH', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
    });

    it('removes key files a crash left unjournaled, and nothing else, with an info line', async () => {
      const { c, keyDir, dbPath, first } = await fileSetup();
      const journaled = readdirSync(keyDir).sort();
      await first.store.close();
      const pem = privateKeyToPem(generateKeyPair('ec-p256').privateKey);
      // What a crash between writing a new key and journaling it leaves, for each kind.
      const orphans = [
        `x509-${randomBytes(16).toString('hex')}.key.pem`,
        `jwt-${randomBytes(16).toString('base64url')}.key.pem`,
      ];
      // Names the CA never gives its keys: an operator's files, which must survive.
      const foreign = ['backup.key.pem', 'x509-not-hex.key.pem', 'notes.txt', `x509-${'a'.repeat(31)}.key.pem`];
      for (const f of [...orphans, ...foreign]) writeFileSync(join(keyDir, f), pem, { mode: 0o600 });
      mkdirSync(join(keyDir, `jwt-${randomBytes(16).toString('base64url')}.key.pem`));

      const log = captureLog();
      const store = await SqliteStore.open(dbPath, { clock: c.clock });
      try {
        await CaKeyManager.open({
          trustDomain: td,
          store,
          keyDir,
          clock: c.clock,
          logger: createLogger({ name: 'svidkit-ca', destination: log }),
        });
        const left = readdirSync(keyDir);
        for (const f of orphans) assert.ok(!left.includes(f), `${f} was left behind`);
        for (const f of [...journaled, ...foreign]) assert.ok(left.includes(f), `${f} was removed`);
        const lines = log
          .lines()
          .filter((l) => l['msg'] === 'ca: removed a key file that no journal record references');
        assert.deepEqual(lines.map((l) => l['file']).sort(), [...orphans].sort());
        assert.ok(lines.every((l) => l['level'] === 'info'));
      } finally {
        await store.close();
      }
    });

    it('drops a prepared key whose file is gone instead of refusing to start', async () => {
      const { c, open, first } = await fileSetup();
      c.set(at(12 * HOUR));
      await first.mgr.tick();
      const prepared = (await first.store.listCaKeys('x509')).find((r) => r.state === 'prepared')!;
      await first.store.close();
      unlinkSync(prepared.keyPath!);

      const again = await open();
      try {
        assert.ok(!again.mgr.status().some((k) => k.id === prepared.id));
        await again.mgr.tick(); // past half-life: a new key is prepared at once
        assert.equal(idsIn(again.mgr, 'x509', 'prepared').length, 1);
        assert.notEqual(idsIn(again.mgr, 'x509', 'prepared')[0], prepared.id);
      } finally {
        await again.store.close();
      }
    });

    it('remembers when an old JWT key stopped signing across a restart', async () => {
      const { c, open, first } = await fileSetup();
      c.set(at(HOUR));
      const oldKid = first.mgr.jwtSigner().kid;
      await first.mgr.rotate('jwt');
      await first.store.close();

      // The old key stopped signing at T0 + 1 h; it must go at T0 + 5 h, not 4 h after the restart.
      c.set(at(4 * HOUR));
      const again = await open();
      try {
        assert.ok(kidsOf(again.mgr.bundle()).includes(oldKid));
        c.set(at(5 * HOUR + SECOND));
        await again.mgr.tick();
        assert.ok(!kidsOf(again.mgr.bundle()).includes(oldKid));
      } finally {
        await again.store.close();
      }
    });
  });

  describe('scheduled rotation', () => {
    it('does nothing before half of the active key lifetime', async () => {
      const { c, store, mgr } = await setup();
      const status = mgr.status();
      let calls = 0;
      mgr.onBundleChange(() => calls++);
      for (const h of [1, 6, 11]) {
        c.set(at(h * HOUR));
        await mgr.tick();
      }
      c.set(at(12 * HOUR - 16 * SECOND)); // one second before the root's half-life
      await mgr.tick();
      assert.deepEqual(mgr.status(), status);
      assert.equal(await store.currentBundleSequence(), 1);
      assert.equal(calls, 0);
    });

    it('after half-life publishes a prepared key of each kind while the active signers stay', async () => {
      const { c, store, mgr } = await setup();
      const x509Before = mgr.x509Signer();
      const jwtBefore = mgr.jwtSigner();
      const seen: SpiffeBundle[] = [];
      mgr.onBundleChange((b) => seen.push(b));

      c.set(at(12 * HOUR));
      await mgr.tick();

      assert.equal(await store.currentBundleSequence(), 2);
      assert.equal(mgr.bundle().sequence, 2);
      assert.deepEqual(
        seen.map((b) => b.sequence),
        [2],
      );
      assert.equal(idsIn(mgr, 'x509', 'prepared').length, 1);
      assert.equal(idsIn(mgr, 'jwt', 'prepared').length, 1);
      assert.equal(mgr.bundle().x509.size, 2);
      assert.equal(mgr.bundle().jwt.size, 2);
      assert.ok(kidsOf(mgr.bundle()).includes(idsIn(mgr, 'jwt', 'prepared')[0]!));
      // Published, not signing.
      assert.equal(mgr.x509Signer().cert.fingerprint256(), x509Before.cert.fingerprint256());
      assert.equal(mgr.jwtSigner().kid, jwtBefore.kid);

      // Idempotent: the same tick again changes nothing.
      const status = mgr.status();
      await mgr.tick();
      assert.deepEqual(mgr.status(), status);
      assert.equal(await store.currentBundleSequence(), 2);
      assert.equal(seen.length, 1);
    });

    it('at 5/6 activates the prepared keys and keeps the old ones in the bundle', async () => {
      const { c, store, mgr } = await setup();
      const oldRoot = mgr.x509Signer().cert;
      const oldKid = mgr.jwtSigner().kid;
      c.set(at(12 * HOUR));
      await mgr.tick();
      const nextX509 = idsIn(mgr, 'x509', 'prepared')[0]!;
      const nextKid = idsIn(mgr, 'jwt', 'prepared')[0]!;

      c.set(at(20 * HOUR - 6 * SECOND)); // one second before the root's 5/6 point
      await mgr.tick();
      assert.equal(mgr.x509Signer().cert.fingerprint256(), oldRoot.fingerprint256());
      assert.equal(await store.currentBundleSequence(), 2);

      c.set(at(20 * HOUR));
      await mgr.tick();
      assert.equal(await store.currentBundleSequence(), 3);
      assert.equal(mgr.x509Signer().id, nextX509);
      assert.notEqual(mgr.x509Signer().cert.fingerprint256(), oldRoot.fingerprint256());
      assert.equal(mgr.jwtSigner().kid, nextKid);
      assert.ok(rootsOf(mgr.bundle()).includes(oldRoot.fingerprint256()));
      assert.ok(kidsOf(mgr.bundle()).includes(oldKid));
      assert.equal(idsIn(mgr, 'x509', 'old').length, 1);
      assert.equal(idsIn(mgr, 'jwt', 'old').length, 1);

      const status = mgr.status();
      await mgr.tick();
      assert.deepEqual(mgr.status(), status);
      assert.equal(await store.currentBundleSequence(), 3);
    });

    it('keeps SVIDs of the old keys valid until they expire and drops the old keys only after', async () => {
      const { c, store, mgr } = await setup();
      c.set(at(12 * HOUR));
      await mgr.tick();

      // Signed by the first keys just before they stop signing, at the longest TTL.
      const signedAt = at(20 * HOUR - 10 * SECOND);
      c.set(signedAt);
      await mgr.tick();
      const oldRoot = mgr.x509Signer().cert;
      const oldKid = mgr.jwtSigner().kid;
      const chain = issueSvid(mgr, signedAt);
      const token = await mintJwt(mgr, signedAt);
      assert.equal(chain[0]!.notAfter.getTime(), signedAt.getTime() + CA_TTL / 6);
      assert.ok(chain[0]!.notAfter <= oldRoot.notAfter);

      c.set(at(20 * HOUR));
      await mgr.tick();
      assert.notEqual(mgr.x509Signer().cert.fingerprint256(), oldRoot.fingerprint256());
      assert.notEqual(mgr.jwtSigner().kid, oldKid);

      // Still valid with the current bundle right up to expiry, through every tick.
      for (const t of [at(21 * HOUR), at(23 * HOUR), new Date(chain[0]!.notAfter.getTime() - SECOND)]) {
        c.set(t);
        await mgr.tick();
        assert.ok(x509Ok(chain, mgr.bundle(), t), `X.509-SVID refused at ${t.toISOString()}`);
        assert.equal(await jwtError(token, mgr.bundle(), t), undefined, `JWT-SVID refused at ${t.toISOString()}`);
      }

      // At the root's notAfter (T0 + 24 h) nothing is dropped yet (the next key is prepared, though).
      c.set(oldRoot.notAfter);
      await mgr.tick();
      assert.ok(rootsOf(mgr.bundle()).includes(oldRoot.fingerprint256()));
      assert.ok(kidsOf(mgr.bundle()).includes(oldKid));
      const seq = await store.currentBundleSequence();

      // One second later every SVID they signed has expired: both old keys go, in one publication.
      const afterExpiry = new Date(oldRoot.notAfter.getTime() + SECOND);
      c.set(afterExpiry);
      await mgr.tick();
      assert.equal(await store.currentBundleSequence(), seq + 1);
      assert.ok(!rootsOf(mgr.bundle()).includes(oldRoot.fingerprint256()));
      assert.ok(!kidsOf(mgr.bundle()).includes(oldKid));
      assert.deepEqual(idsIn(mgr, 'x509', 'old'), []);
      assert.deepEqual(idsIn(mgr, 'jwt', 'old'), []);
      assert.equal(await jwtError(token, mgr.bundle(), signedAt), 'ERR_JWTSVID_UNKNOWN_KID');
      assert.ok(!x509Ok(chain, mgr.bundle(), signedAt));
    });

    it('publishes every key before it signs and never breaks a live SVID over four days', async () => {
      const { c, mgr } = await setup();
      const firstSeqInBundle = new Map<string, number>();
      const note = (b: SpiffeBundle) => {
        for (const fp of rootsOf(b)) if (!firstSeqInBundle.has(fp)) firstSeqInBundle.set(fp, b.sequence!);
        for (const kid of kidsOf(b)) if (!firstSeqInBundle.has(kid)) firstSeqInBundle.set(kid, b.sequence!);
      };
      note(mgr.bundle());
      const signers = new Map<string, number>(); // signer -> sequence at which it was first seen signing
      mgr.onBundleChange((b) => {
        note(b);
        const fp = mgr.x509Signer().cert.fingerprint256();
        const kid = mgr.jwtSigner().kid;
        // The signer is always in the bundle being published.
        assert.ok(rootsOf(b).includes(fp));
        assert.ok(kidsOf(b).includes(kid));
        if (!signers.has(fp)) signers.set(fp, b.sequence!);
        if (!signers.has(kid)) signers.set(kid, b.sequence!);
      });

      const live: { chain: Certificate[]; token: string }[] = [];
      for (let h = 0; h <= 96; h++) {
        const now = at(h * HOUR);
        c.set(now);
        await mgr.tick();
        live.push({ chain: issueSvid(mgr, now), token: await mintJwt(mgr, now) });
        for (const s of live) {
          if (s.chain[0]!.notAfter < now) continue;
          assert.ok(x509Ok(s.chain, mgr.bundle(), now), `X.509-SVID refused at +${h} h`);
          assert.equal(await jwtError(s.token, mgr.bundle(), now), undefined, `JWT-SVID refused at +${h} h`);
        }
        // Old keys are dropped: the bundle never grows past prepared + active + old.
        assert.ok(mgr.bundle().x509.size <= 3 && mgr.bundle().jwt.size <= 3);
      }
      assert.ok(signers.size >= 6, `only ${signers.size} signer changes in four days`);
      for (const [key, seq] of signers) {
        assert.ok(firstSeqInBundle.get(key)! < seq, `key ${key} signed in the bundle that first published it`);
      }
    });
    it('catches up in one tick after the CA was down past its key lifetime', async () => {
      const { c, store, mgr } = await setup();
      const oldRoot = mgr.x509Signer().cert;
      const oldKid = mgr.jwtSigner().kid;
      c.set(at(3 * CA_TTL));
      await mgr.tick();
      // Prepared and activated in two publications; the expired root is gone, the old JWT key stays
      // until JWT-SVIDs it may have signed just now could have expired.
      assert.equal(await store.currentBundleSequence(), 3);
      assert.notEqual(mgr.x509Signer().cert.fingerprint256(), oldRoot.fingerprint256());
      assert.ok(!rootsOf(mgr.bundle()).includes(oldRoot.fingerprint256()));
      assert.ok(kidsOf(mgr.bundle()).includes(oldKid));
      assert.notEqual(mgr.jwtSigner().kid, oldKid);
      assert.ok(x509Ok(issueSvid(mgr, c.now()), mgr.bundle(), c.now()));
      const status = mgr.status();
      await mgr.tick();
      assert.deepEqual(mgr.status(), status);
      assert.equal(await store.currentBundleSequence(), 3);
    });
  });

  describe('operator actions', () => {
    it('rotate forces a new active key and keeps the old one in the bundle', async () => {
      const { c, store, mgr } = await setup();
      c.set(at(HOUR));
      const oldRoot = mgr.x509Signer();
      const oldKid = mgr.jwtSigner().kid;
      const chain = issueSvid(mgr, at(HOUR));

      const status = await mgr.rotate('x509');
      assert.notEqual(mgr.x509Signer().id, oldRoot.id);
      assert.equal(mgr.jwtSigner().kid, oldKid);
      assert.deepEqual(
        status.filter((k) => k.kind === 'x509').map((k) => [k.id, k.state]),
        [
          [oldRoot.id, 'old'],
          [mgr.x509Signer().id, 'active'],
        ],
      );
      // Prepared (sequence 2) and then activated (sequence 3): published before it signed.
      assert.equal(await store.currentBundleSequence(), 3);
      assert.ok(x509Ok(chain, mgr.bundle(), at(HOUR)));
      assert.ok(x509Ok(issueSvid(mgr, at(HOUR)), mgr.bundle(), at(HOUR)));

      await mgr.rotate('jwt');
      assert.notEqual(mgr.jwtSigner().kid, oldKid);
      assert.ok(kidsOf(mgr.bundle()).includes(oldKid));
      assert.equal(await store.currentBundleSequence(), 5);

      // With keys prepared already, rotate activates exactly those, in one publication.
      c.set(at(HOUR + 12 * HOUR));
      await mgr.tick();
      const prepared = [...idsIn(mgr, 'x509', 'prepared'), ...idsIn(mgr, 'jwt', 'prepared')];
      assert.equal(prepared.length, 2);
      const seq = await store.currentBundleSequence();
      await mgr.rotate('both');
      assert.deepEqual([mgr.x509Signer().id, mgr.jwtSigner().kid], prepared);
      assert.equal(await store.currentBundleSequence(), seq + 1);

      await rejectsCode(mgr.rotate('nope' as 'x509'), 'ERR_CA_CONFIG', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
    });

    it('rotate refuses to grow the bundle without bound', async () => {
      const { mgr } = await setup();
      await rejectsCode(
        (async () => {
          for (let i = 0; i < 20; i++) await mgr.rotate('jwt');
        })(),
        'ERR_CA_TOO_MANY_KEYS',
        { prefix: 'ca: ', secret: 'PRIVATE KEY' },
      );
      assert.equal(mgr.bundle().jwt.size, 16);
    });

    it('taint of the active key rotates it away and drops it from the bundle at once', async () => {
      const { c, store, mgr } = await setup();
      c.set(at(HOUR));
      const tainted = mgr.x509Signer();
      const taintedKid = mgr.jwtSigner().kid;
      const chain = issueSvid(mgr, at(HOUR));
      const token = await mintJwt(mgr, at(HOUR));

      await mgr.taint(tainted.id);
      assert.notEqual(mgr.x509Signer().id, tainted.id);
      assert.ok(!rootsOf(mgr.bundle()).includes(tainted.cert.fingerprint256()));
      assert.ok(!mgr.status().some((k) => k.id === tainted.id));
      assert.ok(!x509Ok(chain, mgr.bundle(), at(HOUR)));
      assert.ok(x509Ok(issueSvid(mgr, at(HOUR)), mgr.bundle(), at(HOUR)));
      const record = (await store.listCaKeys('x509')).find((r) => r.id === tainted.id)!;
      assert.deepEqual([record.state, record.tainted], ['dropped', true]);
      assert.equal(existsSync(record.keyPath!), false);

      await mgr.taint(taintedKid);
      assert.notEqual(mgr.jwtSigner().kid, taintedKid);
      assert.equal(await jwtError(token, mgr.bundle(), at(HOUR)), 'ERR_JWTSVID_UNKNOWN_KID');
      assert.equal(await jwtError(await mintJwt(mgr, at(HOUR)), mgr.bundle(), at(HOUR)), undefined);

      const seq = await store.currentBundleSequence();
      await mgr.tick();
      assert.equal(await store.currentBundleSequence(), seq);
    });

    it('taint of an old key drops it from the bundle at once', async () => {
      const { c, store, mgr } = await setup();
      c.set(at(HOUR));
      const chain = issueSvid(mgr, at(HOUR));
      const token = await mintJwt(mgr, at(HOUR));
      const oldX509 = mgr.x509Signer().id;
      const oldKid = mgr.jwtSigner().kid;
      await mgr.rotate('both');
      assert.ok(x509Ok(chain, mgr.bundle(), at(HOUR)));
      assert.equal(await jwtError(token, mgr.bundle(), at(HOUR)), undefined);

      const seq = await store.currentBundleSequence();
      await mgr.taint(oldX509);
      assert.equal(await store.currentBundleSequence(), seq + 1);
      assert.ok(!x509Ok(chain, mgr.bundle(), at(HOUR)));
      assert.deepEqual(idsIn(mgr, 'x509', 'old'), []);

      await mgr.taint(oldKid);
      assert.equal(await store.currentBundleSequence(), seq + 2);
      assert.equal(await jwtError(token, mgr.bundle(), at(HOUR)), 'ERR_JWTSVID_UNKNOWN_KID');
      // The active keys are untouched.
      assert.ok(x509Ok(issueSvid(mgr, at(HOUR)), mgr.bundle(), at(HOUR)));
    });

    it('taint of a prepared key withdraws it; a fresh one is prepared in its place', async () => {
      const { c, mgr } = await setup();
      c.set(at(12 * HOUR));
      await mgr.tick();
      const prepared = idsIn(mgr, 'x509', 'prepared')[0]!;
      await mgr.taint(prepared);
      const now = idsIn(mgr, 'x509', 'prepared');
      assert.equal(now.length, 1);
      assert.notEqual(now[0], prepared);
      assert.equal(mgr.bundle().x509.size, 2);
    });

    it('taint of an unknown key is ERR_CA_KEY_NOT_FOUND', async () => {
      const { mgr } = await setup();
      await rejectsCode(mgr.taint('no-such-key'), 'ERR_CA_KEY_NOT_FOUND', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
    });

    it('bundle listeners can unsubscribe, and a failing listener does not stop rotation', async () => {
      const { mgr } = await setup();
      const got: number[] = [];
      mgr.onBundleChange(() => {
        throw new Error('listener bug');
      });
      const off = mgr.onBundleChange((b) => got.push(b.sequence!));
      await mgr.rotate('jwt');
      off();
      await mgr.rotate('jwt');
      assert.deepEqual(got, [2, 3]);
      assert.equal(mgr.bundle().sequence, 5);
    });
  });

  describe('upstream mode', () => {
    const upstreamRoot = TestCa.root({
      subject: [['CN', 'offline root']],
      notBefore: at(-24 * HOUR),
      notAfter: at(365 * 24 * HOUR),
    });
    const intermediate = upstreamRoot.intermediate({
      subject: [['CN', 'svidkit intermediate']],
      notBefore: at(-HOUR),
      notAfter: at(30 * 24 * HOUR),
    });
    const upstreamOf = (ca: TestCa, root: TestCa = upstreamRoot): UpstreamCa => ({
      certPem: ca.cert.toPem(),
      keyPem: privateKeyToPem(ca.key),
      bundlePem: root.cert.toPem(),
    });

    it('publishes the upstream roots only and signs with the intermediate', async () => {
      const { c, store, mgr } = await setup({ upstream: upstreamOf(intermediate) });
      assert.equal(mgr.mode, 'upstream');
      assert.deepEqual(rootsOf(mgr.bundle()), [upstreamRoot.cert.fingerprint256()]);
      assert.equal(mgr.bundle().jwt.size, 1);
      assert.equal(mgr.bundle().sequence, 1);
      const signer = mgr.x509Signer();
      assert.equal(signer.cert.fingerprint256(), intermediate.cert.fingerprint256());
      assert.deepEqual(
        signer.chain().map((x) => x.fingerprint256()),
        [intermediate.cert.fingerprint256()],
      );

      const chain = issueSvid(mgr, T0);
      assert.equal(chain.length, 2);
      assert.ok(x509Ok(chain, mgr.bundle(), T0));
      assert.ok(!x509Ok(chain.slice(0, 1), mgr.bundle(), T0), 'a leaf without its intermediate must not verify');
      assert.equal(await jwtError(await mintJwt(mgr, T0), mgr.bundle(), T0), undefined);

      // The JWT key rotates on schedule; the intermediate stays (it cannot be rotated from here).
      c.set(at(12 * HOUR));
      await mgr.tick();
      c.set(at(20 * HOUR));
      await mgr.tick();
      assert.equal(mgr.x509Signer().id, signer.id);
      assert.equal(idsIn(mgr, 'jwt', 'old').length, 1);
      assert.deepEqual(rootsOf(mgr.bundle()), [upstreamRoot.cert.fingerprint256()]);
      assert.equal(await store.currentBundleSequence(), 3);

      await rejectsCode(mgr.rotate('x509'), 'ERR_CA_ROTATION_UNAVAILABLE', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
      await rejectsCode(mgr.rotate('both'), 'ERR_CA_ROTATION_UNAVAILABLE', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
      await rejectsCode(mgr.taint(signer.id), 'ERR_CA_ROTATION_UNAVAILABLE', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
      assert.equal((await store.listCaKeys('x509'))[0]!.tainted, false);
    });

    it('adopts a new intermediate on restart and republishes when the upstream bundle changes', async () => {
      const c = manualClock();
      const dir = freshDir('upstream-restart');
      const dbPath = join(dir, 'ca.db');
      const keyDir = join(dir, 'keys');
      const open = async (upstream?: UpstreamCa) => {
        const store = await SqliteStore.open(dbPath, { clock: c.clock });
        try {
          return { store, mgr: await CaKeyManager.open({ trustDomain: td, store, keyDir, clock: c.clock, upstream }) };
        } catch (err) {
          await store.close();
          throw err;
        }
      };
      const first = await open(upstreamOf(intermediate));
      const firstId = first.mgr.x509Signer().id;
      await first.store.close();

      // Same intermediate: nothing changes.
      const same = await open(upstreamOf(intermediate));
      assert.equal(same.mgr.x509Signer().id, firstId);
      assert.equal(same.mgr.bundle().sequence, 1);
      await same.store.close();

      // Without upstream configuration the intermediate is never replaced by a self-signed root.
      await rejectsCode(open(undefined), 'ERR_CA_JOURNAL', { prefix: 'ca: ', secret: 'PRIVATE KEY' });

      // A new intermediate under the same root: adopted; the bundle is unchanged, so no new sequence.
      const second = upstreamRoot.intermediate({ notBefore: at(-HOUR), notAfter: at(60 * 24 * HOUR) });
      c.set(at(HOUR));
      const adopted = await open(upstreamOf(second));
      try {
        assert.equal(adopted.mgr.x509Signer().cert.fingerprint256(), second.cert.fingerprint256());
        assert.deepEqual(idsIn(adopted.mgr, 'x509', 'old'), [firstId]);
        assert.equal(adopted.mgr.bundle().sequence, 1);
        assert.ok(x509Ok(issueSvid(adopted.mgr, at(HOUR)), adopted.mgr.bundle(), at(HOUR)));
      } finally {
        await adopted.store.close();
      }

      // The operator adds a second upstream root: a new bundle, so a new sequence number.
      const otherRoot = TestCa.root({ subject: [['CN', 'offline root 2']], notAfter: at(365 * 24 * HOUR) });
      const both = await open({
        ...upstreamOf(second),
        bundlePem: upstreamRoot.cert.toPem() + otherRoot.cert.toPem(),
      });
      try {
        assert.equal(both.mgr.bundle().sequence, 2);
        assert.equal(both.mgr.bundle().x509.size, 2);
      } finally {
        await both.store.close();
      }
    });

    it('switches an embedded CA to upstream without breaking SVIDs of the self-signed root', async () => {
      const { c, store, keyDir, mgr } = await setup();
      const oldRoot = mgr.x509Signer().cert;
      c.set(at(HOUR));
      const chain = issueSvid(mgr, at(HOUR));
      const switched = await CaKeyManager.open({
        trustDomain: td,
        store,
        keyDir,
        clock: c.clock,
        upstream: upstreamOf(intermediate),
      });
      assert.equal(switched.x509Signer().cert.fingerprint256(), intermediate.cert.fingerprint256());
      assert.deepEqual(
        rootsOf(switched.bundle()).sort(),
        [upstreamRoot.cert, oldRoot].map((x) => x.fingerprint256()).sort(),
      );
      assert.equal(switched.bundle().sequence, 2);
      assert.ok(x509Ok(chain, switched.bundle(), at(HOUR)));
      assert.ok(x509Ok(issueSvid(switched, at(HOUR)), switched.bundle(), at(HOUR)));
      // The self-signed root leaves the bundle after its notAfter, like any old X.509 CA.
      c.set(new Date(oldRoot.notAfter.getTime() + SECOND));
      await switched.tick();
      assert.deepEqual(rootsOf(switched.bundle()), [upstreamRoot.cert.fingerprint256()]);
    });

    it('refuses an upstream key that does not match the certificate', async () => {
      const c = manualClock();
      const store = await memoryStore(c.clock);
      const keyDir = freshDir('upstream-bad');
      await rejectsCode(
        CaKeyManager.open({
          trustDomain: td,
          store,
          keyDir,
          clock: c.clock,
          upstream: { ...upstreamOf(intermediate), keyPem: privateKeyToPem(generateKeyPair('ec-p256').privateKey) },
        }),
        'ERR_CA_UPSTREAM_KEY_MISMATCH',
        { prefix: 'ca: ', secret: 'PRIVATE KEY' },
      );
      assert.deepEqual(await store.listCaKeys(), []);
      assert.equal(await store.currentBundleSequence(), 0);
      assert.equal(existsSync(keyDir), false);
    });

    it('refuses an upstream certificate that is not a CA', async () => {
      const c = manualClock();
      const store = await memoryStore(c.clock);
      const open = (upstream: UpstreamCa) =>
        CaKeyManager.open({ trustDomain: td, store, keyDir: freshDir('upstream-bad'), clock: c.clock, upstream });
      const notCa = upstreamRoot.intermediate({ basicConstraints: 'not-ca', notBefore: at(-HOUR) });
      await rejectsCode(open(upstreamOf(notCa)), 'ERR_CA_UPSTREAM_NOT_CA', { prefix: 'ca: ', secret: 'PRIVATE KEY' });
      const noCertSign = upstreamRoot.intermediate({ keyUsage: KeyUsageBit.cRLSign, notBefore: at(-HOUR) });
      await rejectsCode(open(upstreamOf(noCertSign)), 'ERR_CA_UPSTREAM_NOT_CA', {
        prefix: 'ca: ',
        secret: 'PRIVATE KEY',
      });
      assert.deepEqual(await store.listCaKeys(), []);
    });

    it('refuses an upstream bundle the intermediate does not chain to, or that holds the intermediate', async () => {
      const c = manualClock();
      const store = await memoryStore(c.clock);
      const open = (upstream: UpstreamCa) =>
        CaKeyManager.open({ trustDomain: td, store, keyDir: freshDir('upstream-bad'), clock: c.clock, upstream });
      const stranger = TestCa.root({ subject: [['CN', 'stranger']] });
      await rejectsCode(open(upstreamOf(intermediate, stranger)), 'ERR_CA_UPSTREAM_UNTRUSTED', {
        prefix: 'ca: ',
        secret: 'PRIVATE KEY',
      });
      await rejectsCode(
        open({ ...upstreamOf(intermediate), bundlePem: upstreamRoot.cert.toPem() + intermediate.cert.toPem() }),
        'ERR_CA_UPSTREAM_BUNDLE',
        { prefix: 'ca: ', secret: 'PRIVATE KEY' },
      );
      await rejectsCode(open({ ...upstreamOf(intermediate), bundlePem: '' }), 'ERR_CA_UPSTREAM_BUNDLE', {
        prefix: 'ca: ',
        secret: 'PRIVATE KEY',
      });
      const expired = upstreamRoot.intermediate({ notBefore: at(-48 * HOUR), notAfter: at(-HOUR) });
      await rejectsCode(open(upstreamOf(expired)), 'ERR_CA_UPSTREAM_UNTRUSTED', {
        prefix: 'ca: ',
        secret: 'PRIVATE KEY',
      });
      const otherDomain = TestCa.root({ trustDomain: 'other.org' }).intermediate({ notBefore: at(-HOUR) });
      await rejectsCode(open(upstreamOf(otherDomain, upstreamRoot)), 'ERR_CA_UPSTREAM_UNTRUSTED', {
        prefix: 'ca: ',
        secret: 'PRIVATE KEY',
      });
      assert.deepEqual(await store.listCaKeys(), []);
    });
  });
});
