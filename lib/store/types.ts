/**
 * The CA daemon's datastore contract. Every method is async, although SQLite answers synchronously,
 * so that a PostgreSQL implementation for several CA replicas can follow without changing callers.
 *
 * Errors are SvidkitErrors with ERR_STORE_* codes; messages start with "store: ". A value the types
 * forbid (a raw join token instead of its hash, a zero TTL, an invalid Date) is a caller bug and
 * fails with ERR_INTERNAL.
 */

/** How an agent proved its identity to the CA. */
export type AttestationType = 'join_token' | 'k8s_psat';

/** Which CA key family a journal record belongs to. */
export type CaKeyKind = 'x509' | 'jwt';

/** Lifecycle of a CA key; it only ever moves forward in this order. */
export type CaKeyState = 'prepared' | 'active' | 'old' | 'dropped';

/** Every CA key state, in lifecycle order. */
export const CA_KEY_STATES: readonly CaKeyState[] = ['prepared', 'active', 'old', 'dropped'];

/** A workload (or agent-alias) registration: which SPIFFE ID a parent may obtain SVIDs for. */
export interface RegistrationEntry {
  /** Server-generated UUID. */
  id: string;
  spiffeId: string;
  parentId: string;
  x509SvidTtlSeconds: number;
  jwtSvidTtlSeconds: number;
  dnsNames: string[];
  /**
   * The Workload API selectors (`unix:uid:1000`), canonical: checked, de-duplicated and sorted by
   * lib/ca-api's canonicalSelectors. Empty for an entry that serves configured file workloads.
   */
  selectors: string[];
  createdAt: Date;
}

/**
 * What a caller supplies to create an entry; the store assigns id and createdAt, and stores the
 * selectors in their canonical form (absent means none).
 */
export type NewRegistrationEntry = Omit<RegistrationEntry, 'id' | 'createdAt' | 'selectors'> & {
  selectors?: readonly string[];
};

/** Filters for listEntries; an absent field matches everything. */
export interface EntryFilter {
  parentId?: string;
  spiffeId?: string;
}

/** A one-time join token, known to the store only by its SHA-256 hash. */
export interface JoinToken {
  /** Lowercase hex SHA-256 of the token (hashJoinToken in lib/attest computes it). */
  hash: string;
  expiresAt: Date;
  createdAt: Date;
}

/** A node agent that attested to the CA. */
export interface AttestedAgent {
  spiffeId: string;
  attestationType: AttestationType;
  /** Serial number (hex) of the agent's current X.509-SVID. */
  serial: string;
  /**
   * Serial of the SVID the current one replaced, while the agent may not have saved the new one yet;
   * absent once the agent has presented the current SVID, and after a (re-)attestation.
   */
  previousSerial?: string;
  /** When the agent's current SVID expires. */
  expiresAt: Date;
  banned: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** What the CA writes on each attestation; banned and createdAt are kept by the store. */
export type AgentUpdate = Pick<AttestedAgent, 'spiffeId' | 'attestationType' | 'serial' | 'expiresAt'>;

/** What the CA writes when an agent renews: the new SVID, and the serial of the one that asked. */
export interface AgentRenewal {
  spiffeId: string;
  /** Serial of the SVID the agent authenticated the renewal with. */
  presentedSerial: string;
  /** Serial of the newly issued SVID. */
  serial: string;
  expiresAt: Date;
}

/** One CA signing key in the rotation journal. */
export interface CaKeyRecord {
  id: string;
  kind: CaKeyKind;
  state: CaKeyState;
  notAfter: Date;
  /** Certificate PEM for x509 keys, public JWK JSON for jwt keys. */
  publicData: string;
  /** Where the private key lives, when it is kept in a file. */
  keyPath?: string;
  tainted: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** What a caller supplies to journal a new CA key; tainted defaults to false. */
export type NewCaKeyRecord = Omit<CaKeyRecord, 'createdAt' | 'updatedAt' | 'tainted'> & { tainted?: boolean };

/** Persistent state of the CA daemon. */
export interface Datastore {
  /**
   * Stores a new entry; ERR_STORE_CONFLICT when an entry with the same spiffeId, parentId and set of
   * selectors already exists (SPIRE's rule: the same ID may be registered again for other selectors).
   */
  createEntry(entry: NewRegistrationEntry): Promise<RegistrationEntry>;
  /** The entry with this id, or undefined. */
  getEntry(id: string): Promise<RegistrationEntry | undefined>;
  /** Entries matching every given filter field, oldest first. */
  listEntries(filter?: EntryFilter): Promise<RegistrationEntry[]>;
  /** Removes an entry; ERR_STORE_NOT_FOUND when there is none with this id. */
  deleteEntry(id: string): Promise<void>;

  /** Stores a token hash; ERR_STORE_CONFLICT when the hash is already known. */
  createJoinToken(hash: string, expiresAt: Date): Promise<JoinToken>;
  /** True exactly once for a known, unexpired token; false for unknown, expired or already used. */
  consumeJoinToken(hash: string, now: Date): Promise<boolean>;

  /**
   * Creates or refreshes an agent after an attestation; a ban and the creation time survive the
   * update, and any earlier SVID of the agent stops being current or previous.
   */
  upsertAgent(agent: AgentUpdate): Promise<AttestedAgent>;
  /**
   * Records a renewal in one step: only when the agent is not banned and the presented serial is its
   * current or previous one. The new serial becomes current and the presented one previous. Returns
   * undefined, changing nothing, when the check fails (a superseded SVID, a ban, an unknown agent).
   */
  renewAgent(renewal: AgentRenewal): Promise<AttestedAgent | undefined>;
  /** Ends the grace of the previous serial once the agent has presented `serial`, its current one. */
  confirmAgentSerial(spiffeId: string, serial: string): Promise<void>;
  /** The agent with this SPIFFE ID, or undefined. */
  getAgent(spiffeId: string): Promise<AttestedAgent | undefined>;
  /** All agents, ordered by SPIFFE ID. */
  listAgents(): Promise<AttestedAgent[]>;
  /** Bans an agent; ERR_STORE_NOT_FOUND when it never attested. */
  banAgent(spiffeId: string): Promise<AttestedAgent>;
  /** True when the agent exists and is banned. */
  isBanned(spiffeId: string): Promise<boolean>;

  /** Journals a new CA key; ERR_STORE_CONFLICT when the id exists or it would be a second active key. */
  putCaKey(key: NewCaKeyRecord): Promise<CaKeyRecord>;
  /** Journaled keys, optionally of one kind, oldest first. */
  listCaKeys(kind?: CaKeyKind): Promise<CaKeyRecord[]>;
  /**
   * Moves a key forward in its lifecycle (setting the current state again is a no-op). Activating
   * a key retires the kind's previous active key to 'old' in the same transaction, so no crash
   * leaves zero or two active keys. ERR_STORE_NOT_FOUND for an unknown id; ERR_STORE_CONFLICT for a
   * backward move or for activating a tainted key.
   */
  setCaKeyState(id: string, state: CaKeyState): Promise<CaKeyRecord>;
  /** Marks a key as not to be trusted for new work; ERR_STORE_NOT_FOUND for an unknown id. */
  taintCaKey(id: string): Promise<CaKeyRecord>;

  /** Increments the trust bundle's sequence number and returns the new value (the first is 1). */
  nextBundleSequence(): Promise<number>;
  /** The last value nextBundleSequence returned, or 0 before the first call. */
  currentBundleSequence(): Promise<number>;

  /** Releases the store; further calls fail with ERR_STORE_IO. Calling it twice is harmless. */
  close(): Promise<void>;
}
