/**
 * The SQLite schema as an ordered list of migrations. A released migration is never edited: a
 * store opened by an older release must reach the same schema as a fresh one.
 */

/** One step of the schema; `version` is the schema version after it has run. */
export interface Migration {
  version: number;
  sql: string;
}

// STRICT tables make SQLite refuse a value of the wrong type instead of silently storing it, which
// is the behaviour the PostgreSQL implementation will have. Times are integer milliseconds (UTC).
const V1 = `
CREATE TABLE registration_entries (
  id TEXT PRIMARY KEY NOT NULL,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  x509_svid_ttl_seconds INTEGER NOT NULL,
  jwt_svid_ttl_seconds INTEGER NOT NULL,
  dns_names TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (parent_id, spiffe_id)
) STRICT;
CREATE INDEX registration_entries_by_spiffe_id ON registration_entries (spiffe_id);

CREATE TABLE join_tokens (
  hash TEXT PRIMARY KEY NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
  used_at INTEGER
) STRICT;

CREATE TABLE attested_agents (
  spiffe_id TEXT PRIMARY KEY NOT NULL,
  attestation_type TEXT NOT NULL CHECK (attestation_type IN ('join_token', 'k8s_psat')),
  serial TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  banned INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE ca_keys (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('x509', 'jwt')),
  state TEXT NOT NULL CHECK (state IN ('prepared', 'active', 'old', 'dropped')),
  not_after INTEGER NOT NULL,
  public_data TEXT NOT NULL,
  key_path TEXT,
  tainted INTEGER NOT NULL DEFAULT 0 CHECK (tainted IN (0, 1)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
-- The last line of defence against two CAs of one kind signing at once.
CREATE UNIQUE INDEX ca_keys_one_active_per_kind ON ca_keys (kind) WHERE state = 'active';

CREATE TABLE bundle_sequence (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
) STRICT;
INSERT INTO bundle_sequence (id, value) VALUES (1, 0);
`;

// The serial of the agent SVID issued just before the current one: still accepted until the agent
// presents the current one, so a crash between receiving a renewed SVID and saving it does not lock
// the agent out. Existing agents start with none, which is what a fresh attestation gives.
const V2 = `
ALTER TABLE attested_agents ADD COLUMN previous_serial TEXT;
`;

// Registration entries gain their Workload API selectors: a JSON array of canonical selectors
// (sorted and de-duplicated), so equal sets are equal text and the uniqueness of (parent_id,
// spiffe_id, selectors) is SPIRE's rule. Existing entries get none, which keeps them serving the
// agents' file workloads as before. SQLite cannot change a table's UNIQUE constraint in place, so
// the table is rebuilt, keeping each row's rowid (the tie-break of listEntries' order).
const V3 = `
CREATE TABLE registration_entries_v3 (
  id TEXT PRIMARY KEY NOT NULL,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  x509_svid_ttl_seconds INTEGER NOT NULL,
  jwt_svid_ttl_seconds INTEGER NOT NULL,
  dns_names TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  selectors TEXT NOT NULL DEFAULT '[]',
  UNIQUE (parent_id, spiffe_id, selectors)
) STRICT;
INSERT INTO registration_entries_v3
  (rowid, id, spiffe_id, parent_id, x509_svid_ttl_seconds, jwt_svid_ttl_seconds, dns_names, created_at, selectors)
  SELECT rowid, id, spiffe_id, parent_id, x509_svid_ttl_seconds, jwt_svid_ttl_seconds, dns_names, created_at, '[]'
  FROM registration_entries;
DROP TABLE registration_entries;
ALTER TABLE registration_entries_v3 RENAME TO registration_entries;
CREATE INDEX registration_entries_by_spiffe_id ON registration_entries (spiffe_id);
`;

/** Every migration, in order; the last one's version is the newest schema this code knows. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: V1 },
  { version: 2, sql: V2 },
  { version: 3, sql: V3 },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Holds the single schema-version row; created before any migration runs. */
export const SCHEMA_TABLE_SQL = `CREATE TABLE IF NOT EXISTS svidkit_schema (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
) STRICT`;
