/**
 * Opening the embedded datastore's file safely, and the mapping of SQLite's failures to store errors:
 * the file is created private, an existing one is inspected read-only (header, schema version,
 * `PRAGMA quick_check`) before anything may write to it, and the migration takes the write lock.
 */
import { chmodSync, closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import { MIGRATIONS, SCHEMA_TABLE_SQL, SCHEMA_VERSION } from './schema.js';

/** The path that opens an in-memory database. */
export const MEMORY = ':memory:';
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const SQLITE_HEADER_SIZE = 100;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A SvidkitError of the store: `store: ` and the message. */
export function storeError(code: ErrorCode, message: string, cause?: unknown): SvidkitError {
  return new SvidkitError(code, `store: ${message}`, cause === undefined ? undefined : { cause });
}

/** ERR_STORE_INVALID: a caller passed a value the types forbid, a bug in svidkit rather than an operator mistake. */
export function invalid(message: string): SvidkitError {
  return storeError('ERR_INTERNAL', message);
}

function sqliteCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('SQLITE_')) {
    return err.code;
  }
  return undefined;
}

/** True for SQLite's unique-constraint failure. */
export function isUniqueViolation(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * A SQLite failure as a store error (locked, corrupt, conflict, other). SQLite's messages never contain
 * bound values, so passing them on cannot leak a token hash.
 */
export function mapError(err: unknown, action: string): SvidkitError {
  if (err instanceof SvidkitError) return err;
  const code = sqliteCode(err);
  if (code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return storeError('ERR_STORE_LOCKED', `${action}: the database is locked by another connection`, err);
  }
  if (code !== undefined && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) {
    return storeError('ERR_STORE_CORRUPT', `${action}: the database is corrupt (${code})`, err);
  }
  if (isUniqueViolation(err)) {
    return storeError('ERR_STORE_CONFLICT', `${action}: a record with the same key already exists`, err);
  }
  const detail = err instanceof Error ? err.message : String(err);
  return storeError('ERR_STORE_IO', `${action}: ${detail}`, err);
}

// ---------------------------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------------------------

// Returns true when this call created the file, false when it was already there.
function createStoreFile(file: string): boolean {
  const dir = dirname(file);
  try {
    // Only a directory we create is tightened; an existing one (say /var/lib) is the operator's.
    if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(dir, 0o700);
  } catch (err) {
    throw mapError(err, `create directory ${dir}`);
  }
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'EEXIST') return false;
    throw mapError(err, `create ${file}`);
  }
  try {
    // The umask may have narrowed the mode further; the CA's keys journal must be exactly owner-only.
    fchmodSync(fd, 0o600);
    fsyncSync(fd);
  } catch (err) {
    throw mapError(err, `create ${file}`);
  } finally {
    closeSync(fd);
  }
  // SQLite syncs the directory for its own journal files, not for a database file we created.
  syncDirectory(dir);
  return true;
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw mapError(err, `sync directory ${dir}`);
  }
}

function readHeader(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(SQLITE_HEADER_SIZE);
    const n = readSync(fd, buf, 0, SQLITE_HEADER_SIZE, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function newerSchema(file: string, version: number): SvidkitError {
  return storeError(
    'ERR_STORE_CORRUPT',
    `${file} has schema version ${version}, newer than the ${SCHEMA_VERSION} this svidkit knows; ` +
      'refusing to open it (upgrade svidkit, or restore a backup)',
  );
}

// Everything here reads only, so refusing the file leaves it untouched.
function inspectExisting(file: string, busyTimeoutMs: number): void {
  const action = `open ${file}`;
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw storeError('ERR_STORE_IO', `${file} is not a regular file`);
    size = st.size;
    // An empty file is what SQLite itself treats as a new database, so it needs no header.
    if (size > 0) {
      const header = readHeader(file);
      if (header.length < SQLITE_HEADER_SIZE || !header.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) {
        throw storeError('ERR_STORE_CORRUPT', `${file} is not an SQLite database; refusing to use or overwrite it`);
      }
    }
  } catch (err) {
    throw mapError(err, action);
  }

  let ro: Database.Database | undefined;
  try {
    ro = new Database(file, { readonly: true, fileMustExist: true, timeout: busyTimeoutMs });
    const rows = ro.pragma('quick_check') as { quick_check: string }[];
    if (rows.length !== 1 || rows[0]?.quick_check !== 'ok') {
      const first = (rows[0]?.quick_check ?? 'no result').split('\n').join(' ').slice(0, 200);
      throw storeError(
        'ERR_STORE_CORRUPT',
        `${file} failed its integrity check (${first}); refusing to open it (restore a backup)`,
      );
    }
    const tables = ro.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[];
    if (tables.length > 0 && !tables.includes('svidkit_schema')) {
      throw storeError(
        'ERR_STORE_CORRUPT',
        `${file} is an SQLite database but not a svidkit store; refusing to add tables to it`,
      );
    }
    if (tables.includes('svidkit_schema')) {
      const version = ro.prepare('SELECT version FROM svidkit_schema WHERE id = 1').pluck().get();
      if (typeof version === 'number' && version > SCHEMA_VERSION) throw newerSchema(file, version);
    }
  } catch (err) {
    const mapped = mapError(err, action);
    if (mapped.code === 'ERR_STORE_CORRUPT' && !(err instanceof SvidkitError)) {
      throw storeError(
        'ERR_STORE_CORRUPT',
        `${file} is corrupt (${sqliteCode(err) ?? 'unreadable'}); refusing to open it (restore a backup)`,
        err,
      );
    }
    throw mapped;
  } finally {
    ro?.close();
  }
}

function migrate(db: Database.Database, file: string): void {
  // IMMEDIATE takes the write lock up front: this is also the probe that turns another process's
  // lock into ERR_STORE_LOCKED at startup rather than at the first attestation.
  db.transaction(() => {
    db.exec(SCHEMA_TABLE_SQL);
    const found = db.prepare('SELECT version FROM svidkit_schema WHERE id = 1').pluck().get();
    const current = typeof found === 'number' ? found : 0;
    if (current > SCHEMA_VERSION) throw newerSchema(file, current);
    for (const migration of MIGRATIONS) {
      if (migration.version > current) db.exec(migration.sql);
    }
    if (current < SCHEMA_VERSION) {
      db.prepare(
        'INSERT INTO svidkit_schema (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version',
      ).run(SCHEMA_VERSION);
    }
  }).immediate();
}

/** Connects to the store's file (or `:memory:`) and migrates its schema under the write lock. */
export function connect(file: string, busyTimeoutMs: number): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: file !== MEMORY, timeout: busyTimeoutMs });
    if (file !== MEMORY) {
      const mode: unknown = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal')
        throw storeError('ERR_STORE_IO', `${file}: cannot use WAL journal mode (got ${String(mode)})`);
    }
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
    return db;
  } catch (err) {
    db?.close();
    throw mapError(err, `open ${file}`);
  }
}

/** Creates the store's file private, or inspects an existing one read-only first, then connects and migrates. */
export function openStoreFile(file: string, busyTimeoutMs: number): Database.Database {
  if (!createStoreFile(file)) inspectExisting(file, busyTimeoutMs);
  return connect(file, busyTimeoutMs);
}
