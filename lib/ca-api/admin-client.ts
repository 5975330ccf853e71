/**
 * A client of the CA's Admin service on its Unix socket, for the `svidkit` CLI and for programs that
 * manage a CA (the local mesh of `npm start`). Every call has a deadline, and every failure is a
 * SvidkitError whose code says what happened: ERR_ADMIN_UNREACHABLE (no CA on the socket, or it did
 * not answer in time: worth retrying), ERR_ADMIN_NOT_FOUND, ERR_ADMIN_INVALID (the CA refused the
 * input), ERR_ADMIN_DENIED, ERR_ADMIN_FAILED (anything else). Join tokens are never put in messages.
 */
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { type ErrorCode, SvidkitError } from '../errors/index.js';
import type { Agent__Output } from '../generated/svidkit/ca/v1/Agent.js';
import type { AdminClient as GeneratedAdminClient } from '../generated/svidkit/ca/v1/Admin.js';
import type { CaKey__Output } from '../generated/svidkit/ca/v1/CaKey.js';
import type { GetCaStatusResponse__Output } from '../generated/svidkit/ca/v1/GetCaStatusResponse.js';
import type { RegistrationEntry__Output } from '../generated/svidkit/ca/v1/RegistrationEntry.js';
import { caProto } from './proto.js';

/** Default deadline of one admin call, in milliseconds. */
export const DEFAULT_ADMIN_TIMEOUT_MS = 10_000;

/** A registration entry as the CA returns it. */
export type AdminEntry = RegistrationEntry__Output;
/** An attested agent as the CA returns it. */
export type AdminAgent = Agent__Output;
/** A CA signing key as the CA returns it. */
export type AdminCaKey = CaKey__Output;
/** The CA's trust domain, keys and current bundle. */
export type AdminCaStatus = GetCaStatusResponse__Output;

/** What createEntry needs; TTLs of 0 (or absent) take the CA's defaults. */
export interface NewEntry {
  readonly spiffeId: string;
  readonly parentId: string;
  readonly x509SvidTtlSeconds?: number;
  readonly jwtSvidTtlSeconds?: number;
  readonly dnsNames?: readonly string[];
  /** Workload API selectors (`unix:uid:1000`); none for an entry of the agent's configured file workloads. */
  readonly selectors?: readonly string[];
}

/** A join token just created: give `token` to one agent, once. */
export interface CreatedJoinToken {
  readonly token: string;
  readonly agentId: string;
  readonly expiresAt: Date;
}

const CODE_FOR_STATUS: Readonly<Partial<Record<status, ErrorCode>>> = {
  [status.UNAVAILABLE]: 'ERR_ADMIN_UNREACHABLE',
  [status.DEADLINE_EXCEEDED]: 'ERR_ADMIN_UNREACHABLE',
  [status.NOT_FOUND]: 'ERR_ADMIN_NOT_FOUND',
  [status.INVALID_ARGUMENT]: 'ERR_ADMIN_INVALID',
  [status.FAILED_PRECONDITION]: 'ERR_ADMIN_INVALID',
  [status.ALREADY_EXISTS]: 'ERR_ADMIN_INVALID',
  [status.OUT_OF_RANGE]: 'ERR_ADMIN_INVALID',
  [status.PERMISSION_DENIED]: 'ERR_ADMIN_DENIED',
  [status.UNAUTHENTICATED]: 'ERR_ADMIN_DENIED',
};

type Unary<Req, Res> = (
  request: Req,
  options: { deadline: number },
  callback: (err: ServiceError | null, res?: Res) => void,
) => unknown;

/** The Admin service of one CA, reached through its Unix socket. */
export class AdminClient {
  readonly #client: GeneratedAdminClient;
  readonly #socket: string;
  readonly #timeoutMs: number;

  /** Connects lazily to the socket at `socketPath`; nothing is sent until the first call. */
  constructor(socketPath: string, options: { timeoutMs?: number } = {}) {
    if (typeof socketPath !== 'string' || socketPath === '') {
      throw new SvidkitError('ERR_USAGE', 'admin: the admin socket path is required');
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_ADMIN_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw new SvidkitError('ERR_USAGE', 'admin: timeoutMs must be a positive integer');
    }
    this.#socket = socketPath;
    this.#timeoutMs = timeoutMs;
    // The socket's file permissions authenticate the caller; there is no TLS on it by design.
    this.#client = new (caProto().svidkit.ca.v1.Admin)(`unix:${socketPath}`, credentials.createInsecure());
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }

  #call<Req, Res>(method: Unary<Req, Res>, request: Req, what: string): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.#client, request, { deadline: Date.now() + this.#timeoutMs }, (err, res) => {
        if (err || res === undefined) reject(this.#error(err, what));
        else resolve(res);
      });
    });
  }

  #error(err: ServiceError | null, what: string): SvidkitError {
    if (err === null) return new SvidkitError('ERR_ADMIN_FAILED', `admin: ${what}: the CA sent no answer`);
    const code = CODE_FOR_STATUS[err.code] ?? 'ERR_ADMIN_FAILED';
    if (code === 'ERR_ADMIN_UNREACHABLE') {
      const why = err.code === status.DEADLINE_EXCEEDED ? 'no answer in time' : 'nothing answers on it';
      return new SvidkitError(code, `admin: cannot reach the CA on ${this.#socket} (${why}); is svidkit-ca running?`, {
        cause: err,
      });
    }
    // The CA's details are safe by construction (it never sends causes); keep them short and on one line.
    const details = (err.details || status[err.code] || 'error').replace(/\s+/g, ' ').slice(0, 300);
    return new SvidkitError(code, `admin: ${what}: ${details}`, { cause: err });
  }

  /** Registers a workload: `spiffeId` gets SVIDs through the agent `parentId`. */
  async createEntry(entry: NewEntry): Promise<AdminEntry> {
    const res = await this.#call(
      this.#client.createEntry as Unary<unknown, { entry: AdminEntry | null }>,
      {
        entry: {
          spiffeId: entry.spiffeId,
          parentId: entry.parentId,
          x509SvidTtlSeconds: entry.x509SvidTtlSeconds ?? 0,
          jwtSvidTtlSeconds: entry.jwtSvidTtlSeconds ?? 0,
          dnsNames: [...(entry.dnsNames ?? [])],
          selectors: [...(entry.selectors ?? [])],
        },
      },
      'create entry',
    );
    if (!res.entry) throw new SvidkitError('ERR_ADMIN_FAILED', 'admin: create entry: the CA returned no entry');
    return res.entry;
  }

  /** The registration entries, optionally only those of one parent or one SPIFFE ID. */
  async listEntries(filter: { parentId?: string; spiffeId?: string } = {}): Promise<AdminEntry[]> {
    const res = await this.#call(
      this.#client.listEntries as Unary<unknown, { entries: AdminEntry[] }>,
      { parentId: filter.parentId ?? '', spiffeId: filter.spiffeId ?? '' },
      'list entries',
    );
    return res.entries;
  }

  /** Deletes one entry by its ID; ERR_ADMIN_NOT_FOUND when there is none. */
  async deleteEntry(id: string): Promise<void> {
    await this.#call(this.#client.deleteEntry as Unary<unknown, object>, { id }, `delete entry ${JSON.stringify(id)}`);
  }

  /** Creates a one-time join token valid for `ttlSeconds`. */
  async createJoinToken(ttlSeconds: number): Promise<CreatedJoinToken> {
    const res = await this.#call(
      this.#client.createJoinToken as Unary<unknown, { token: string; agentId: string; expiresAt: number }>,
      { ttlSeconds },
      'create join token',
    );
    return { token: res.token, agentId: res.agentId, expiresAt: new Date(res.expiresAt * 1000) };
  }

  /** Every attested agent, banned ones included. */
  async listAgents(): Promise<AdminAgent[]> {
    const res = await this.#call(
      this.#client.listAgents as Unary<unknown, { agents: AdminAgent[] }>,
      {},
      'list agents',
    );
    return res.agents;
  }

  /** Bans an agent: its SVID stops working and it cannot attest again with the same identity. */
  async banAgent(spiffeId: string): Promise<void> {
    await this.#call(this.#client.banAgent as Unary<unknown, object>, { spiffeId }, `ban agent ${spiffeId}`);
  }

  /** The trust domain, the signing keys and the current bundle. */
  async caStatus(): Promise<AdminCaStatus> {
    return this.#call(this.#client.getCaStatus as Unary<unknown, AdminCaStatus>, {}, 'ca status');
  }

  /** Prepares and activates new CA keys now (`x509`, `jwt`, or both); returns the keys after. */
  async rotateCa(kind: 'x509' | 'jwt' | 'both' = 'both'): Promise<AdminCaKey[]> {
    const res = await this.#call(
      this.#client.rotateCa as Unary<unknown, { keys: AdminCaKey[] }>,
      { kind: kind === 'both' ? '' : kind },
      'rotate ca',
    );
    return res.keys;
  }

  /** Marks a CA key as tainted (compromised): it is rotated away and dropped from the bundle. */
  async taintKey(id: string): Promise<void> {
    await this.#call(this.#client.taintKey as Unary<unknown, object>, { id }, `taint key ${JSON.stringify(id)}`);
  }
}
