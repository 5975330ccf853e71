/**
 * The journal of the CA keys: what is written about them, where, and in which order.
 *
 * The datastore holds one record per key (kind, state, notAfter, the public part: certificate PEM or
 * public JWK, and the key file's name), never a private key. Private keys are PKCS#8 PEM files in
 * keyDir (see keyfiles.ts). The order makes every crash safe:
 *   - a new key: the file first, then the record; a failed record write removes the file, and a
 *     crash in between leaves a file no record names, removed at the next start;
 *   - a key that stops signing: the state first, then the file's removal; a crash in between leaves a
 *     file of an old or dropped key, removed at the next start;
 *   - `ca-state.json` (no secrets) last, and advisory: the fingerprint of the last published bundle
 *     and when each old JWT key stopped signing, which the journal does not record. Losing it costs
 *     one extra bundle sequence number and old JWT keys kept until maxJwtSvidTtlMs after the restart.
 */
import type { KeyObject } from 'node:crypto';
import { basename, join } from 'node:path';
import { importJwtAuthority, type JwtAuthority } from '../bundle/jwt.js';
import type { CaKeyKind, CaKeyRecord, CaKeyState, Datastore } from '../store/types.js';
import { Certificate } from '../x509/certificate.js';
import { caError, errorDetail } from './ca-error.js';
import {
  KEY_FILE_SUFFIX,
  keyFileIn,
  readOptionalFile,
  readPrivateKey,
  removeFile,
  removeOrphanKeyFiles,
  removeStaleTempFiles,
  writeFileAtomic,
  writePrivateKey,
} from './keyfiles.js';
import type { PolicyKey } from './rotation-policy.js';
import { isSelfSignedRoot } from './upstream.js';

/** The file beside the key files that keeps what the journal does not. */
export const STATE_FILE = 'ca-state.json';

/** The public part of a journaled key, parsed once. */
export interface ParsedKey {
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

/** A key of the journal that is not dropped, with its private key when it may sign. */
export interface LiveKey extends ParsedKey, PolicyKey {
  readonly keyPath?: string;
  /** Loaded for prepared and active keys; undefined for a prepared key whose file is unusable. */
  readonly privateKey?: KeyObject;
}

/** A new key's record, before it has a state and a file. */
export interface NewKeyRecord {
  id: string;
  kind: CaKeyKind;
  notAfter: Date;
  publicData: string;
}

/** The logger of the CA key modules; it never throws. */
export type KeyLog = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;

/** What ca-state.json held at start. */
export interface SavedState {
  fingerprint?: string;
  retired: Map<string, number>;
}

/** Reads and writes the CA keys' journal records, key files and state file; caches what it parsed. */
export class KeyJournal {
  readonly #store: Datastore;
  readonly #keyDir: string;
  readonly #caTtlMs: number;
  readonly #log: KeyLog;
  readonly #parsed = new Map<string, ParsedKey>();
  readonly #privateKeys = new Map<string, KeyObject>();
  readonly #unusable = new Set<string>();
  readonly #retiredAt = new Map<string, number>();
  #savedState?: string;

  constructor(opts: { store: Datastore; keyDir: string; caTtlMs: number; log: KeyLog }) {
    this.#store = opts.store;
    this.#keyDir = opts.keyDir;
    this.#caTtlMs = opts.caTtlMs;
    this.#log = opts.log;
  }

  /** The records as the store holds them, dropped ones included. */
  records(): Promise<CaKeyRecord[]> {
    return this.#store.listCaKeys();
  }

  /** When the old key `id` stopped signing, if this CA remembers. */
  retiredAt(id: string): number | undefined {
    return this.#retiredAt.get(id);
  }

  /** Reloads the journal; parses new records and loads the private keys of prepared and active ones. */
  async refresh(): Promise<LiveKey[]> {
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
      const key: LiveKey = {
        ...parsed,
        id: r.id,
        kind: r.kind,
        state: r.state,
        tainted: r.tainted,
        loaded: privateKey !== undefined,
        privateKey,
      };
      live.push(r.keyPath === undefined ? key : { ...key, keyPath: r.keyPath });
    }
    return live;
  }

  /** Writes the key file first, then the journal record; a failed journal write removes the file. */
  async add(record: NewKeyRecord, privateKey: KeyObject, state: 'prepared' | 'active'): Promise<void> {
    const keyPath = writePrivateKey(this.#keyDir, `${record.kind}-${record.id}${KEY_FILE_SUFFIX}`, privateKey);
    try {
      await this.#store.putCaKey({ ...record, state, keyPath });
    } catch (err) {
      removeFile(keyPath);
      throw err;
    }
    this.#privateKeys.set(record.id, privateKey);
    this.#log('info', { kind: record.kind, id: record.id, state, notAfter: record.notAfter }, 'ca: CA key created');
  }

  /** Marks the key `id` tainted in the store; the next pass of the policy acts on it. */
  async taint(id: string): Promise<void> {
    await this.#store.taintCaKey(id);
  }

  /** Moves `k` to `state`; a key that can no longer sign loses its file. */
  async setState(k: LiveKey, state: CaKeyState, reason: string): Promise<void> {
    await this.#store.setCaKeyState(k.id, state);
    if (state === 'old' || state === 'dropped') {
      this.#forgetPrivateKey(k);
      this.#unusable.delete(k.id);
    }
    if (state === 'dropped') this.#retiredAt.delete(k.id);
    this.#log('info', { kind: k.kind, id: k.id, from: k.state, to: state, reason }, 'ca: CA key state changed');
  }

  /**
   * Makes the prepared key `nextId` active in place of `previous`, which becomes old (the store does
   * that) and stops signing now: its file goes. A previous key that must not stay old is dropped.
   */
  async activate(nextId: string, previous: LiveKey, now: number, dropPrevious: boolean): Promise<void> {
    await this.#store.setCaKeyState(nextId, 'active');
    this.#retire(previous, now);
    this.#log('info', { kind: previous.kind, id: nextId, previous: previous.id }, 'ca: CA key activated');
    if (dropPrevious) {
      await this.#store.setCaKeyState(previous.id, 'dropped');
      this.#log('info', { kind: previous.kind, id: previous.id }, 'ca: CA key dropped');
    }
  }

  /** Adopts a new upstream intermediate: journaled prepared, then made active in place of `previous`. */
  async adopt(record: NewKeyRecord, privateKey: KeyObject, previous: LiveKey, now: number): Promise<void> {
    await this.add(record, privateKey, 'prepared');
    await this.#store.setCaKeyState(record.id, 'active');
    this.#retire(previous, now);
    this.#log('info', { id: record.id, previous: previous.id }, 'ca: adopted a new upstream intermediate');
  }

  /**
   * Start-up clean-up after a crash: temporary files, and (with a non-empty journal) key files no
   * record names. With an empty journal the files may be an earlier CA's: kept.
   */
  removeLeftovers(records: readonly CaKeyRecord[]): void {
    removeStaleTempFiles(this.#keyDir);
    if (records.length === 0) return;
    const referenced = new Set(records.flatMap((r) => (r.keyPath === undefined ? [] : [basename(r.keyPath)])));
    for (const file of removeOrphanKeyFiles(this.#keyDir, referenced)) {
      this.#log('info', { keyDir: this.#keyDir, file }, 'ca: removed a key file that no journal record references');
    }
  }

  /** Removes the files of old and dropped keys that a crash left behind. */
  async removeRetiredKeyFiles(): Promise<void> {
    for (const r of await this.#store.listCaKeys()) {
      if ((r.state === 'old' || r.state === 'dropped') && r.keyPath !== undefined) {
        removeFile(keyFileIn(this.#keyDir, r.keyPath));
      }
    }
  }

  /** Reads ca-state.json and takes its retirement times; an unreadable file counts as none. */
  readState(): SavedState {
    const retired = new Map<string, number>();
    let text: string | undefined;
    try {
      text = readOptionalFile(join(this.#keyDir, STATE_FILE));
    } catch (err) {
      this.#log('warn', { error: errorDetail(err) }, `ca: cannot read ${STATE_FILE}; the bundle will be republished`);
    }
    let saved: SavedState = { retired };
    if (text !== undefined) {
      try {
        const doc = JSON.parse(text) as { fingerprint?: unknown; retired?: unknown };
        if (doc.retired && typeof doc.retired === 'object') {
          for (const [id, at] of Object.entries(doc.retired as Record<string, unknown>)) {
            if (typeof at === 'number' && Number.isFinite(at)) retired.set(id, at);
          }
        }
        saved = { fingerprint: typeof doc.fingerprint === 'string' ? doc.fingerprint : undefined, retired };
      } catch {
        this.#log('warn', {}, `ca: ${STATE_FILE} is unreadable; the bundle will be republished`);
      }
    }
    for (const [id, at] of saved.retired) this.#retiredAt.set(id, at);
    return saved;
  }

  /** Writes ca-state.json when its content changed: the published fingerprint and the old keys' retirement times. */
  saveState(published: string | undefined, keys: readonly LiveKey[]): void {
    const retired: Record<string, number> = {};
    for (const k of keys) {
      const at = this.#retiredAt.get(k.id);
      if (k.state === 'old' && at !== undefined) retired[k.id] = at;
    }
    const text = JSON.stringify({ version: 1, fingerprint: published, retired }, null, 2) + '\n';
    if (text === this.#savedState) return;
    try {
      writeFileAtomic(this.#keyDir, STATE_FILE, text, true);
      this.#savedState = text;
    } catch (err) {
      // Advisory only: losing it costs one extra sequence number or a longer-kept old JWT key.
      this.#log('warn', { error: errorDetail(err) }, `ca: cannot write ${STATE_FILE}`);
    }
  }

  /** The key stopped signing: remember when, and delete its private key file. */
  #retire(k: LiveKey, now: number): void {
    this.#retiredAt.set(k.id, now);
    this.#forgetPrivateKey(k);
  }

  #forgetPrivateKey(k: LiveKey): void {
    this.#privateKeys.delete(k.id);
    if (k.keyPath !== undefined && !removeFile(keyFileIn(this.#keyDir, k.keyPath))) {
      this.#log('warn', { id: k.id, kind: k.kind }, 'ca: could not delete the key file of a retired CA key');
    }
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
      parsed = { publicKey: authority.key, chain: [], selfSigned: false, authority, start: end - this.#caTtlMs, end };
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
      const path = keyFileIn(this.#keyDir, r.keyPath);
      const key = readPrivateKey(path, parsed.publicKey, what, (mode) =>
        this.#log('warn', { id: r.id, mode: mode.toString(8) }, 'ca: key file was readable by others; set to 0600'),
      );
      this.#privateKeys.set(r.id, key);
      return key;
    } catch (err) {
      // Nothing has signed with a prepared key: it is dropped (and replaced) rather than refusing to start.
      if (r.state !== 'prepared') throw err;
      this.#unusable.add(r.id);
      this.#log(
        'warn',
        { id: r.id, kind: r.kind, error: errorDetail(err) },
        'ca: prepared CA key unusable; dropping it',
      );
      return undefined;
    }
  }
}
