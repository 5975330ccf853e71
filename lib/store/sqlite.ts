/**
 * The embedded datastore: one SQLite file, written through better-sqlite3.
 *
 * Durability: WAL journal with synchronous=FULL, so a transaction that returned is on disk even if
 * the daemon is killed with SIGKILL or the machine loses power right after.
 *
 * Safety of an existing file: before anything may write to it, the file's header is checked and a
 * read-only connection runs `PRAGMA quick_check`. A read-only connection never checkpoints the WAL
 * into the main file, so a file refused as corrupt, foreign or too new is left byte for byte as it
 * was, for an operator to inspect or restore.
 *
 * Lock detection: opening takes `BEGIN IMMEDIATE` (the write lock) for the schema migration step,
 * even when there is nothing to migrate. If another process holds the write lock (or an exclusive
 * lock that also blocks readers) for longer than the busy timeout, SQLite answers SQLITE_BUSY and
 * open fails with ERR_STORE_LOCKED instead of starting a CA that cannot write. The same mapping
 * applies to every later statement.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalSelectors } from '../ca-api/selectors.js';
import { isSvidkitError } from '../errors/index.js';
import { connect, invalid, isUniqueViolation, mapError, MEMORY, openStoreFile, storeError } from './sqlite-open.js';
import {
  type AgentRenewal,
  type AgentUpdate,
  type AttestationType,
  type AttestedAgent,
  CA_KEY_STATES,
  type CaKeyKind,
  type CaKeyRecord,
  type CaKeyState,
  type Datastore,
  type EntryFilter,
  type JoinToken,
  type NewCaKeyRecord,
  type NewRegistrationEntry,
  type RegistrationEntry,
} from './types.js';

/** SQLite's busy timeout when none is given: how long to wait for another writer. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/** Options for SqliteStore.open. */
export interface SqliteStoreOptions {
  /** Milliseconds to wait for another connection's lock before failing with ERR_STORE_LOCKED. */
  busyTimeoutMs?: number;
  /** Source of createdAt/updatedAt; lets the CA's tests pin time. */
  clock?: () => Date;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

// ---------------------------------------------------------------------------------------------
// Input checks and conversions
// ---------------------------------------------------------------------------------------------

function millis(value: Date, field: string): number {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (!Number.isFinite(ms)) throw invalid(`${field} is not a valid date`);
  return ms;
}

function nonEmpty(value: string, field: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} must be a non-empty string`);
  return value;
}

function positiveInteger(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw invalid(`${field} must be a positive integer`);
  return value;
}

function checkHash(hash: string): string {
  // Refusing anything but a digest keeps a raw token from being stored by mistake.
  if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
    throw invalid('a join token must be given as its lowercase hex SHA-256 (hashJoinToken in lib/attest)');
  }
  return hash;
}

function rank(state: CaKeyState): number {
  return CA_KEY_STATES.indexOf(state);
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

interface EntryRow {
  id: string;
  spiffe_id: string;
  parent_id: string;
  x509_svid_ttl_seconds: number;
  jwt_svid_ttl_seconds: number;
  dns_names: string;
  selectors: string;
  created_at: number;
}

interface TokenRow {
  hash: string;
  expires_at: number;
  created_at: number;
}

interface AgentRow {
  spiffe_id: string;
  attestation_type: AttestationType;
  serial: string;
  previous_serial: string | null;
  expires_at: number;
  banned: number;
  created_at: number;
  updated_at: number;
}

interface CaKeyRow {
  id: string;
  kind: CaKeyKind;
  state: CaKeyState;
  not_after: number;
  public_data: string;
  key_path: string | null;
  tainted: number;
  created_at: number;
  updated_at: number;
}

// Explicit column lists keep row shapes stable when a later migration adds columns.
const ENTRY_COLUMNS =
  'id, spiffe_id, parent_id, x509_svid_ttl_seconds, jwt_svid_ttl_seconds, dns_names, selectors, created_at';
const AGENT_COLUMNS =
  'spiffe_id, attestation_type, serial, previous_serial, expires_at, banned, created_at, updated_at';
const CA_KEY_COLUMNS = 'id, kind, state, not_after, public_data, key_path, tainted, created_at, updated_at';

function toEntry(row: EntryRow): RegistrationEntry {
  let dnsNames: unknown;
  try {
    dnsNames = JSON.parse(row.dns_names);
  } catch (err) {
    throw storeError('ERR_STORE_CORRUPT', `entry ${row.id} has unreadable DNS names`, err);
  }
  if (!Array.isArray(dnsNames) || !dnsNames.every((n) => typeof n === 'string')) {
    throw storeError('ERR_STORE_CORRUPT', `entry ${row.id} has unreadable DNS names`);
  }
  return {
    id: row.id,
    spiffeId: row.spiffe_id,
    parentId: row.parent_id,
    x509SvidTtlSeconds: row.x509_svid_ttl_seconds,
    jwtSvidTtlSeconds: row.jwt_svid_ttl_seconds,
    dnsNames,
    selectors: storedSelectors(row),
    createdAt: new Date(row.created_at),
  };
}

// Selectors decide who gets an identity, so a stored list is checked again on the way out: a row
// edited by hand (or by a broken build) into something non-canonical is reported, never served.
function storedSelectors(row: EntryRow): string[] {
  // Most entries (every file workload's) have none; they skip the parse on the issuance path.
  if (row.selectors === '[]') return [];
  let list: unknown;
  try {
    list = JSON.parse(row.selectors);
  } catch (err) {
    throw storeError('ERR_STORE_CORRUPT', `entry ${row.id} has unreadable selectors`, err);
  }
  let canonical: string[];
  try {
    canonical = canonicalSelectors(list);
  } catch (err) {
    throw storeError('ERR_STORE_CORRUPT', `entry ${row.id} has invalid selectors`, err);
  }
  if (JSON.stringify(canonical) !== row.selectors) {
    throw storeError('ERR_STORE_CORRUPT', `entry ${row.id} has selectors out of their canonical order`);
  }
  return canonical;
}

function checkSelectors(selectors: readonly string[] | undefined): string {
  try {
    return JSON.stringify(canonicalSelectors(selectors ?? []));
  } catch (err) {
    // The CA checks selectors before it writes; one reaching the store unchecked is a bug.
    if (isSvidkitError(err)) throw invalid(`selectors: ${err.plainMessage}`);
    throw err;
  }
}

function toToken(row: TokenRow): JoinToken {
  return { hash: row.hash, expiresAt: new Date(row.expires_at), createdAt: new Date(row.created_at) };
}

function toAgent(row: AgentRow): AttestedAgent {
  const agent: AttestedAgent = {
    spiffeId: row.spiffe_id,
    attestationType: row.attestation_type,
    serial: row.serial,
    expiresAt: new Date(row.expires_at),
    banned: row.banned === 1,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  if (row.previous_serial !== null) agent.previousSerial = row.previous_serial;
  return agent;
}

function toCaKey(row: CaKeyRow): CaKeyRecord {
  const key: CaKeyRecord = {
    id: row.id,
    kind: row.kind,
    state: row.state,
    notAfter: new Date(row.not_after),
    publicData: row.public_data,
    tainted: row.tainted === 1,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  // Left out rather than undefined, so a record read back equals the one that was written.
  if (row.key_path !== null) key.keyPath = row.key_path;
  return key;
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

function prepareStatements(db: Database.Database) {
  return {
    insertEntry: db.prepare<
      {
        id: string;
        spiffeId: string;
        parentId: string;
        x509: number;
        jwt: number;
        dnsNames: string;
        selectors: string;
        createdAt: number;
      },
      EntryRow
    >(
      `INSERT INTO registration_entries (${ENTRY_COLUMNS})
       VALUES (@id, @spiffeId, @parentId, @x509, @jwt, @dnsNames, @selectors, @createdAt) RETURNING ${ENTRY_COLUMNS}`,
    ),
    getEntry: db.prepare<[string], EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM registration_entries WHERE id = ?`),
    listEntries: db.prepare<[], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM registration_entries ORDER BY created_at, rowid`,
    ),
    listEntriesByParent: db.prepare<[string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM registration_entries WHERE parent_id = ? ORDER BY created_at, rowid`,
    ),
    listEntriesBySpiffeId: db.prepare<[string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM registration_entries WHERE spiffe_id = ? ORDER BY created_at, rowid`,
    ),
    listEntriesByBoth: db.prepare<[string, string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM registration_entries WHERE parent_id = ? AND spiffe_id = ?
       ORDER BY created_at, rowid`,
    ),
    deleteEntry: db.prepare<[string]>('DELETE FROM registration_entries WHERE id = ?'),

    insertToken: db.prepare<[string, number, number], TokenRow>(
      'INSERT INTO join_tokens (hash, expires_at, created_at) VALUES (?, ?, ?) RETURNING hash, expires_at, created_at',
    ),
    // The WHERE clause is the whole single-use guarantee: only one UPDATE can flip used from 0.
    consumeToken: db.prepare<{ hash: string; now: number }>(
      'UPDATE join_tokens SET used = 1, used_at = @now WHERE hash = @hash AND used = 0 AND expires_at > @now',
    ),

    upsertAgent: db.prepare<
      { spiffeId: string; attestationType: AttestationType; serial: string; expiresAt: number; now: number },
      AgentRow
    >(
      `INSERT INTO attested_agents (${AGENT_COLUMNS})
       VALUES (@spiffeId, @attestationType, @serial, NULL, @expiresAt, 0, @now, @now)
       ON CONFLICT (spiffe_id) DO UPDATE SET
         attestation_type = excluded.attestation_type,
         serial = excluded.serial,
         previous_serial = NULL,
         expires_at = excluded.expires_at,
         updated_at = excluded.updated_at
       RETURNING ${AGENT_COLUMNS}`,
    ),
    // The WHERE clause is the whole check: a superseded or banned SVID cannot move the record.
    renewAgent: db.prepare<
      { spiffeId: string; presented: string; serial: string; expiresAt: number; now: number },
      AgentRow
    >(
      `UPDATE attested_agents SET
         previous_serial = @presented, serial = @serial, expires_at = @expiresAt, updated_at = @now
       WHERE spiffe_id = @spiffeId AND banned = 0 AND (serial = @presented OR previous_serial = @presented)
       RETURNING ${AGENT_COLUMNS}`,
    ),
    confirmAgentSerial: db.prepare<{ spiffeId: string; serial: string }>(
      `UPDATE attested_agents SET previous_serial = NULL
       WHERE spiffe_id = @spiffeId AND serial = @serial AND previous_serial IS NOT NULL`,
    ),
    getAgent: db.prepare<[string], AgentRow>(`SELECT ${AGENT_COLUMNS} FROM attested_agents WHERE spiffe_id = ?`),
    listAgents: db.prepare<[], AgentRow>(`SELECT ${AGENT_COLUMNS} FROM attested_agents ORDER BY spiffe_id`),
    banAgent: db.prepare<{ spiffeId: string; now: number }, AgentRow>(
      `UPDATE attested_agents SET banned = 1, updated_at = CASE WHEN banned = 1 THEN updated_at ELSE @now END
       WHERE spiffe_id = @spiffeId RETURNING ${AGENT_COLUMNS}`,
    ),
    isBanned: db.prepare<[string], number>('SELECT banned FROM attested_agents WHERE spiffe_id = ?').pluck(),

    getCaKey: db.prepare<[string], CaKeyRow>(`SELECT ${CA_KEY_COLUMNS} FROM ca_keys WHERE id = ?`),
    activeCaKey: db.prepare<[CaKeyKind], string>("SELECT id FROM ca_keys WHERE kind = ? AND state = 'active'").pluck(),
    listCaKeys: db.prepare<[], CaKeyRow>(`SELECT ${CA_KEY_COLUMNS} FROM ca_keys ORDER BY created_at, rowid`),
    listCaKeysByKind: db.prepare<[CaKeyKind], CaKeyRow>(
      `SELECT ${CA_KEY_COLUMNS} FROM ca_keys WHERE kind = ? ORDER BY created_at, rowid`,
    ),
    insertCaKey: db.prepare<
      {
        id: string;
        kind: CaKeyKind;
        state: CaKeyState;
        notAfter: number;
        publicData: string;
        keyPath: string | null;
        tainted: number;
        now: number;
      },
      CaKeyRow
    >(
      `INSERT INTO ca_keys (${CA_KEY_COLUMNS})
       VALUES (@id, @kind, @state, @notAfter, @publicData, @keyPath, @tainted, @now, @now)
       RETURNING ${CA_KEY_COLUMNS}`,
    ),
    retireActiveCaKey: db.prepare<{ kind: CaKeyKind; now: number }>(
      "UPDATE ca_keys SET state = 'old', updated_at = @now WHERE kind = @kind AND state = 'active'",
    ),
    setCaKeyState: db.prepare<{ id: string; state: CaKeyState; now: number }, CaKeyRow>(
      `UPDATE ca_keys SET state = @state, updated_at = @now WHERE id = @id RETURNING ${CA_KEY_COLUMNS}`,
    ),
    taintCaKey: db.prepare<{ id: string; now: number }, CaKeyRow>(
      `UPDATE ca_keys SET tainted = 1, updated_at = CASE WHEN tainted = 1 THEN updated_at ELSE @now END
       WHERE id = @id RETURNING ${CA_KEY_COLUMNS}`,
    ),

    nextBundleSequence: db
      .prepare<[], number>('UPDATE bundle_sequence SET value = value + 1 WHERE id = 1 RETURNING value')
      .pluck(),
    currentBundleSequence: db.prepare<[], number>('SELECT value FROM bundle_sequence WHERE id = 1').pluck(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** The SQLite Datastore; open it with SqliteStore.open. */
export class SqliteStore implements Datastore {
  /** Absolute path of the database file, or ':memory:'. */
  readonly path: string;
  private readonly db: Database.Database;
  private readonly clock: () => Date;
  private readonly stmts: Statements;
  private readonly consumeTx: Database.Transaction<(hash: string, now: number) => boolean>;
  private readonly putCaKeyTx: Database.Transaction<(key: NewCaKeyRecord, now: number) => CaKeyRow>;
  private readonly setCaKeyStateTx: Database.Transaction<(id: string, state: CaKeyState, now: number) => CaKeyRow>;
  private closed = false;

  /**
   * Opens (creating if missing, with a 0700 directory and a 0600 file) the store at `path`, or an
   * in-memory store for ':memory:'. Fails with ERR_STORE_CORRUPT for a damaged, foreign or newer
   * file, ERR_STORE_LOCKED when another process keeps the write lock past the busy timeout, and
   * ERR_STORE_IO for filesystem errors.
   */
  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw invalid('busyTimeoutMs must be a non-negative integer');
    }
    const clock = options.clock ?? (() => new Date());
    if (path === MEMORY) return new SqliteStore(connect(MEMORY, busyTimeoutMs), clock, MEMORY);
    nonEmpty(path, 'path');
    const file = resolve(path);
    return new SqliteStore(openStoreFile(file, busyTimeoutMs), clock, file);
  }

  private constructor(db: Database.Database, clock: () => Date, path: string) {
    this.db = db;
    this.clock = clock;
    this.path = path;
    try {
      this.stmts = prepareStatements(db);
    } catch (err) {
      db.close();
      throw mapError(err, `open ${path}`);
    }
    const s = this.stmts;

    this.consumeTx = db.transaction((hash: string, now: number) => s.consumeToken.run({ hash, now }).changes === 1);

    this.putCaKeyTx = db.transaction((key: NewCaKeyRecord, now: number): CaKeyRow => {
      if (s.getCaKey.get(key.id) !== undefined) {
        throw storeError('ERR_STORE_CONFLICT', `a CA key with id ${key.id} already exists`);
      }
      if (key.state === 'active') {
        if (key.tainted === true) throw storeError('ERR_STORE_CONFLICT', 'a tainted CA key cannot be active');
        if (s.activeCaKey.get(key.kind) !== undefined) {
          throw storeError('ERR_STORE_CONFLICT', `an active ${key.kind} CA key already exists`);
        }
      }
      return s.insertCaKey.get({
        id: key.id,
        kind: key.kind,
        state: key.state,
        notAfter: millis(key.notAfter, 'notAfter'),
        publicData: key.publicData,
        keyPath: key.keyPath ?? null,
        tainted: key.tainted === true ? 1 : 0,
        now,
      })!;
    });

    this.setCaKeyStateTx = db.transaction((id: string, state: CaKeyState, now: number): CaKeyRow => {
      const row = s.getCaKey.get(id);
      if (row === undefined) throw storeError('ERR_STORE_NOT_FOUND', `no CA key with id ${id}`);
      if (row.state === state) return row;
      if (rank(state) < rank(row.state)) {
        throw storeError('ERR_STORE_CONFLICT', `CA key ${id} cannot move back from ${row.state} to ${state}`);
      }
      if (state === 'active') {
        if (row.tainted === 1) throw storeError('ERR_STORE_CONFLICT', `CA key ${id} is tainted and cannot be active`);
        s.retireActiveCaKey.run({ kind: row.kind, now });
      }
      return s.setCaKeyState.get({ id, state, now })!;
    });
  }

  // Every public method goes through here, so a closed store and SQLite errors look the same everywhere.
  private run<T>(action: string, fn: () => T, conflict?: string): T {
    if (this.closed) throw storeError('ERR_STORE_IO', `${action}: the store is closed`);
    try {
      return fn();
    } catch (err) {
      if (conflict !== undefined && isUniqueViolation(err)) throw storeError('ERR_STORE_CONFLICT', conflict, err);
      throw mapError(err, action);
    }
  }

  private now(): number {
    return millis(this.clock(), 'clock()');
  }

  async createEntry(entry: NewRegistrationEntry): Promise<RegistrationEntry> {
    const params = {
      id: randomUUID(),
      spiffeId: nonEmpty(entry.spiffeId, 'spiffeId'),
      parentId: nonEmpty(entry.parentId, 'parentId'),
      x509: positiveInteger(entry.x509SvidTtlSeconds, 'x509SvidTtlSeconds'),
      jwt: positiveInteger(entry.jwtSvidTtlSeconds, 'jwtSvidTtlSeconds'),
      dnsNames: JSON.stringify(checkDnsNames(entry.dnsNames)),
      selectors: checkSelectors(entry.selectors),
      createdAt: this.now(),
    };
    const withSelectors = params.selectors === '[]' ? 'no selectors' : 'the same selectors';
    return this.run(
      'create entry',
      () => toEntry(this.stmts.insertEntry.get(params)!),
      `an entry for ${entry.spiffeId} under parent ${entry.parentId} with ${withSelectors} already exists`,
    );
  }

  async getEntry(id: string): Promise<RegistrationEntry | undefined> {
    return this.run('get entry', () => {
      const row = this.stmts.getEntry.get(id);
      return row === undefined ? undefined : toEntry(row);
    });
  }

  async listEntries(filter: EntryFilter = {}): Promise<RegistrationEntry[]> {
    const { parentId, spiffeId } = filter;
    return this.run('list entries', () => {
      const s = this.stmts;
      let rows: EntryRow[];
      if (parentId !== undefined && spiffeId !== undefined) rows = s.listEntriesByBoth.all(parentId, spiffeId);
      else if (parentId !== undefined) rows = s.listEntriesByParent.all(parentId);
      else if (spiffeId !== undefined) rows = s.listEntriesBySpiffeId.all(spiffeId);
      else rows = s.listEntries.all();
      return rows.map(toEntry);
    });
  }

  async deleteEntry(id: string): Promise<void> {
    this.run('delete entry', () => {
      if (this.stmts.deleteEntry.run(id).changes === 0) {
        throw storeError('ERR_STORE_NOT_FOUND', `no registration entry with id ${id}`);
      }
    });
  }

  async createJoinToken(hash: string, expiresAt: Date): Promise<JoinToken> {
    checkHash(hash);
    const expires = millis(expiresAt, 'expiresAt');
    const now = this.now();
    return this.run(
      'create join token',
      () => toToken(this.stmts.insertToken.get(hash, expires, now)!),
      'this join token already exists',
    );
  }

  async consumeJoinToken(hash: string, now: Date): Promise<boolean> {
    checkHash(hash);
    const at = millis(now, 'now');
    // IMMEDIATE so that across processes the check and the mark happen under one write lock.
    return this.run('consume join token', () => this.consumeTx.immediate(hash, at));
  }

  async upsertAgent(agent: AgentUpdate): Promise<AttestedAgent> {
    if (agent.attestationType !== 'join_token' && agent.attestationType !== 'k8s_psat') {
      throw invalid('attestationType must be join_token or k8s_psat');
    }
    const params = {
      spiffeId: nonEmpty(agent.spiffeId, 'spiffeId'),
      attestationType: agent.attestationType,
      serial: nonEmpty(agent.serial, 'serial'),
      expiresAt: millis(agent.expiresAt, 'expiresAt'),
      now: this.now(),
    };
    return this.run('upsert agent', () => toAgent(this.stmts.upsertAgent.get(params)!));
  }

  async renewAgent(renewal: AgentRenewal): Promise<AttestedAgent | undefined> {
    const params = {
      spiffeId: nonEmpty(renewal.spiffeId, 'spiffeId'),
      presented: nonEmpty(renewal.presentedSerial, 'presentedSerial'),
      serial: nonEmpty(renewal.serial, 'serial'),
      expiresAt: millis(renewal.expiresAt, 'expiresAt'),
      now: this.now(),
    };
    if (params.serial === params.presented) throw invalid('the new serial must differ from the presented one');
    return this.run('renew agent', () => {
      const row = this.stmts.renewAgent.get(params);
      return row === undefined ? undefined : toAgent(row);
    });
  }

  async confirmAgentSerial(spiffeId: string, serial: string): Promise<void> {
    const params = { spiffeId: nonEmpty(spiffeId, 'spiffeId'), serial: nonEmpty(serial, 'serial') };
    await this.run('confirm agent serial', () => {
      this.stmts.confirmAgentSerial.run(params);
    });
  }

  async getAgent(spiffeId: string): Promise<AttestedAgent | undefined> {
    return this.run('get agent', () => {
      const row = this.stmts.getAgent.get(spiffeId);
      return row === undefined ? undefined : toAgent(row);
    });
  }

  async listAgents(): Promise<AttestedAgent[]> {
    return this.run('list agents', () => this.stmts.listAgents.all().map(toAgent));
  }

  async banAgent(spiffeId: string): Promise<AttestedAgent> {
    const now = this.now();
    return this.run('ban agent', () => {
      const row = this.stmts.banAgent.get({ spiffeId, now });
      if (row === undefined) throw storeError('ERR_STORE_NOT_FOUND', `no attested agent ${spiffeId}`);
      return toAgent(row);
    });
  }

  async isBanned(spiffeId: string): Promise<boolean> {
    return this.run('check agent ban', () => this.stmts.isBanned.get(spiffeId) === 1);
  }

  async putCaKey(key: NewCaKeyRecord): Promise<CaKeyRecord> {
    nonEmpty(key.id, 'id');
    nonEmpty(key.publicData, 'publicData');
    if (key.kind !== 'x509' && key.kind !== 'jwt') throw invalid('kind must be x509 or jwt');
    if (!CA_KEY_STATES.includes(key.state)) throw invalid(`state must be one of ${CA_KEY_STATES.join(', ')}`);
    if (key.keyPath !== undefined) nonEmpty(key.keyPath, 'keyPath');
    millis(key.notAfter, 'notAfter');
    const now = this.now();
    return this.run('put CA key', () => toCaKey(this.putCaKeyTx.immediate(key, now)));
  }

  async listCaKeys(kind?: CaKeyKind): Promise<CaKeyRecord[]> {
    return this.run('list CA keys', () =>
      (kind === undefined ? this.stmts.listCaKeys.all() : this.stmts.listCaKeysByKind.all(kind)).map(toCaKey),
    );
  }

  async setCaKeyState(id: string, state: CaKeyState): Promise<CaKeyRecord> {
    if (!CA_KEY_STATES.includes(state)) throw invalid(`state must be one of ${CA_KEY_STATES.join(', ')}`);
    const now = this.now();
    return this.run('set CA key state', () => toCaKey(this.setCaKeyStateTx.immediate(id, state, now)));
  }

  async taintCaKey(id: string): Promise<CaKeyRecord> {
    const now = this.now();
    return this.run('taint CA key', () => {
      const row = this.stmts.taintCaKey.get({ id, now });
      if (row === undefined) throw storeError('ERR_STORE_NOT_FOUND', `no CA key with id ${id}`);
      return toCaKey(row);
    });
  }

  async nextBundleSequence(): Promise<number> {
    return this.run('next bundle sequence', () => this.stmts.nextBundleSequence.get()!);
  }

  async currentBundleSequence(): Promise<number> {
    return this.run('current bundle sequence', () => this.stmts.currentBundleSequence.get()!);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // Closing the last connection checkpoints the WAL into the main file and removes it.
      this.db.close();
    } catch (err) {
      throw mapError(err, `close ${this.path}`);
    }
  }
}

function checkDnsNames(names: string[]): string[] {
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && n.length > 0)) {
    throw invalid('dnsNames must be an array of non-empty strings');
  }
  return names;
}
