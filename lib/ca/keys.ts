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
 * Private keys are PKCS#8 PEM files in keyDir (see keyfiles.ts); the journal holds the public part
 * (certificate PEM or public JWK) and the file path, never a private key. A key that becomes old
 * loses its file at once, since it will never sign again.
 *
 * Taint means "stop trusting what this key signed": a tainted active key is rotated away at once
 * and, like a tainted prepared or old key, dropped from the bundle immediately. SVIDs it signed
 * stop validating as soon as peers pick up the new bundle, so workloads must renew right away.
 *
 * Upstream mode: the X.509 CA is an intermediate signed by an offline or external root. The bundle
 * carries the upstream roots; the intermediate is not in it and cannot be rotated from here (a new
 * intermediate is adopted when the manager is opened with it). JWT keys rotate as in embedded mode.
 *
 * Besides the store, keyDir holds `ca-state.json` (no secrets): the fingerprint of the last
 * published bundle, so that a change made by a crashed run, or a changed upstream bundle, takes a
 * new sequence number at the next start; and when each old JWT key stopped signing, which the
 * journal does not record. Losing it is safe: one extra sequence number, and old JWT keys kept
 * until maxJwtSvidTtlMs after the restart.
 */
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { importJwtAuthority, type JwtAuthority, JwtBundle } from '../bundle/jwt.js';
import { SpiffeBundle } from '../bundle/spiffe.js';
import { X509Bundle } from '../bundle/x509.js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import type { JwtAlgorithm } from '../jwtsvid/index.js';
import {
  generateKeyPair,
  KEY_TYPES,
  type KeyType,
  keyTypeOf,
  loadPrivateKeyPem,
  samePublicKey,
} from '../keys/index.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';
import type { CaKeyKind, CaKeyRecord, CaKeyState, Datastore } from '../store/types.js';
import { Certificate, KeyUsageBit } from '../x509/certificate.js';
import { verify } from '../x509svid/index.js';
import {
  ensureKeyDir,
  KEY_FILE_SUFFIX,
  keyFileIn,
  listKeyFiles,
  readOptionalFile,
  readPrivateKey,
  removeFile,
  removeOrphanKeyFiles,
  removeStaleTempFiles,
  writeFileAtomic,
  writePrivateKey,
} from './keyfiles.js';
import { selfSignedRoot, type Signer, signWorkloadSvid } from './profile.js';

/** CA lifetime when none is given: 24 hours, as SPIRE. */
export const DEFAULT_CA_TTL_MS = 24 * 3600_000;
/** Shortest CA lifetime accepted. */
export const MIN_CA_TTL_MS = 60_000;
/** Upper bound of the bundle's refresh hint, in seconds. */
export const MAX_REFRESH_HINT_SECONDS = 300;
/** rotate() refuses to add a key when a kind already has this many keys in the bundle. */
export const MAX_LIVE_KEYS_PER_KIND = 16;

const STATE_FILE = 'ca-state.json';
const KINDS: readonly CaKeyKind[] = ['x509', 'jwt'];
const JWT_KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'];

/** An upstream CA: the intermediate this CA signs with, its key, and the roots it chains to (all PEM). */
export interface UpstreamCa {
  /** The intermediate first, then any further intermediates up to (not including) a root. */
  certPem: string;
  /** The intermediate's private key, PKCS#8 PEM. */
  keyPem: string;
  /** The upstream root certificates: they, not the intermediate, form the X.509 bundle. */
  bundlePem: string;
}

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

interface UpstreamMaterial {
  /** Signing intermediate first. */
  readonly chain: readonly Certificate[];
  readonly key: KeyObject;
  readonly roots: readonly Certificate[];
}

/** The public part of a journaled key, parsed once. */
interface ParsedKey {
  readonly publicKey: KeyObject;
  /** x509: the CA certificate first, then the certificates between it and an upstream root. */
  readonly chain: readonly Certificate[];
  /** x509: a self-signed root (embedded mode) rather than an upstream intermediate. */
  readonly selfSigned: boolean;
  readonly authority?: JwtAuthority;
  /** Start and end of the key's lifetime, ms. */
  readonly start: number;
  readonly end: number;
}

interface LiveKey extends ParsedKey {
  readonly id: string;
  readonly kind: CaKeyKind;
  readonly state: CaKeyState;
  readonly tainted: boolean;
  readonly keyPath?: string;
  /** Loaded for prepared and active keys; undefined for a prepared key whose file is unusable. */
  readonly privateKey?: KeyObject;
}

interface SavedState {
  fingerprint?: string;
  retired: Map<string, number>;
}

function caError(code: ErrorCode, message: string, cause?: unknown): SvidkitError {
  return new SvidkitError(code, `ca: ${message}`, cause === undefined ? undefined : { cause });
}

function detail(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function jwtAlgorithmFor(key: KeyObject): JwtAlgorithm {
  const type = keyTypeOf(key);
  if (type === 'ec-p256') return 'ES256';
  if (type === 'ec-p384') return 'ES384';
  if (type.startsWith('rsa')) return 'RS256';
  throw caError('ERR_CA_CONFIG', `a ${type} key cannot sign JWT-SVIDs (EC or RSA only)`);
}

function sameCert(a: Certificate, b: Certificate): boolean {
  return a.der.equals(b.der);
}

function isSelfSignedRoot(c: Certificate): boolean {
  try {
    return c.isSelfIssued() && c.isSignedBy(c.publicKey);
  } catch {
    return false;
  }
}

/** Checks an upstream CA before anything is written: key, CA flags, bundle, and a probe leaf that must verify. */
function checkUpstream(td: TrustDomain, up: UpstreamCa, now: Date): UpstreamMaterial {
  if (typeof up !== 'object' || up === null) throw caError('ERR_CA_CONFIG', 'upstream must be an object');
  let certs: Certificate[];
  try {
    certs = Certificate.fromPem(up.certPem);
  } catch (err) {
    throw caError('ERR_CA_CONFIG', `upstream certPem cannot be read: ${detail(err)}`, err);
  }
  if (certs.length === 0) throw caError('ERR_CA_CONFIG', 'upstream certPem holds no certificate');
  let key: KeyObject;
  try {
    key = loadPrivateKeyPem(up.keyPem);
  } catch (err) {
    throw caError('ERR_CA_CONFIG', `upstream keyPem cannot be read: ${detail(err)}`, err);
  }
  let roots: Certificate[];
  try {
    roots = [...X509Bundle.parsePem(td, up.bundlePem).authorities()];
  } catch (err) {
    throw caError('ERR_CA_UPSTREAM_BUNDLE', `upstream bundlePem cannot be read: ${detail(err)}`, err);
  }

  const ca = certs[0]!;
  if (!samePublicKey(key, ca.publicKey)) {
    throw caError(
      'ERR_CA_UPSTREAM_KEY_MISMATCH',
      'the upstream private key does not belong to the upstream certificate',
    );
  }
  if (!ca.basicConstraints?.cA) {
    throw caError('ERR_CA_UPSTREAM_NOT_CA', 'the upstream certificate is not a CA (basicConstraints cA is not set)');
  }
  if (!ca.keyUsage || (ca.keyUsage.bits & KeyUsageBit.keyCertSign) === 0) {
    throw caError('ERR_CA_UPSTREAM_NOT_CA', 'the upstream certificate lacks the keyCertSign key usage');
  }
  for (const uri of ca.subjectAltName?.uris ?? []) {
    const id = SpiffeId.tryParse(uri);
    if (id && (!id.memberOf(td) || !id.isTrustDomainId())) {
      throw caError(
        'ERR_CA_UPSTREAM_UNTRUSTED',
        `the upstream certificate names ${JSON.stringify(id.toString())}, not the trust domain ID ${td.idString()}`,
      );
    }
  }

  if (roots.length === 0) throw caError('ERR_CA_UPSTREAM_BUNDLE', 'the upstream bundle holds no root certificate');
  for (const root of roots) {
    if (sameCert(root, ca) || samePublicKey(root.publicKey, ca.publicKey)) {
      throw caError(
        'ERR_CA_UPSTREAM_BUNDLE',
        'the upstream bundle contains the intermediate itself; it must hold the upstream roots only',
      );
    }
    if (!isSelfSignedRoot(root)) {
      throw caError(
        'ERR_CA_UPSTREAM_BUNDLE',
        `the upstream bundle holds a certificate that is not a self-signed root (subject ${JSON.stringify(root.subject)})`,
      );
    }
    for (const uri of root.subjectAltName?.uris ?? []) {
      const id = SpiffeId.tryParse(uri);
      if (id && !id.memberOf(td)) {
        throw caError('ERR_CA_UPSTREAM_BUNDLE', `an upstream root belongs to trust domain "${id.trustDomain.name}"`);
      }
    }
  }
  // A root appended to certPem is in the bundle already; leaves need not carry it.
  const chain = certs.filter((c) => !roots.some((r) => sameCert(r, c)));
  if (chain.length === 0 || !sameCert(chain[0]!, ca)) {
    throw caError('ERR_CA_UPSTREAM_BUNDLE', 'the upstream certificate is itself one of the upstream roots');
  }

  // The decisive test: a leaf signed now by the intermediate must verify against the upstream roots,
  // with every rule a peer applies (validity, path length, name constraints, issuer flags).
  const probeKey = generateKeyPair('ec-p256');
  let leaf: Certificate;
  try {
    leaf = signWorkloadSvid({
      id: SpiffeId.fromSegments(td, 'svidkit', 'upstream-check'),
      publicKey: probeKey.publicKey,
      signer: { cert: ca, key },
      now,
      ttlMs: 60_000,
    });
  } catch (err) {
    throw caError('ERR_CA_UPSTREAM_NOT_CA', `the upstream CA cannot sign a workload certificate: ${detail(err)}`, err);
  }
  try {
    verify([leaf, ...chain], new X509Bundle(td, roots), { at: now });
  } catch (err) {
    throw caError(
      'ERR_CA_UPSTREAM_UNTRUSTED',
      `an SVID signed by the upstream certificate does not verify against the upstream bundle: ${detail(err)}`,
      err,
    );
  }
  return { chain, key, roots };
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
  readonly #parsed = new Map<string, ParsedKey>();
  readonly #privateKeys = new Map<string, KeyObject>();
  readonly #unusable = new Set<string>();
  readonly #retiredAt = new Map<string, number>();
  readonly #listeners = new Set<(bundle: SpiffeBundle) => void>();
  #openedAt = 0;
  #keys: LiveKey[] = [];
  #published?: string;
  #savedState?: string;
  #snapshot?: SpiffeBundle;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    opts: CaKeyManagerOptions,
    resolved: { caTtlMs: number; maxJwtSvidTtlMs: number; keyDir: string; upstream?: UpstreamMaterial },
  ) {
    this.trustDomain = opts.trustDomain;
    this.caTtlMs = resolved.caTtlMs;
    this.maxSvidTtlMs = Math.floor(resolved.caTtlMs / 6);
    this.maxJwtSvidTtlMs = resolved.maxJwtSvidTtlMs;
    this.refreshHintSeconds = Math.max(
      1,
      Math.floor(Math.min(MAX_REFRESH_HINT_SECONDS * 1000, resolved.caTtlMs / 24) / 1000),
    );
    this.keyDir = resolved.keyDir;
    this.mode = resolved.upstream ? 'upstream' : 'embedded';
    this.#store = opts.store;
    this.#clock = opts.clock ?? (() => new Date());
    this.#keyType = opts.keyType ?? 'ec-p256';
    this.#jwtKeyType = opts.jwtKeyType ?? 'ec-p256';
    this.#upstream = resolved.upstream;
    this.#logger = opts.logger;
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
    return this.#snapshot!;
  }

  /**
   * Calls `listener` with the new bundle after each sequence increment. Returns the function that
   * unsubscribes it. A listener that throws is logged and does not stop the others or the rotation.
   */
  onBundleChange(listener: (bundle: SpiffeBundle) => void): () => void {
    if (typeof listener !== 'function') throw caError('ERR_CA_CONFIG', 'listener must be a function');
    const entry = (b: SpiffeBundle) => listener(b);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
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
      const record = (await this.#store.listCaKeys()).find((r) => r.id === id);
      if (!record)
        throw caError('ERR_CA_KEY_NOT_FOUND', `no CA key with id ${JSON.stringify(String(id).slice(0, 64))}`);
      if (record.kind === 'x509' && record.state === 'active' && this.#upstream) {
        throw caError(
          'ERR_CA_ROTATION_UNAVAILABLE',
          'the active X.509 CA is an upstream intermediate; revoke it upstream and restart with a new one',
        );
      }
      await this.#store.taintCaKey(id);
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
    const records = await this.#store.listCaKeys();
    for (const kind of KINDS) {
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
    removeStaleTempFiles(this.keyDir);
    if (records.length > 0) {
      // A key file is written before its journal record: a crash in between leaves a file nobody
      // will ever read or delete. (With an empty journal the files may be an earlier CA's: kept.)
      const referenced = new Set(records.flatMap((r) => (r.keyPath === undefined ? [] : [basename(r.keyPath)])));
      for (const file of removeOrphanKeyFiles(this.keyDir, referenced)) {
        this.#log('info', { keyDir: this.keyDir, file }, 'ca: removed a key file that no journal record references');
      }
    }
    const saved = this.#readState();
    this.#published = saved.fingerprint;
    for (const [id, at] of saved.retired) this.#retiredAt.set(id, at);

    for (const kind of KINDS) {
      if (!this.#keys.some((k) => k.kind === kind && k.state === 'active')) await this.#createKey(kind, 'active', now);
    }
    await this.#refresh();
    if (this.#upstream) await this.#adoptUpstream(now);

    for (const k of this.#keys) {
      if (k.state !== 'prepared') continue;
      const wrongMode = k.kind === 'x509' && (this.#upstream !== undefined || !k.selfSigned);
      if (k.privateKey === undefined || wrongMode) await this.#setState(k, 'dropped', 'unusable prepared key');
    }
    // A crash between a key leaving the signing states and its file's removal leaves the file behind.
    for (const r of await this.#store.listCaKeys()) {
      if ((r.state === 'old' || r.state === 'dropped') && r.keyPath !== undefined) {
        removeFile(keyFileIn(this.keyDir, r.keyPath));
      }
    }
    await this.#publish();
    if (this.#snapshot === undefined) {
      let sequence = await this.#store.currentBundleSequence();
      if (sequence === 0) sequence = await this.#store.nextBundleSequence();
      this.#snapshot = this.#buildBundle(sequence);
    }
  }

  /** Upstream mode: make the configured intermediate the active X.509 CA if it is not already. */
  async #adoptUpstream(now: number): Promise<void> {
    const up = this.#upstream!;
    const active = this.#active('x509');
    if (sameCert(active.chain[0]!, up.chain[0]!)) return;
    const id = randomBytes(16).toString('hex');
    await this.#journalNewKey(
      { id, kind: 'x509', notAfter: up.chain[0]!.notAfter, publicData: up.chain.map((c) => c.toPem()).join('') },
      up.key,
      'prepared',
    );
    await this.#store.setCaKeyState(id, 'active');
    this.#retire(active, now);
    this.#log('info', { id, previous: active.id }, 'ca: adopted a new upstream intermediate');
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
    for (const k of [...this.#keys]) {
      if (k.state === 'old' && (k.tainted || this.#dropDue(k, now))) {
        await this.#setState(k, 'dropped', k.tainted ? 'tainted' : 'everything it signed has expired');
      } else if (k.state === 'prepared' && !this.#usable(k, now)) {
        await this.#setState(k, 'dropped', k.tainted ? 'tainted' : 'prepared key no longer usable');
      }
    }
    await this.#refresh();
    for (const kind of KINDS) {
      if (!this.#rotatable(kind)) continue;
      const active = this.#active(kind);
      if (this.#nextPrepared(kind, now)) continue;
      if (force.has(kind) || active.tainted || now >= this.#halfLife(active)) {
        await this.#createKey(kind, 'prepared', now);
      }
    }
    await this.#publish();

    // Publication 2: activate prepared keys that are due. They were published above at the latest.
    for (const kind of KINDS) {
      if (!this.#rotatable(kind)) {
        const active = this.#active(kind);
        if (active.tainted) {
          this.#log('warn', { id: active.id, kind }, 'ca: the tainted active key cannot be rotated here');
        }
        continue;
      }
      const active = this.#active(kind);
      const next = this.#nextPrepared(kind, now);
      if (!next) continue;
      if (!(force.has(kind) || active.tainted || now >= this.#activationPoint(active))) continue;
      await this.#store.setCaKeyState(next.id, 'active');
      this.#retire(active, now);
      this.#log('info', { kind, id: next.id, previous: active.id }, 'ca: CA key activated');
      if (active.tainted || (kind === 'x509' && now > active.end)) {
        await this.#store.setCaKeyState(active.id, 'dropped');
        this.#log('info', { kind, id: active.id }, 'ca: CA key dropped');
      }
    }
    await this.#publish();
  }

  #rotatable(kind: CaKeyKind): boolean {
    return kind === 'jwt' || this.#upstream === undefined;
  }

  #halfLife(k: LiveKey): number {
    return k.start + (k.end - k.start) / 2;
  }

  #activationPoint(k: LiveKey): number {
    return Math.min(k.start + ((k.end - k.start) * 5) / 6, k.end);
  }

  /** A prepared key that may become active: untainted, loaded, of the right mode, not half-way through its life. */
  #usable(k: LiveKey, now: number): boolean {
    if (k.tainted || k.privateKey === undefined) return false;
    if (k.kind === 'x509' && (!k.selfSigned || this.#upstream !== undefined)) return false;
    return now < this.#halfLife(k);
  }

  #nextPrepared(kind: CaKeyKind, now: number): LiveKey | undefined {
    return this.#keys.filter((k) => k.kind === kind && k.state === 'prepared' && this.#usable(k, now)).at(-1);
  }

  #dropDue(k: LiveKey, now: number): boolean {
    // An X.509-SVID never outlives its issuer, so after the CA's notAfter nothing it signed is valid.
    if (k.kind === 'x509') return now > k.end;
    const stopped = this.#retiredAt.get(k.id) ?? this.#openedAt;
    return now > stopped + this.maxJwtSvidTtlMs;
  }

  /** The key stopped signing: remember when, and delete its private key file. */
  #retire(k: LiveKey, now: number): void {
    this.#retiredAt.set(k.id, now);
    this.#forgetPrivateKey(k);
  }

  #forgetPrivateKey(k: LiveKey): void {
    this.#privateKeys.delete(k.id);
    if (k.keyPath !== undefined && !removeFile(keyFileIn(this.keyDir, k.keyPath))) {
      this.#log('warn', { id: k.id, kind: k.kind }, 'ca: could not delete the key file of a retired CA key');
    }
  }

  async #setState(k: LiveKey, state: CaKeyState, reason: string): Promise<void> {
    await this.#store.setCaKeyState(k.id, state);
    if (state === 'old' || state === 'dropped') {
      this.#forgetPrivateKey(k);
      this.#unusable.delete(k.id);
    }
    if (state === 'dropped') this.#retiredAt.delete(k.id);
    this.#log('info', { kind: k.kind, id: k.id, from: k.state, to: state, reason }, 'ca: CA key state changed');
  }

  /** Generates a key of `kind` (embedded X.509 root or JWT key) and journals it in `state`. */
  async #createKey(kind: CaKeyKind, state: 'prepared' | 'active', now: number): Promise<void> {
    if (kind === 'x509' && this.#upstream) {
      const up = this.#upstream;
      await this.#journalNewKey(
        {
          id: randomBytes(16).toString('hex'),
          kind,
          notAfter: up.chain[0]!.notAfter,
          publicData: up.chain.map((c) => c.toPem()).join(''),
        },
        up.key,
        state,
      );
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
      await this.#journalNewKey(
        { id, kind, notAfter: cert.notAfter, publicData: cert.toPem() },
        pair.privateKey,
        state,
      );
      return;
    }
    const kid = randomBytes(16).toString('base64url');
    const pair = generateKeyPair(this.#jwtKeyType);
    const jwk = pair.publicKey.export({ format: 'jwk' });
    const publicData = JSON.stringify({ ...jwk, kid, alg: jwtAlgorithmFor(pair.privateKey), use: 'jwt-svid' });
    await this.#journalNewKey(
      { id: kid, kind, notAfter: new Date(now + this.caTtlMs), publicData },
      pair.privateKey,
      state,
    );
  }

  /** Writes the key file first, then the journal record; a failed journal write removes the file. */
  async #journalNewKey(
    record: { id: string; kind: CaKeyKind; notAfter: Date; publicData: string },
    privateKey: KeyObject,
    state: 'prepared' | 'active',
  ): Promise<void> {
    const keyPath = writePrivateKey(this.keyDir, `${record.kind}-${record.id}${KEY_FILE_SUFFIX}`, privateKey);
    try {
      await this.#store.putCaKey({ ...record, state, keyPath });
    } catch (err) {
      removeFile(keyPath);
      throw err;
    }
    this.#privateKeys.set(record.id, privateKey);
    this.#log('info', { kind: record.kind, id: record.id, state, notAfter: record.notAfter }, 'ca: CA key created');
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

  /** Reloads the journal; parses new records and loads the private keys of prepared and active ones. */
  async #refresh(): Promise<void> {
    const records = await this.#store.listCaKeys();
    const live: LiveKey[] = [];
    for (const r of records) {
      if (r.state === 'dropped') {
        this.#parsed.delete(r.id);
        this.#privateKeys.delete(r.id);
        continue;
      }
      const parsed = this.#parse(r);
      let privateKey: KeyObject | undefined;
      if (r.state === 'active' || r.state === 'prepared') privateKey = this.#loadPrivateKey(r, parsed);
      const key: LiveKey = { ...parsed, id: r.id, kind: r.kind, state: r.state, tainted: r.tainted, privateKey };
      live.push(r.keyPath === undefined ? key : { ...key, keyPath: r.keyPath });
    }
    this.#keys = live;
  }

  #parse(r: CaKeyRecord): ParsedKey {
    const cached = this.#parsed.get(r.id);
    if (cached) return cached;
    let parsed: ParsedKey;
    if (r.kind === 'x509') {
      let chain: Certificate[];
      try {
        chain = Certificate.fromPem(r.publicData);
      } catch (err) {
        throw caError('ERR_CA_JOURNAL', `x509 CA key ${r.id} has an unreadable certificate`, err);
      }
      const ca = chain[0];
      if (ca === undefined) throw caError('ERR_CA_JOURNAL', `x509 CA key ${r.id} has no certificate`);
      parsed = {
        publicKey: ca.publicKey,
        chain,
        selfSigned: chain.length === 1 && isSelfSignedRoot(ca),
        start: ca.notBefore.getTime(),
        end: ca.notAfter.getTime(),
      };
    } else {
      let authority: JwtAuthority;
      try {
        authority = importJwtAuthority(r.id, JSON.parse(r.publicData) as Record<string, unknown>);
      } catch (err) {
        throw caError('ERR_CA_JOURNAL', `JWT key ${r.id} has an unreadable public key`, err);
      }
      const end = r.notAfter.getTime();
      // The journal keeps no creation time in the CA's clock; a JWT key lives caTtlMs up to notAfter.
      parsed = { publicKey: authority.key, chain: [], selfSigned: false, authority, start: end - this.caTtlMs, end };
    }
    this.#parsed.set(r.id, parsed);
    return parsed;
  }

  #loadPrivateKey(r: CaKeyRecord, parsed: ParsedKey): KeyObject | undefined {
    const cached = this.#privateKeys.get(r.id);
    if (cached) return cached;
    if (this.#unusable.has(r.id)) return undefined;
    const what = `the ${r.state} ${r.kind} CA key ${r.id}`;
    try {
      if (r.keyPath === undefined) {
        throw caError('ERR_CA_KEY_MISSING', `the journal names no private key file for ${what}`);
      }
      const path = keyFileIn(this.keyDir, r.keyPath);
      const key = readPrivateKey(path, parsed.publicKey, what, (mode) =>
        this.#log('warn', { id: r.id, mode: mode.toString(8) }, 'ca: key file was readable by others; set to 0600'),
      );
      this.#privateKeys.set(r.id, key);
      return key;
    } catch (err) {
      // Nothing has signed with a prepared key: it is dropped (and replaced) rather than refusing to start.
      if (r.state !== 'prepared') throw err;
      this.#unusable.add(r.id);
      this.#log('warn', { id: r.id, kind: r.kind, error: detail(err) }, 'ca: prepared CA key unusable; dropping it');
      return undefined;
    }
  }

  /** X.509 roots of the bundle with the state that made them part of it. */
  #x509Entries(): [Certificate, string][] {
    const out: [Certificate, string][] = (this.#upstream?.roots ?? []).map((c) => [c, 'upstream']);
    for (const k of this.#keys) if (k.kind === 'x509' && k.selfSigned) out.push([k.chain[0]!, k.state]);
    return out;
  }

  #jwtEntries(): [JwtAuthority, string][] {
    return this.#keys.filter((k) => k.kind === 'jwt').map((k) => [k.authority!, k.state]);
  }

  #fingerprint(): string {
    const doc = {
      refreshHint: this.refreshHintSeconds,
      x509: this.#x509Entries().map(([c, s]) => `${c.fingerprint256()}:${s}`),
      jwt: this.#jwtEntries().map(([a, s]) => `${a.kid}:${JSON.stringify(a.jwk)}:${s}`),
    };
    return createHash('sha256').update(JSON.stringify(doc)).digest('hex');
  }

  #buildBundle(sequence: number): SpiffeBundle {
    const td = this.trustDomain;
    return new SpiffeBundle(td, {
      x509: new X509Bundle(
        td,
        this.#x509Entries().map(([c]) => c),
      ),
      jwt: new JwtBundle(
        td,
        this.#jwtEntries().map(([a]) => a),
      ),
      sequence,
      refreshHint: this.refreshHintSeconds,
    });
  }

  /** Reloads the journal and, when the published content changed, takes the next sequence number. */
  async #publish(): Promise<void> {
    await this.#refresh();
    const fingerprint = this.#fingerprint();
    if (fingerprint === this.#published) {
      this.#saveState();
      return;
    }
    const sequence = await this.#store.nextBundleSequence();
    this.#published = fingerprint;
    this.#snapshot = this.#buildBundle(sequence);
    this.#saveState();
    this.#log('info', { sequence }, 'ca: trust bundle published');
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#snapshot);
      } catch (err) {
        this.#log('warn', { error: detail(err) }, 'ca: a bundle listener failed');
      }
    }
  }

  #readState(): SavedState {
    const retired = new Map<string, number>();
    let text: string | undefined;
    try {
      text = readOptionalFile(join(this.keyDir, STATE_FILE));
    } catch (err) {
      this.#log('warn', { error: detail(err) }, `ca: cannot read ${STATE_FILE}; the bundle will be republished`);
    }
    if (text === undefined) return { retired };
    try {
      const doc = JSON.parse(text) as { fingerprint?: unknown; retired?: unknown };
      if (doc.retired && typeof doc.retired === 'object') {
        for (const [id, at] of Object.entries(doc.retired as Record<string, unknown>)) {
          if (typeof at === 'number' && Number.isFinite(at)) retired.set(id, at);
        }
      }
      return { fingerprint: typeof doc.fingerprint === 'string' ? doc.fingerprint : undefined, retired };
    } catch {
      this.#log('warn', {}, `ca: ${STATE_FILE} is unreadable; the bundle will be republished`);
      return { retired };
    }
  }

  #saveState(): void {
    const retired: Record<string, number> = {};
    for (const k of this.#keys) {
      const at = this.#retiredAt.get(k.id);
      if (k.state === 'old' && at !== undefined) retired[k.id] = at;
    }
    const text = JSON.stringify({ version: 1, fingerprint: this.#published, retired }, null, 2) + '\n';
    if (text === this.#savedState) return;
    try {
      writeFileAtomic(this.keyDir, STATE_FILE, text, true);
      this.#savedState = text;
    } catch (err) {
      // Advisory only: losing it costs one extra sequence number or a longer-kept old JWT key.
      this.#log('warn', { error: detail(err) }, `ca: cannot write ${STATE_FILE}`);
    }
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
