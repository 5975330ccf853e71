/**
 * ValidateJWTSVID of svidkit-agent's Workload API: a workload hands the agent a JWT-SVID it received
 * and an audience it expects, and the agent checks the token with lib/jwtsvid against the JWT bundle of
 * its own trust domain and answers with the token's SPIFFE ID and claims.
 *
 * The order follows SPIRE's agent (pkg/agent/endpoints/workload/handler.go): the request's fields are
 * checked first, then the caller is attested like on every other RPC, then the token is validated, and
 * a token that does not validate is INVALID_ARGUMENT with the reason. As in SPIRE, the caller needs no
 * identity of its own: validating only reads public keys, and a service that receives tokens may have
 * no SVID. The messages never carry the token, and failed validations are not logged (a local caller
 * could fill the log with them); the caller learns why from the answer.
 */
import type { SpiffeBundle } from '../../bundle/index.js';
import { isSvidkitError, SvidkitError } from '../../errors/index.js';
import type { Struct } from '../../generated/workload/google/protobuf/Struct.js';
import type { Value } from '../../generated/workload/google/protobuf/Value.js';
import type { ValidateJWTSVIDRequest__Output } from '../../generated/workload/ValidateJWTSVIDRequest.js';
import type { ValidateJWTSVIDResponse } from '../../generated/workload/ValidateJWTSVIDResponse.js';
import { MAX_TOKEN_BYTES, parseAndValidate } from '../../jwtsvid/index.js';
import { MAX_AUDIENCE_BYTES, MAX_CLAIMS_DEPTH } from '../../workloadapi/index.js';

/**
 * Most values, of any kind and at any depth, in the claims sent back. A token of MAX_TOKEN_BYTES
 * cannot hold many more; the bound keeps the conversion's cost fixed whoever calls it.
 */
export const MAX_CLAIM_VALUES = 8192;

/** The gRPC statuses ValidateJWTSVID answers with itself (attestation failures are the server's). */
export type ValidateRefusal = 'INVALID_ARGUMENT' | 'UNAVAILABLE';

/** What the handler needs from the Workload API server, so that attestation stays the server's one path. */
export interface ValidateJwtSvidContext<C> {
  /** The security header and the kernel's attestation of the caller; throws the server's refusal. */
  attest(): Promise<C>;
  /** After the work: the caller must still be the process that connected; throws the server's refusal. */
  recheck(caller: C): Promise<void>;
  /** The agent's bundle of its own trust domain; undefined before the agent's first attestation. */
  bundle(): SpiffeBundle | undefined;
  /** The error the server answers with `code` and `message`. */
  refuse(code: ValidateRefusal, message: string): Error;
  /** Current time for exp and nbf; default `new Date()`. */
  clock?: () => Date;
}

/** Answers one ValidateJWTSVID request; rejects with an error built by `ctx.refuse` or the server's own. */
export async function validateJwtSvid<C>(
  request: ValidateJWTSVIDRequest__Output,
  ctx: ValidateJwtSvidContext<C>,
): Promise<ValidateJWTSVIDResponse> {
  const { audience, svid } = request;
  const bad = (m: string) => ctx.refuse('INVALID_ARGUMENT', m);
  if (typeof audience !== 'string' || audience === '') throw bad('audience must be specified');
  if (Buffer.byteLength(audience) > MAX_AUDIENCE_BYTES)
    throw bad(`audience must be at most ${MAX_AUDIENCE_BYTES} bytes`);
  if (typeof svid !== 'string' || svid === '') throw bad('svid must be specified');
  if (Buffer.byteLength(svid) > MAX_TOKEN_BYTES) throw bad(`svid must be at most ${MAX_TOKEN_BYTES} bytes`);

  const caller = await ctx.attest();
  const bundle = ctx.bundle();
  if (!bundle) throw ctx.refuse('UNAVAILABLE', 'the agent has no trust bundle yet');

  let response: ValidateJWTSVIDResponse;
  try {
    const token = await parseAndValidate(svid, bundle, audience, ctx.clock ? { clock: ctx.clock } : {});
    response = { spiffeId: token.id.toString(), claims: claimsToStruct(withAudienceList(token.claims)) };
  } catch (err) {
    if (!isSvidkitError(err)) throw err;
    throw bad(`the JWT-SVID is not valid (${err.code}): ${err.message.replace(/^jwtsvid: /, '')}`);
  }
  await ctx.recheck(caller);
  return response;
}

/**
 * The claims with `aud` always a list: RFC 7519 allows a lone string, and SPIRE answers with a list
 * either way, which is what clients written against it read.
 */
function withAudienceList(claims: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const aud = claims['aud'];
  if (typeof aud !== 'string') return claims;
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(claims)) out[k] = v;
  out['aud'] = [aud];
  return out;
}

function refuseClaims(message: string): never {
  throw new SvidkitError('ERR_JWTSVID_MALFORMED', `jwtsvid: claims ${message}`);
}

/**
 * JSON claims as a google.protobuf.Struct the way @grpc/proto-loader encodes it: `fields` maps names to
 * Values, each Value sets exactly one member of the `kind` oneof. Only what JSON holds is accepted
 * (null, finite numbers, strings, booleans, lists, objects), nested at most MAX_CLAIMS_DEPTH levels
 * below the claims (the bound svidkit's client enforces) and MAX_CLAIM_VALUES values in all; strings
 * and names must be well-formed Unicode, since protobuf strings are UTF-8 and clients such as
 * go-spiffe refuse a message that is not. Anything else is ERR_JWTSVID_MALFORMED.
 */
export function claimsToStruct(claims: Readonly<Record<string, unknown>>): Struct {
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    refuseClaims('must be a JSON object');
  }
  return objectToStruct(claims, 0, { left: MAX_CLAIM_VALUES });
}

function objectToStruct(obj: object, depth: number, budget: { left: number }): Struct {
  // No prototype: a claim named __proto__ must stay a field, never become the object's prototype.
  const fields = Object.create(null) as Record<string, Value>;
  for (const [name, v] of Object.entries(obj)) {
    if (!name.isWellFormed()) refuseClaims('hold a name that is not well-formed Unicode');
    fields[name] = toValue(v, depth, budget);
  }
  return { fields };
}

function toValue(v: unknown, depth: number, budget: { left: number }): Value {
  // The check comes before the descent, so the recursion itself is bounded by MAX_CLAIMS_DEPTH.
  if (depth > MAX_CLAIMS_DEPTH) refuseClaims(`are nested deeper than ${MAX_CLAIMS_DEPTH} levels`);
  if (--budget.left < 0) refuseClaims(`hold more than ${MAX_CLAIM_VALUES} values`);
  if (v === null) return { nullValue: 'NULL_VALUE' };
  switch (typeof v) {
    case 'string':
      if (!v.isWellFormed()) refuseClaims('hold a string that is not well-formed Unicode');
      return { stringValue: v };
    case 'number':
      if (!Number.isFinite(v)) refuseClaims('hold a number that is not finite');
      return { numberValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'object':
      if (Array.isArray(v)) return { listValue: { values: v.map((x) => toValue(x, depth + 1, budget)) } };
      return { structValue: objectToStruct(v, depth + 1, budget) };
    default:
      return refuseClaims(`hold a value of type ${typeof v}, which JSON has not`);
  }
}
