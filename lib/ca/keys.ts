/**
 * The CA key lifecycle: the X.509 CA key that signs X.509-SVIDs and the JWT key that signs
 * JWT-SVIDs, each rotated without ever breaking validation.
 *
 * Every key moves forward through the journal states of the datastore:
 *
 *   prepared  published in the bundle, not signing yet
 *   active    signing (exactly one per kind)
 *   old       no longer signing, still in the bundle until everything it signed has expired
 *   dropped   gone from the bundle; its private key file is deleted
 *
 * The manager owns the order of the steps; each job has its module: the schedule is the pure
 * rotation-policy.ts, what is written and in which order key-journal.ts, what the bundle holds and
 * when it takes a sequence number bundle-publication.ts, the checks of an upstream CA upstream.ts.
 *
 * With the lifetime L of the active key (notBefore to notAfter of an X.509 CA; creation to
 * notAfter of a JWT key), tick() prepares the next key once L/2 has passed and activates it at
 * 5L/6. An SVID lives at most caTtl/6 (maxSvidTtlMs), so a key signs for at most 5L/6 and what it
 * signed is valid before its own notAfter. An old X.509 CA is dropped after its notAfter (an SVID
 * never outlives its issuer: signWorkloadSvid caps notAfter), an old JWT key once the longest
 * JWT-SVID it can have signed has expired (the time it stopped signing + maxJwtSvidTtlMs).
 *
 * A key is in the published bundle (with its own sequence number) before it signs anything: the
 * activation of a prepared key is always a later publication than its preparation. Every change of
 * the published bundle, including a key changing state, takes exactly one bundle sequence number
 * from the store; one operation may publish more than once (prepare, then activate).
 *
 * Private keys are PKCS#8 PEM files in keyDir; the journal holds the public part and the file name,
 * never a private key, and a key that becomes old loses its file at once (key-journal.ts).
 *
 * Taint means "stop trusting what this key signed": a tainted active key is rotated away at once
 * and, like a tainted prepared or old key, dropped from the bundle immediately. SVIDs it signed
 * stop validating as soon as peers pick up the new bundle, so workloads must renew right away.
 *
 * Upstream mode: the X.509 CA is an intermediate signed by an offline or external root. The bundle
 * carries the upstream roots; the intermediate is not in it and cannot be rotated from here (a new
 * intermediate is adopted when the manager is opened with it). JWT keys rotate as in embedded mode.
 *
 * Besides the store, keyDir holds `ca-state.json` (no secrets, advisory): the last published
 * bundle's fingerprint and when each old JWT key stopped signing (key-journal.ts).
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import type { SpiffeBundle } from '../bundle/spiffe.js';
import type { JwtAlgorithm } from '../jwtsvid/index.js';
import { generateKeyPair, KEY_TYPES, type KeyType, keyTypeOf } from '../keys/index.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { CaKeyKind, CaKeyState, Datastore } from '../store/types.js';
import type { Certificate } from '../x509/certificate.js';
import {
  BundlePublisher,
  buildBundle,
  bundleEntries,
  bundleFingerprint,
  refreshHintSeconds,
} from './bundle-publication.js';
import { caError } from './ca-error.js';
import { KeyJournal, type LiveKey, type NewKeyRecord } from './key-journal.js';
import { ensureKeyDir, listKeyFiles } from './keyfiles.js';
import { selfSignedRoot, type Signer } from './profile.js';
import {
  activationDue,
  dropsDue,
  KEY_KINDS,
  nextPrepared,
  type PolicySettings,
  prepareDue,
  rotatable,
  unusableAtStart,
} from './rotation-policy.js';
import { checkUpstream, sameCert, type UpstreamCa, type UpstreamMaterial } from './upstream.js';

/** Re-exported where callers have always found them. */
export { MAX_REFRESH_HINT_SECONDS } from './bundle-publication.js';
export type { UpstreamCa } from './upstream.js';

/** CA lifetime when none is given: 24 hours, as SPIRE. */
export const DEFAULT_CA_TTL_MS = 24 * 3600_000;
/** Shortest CA lifetime accepted. */
export const MIN_CA_TTL_MS = 60_000;
/** rotate() refuses to add a key when a kind already has this many keys in the bundle. */
export const MAX_LIVE_KEYS_PER_KIND = 16;

const JWT_KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

/** Structured logger (pino's `info(obj, msg)` shape). Fields never carry key material. */
export interface CaKeyLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Options of CaKeyManager.open. */
export interface CaKeyManagerOptions {
  trustDomain: TrustDomain;
  store: Datastore;
  /** Directory of the private key files; created 0700 if missing. It belongs to this CA alone. */
  keyDir: string;
  /** Source of time for every decision; the wall clock by default. */
  clock?: () => Date;
  /** Lifetime of each CA key, X.509 and JWT; default 24 h. */
  caTtlMs?: number;
  /** X.509 CA key type; default ec-p256. */
  keyType?: KeyType;
  /** JWT key type; default ec-p256. EC or RSA only: JWT-SVIDs have no EdDSA. */
  jwtKeyType?: KeyType;
  /** Longest JWT-SVID lifetime the CA issues; default maxSvidTtlMs. Old JWT keys are kept this long. */
  maxJwtSvidTtlMs?: number;
  /** Sign X.509-SVIDs with this intermediate instead of a self-signed root. */
  upstream?: UpstreamCa;
  logger?: CaKeyLogger;
}

/** The active X.509 CA. */
export interface X509CaSigner extends Signer {
  /** Journal id of the key. */
  readonly id: string;
  /** Certificates a leaf must carry after itself: none in embedded mode, the intermediate(s) upstream. */
  chain(): Certificate[];
}

/** The active JWT key. */
export interface JwtSigner {
  readonly kid: string;
  readonly key: KeyObject;
  readonly alg: JwtAlgorithm;
}

/** One CA key as status() lists it. */
export interface CaKeyStatus {
  id: string;
  kind: CaKeyKind;
  state: CaKeyState;
  notAfter: Date;
  tainted: boolean;
}

/** What rotate() rotates. */
export type RotationKind = CaKeyKind | 'both';

function jwtAlgorithmFor(key: KeyObject): JwtAlgorithm {
  const type = keyTypeOf(key);
  if (type === 'ec-p256') return 'ES256';
  if (type === 'ec-p384') return 'ES384';
  if (type.startsWith('rsa')) return 'RS256';
  throw caError('ERR_CA_CONFIG', `a ${type} key cannot sign JWT-SVIDs (EC or RSA only)`);
}

/**
 * Owns the CA's signing keys: creates them, rotates them on tick(), publishes the trust bundle and
 * answers which key signs now. Open with CaKeyManager.open.
 */
export class CaKeyManager {
  readonly trustDomain: TrustDomain;
  /** Lifetime of each CA key. */
  readonly caTtlMs: number;
  /** Longest X.509-SVID lifetime: caTtlMs / 6, so that no SVID outlives the CA that signed it. */
  readonly maxSvidTtlMs: number;
  /** Longest JWT-SVID lifetime the CA may issue; old JWT keys stay in the bundle this long. */
  readonly maxJwtSvidTtlMs: number;
  /** The bundle's spiffe_refresh_hint: min(300 s, caTtl / 24). */
  readonly refreshHintSeconds: number;
  /** Absolute path of the key directory. */
  readonly keyDir: string;
  /** 'upstream' when the X.509 CA is an intermediate of an upstream root. */
  readonly mode: 'embedded' | 'upstream';

  readonly #store: Datastore;
  readonly #clock: () => Date;
  readonly #keyType: KeyType;
  readonly #jwtKeyType: KeyType;
  readonly #upstream?: UpstreamMaterial;
  readonly #logger?: CaKeyLogger;
  readonly #policy: PolicySettings;
  readonly #journal: KeyJournal;
  readonly #publisher: BundlePublisher;
  #openedAt = 0;
  #keys: LiveKey[] = [];
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    opts: CaKeyManagerOptions,
    resolved: { caTtlMs: number; maxJwtSvidTtlMs: number; keyDir: string; upstream?: UpstreamMaterial },
  ) {
    this.trustDomain = opts.trustDomain;
    this.caTtlMs = resolved.caTtlMs;
    this.maxSvidTtlMs = Math.floor(resolved.caTtlMs / 6);
    this.maxJwtSvidTtlMs = resolved.maxJwtSvidTtlMs;
    this.refreshHintSeconds = refreshHintSeconds(resolved.caTtlMs);
    this.keyDir = resolved.keyDir;
    this.mode = resolved.upstream ? 'upstream' : 'embedded';
    this.#store = opts.store;
    this.#clock = opts.clock ?? (() => new Date());
    this.#keyType = opts.keyType ?? 'ec-p256';
    this.#jwtKeyType = opts.jwtKeyType ?? 'ec-p256';
    this.#upstream = resolved.upstream;
    this.#logger = opts.logger;
    this.#policy = { upstream: resolved.upstream !== undefined, maxJwtSvidTtlMs: resolved.maxJwtSvidTtlMs };
    const log = this.#log.bind(this);
    this.#journal = new KeyJournal({ store: opts.store, keyDir: resolved.keyDir, caTtlMs: resolved.caTtlMs, log });
    this.#publisher = new BundlePublisher(log);
  }

  /**
   * Opens the CA's keys. On a first start (empty journal) it creates the first X.509 CA (a
   * self-signed root, or the upstream intermediate) and the first JWT key, both active, and takes
   * bundle sequence 1. On a restart it loads the journal and the key files; a missing or wrong key
   * file of an active key fails with ERR_CA_KEY_MISSING / ERR_CA_KEY_MISMATCH before anything is
   * written. It does not rotate: call tick() after open and then periodically.
   */
  static async open(opts: CaKeyManagerOptions): Promise<CaKeyManager> {
    if (typeof opts !== 'object' || opts === null) throw caError('ERR_CA_CONFIG', 'options must be an object');
    if (!opts.trustDomain || typeof opts.trustDomain.idString !== 'function') {
      throw caError('ERR_CA_CONFIG', 'trustDomain must be a TrustDomain');
    }
    if (!opts.store) throw caError('ERR_CA_CONFIG', 'store is required');
    if (opts.clock !== undefined && typeof opts.clock !== 'function') {
      throw caError('ERR_CA_CONFIG', 'clock must be a function returning a Date');
    }
    const caTtlMs = opts.caTtlMs ?? DEFAULT_CA_TTL_MS;
    if (!Number.isSafeInteger(caTtlMs) || caTtlMs < MIN_CA_TTL_MS) {
      throw caError('ERR_CA_CONFIG', `caTtlMs must be an integer of at least ${MIN_CA_TTL_MS}`);
    }
    const maxJwtSvidTtlMs = opts.maxJwtSvidTtlMs ?? Math.floor(caTtlMs / 6);
    if (!Number.isSafeInteger(maxJwtSvidTtlMs) || maxJwtSvidTtlMs < 1000) {
      throw caError('ERR_CA_CONFIG', 'maxJwtSvidTtlMs must be an integer of at least 1000');
    }
    const keyType = opts.keyType ?? 'ec-p256';
    if (!(KEY_TYPES as readonly string[]).includes(keyType)) {
      throw caError('ERR_CA_CONFIG', `keyType must be one of ${KEY_TYPES.join(', ')}`);
    }
    const jwtKeyType = opts.jwtKeyType ?? 'ec-p256';
    if (!JWT_KEY_TYPES.includes(jwtKeyType)) {
      throw caError(
        'ERR_CA_CONFIG',
        `jwtKeyType must be one of ${JWT_KEY_TYPES.join(', ')} (JWT-SVIDs allow no EdDSA): got ${String(jwtKeyType)}`,
      );
    }
    const clock = opts.clock ?? (() => new Date());
    const upstream = opts.upstream
      ? checkUpstream(opts.trustDomain, opts.upstream, new Date(readClock(clock)))
      : undefined;
    const keyDir = ensureKeyDir(opts.keyDir);
    const manager = new CaKeyManager(opts, { caTtlMs, maxJwtSvidTtlMs, keyDir, upstream });
    await manager.#start();
    return manager;
  }

  // -------------------------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------------------------

  /** The active X.509 CA: certificate and key, plus the chain a leaf must carry. */
  x509Signer(): X509CaSigner {
    const k = this.#active('x509');
    const chain = k.selfSigned ? [] : [...k.chain];
    return Object.freeze({ id: k.id, cert: k.chain[0]!, key: k.privateKey!, chain: () => [...chain] });
  }

  /** The active JWT key with its key ID and signature algorithm. */
  jwtSigner(): JwtSigner {
    const k = this.#active('jwt');
    return Object.freeze({ kid: k.id, key: k.privateKey!, alg: jwtAlgorithmFor(k.privateKey!) });
  }

  /** The published trust bundle (sequence = the store's sequence when it was published). */
  bundle(): SpiffeBundle {
    return this.#publisher.snapshot!;
  }

  /**
   * Calls `listener` with the new bundle after each sequence increment. Returns the function that
   * unsubscribes it. A listener that throws is logged and does not stop the others or the rotation.
   */
  onBundleChange(listener: (bundle: SpiffeBundle) => void): () => void {
    return this.#publisher.subscribe(listener);
  }

  /** Every key that is not dropped, in journal order. */
  status(): CaKeyStatus[] {
    return this.#keys.map((k) => ({
      id: k.id,
      kind: k.kind,
      state: k.state,
      notAfter: new Date(k.end),
      tainted: k.tainted,
    }));
  }

  /**
   * Advances the lifecycle to the clock's current time: drops old keys whose SVIDs have all
   * expired, prepares the next key after half the active key's lifetime and activates it at 5/6.
   * Idempotent: a second call at the same time changes nothing.
   */
  async tick(): Promise<void> {
    await this.#exclusive(() => this.#reconcile(new Set()));
  }

  /**
   * Forced rotation: prepares a key of each given kind (unless one is prepared already) and
   * activates it at once; the previous key stays in the bundle as old. The new key is published
   * one sequence number before it signs, but peers that have not fetched that bundle yet will
   * refuse its SVIDs until they do, so prefer tick()'s schedule when there is no hurry.
   * In upstream mode the X.509 CA cannot be rotated here (ERR_CA_ROTATION_UNAVAILABLE).
   */
  async rotate(kind: RotationKind = 'both'): Promise<CaKeyStatus[]> {
    if (kind !== 'x509' && kind !== 'jwt' && kind !== 'both') {
      throw caError('ERR_CA_CONFIG', 'rotate: kind must be "x509", "jwt" or "both"');
    }
    const kinds: CaKeyKind[] = kind === 'both' ? ['x509', 'jwt'] : [kind];
    return this.#exclusive(async () => {
      if (this.#upstream && kinds.includes('x509')) {
        throw caError(
          'ERR_CA_ROTATION_UNAVAILABLE',
          'the X.509 CA is an upstream intermediate: restart with a new upstream certificate to replace it ' +
            '(rotate "jwt" rotates the JWT key)',
        );
      }
      for (const k of kinds) {
        if (this.#live(k).length >= MAX_LIVE_KEYS_PER_KIND) {
          throw caError(
            'ERR_CA_TOO_MANY_KEYS',
            `the bundle already holds ${MAX_LIVE_KEYS_PER_KIND} ${k} keys; wait for old keys to be dropped`,
          );
        }
      }
      await this.#reconcile(new Set(kinds));
      return this.status();
    });
  }

  /**
   * Marks a key tainted: stop trusting what it signed. A tainted active key is rotated away at once;
   * a tainted prepared or old key leaves the bundle immediately (SVIDs it signed stop validating).
   * ERR_CA_KEY_NOT_FOUND for an unknown id; ERR_CA_ROTATION_UNAVAILABLE for the active upstream
   * intermediate, which only the upstream CA can replace.
   */
  async taint(id: string): Promise<CaKeyStatus[]> {
    return this.#exclusive(async () => {
      const record = (await this.#journal.records()).find((r) => r.id === id);
      if (!record)
        throw caError('ERR_CA_KEY_NOT_FOUND', `no CA key with id ${JSON.stringify(String(id).slice(0, 64))}`);
      if (record.kind === 'x509' && record.state === 'active' && this.#upstream) {
        throw caError(
          'ERR_CA_ROTATION_UNAVAILABLE',
          'the active X.509 CA is an upstream intermediate; revoke it upstream and restart with a new one',
        );
      }
      await this.#journal.taint(id);
      this.#log('warn', { id, kind: record.kind, state: record.state }, 'ca: CA key tainted');
      await this.#reconcile(new Set());
      return this.status();
    });
  }

  // -------------------------------------------------------------------------------------------
  // Start-up
  // -------------------------------------------------------------------------------------------

  async #start(): Promise<void> {
    const now = this.#now();
    this.#openedAt = now;
    const records = await this.#journal.records();
    for (const kind of KEY_KINDS) {
      const mine = records.filter((r) => r.kind === kind);
      if (mine.length > 0 && !mine.some((r) => r.state === 'active')) {
        throw caError(
          'ERR_CA_JOURNAL',
          `the journal holds ${kind} keys but none is active; refusing to create a new CA over existing state`,
        );
      }
    }
    // Parses the journal and loads the active keys' files: fails before anything is written.
    await this.#refresh();
    const x509 = this.#keys.find((k) => k.kind === 'x509' && k.state === 'active');
    if (x509 && !x509.selfSigned && !this.#upstream) {
      throw caError(
        'ERR_CA_JOURNAL',
        'the active X.509 CA is an upstream intermediate, but no upstream CA is configured; ' +
          'refusing to replace it with a self-signed root',
      );
    }
    if (records.length === 0) {
      const files = listKeyFiles(this.keyDir);
      if (files.length > 0) {
        this.#log(
          'warn',
          { keyDir: this.keyDir, files: files.length },
          'ca: the journal is empty but keyDir holds key files of an earlier CA; they are left alone',
        );
      }
    }

    // From here on the start writes.
    this.#journal.removeLeftovers(records);
    this.#publisher.restore(this.#journal.readState().fingerprint);

    for (const kind of KEY_KINDS) {
      if (!this.#keys.some((k) => k.kind === kind && k.state === 'active')) await this.#createKey(kind, 'active', now);
    }
    await this.#refresh();
    if (this.#upstream) await this.#adoptUpstream(now);

    for (const k of unusableAtStart(this.#keys, this.#policy)) {
      await this.#journal.setState(k, 'dropped', 'unusable prepared key');
    }
    // A crash between a key leaving the signing states and its file's removal leaves the file behind.
    await this.#journal.removeRetiredKeyFiles();
    await this.#publish();
    if (this.#publisher.snapshot === undefined) {
      let sequence = await this.#store.currentBundleSequence();
      if (sequence === 0) sequence = await this.#store.nextBundleSequence();
      this.#publisher.adopt(this.#bundleAt(sequence));
    }
  }

  /** Upstream mode: make the configured intermediate the active X.509 CA if it is not already. */
  async #adoptUpstream(now: number): Promise<void> {
    const up = this.#upstream!;
    const active = this.#active('x509');
    if (sameCert(active.chain[0]!, up.chain[0]!)) return;
    await this.#journal.adopt(this.#upstreamRecord(up), up.key, active, now);
    await this.#refresh();
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle
  // -------------------------------------------------------------------------------------------

  async #reconcile(force: ReadonlySet<CaKeyKind>): Promise<void> {
    try {
      await this.#reconcileSteps(force);
    } catch (err) {
      // Whatever part was written is real: publish it so the bundle matches the journal.
      try {
        await this.#publish();
      } catch {
        // the original error says more
      }
      throw err;
    }
  }

  async #reconcileSteps(force: ReadonlySet<CaKeyKind>): Promise<void> {
    const now = this.#now();
    await this.#refresh();

    // Publication 1: remove what must go, add what is due.
    const stoppedSigning = (k: LiveKey) => this.#journal.retiredAt(k.id) ?? this.#openedAt;
    for (const { key, reason } of dropsDue([...this.#keys], this.#policy, now, stoppedSigning)) {
      await this.#journal.setState(key, 'dropped', reason);
    }
    await this.#refresh();
    for (const kind of KEY_KINDS) {
      if (!rotatable(kind, this.#policy)) continue;
      const active = this.#active(kind);
      if (prepareDue(active, nextPrepared(this.#keys, kind, this.#policy, now), force.has(kind), now)) {
        await this.#createKey(kind, 'prepared', now);
      }
    }
    await this.#publish();

    // Publication 2: activate prepared keys that are due. They were published above at the latest.
    for (const kind of KEY_KINDS) {
      if (!rotatable(kind, this.#policy)) {
        const active = this.#active(kind);
        if (active.tainted) {
          this.#log('warn', { id: active.id, kind }, 'ca: the tainted active key cannot be rotated here');
        }
        continue;
      }
      const active = this.#active(kind);
      const decision = activationDue(active, nextPrepared(this.#keys, kind, this.#policy, now), force.has(kind), now);
      if (decision) await this.#journal.activate(decision.next.id, active, now, decision.dropPrevious);
    }
    await this.#publish();
  }

  /** Generates a key of `kind` (embedded X.509 root or JWT key) and journals it in `state`. */
  async #createKey(kind: CaKeyKind, state: 'prepared' | 'active', now: number): Promise<void> {
    if (kind === 'x509' && this.#upstream) {
      await this.#journal.add(this.#upstreamRecord(this.#upstream), this.#upstream.key, state);
      return;
    }
    if (kind === 'x509') {
      const id = randomBytes(16).toString('hex');
      const pair = generateKeyPair(this.#keyType);
      const cert = selfSignedRoot({
        trustDomain: this.trustDomain,
        key: pair.privateKey,
        publicKey: pair.publicKey,
        now: new Date(now),
        ttlMs: this.caTtlMs,
        // A distinct subject per root keeps path building simple for every verifier.
        subject: [
          ['O', 'svidkit'],
          ['CN', `svidkit root ${this.trustDomain.name}`],
          ['serialNumber', id],
        ],
      });
      await this.#journal.add({ id, kind, notAfter: cert.notAfter, publicData: cert.toPem() }, pair.privateKey, state);
      return;
    }
    const kid = randomBytes(16).toString('base64url');
    const pair = generateKeyPair(this.#jwtKeyType);
    const jwk = pair.publicKey.export({ format: 'jwk' });
    const publicData = JSON.stringify({ ...jwk, kid, alg: jwtAlgorithmFor(pair.privateKey), use: 'jwt-svid' });
    await this.#journal.add(
      { id: kid, kind, notAfter: new Date(now + this.caTtlMs), publicData },
      pair.privateKey,
      state,
    );
  }

  /** A new journal record for the upstream intermediate, under a fresh id. */
  #upstreamRecord(up: UpstreamMaterial): NewKeyRecord {
    return {
      id: randomBytes(16).toString('hex'),
      kind: 'x509',
      notAfter: up.chain[0]!.notAfter,
      publicData: up.chain.map((c) => c.toPem()).join(''),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Journal view and publication
  // -------------------------------------------------------------------------------------------

  #live(kind: CaKeyKind): LiveKey[] {
    return this.#keys.filter((k) => k.kind === kind);
  }

  #active(kind: CaKeyKind): LiveKey {
    const k = this.#keys.find((x) => x.kind === kind && x.state === 'active');
    if (!k || k.privateKey === undefined) {
      throw caError('ERR_CA_JOURNAL', `there is no usable active ${kind} CA key`);
    }
    return k;
  }

  async #refresh(): Promise<void> {
    this.#keys = await this.#journal.refresh();
  }

  #bundleAt(sequence: number): SpiffeBundle {
    const entries = bundleEntries(this.#upstream?.roots ?? [], this.#keys);
    return buildBundle(this.trustDomain, entries, sequence, this.refreshHintSeconds);
  }

  /** Reloads the journal and, when the published content changed, takes the next sequence number. */
  async #publish(): Promise<void> {
    await this.#refresh();
    const fingerprint = bundleFingerprint(
      bundleEntries(this.#upstream?.roots ?? [], this.#keys),
      this.refreshHintSeconds,
    );
    if (!this.#publisher.changed(fingerprint)) {
      this.#journal.saveState(this.#publisher.fingerprint, this.#keys);
      return;
    }
    const sequence = await this.#store.nextBundleSequence();
    this.#publisher.set(fingerprint, this.#bundleAt(sequence));
    this.#journal.saveState(fingerprint, this.#keys);
    this.#log('info', { sequence }, 'ca: trust bundle published');
    this.#publisher.notify();
  }

  // -------------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------------

  #now(): number {
    return readClock(this.#clock);
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    try {
      this.#logger?.[level](fields, message);
    } catch {
      // a broken logger must not break the CA
    }
  }
}

function readClock(clock: () => Date): number {
  const now = clock();
  const ms = now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw caError('ERR_CA_CONFIG', 'clock() must return a valid Date');
  return ms;
}
