/**
 * The Admin service operators call: registration entries, join tokens, agents and the CA keys.
 *
 * Who may call depends on the listener the handlers are built for, fixed when they are built:
 *   - 'unix' (the default): the Unix socket, mode 0600. Its file permissions are the
 *     authentication, and every caller is recorded as "unix socket".
 *   - 'mtls': every call must carry a verified X.509-SVID whose SPIFFE ID is an admin ID.
 * The transport is a property of the listener, never guessed from a call: grpc-js reports an empty
 * auth context for a Unix socket, but also for a TLS call whose client sent no certificate and for
 * any call whose stream the client has already reset, so "no TLS seen" does not mean "Unix socket".
 *
 * Every input is checked before anything is written. Refusals are gRPC statuses with safe
 * messages (the cause is logged, never sent), and every change writes one audit line at info level
 * naming the caller, the action and what it acted on. Join tokens are never logged.
 */
import { type sendUnaryData, type ServerUnaryCall, status } from '@grpc/grpc-js';
import { agentIdForJoinToken, generateJoinToken, hashJoinToken } from '../attest/index.js';
import { type ErrorCode, isSvidkitError } from '../errors/index.js';
import type { AdminHandlers } from '../generated/svidkit/ca/v1/Admin.js';
import type { Agent as AgentMessage } from '../generated/svidkit/ca/v1/Agent.js';
import type { CaKey as CaKeyMessage } from '../generated/svidkit/ca/v1/CaKey.js';
import { audit } from '../observe/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import type { AttestedAgent, EntryFilter } from '../store/index.js';
import { Certificate } from '../x509/certificate.js';
import { idFromLeaf } from '../x509svid/index.js';
import type { CaContext } from './context.js';
import { bundleMessage, entryMessage, unixSeconds } from './messages.js';
import type { CaKeyStatus, RotationKind } from './keys.js';
// No entry may name a reserved path: the agents' IDs and the CA's own serving ID live there, and an
// entry for the CA's ID would let its parent agent pose as the CA to other agents.
import { AGENT_PATH_PREFIX, canonicalSelectors, isReservedPath, RESERVED_PATH } from '../ca-api/index.js';
import { StatusError, toStatus } from './node-service.js';

/** Shortest SVID lifetime an entry may set, in seconds. */
export const MIN_ENTRY_SVID_TTL_SECONDS = 30;
/** Most DNS names one entry may carry. */
export const MAX_ENTRY_DNS_NAMES = 32;
/** Shortest and longest join token lifetime a caller may ask for, in seconds. */
export const MIN_JOIN_TOKEN_TTL_SECONDS = 10;
export const MAX_JOIN_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
/** What the audit lines name as the caller on the Unix socket. */
export const UNIX_SOCKET_CALLER = 'unix socket';

/** Longest entry or CA key id accepted; the real ones are far shorter. */
const MAX_OBJECT_ID_LENGTH = 128;
const MAX_DNS_NAME_LENGTH = 253;
// RFC 1123 labels: letters, digits and inner hyphens, 1 to 63 characters.
const DNS_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** RotateCa's kind field: empty rotates both keys. */
const ROTATION_KINDS: ReadonlyMap<string, RotationKind> = new Map([
  ['', 'both'],
  ['x509', 'x509'],
  ['jwt', 'jwt'],
]);

/** The listener an Admin handler set serves: the 0600 Unix socket, or mTLS for admin SPIFFE IDs. */
export type AdminTransport = 'unix' | 'mtls';

/** Options of adminHandlers. */
export interface AdminServiceOptions {
  /** Where the handlers are served; 'unix' by default. */
  transport?: AdminTransport;
  /** SPIFFE IDs allowed over mTLS; by default the configured admin.mtls.admin_ids. */
  adminIds?: readonly string[];
}

/** The parts of a server call that authorizeAdmin reads. */
export type AdminCall = Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext' | 'getPeer'>;

/**
 * Decides whether a call may use the Admin service, and returns who made it: "unix socket" or the
 * admin's SPIFFE ID.
 *
 * `transport` is the kind of listener the call arrived on, which the caller knows from how it bound
 * the server; it is not inferred from the call, because an empty grpc-js auth context can be a Unix
 * socket, a TLS client without a certificate or a reset stream alike.
 *   - 'mtls' (the default): requires a verified client certificate (transportSecurityType 'ssl'
 *     with a peer certificate, which grpc-js only reports after a successful handshake) that is a
 *     valid X.509-SVID whose ID is exactly one of `adminIds`. UNAUTHENTICATED without one,
 *     PERMISSION_DENIED for any other ID.
 *   - 'unix': the socket's file permissions were the check. As a guard against handlers mounted on
 *     the wrong listener, a call that shows TLS or a network peer (grpc-js peers "address:port")
 *     is refused with PERMISSION_DENIED.
 */
export function authorizeAdmin(
  call: AdminCall,
  adminIds: readonly string[],
  transport: AdminTransport = 'mtls',
): string {
  const auth = call.getAuthContext();
  if (transport === 'unix') {
    const peer = call.getPeer();
    const network = peer !== 'unknown' && !peer.startsWith('unix:');
    if (auth.transportSecurityType !== undefined || network) {
      throw new StatusError(status.PERMISSION_DENIED, 'this admin listener accepts Unix socket callers only');
    }
    return UNIX_SOCKET_CALLER;
  }
  const cert = auth.transportSecurityType === 'ssl' ? auth.sslPeerCertificate : undefined;
  if (!cert?.raw) throw new StatusError(status.UNAUTHENTICATED, 'an admin X.509-SVID is required');
  let id: SpiffeId;
  try {
    id = idFromLeaf(Certificate.fromDer(cert.raw));
  } catch (cause) {
    throw new StatusError(status.UNAUTHENTICATED, 'the client certificate is not a valid X.509-SVID', { cause });
  }
  const caller = id.toString();
  if (!adminIds.includes(caller)) {
    throw new StatusError(status.PERMISSION_DENIED, 'the caller is not an admin', { cause: caller });
  }
  return caller;
}

/**
 * True for a DNS name an entry may carry: labels of letters, digits and inner hyphens (1 to 63
 * characters each, 253 in all), optionally behind one leading `*.` wildcard label that must be
 * followed by at least two labels (no `*.com`).
 */
export function isValidDnsName(name: string): boolean {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_DNS_NAME_LENGTH) return false;
  const labels = name.split('.');
  if (labels[0] === '*') {
    labels.shift();
    if (labels.length < 2) return false;
  }
  return labels.every((l) => DNS_LABEL.test(l));
}

function invalid(message: string, cause?: unknown): StatusError {
  return new StatusError(status.INVALID_ARGUMENT, message, cause === undefined ? undefined : { cause });
}

/** Awaits `p`, turning the listed SvidkitError codes into statuses; anything else stays internal. */
async function mapped<T>(p: Promise<T>, codes: Partial<Record<ErrorCode, [status, string]>>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    const m = isSvidkitError(err) ? codes[err.code] : undefined;
    if (m) throw new StatusError(m[0], m[1], { cause: err });
    throw err;
  }
}

function parseId(value: string, field: string): SpiffeId {
  if (value === '') throw invalid(`${field} is required`);
  try {
    return SpiffeId.parse(value);
  } catch (cause) {
    const why = isSvidkitError(cause) ? `: ${cause.plainMessage}` : '';
    throw invalid(`${field} is not a valid SPIFFE ID${why}`, cause);
  }
}

function objectId(value: string, field: string): string {
  if (value === '') throw invalid(`${field} is required`);
  if (value.length > MAX_OBJECT_ID_LENGTH) throw invalid(`${field} is longer than ${MAX_OBJECT_ID_LENGTH} characters`);
  return value;
}

/** An entry TTL: 0 takes the default (never above the maximum), anything else must be 30 s to the maximum. */
function entryTtl(value: number, field: string, defaultMs: number, maxMs: number): number {
  const max = Math.floor(maxMs / 1000);
  if (value === 0) return Math.max(1, Math.floor(Math.min(defaultMs, maxMs) / 1000));
  if (!Number.isInteger(value) || value < MIN_ENTRY_SVID_TTL_SECONDS || value > max) {
    throw invalid(`${field} must be 0 (the default) or ${MIN_ENTRY_SVID_TTL_SECONDS} to ${max} seconds`);
  }
  return value;
}

function dnsNames(names: readonly string[]): string[] {
  if (names.length > MAX_ENTRY_DNS_NAMES) throw invalid(`at most ${MAX_ENTRY_DNS_NAMES} DNS names per entry`);
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (!isValidDnsName(name)) throw invalid(`dns_names[${i}] is not a valid DNS name`);
    const folded = name.toLowerCase();
    if (seen.has(folded)) throw invalid(`dns_names[${i}] repeats an earlier name`);
    seen.add(folded);
  });
  return [...names];
}

/** The entry's selectors in canonical form; a bad one is INVALID_ARGUMENT with the parser's reason. */
function entrySelectors(list: readonly string[] | undefined): string[] {
  try {
    return canonicalSelectors(list ?? []);
  } catch (cause) {
    if (isSvidkitError(cause, 'ERR_SELECTOR_INVALID')) throw invalid(`selectors: ${cause.plainMessage}`, cause);
    throw cause;
  }
}

function agentMessage(a: AttestedAgent): AgentMessage {
  return {
    spiffeId: a.spiffeId,
    attestationType: a.attestationType,
    serial: a.serial,
    expiresAt: unixSeconds(a.expiresAt),
    banned: a.banned,
  };
}

function keyMessage(k: CaKeyStatus): CaKeyMessage {
  return { id: k.id, kind: k.kind, state: k.state, notAfter: unixSeconds(k.notAfter), tainted: k.tainted };
}

function activeKeyIds(keys: readonly CaKeyStatus[]): string[] {
  return keys.filter((k) => k.state === 'active').map((k) => k.id);
}

/** The Admin service handlers for one listener (the Unix socket unless `options.transport` says mTLS). */
export function adminHandlers(ctx: CaContext, options: AdminServiceOptions = {}): AdminHandlers {
  const cfg = ctx.config;
  const td = cfg.trustDomain;
  const transport = options.transport ?? 'unix';
  if (transport !== 'unix' && transport !== 'mtls') {
    throw new TypeError('adminHandlers: transport must be unix or mtls');
  }
  const adminIds = [...(options.adminIds ?? cfg.admin.mtls?.adminIds ?? [])];

  const unary =
    <Req, Res>(method: string, fn: (req: Req, caller: string) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      let caller: string;
      try {
        // First and synchronous: nothing runs for a caller that is not allowed.
        caller = authorizeAdmin(call, adminIds, transport);
      } catch (err) {
        callback(toStatus(err, ctx, method));
        return;
      }
      fn(call.request, caller).then(
        (res) => callback(null, res),
        (err: unknown) => callback(toStatus(err, ctx, method)),
      );
    };

  /** A SPIFFE ID of this trust domain. */
  const ownId = (value: string, field: string): SpiffeId => {
    const id = parseId(value, field);
    if (!id.memberOf(td)) throw invalid(`${field} must belong to the trust domain ${td.name}`);
    return id;
  };

  return {
    CreateEntry: unary('CreateEntry', async (req, caller) => {
      const e = req.entry;
      if (!e) throw invalid('entry is required');
      const spiffeId = ownId(e.spiffeId, 'spiffe_id');
      if (spiffeId.isTrustDomainId()) throw invalid('spiffe_id needs a path: the trust domain ID is not a workload');
      if (spiffeId.path.startsWith(AGENT_PATH_PREFIX)) {
        throw invalid(`spiffe_id is under ${AGENT_PATH_PREFIX}: agent IDs are not workloads`);
      }
      if (isReservedPath(spiffeId.path)) {
        throw invalid(`spiffe_id is under ${RESERVED_PATH}/, which is reserved for svidkit's own identities`);
      }
      const parentId = ownId(e.parentId, 'parent_id');
      const x509 = entryTtl(
        e.x509SvidTtlSeconds,
        'x509_svid_ttl_seconds',
        cfg.defaultX509SvidTtlMs,
        ctx.keys.maxSvidTtlMs,
      );
      // NewJwtSvid caps a JWT-SVID at maxJwtSvidTtlMs; an entry asking for more would be cut silently.
      const jwt = entryTtl(
        e.jwtSvidTtlSeconds,
        'jwt_svid_ttl_seconds',
        cfg.defaultJwtSvidTtlMs,
        Math.min(ctx.keys.maxSvidTtlMs, ctx.keys.maxJwtSvidTtlMs),
      );
      const names = dnsNames(e.dnsNames);
      const selectors = entrySelectors(e.selectors);
      // As in SPIRE, one ID may be registered again under the same parent for another set of selectors.
      const conflict =
        selectors.length === 0
          ? 'an entry for this spiffe_id and parent_id already exists'
          : 'an entry for this spiffe_id and parent_id with these selectors already exists';
      const entry = await mapped(
        ctx.store.createEntry({
          spiffeId: spiffeId.toString(),
          parentId: parentId.toString(),
          x509SvidTtlSeconds: x509,
          jwtSvidTtlSeconds: jwt,
          dnsNames: names,
          selectors,
        }),
        { ERR_STORE_CONFLICT: [status.ALREADY_EXISTS, conflict] },
      );
      audit(
        ctx.log,
        {
          event: 'admin_entry_created',
          admin: caller,
          entry_id: entry.id,
          spiffe_id: entry.spiffeId,
          parent_id: entry.parentId,
          selectors: entry.selectors,
        },
        'admin: registration entry created',
      );
      return { entry: entryMessage(entry) };
    }),

    ListEntries: unary('ListEntries', async (req) => {
      const filter: EntryFilter = {};
      if (req.parentId !== '') filter.parentId = parseId(req.parentId, 'parent_id').toString();
      if (req.spiffeId !== '') filter.spiffeId = parseId(req.spiffeId, 'spiffe_id').toString();
      return { entries: (await ctx.store.listEntries(filter)).map(entryMessage) };
    }),

    DeleteEntry: unary('DeleteEntry', async (req, caller) => {
      const id = objectId(req.id, 'id');
      const notFound: [status, string] = [status.NOT_FOUND, 'no registration entry with this id'];
      const entry = await ctx.store.getEntry(id);
      if (!entry) throw new StatusError(...notFound);
      await mapped(ctx.store.deleteEntry(id), { ERR_STORE_NOT_FOUND: notFound });
      audit(
        ctx.log,
        { event: 'admin_entry_deleted', admin: caller, entry_id: id, spiffe_id: entry.spiffeId },
        'admin: registration entry deleted',
      );
      return {};
    }),

    CreateJoinToken: unary('CreateJoinToken', async (req, caller) => {
      const ttl = req.ttlSeconds;
      let ttlMs = cfg.joinTokenDefaultTtlMs;
      if (ttl !== 0) {
        if (!Number.isInteger(ttl) || ttl < MIN_JOIN_TOKEN_TTL_SECONDS || ttl > MAX_JOIN_TOKEN_TTL_SECONDS) {
          throw invalid(
            `ttl_seconds must be 0 (the default) or ${MIN_JOIN_TOKEN_TTL_SECONDS} to ${MAX_JOIN_TOKEN_TTL_SECONDS}`,
          );
        }
        ttlMs = ttl * 1000;
      }
      const token = generateJoinToken();
      const agentId = agentIdForJoinToken(td, token).toString();
      const expiresAt = new Date(ctx.clock().getTime() + ttlMs);
      await ctx.store.createJoinToken(hashJoinToken(token), expiresAt);
      // The agent ID names the token's hash, which is public; the token itself is never logged.
      audit(
        ctx.log,
        { event: 'admin_join_token_created', admin: caller, agent_id: agentId, expires_at: expiresAt.toISOString() },
        'admin: join token created',
      );
      return { token, agentId, expiresAt: unixSeconds(expiresAt) };
    }),

    ListAgents: unary('ListAgents', async () => ({
      agents: (await ctx.store.listAgents()).map(agentMessage),
    })),

    BanAgent: unary('BanAgent', async (req, caller) => {
      const id = parseId(req.spiffeId, 'spiffe_id').toString();
      await mapped(ctx.store.banAgent(id), {
        ERR_STORE_NOT_FOUND: [status.NOT_FOUND, 'no attested agent with this spiffe_id'],
      });
      audit(ctx.log, { event: 'admin_agent_banned', admin: caller, agent: id }, 'admin: agent banned');
      return {};
    }),

    GetCaStatus: unary('GetCaStatus', async () => ({
      trustDomain: td.name,
      keys: ctx.keys.status().map(keyMessage),
      bundle: bundleMessage(ctx),
    })),

    RotateCa: unary('RotateCa', async (req, caller) => {
      const kind = ROTATION_KINDS.get(req.kind);
      if (kind === undefined) throw invalid('kind must be "x509", "jwt" or empty for both');
      const keys = await mapped(ctx.keys.rotate(kind), {
        ERR_CA_ROTATION_UNAVAILABLE: [
          status.FAILED_PRECONDITION,
          'the X.509 CA is an upstream intermediate and cannot be rotated here; rotate "jwt" only',
        ],
        ERR_CA_TOO_MANY_KEYS: [
          status.FAILED_PRECONDITION,
          'the bundle holds too many keys of this kind; wait for old keys to be dropped',
        ],
      });
      audit(
        ctx.log,
        { event: 'admin_ca_rotated', admin: caller, kind, active_keys: activeKeyIds(keys) },
        'admin: CA keys rotated',
      );
      return { keys: keys.map(keyMessage) };
    }),

    TaintKey: unary('TaintKey', async (req, caller) => {
      const id = objectId(req.id, 'id');
      const keys = await mapped(ctx.keys.taint(id), {
        ERR_CA_KEY_NOT_FOUND: [status.NOT_FOUND, 'no CA key with this id'],
        ERR_CA_ROTATION_UNAVAILABLE: [
          status.FAILED_PRECONDITION,
          'the active X.509 CA is an upstream intermediate; revoke it upstream and restart with a new one',
        ],
      });
      audit(
        ctx.log,
        { event: 'admin_ca_key_tainted', admin: caller, ca_key_id: id, active_keys: activeKeyIds(keys) },
        'admin: CA key tainted',
      );
      return {};
    }),
  };
}
