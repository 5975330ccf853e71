/**
 * The Node service agents call. AttestAgent authenticates with a join token or a Kubernetes token;
 * every other method authenticates with the agent's X.509-SVID, which OpenSSL has already chained to
 * our bundle (grpc-js only reports a peer certificate for a verified handshake). Failures go back as
 * gRPC statuses with safe messages; the cause is logged, never sent.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type ServerUnaryCall, type ServerWritableStream, status } from '@grpc/grpc-js';
import { agentIdForJoinToken, hashJoinToken, validateJoinToken } from '../attest/index.js';
import { isSvidkitError } from '../errors/index.js';
import type { AttestAgentRequest__Output } from '../generated/svidkit/ca/v1/AttestAgentRequest.js';
import type { BatchNewX509SvidResult } from '../generated/svidkit/ca/v1/BatchNewX509SvidResult.js';
import type { NodeHandlers } from '../generated/svidkit/ca/v1/Node.js';
import type { X509Svid } from '../generated/svidkit/ca/v1/X509Svid.js';
import { mintJwtSvid } from '../jwtsvid/index.js';
import { audit } from '../observe/index.js';
import { SpiffeId } from '../spiffeid/index.js';
import type { AttestationType, RegistrationEntry } from '../store/index.js';
import { Certificate } from '../x509/certificate.js';
import { idFromLeaf } from '../x509svid/index.js';
import { isAgentId, MAX_AUDIENCE_BYTES, MAX_AUDIENCE_LENGTH, MAX_AUDIENCES } from '../ca-api/index.js';
import type { CaContext } from './context.js';
import { bundleMessage, entryMessage, unixSeconds } from './messages.js';
import { KeyedSlots } from '../internal/slots.js';

/**
 * Most WatchBundle streams one agent may hold open. An agent needs one; a few more cover a reconnect
 * that reaches the CA before the old stream's end does. Without a bound, one agent SVID could hold
 * any number of streams, each with its listener and its share of every bundle push.
 */
export const MAX_WATCH_STREAMS_PER_AGENT = 4;

/** A gRPC status error with a message that is safe to send. */
export class StatusError extends Error {
  readonly code: status;
  constructor(code: status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Maps an error to a gRPC status with a safe message; refusals are logged as warnings, the rest as errors.
 * The message is made well-formed: grpc-js URI-encodes it, which throws on a lone surrogate, and the call
 * would then never be answered.
 */
export function toStatus(err: unknown, ctx: CaContext, method: string): { code: status; details: string } {
  if (err instanceof StatusError) {
    ctx.log.warn({ method, code: status[err.code], reason: err.message, cause: describe(err.cause) }, 'call refused');
    return { code: err.code, details: err.message.toWellFormed() };
  }
  if (isSvidkitError(err) && (err.code.startsWith('ERR_CSR_') || err.code === 'ERR_KEY_UNSUPPORTED')) {
    ctx.log.warn({ method, code: err.code, reason: err.message }, 'bad CSR');
    return { code: status.INVALID_ARGUMENT, details: err.message.toWellFormed() };
  }
  ctx.log.error({ method, err }, 'internal error');
  return { code: status.INTERNAL, details: 'internal error' };
}

function describe(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  return isSvidkitError(cause)
    ? `${cause.code}: ${cause.message}`
    : cause instanceof Error
      ? cause.message
      : String(cause);
}

/** An agent the Node service has authenticated: its ID and the serial of the SVID it presented. */
export interface AuthenticatedAgent {
  readonly id: SpiffeId;
  readonly serial: string;
}

/**
 * The agent behind an mTLS caller, after the SPIFFE leaf rules, the agent-path rule, the ban list
 * and the serial rule: the SVID must be the agent's current one, or the one issued just before it
 * while the agent has not yet presented the current one (a crash between receiving a renewed SVID
 * and saving it). Any older copy is refused with an audit line, so a stolen or restored identity
 * file cannot act as the agent or take over its record.
 */
export async function authenticateAgent(
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
  ctx: CaContext,
): Promise<AuthenticatedAgent> {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (!peer?.raw) throw new StatusError(status.UNAUTHENTICATED, 'an agent X.509-SVID is required');
  let id: SpiffeId;
  let serial: string;
  try {
    const leaf = Certificate.fromDer(peer.raw);
    id = idFromLeaf(leaf);
    serial = leaf.serialHex;
  } catch (cause) {
    throw new StatusError(status.UNAUTHENTICATED, 'the client certificate is not a valid X.509-SVID', { cause });
  }
  if (!isAgentId(id, ctx.config.trustDomain)) {
    throw new StatusError(status.PERMISSION_DENIED, 'the caller is not an agent of this trust domain');
  }
  if ((await standing(ctx, id, serial)) === 'superseded') throw supersededSvid(ctx, id, serial);
  return { id, serial };
}

/**
 * Where an agent SVID stands: the current one, the previous one (in its grace), or superseded.
 * Refuses an agent that never attested or is banned. Presenting the current SVID ends the grace of
 * the previous one: the agent has evidently saved the new SVID.
 */
async function standing(ctx: CaContext, id: SpiffeId, serial: string): Promise<'current' | 'previous' | 'superseded'> {
  const agent = await ctx.store.getAgent(id.toString());
  if (!agent) throw new StatusError(status.PERMISSION_DENIED, 'the agent is not attested');
  if (agent.banned) throw new StatusError(status.PERMISSION_DENIED, 'the agent is banned');
  if (serial === agent.serial) {
    if (agent.previousSerial !== undefined) await ctx.store.confirmAgentSerial(id.toString(), serial);
    return 'current';
  }
  return serial === agent.previousSerial ? 'previous' : 'superseded';
}

/** The refusal of an agent SVID that is neither the current nor the previous one, with its audit line. */
function supersededSvid(ctx: CaContext, id: SpiffeId, serial: string): StatusError {
  audit(ctx.log, { event: 'agent_svid_refused', agent: id.toString(), serial, reason: 'superseded' });
  return new StatusError(status.PERMISSION_DENIED, 'this agent SVID has been superseded by a newer one');
}

/** Loads an entry the agent is parent of; an unknown entry and a foreign one give the same answer. */
async function entryFor(ctx: CaContext, agent: SpiffeId, entryId: string): Promise<RegistrationEntry> {
  const entry = entryId.length > 0 && entryId.length <= 128 ? await ctx.store.getEntry(entryId) : undefined;
  if (!entry || entry.parentId !== agent.toString()) {
    throw new StatusError(
      status.PERMISSION_DENIED,
      `entry ${JSON.stringify(entryId.slice(0, 128))} is not authorized for this agent`,
    );
  }
  return entry;
}

/** The audience rules of NewJwtSvid: count, length of each, and their total size in the token. */
function checkAudiences(audience: readonly string[]): void {
  if (audience.length === 0 || audience.length > MAX_AUDIENCES) {
    throw new StatusError(status.INVALID_ARGUMENT, `1 to ${MAX_AUDIENCES} non-empty audiences are required`);
  }
  if (audience.some((a) => a.length === 0 || a.length > MAX_AUDIENCE_LENGTH)) {
    throw new StatusError(status.INVALID_ARGUMENT, `each audience must be 1 to ${MAX_AUDIENCE_LENGTH} characters long`);
  }
  // Counted as the token will carry them: JSON escapes and multi-byte characters included.
  const bytes = Buffer.byteLength(JSON.stringify(audience), 'utf8');
  if (bytes > MAX_AUDIENCE_BYTES) {
    throw new StatusError(
      status.INVALID_ARGUMENT,
      `the audiences take ${bytes} bytes in the token; at most ${MAX_AUDIENCE_BYTES} are allowed`,
    );
  }
}

/** Issues an X.509-SVID for `id` from a CSR, writes the audit line and counts it. */
function issueX509(
  ctx: CaContext,
  id: SpiffeId,
  csr: Buffer,
  ttlMs: number,
  dnsNames: readonly string[],
  caller: string,
): X509Svid {
  const { issuer, chain } = ctx.issuer();
  const ttl = Math.min(ttlMs, ctx.keys.maxSvidTtlMs);
  const cert = issuer.issue({
    id,
    csrDer: csr,
    now: ctx.clock(),
    ttlMs: ttl,
    dnsNames,
    allowedKeyTypes: ctx.config.allowedKeyTypes,
  });
  audit(ctx.log, {
    event: 'x509svid_issued',
    serial: cert.serialHex,
    spiffe_id: id.toString(),
    agent: caller,
    not_after: cert.notAfter.toISOString(),
    sha256: createHash('sha256').update(cert.der).digest('hex'),
  });
  ctx.metrics.issued.inc({ kind: 'x509', result: 'ok' });
  return { spiffeId: id.toString(), certChain: [cert.der, ...chain], expiresAt: unixSeconds(cert.notAfter) };
}

async function attest(
  ctx: CaContext,
  req: AttestAgentRequest__Output,
): Promise<{ id: SpiffeId; type: AttestationType }> {
  if (req.credential === 'joinToken' && req.joinToken) {
    const token = req.joinToken.token;
    try {
      validateJoinToken(token);
    } catch (cause) {
      throw new StatusError(status.INVALID_ARGUMENT, 'the join token is malformed', { cause });
    }
    // Consumed before anything else can fail, so a token is never usable twice.
    if (!(await ctx.store.consumeJoinToken(hashJoinToken(token), ctx.clock()))) {
      throw new StatusError(status.PERMISSION_DENIED, 'the join token is unknown, expired or already used');
    }
    return { id: agentIdForJoinToken(ctx.config.trustDomain, token), type: 'join_token' };
  }
  if (req.credential === 'k8sPsat' && req.k8sPsat) {
    if (!ctx.psat) throw new StatusError(status.FAILED_PRECONDITION, 'Kubernetes attestation is not configured');
    try {
      const r = await ctx.psat.attest(req.k8sPsat.token, req.k8sPsat.cluster || undefined);
      return { id: r.agentId, type: 'k8s_psat' };
    } catch (cause) {
      if (!isSvidkitError(cause)) throw cause;
      throw new StatusError(status.PERMISSION_DENIED, 'the Kubernetes token was refused', { cause });
    }
  }
  throw new StatusError(status.INVALID_ARGUMENT, 'a join token or a Kubernetes token is required');
}

/** The Node service handlers. */
export function nodeHandlers(ctx: CaContext): NodeHandlers {
  const cfg = ctx.config;
  const watchSlots = new KeyedSlots<string>(MAX_WATCH_STREAMS_PER_AGENT);
  const unary =
    <Req, Res>(method: string, fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: (err: { code: status; details: string } | null, res?: Res) => void) => {
      const started = process.hrtime.bigint();
      fn(call)
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(toStatus(err, ctx, method)),
        )
        .finally(() => ctx.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9, { method }));
    };

  return {
    AttestAgent: unary('AttestAgent', async (call) => {
      const { id, type } = await attest(ctx, call.request).catch((err: unknown) => {
        ctx.metrics.attestationFailures.inc({ type: call.request.credential ?? 'none' });
        throw err;
      });
      if (await ctx.store.isBanned(id.toString()))
        throw new StatusError(status.PERMISSION_DENIED, 'the agent is banned');
      const svid = issueX509(ctx, id, call.request.csr, cfg.defaultX509SvidTtlMs, [], id.toString());
      await ctx.store.upsertAgent({
        spiffeId: id.toString(),
        attestationType: type,
        serial: Certificate.fromDer(svid.certChain![0] as Buffer).serialHex,
        expiresAt: new Date(Number(svid.expiresAt) * 1000),
      });
      ctx.log.info({ agent: id.toString(), attestation: type }, 'agent attested');
      return { svid, bundle: bundleMessage(ctx) };
    }),

    RenewAgent: unary('RenewAgent', async (call) => {
      const { id, serial } = await authenticateAgent(call, ctx);
      const svid = issueX509(ctx, id, call.request.csr, cfg.defaultX509SvidTtlMs, [], id.toString());
      // The check and the update are one store step: of two renewals racing with the same SVID
      // (the agent and a copy of its file), the second finds the presented serial superseded.
      const renewed = await ctx.store.renewAgent({
        spiffeId: id.toString(),
        presentedSerial: serial,
        serial: Certificate.fromDer(svid.certChain![0] as Buffer).serialHex,
        expiresAt: new Date(Number(svid.expiresAt) * 1000),
      });
      if (!renewed) {
        if (await ctx.store.isBanned(id.toString())) {
          throw new StatusError(status.PERMISSION_DENIED, 'the agent is banned');
        }
        throw supersededSvid(ctx, id, serial);
      }
      return { svid };
    }),

    ListAuthorizedEntries: unary('ListAuthorizedEntries', async (call) => {
      const { id } = await authenticateAgent(call, ctx);
      return { entries: (await ctx.store.listEntries({ parentId: id.toString() })).map(entryMessage) };
    }),

    BatchNewX509Svid: unary('BatchNewX509Svid', async (call) => {
      const { id: agent } = await authenticateAgent(call, ctx);
      const params = call.request.params;
      if (params.length === 0) throw new StatusError(status.INVALID_ARGUMENT, 'the batch is empty');
      if (params.length > cfg.limits.maxBatch) {
        throw new StatusError(status.RESOURCE_EXHAUSTED, `at most ${cfg.limits.maxBatch} CSRs per batch`);
      }
      const results: BatchNewX509SvidResult[] = [];
      for (const p of params) {
        // Each item stands alone: one bad CSR or foreign entry does not fail the others.
        try {
          const entry = await entryFor(ctx, agent, p.entryId);
          const svid = issueX509(
            ctx,
            SpiffeId.parse(entry.spiffeId),
            p.csr,
            entry.x509SvidTtlSeconds * 1000,
            entry.dnsNames,
            agent.toString(),
          );
          results.push({ statusCode: status.OK, statusMessage: '', svid });
        } catch (err) {
          const s = toStatus(err, ctx, 'BatchNewX509Svid');
          ctx.metrics.issued.inc({ kind: 'x509', result: 'refused' });
          results.push({ statusCode: s.code, statusMessage: s.details });
        }
      }
      return { results };
    }),

    NewJwtSvid: unary('NewJwtSvid', async (call) => {
      const { id: agent } = await authenticateAgent(call, ctx);
      const entry = await entryFor(ctx, agent, call.request.entryId);
      const audience = call.request.audience;
      checkAudiences(audience);
      const signer = ctx.keys.jwtSigner();
      const now = ctx.clock();
      const ttlSeconds = Math.max(
        1,
        Math.floor(Math.min(entry.jwtSvidTtlSeconds * 1000, ctx.keys.maxJwtSvidTtlMs) / 1000),
      );
      const token = await mintJwtSvid({
        id: SpiffeId.parse(entry.spiffeId),
        audience: [...audience],
        key: signer.key,
        kid: signer.kid,
        alg: signer.alg,
        ttlSeconds,
        clock: () => now,
      });
      audit(ctx.log, {
        event: 'jwtsvid_issued',
        spiffe_id: entry.spiffeId,
        agent: agent.toString(),
        audience: [...audience],
        kid: signer.kid,
        jti: randomUUID(),
      });
      ctx.metrics.issued.inc({ kind: 'jwt', result: 'ok' });
      return { spiffeId: entry.spiffeId, token, expiresAt: unixSeconds(now) + ttlSeconds };
    }),

    WatchBundle: (call) => {
      authenticateAgent(call, ctx).then(
        ({ id, serial }) => {
          // A client that went away while the agent was looked up holds no slot.
          if (call.cancelled) return;
          const slot = watchSlots.take(id.toString());
          if (!slot) {
            const refusal = new StatusError(
              status.RESOURCE_EXHAUSTED,
              `at most ${MAX_WATCH_STREAMS_PER_AGENT} bundle streams per agent are open at once`,
            );
            call.emit('error', toStatus(refusal, ctx, 'WatchBundle'));
            return;
          }
          call.write(bundleMessage(ctx));
          // Each later bundle goes out only if the agent is still allowed (not banned, this SVID not
          // superseded): a stream opened before a ban ends at the next change. One check at a time, in order.
          let pending = Promise.resolve();
          let ended = false;
          const end = () => {
            ended = true;
            off();
            slot();
          };
          const off = ctx.keys.onBundleChange(() => {
            pending = pending.then(async () => {
              if (ended) return;
              let now: Awaited<ReturnType<typeof standing>>;
              try {
                now = await standing(ctx, id, serial);
              } catch (err) {
                end();
                call.emit('error', toStatus(err, ctx, 'WatchBundle'));
                return;
              }
              call.write(bundleMessage(ctx));
              if (now === 'superseded') {
                // The agent renewed and used its new SVID since it opened this stream: the usual course
                // of things, not an attack. This change still goes out (bundles are public, and a root
                // must reach the agent before it signs anything), then the stream ends cleanly and the
                // agent opens it again with its current SVID.
                end();
                ctx.log.info({ agent: id.toString(), serial }, 'bundle stream ended: its agent SVID was renewed');
                call.end();
              }
            });
          });
          call.on('cancelled', end);
          call.on('close', end);
          call.on('finish', end);
        },
        (err: unknown) => {
          const s = toStatus(err, ctx, 'WatchBundle');
          call.emit('error', s);
        },
      );
    },
  };
}
