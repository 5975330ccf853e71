/**
 * The CA daemon's datastore: registration entries, join tokens, attested agents, the CA key
 * journal and the bundle sequence. Callers depend on the Datastore interface; SqliteStore is the
 * embedded implementation, and a PostgreSQL one for several CA replicas can sit beside it.
 */
/** The backend-neutral contract and its records; each is documented where it is declared. */
export type {
  AgentRenewal,
  AgentUpdate,
  AttestationType,
  AttestedAgent,
  CaKeyKind,
  CaKeyRecord,
  CaKeyState,
  Datastore,
  EntryFilter,
  JoinToken,
  NewCaKeyRecord,
  NewRegistrationEntry,
  RegistrationEntry,
} from './types.js';
/** Every CA key state, in the only order a key may move through them. */
export { CA_KEY_STATES } from './types.js';
/** The embedded SQLite implementation and its options. */
export { DEFAULT_BUSY_TIMEOUT_MS, SqliteStore, type SqliteStoreOptions } from './sqlite.js';
/** The schema version this code writes; a store with a newer one is refused. */
export { SCHEMA_VERSION } from './schema.js';
