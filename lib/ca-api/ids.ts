/**
 * The SPIFFE IDs svidkit reserves for itself in a trust domain: everything under `/svidkit`, the CA's
 * serving ID `/svidkit/ca`, and the agents' IDs under `/svidkit/agent/<attestation>/...`.
 */
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';

/** The path under which every ID is svidkit's own; no registration entry may name one. */
export const RESERVED_PATH = '/svidkit';
/** The path of the CA's serving SVID; an agent accepts no other server ID. */
export const CA_SERVER_PATH = '/svidkit/ca';
/** Path prefix of agent IDs; only IDs under it may call the agent methods of the Node service. */
export const AGENT_PATH_PREFIX = '/svidkit/agent/';

/** True for `/svidkit` and every path under it. */
export function isReservedPath(path: string): boolean {
  return path === RESERVED_PATH || path.startsWith(`${RESERVED_PATH}/`);
}

/** The CA's serving ID: `spiffe://<td>/svidkit/ca`. */
export function caServerId(trustDomain: TrustDomain | string): SpiffeId {
  return SpiffeId.fromPath(trustDomain, CA_SERVER_PATH);
}

/** True when `id` is an agent ID of `trustDomain` (under AGENT_PATH_PREFIX). */
export function isAgentId(id: SpiffeId, trustDomain: TrustDomain): boolean {
  return id.memberOf(trustDomain) && id.path.startsWith(AGENT_PATH_PREFIX);
}

/** The ID of an agent attested with a join token: `spiffe://<td>/svidkit/agent/join_token/<sha256 hex>`. */
export function joinTokenAgentId(trustDomain: TrustDomain | string, tokenHash: string): SpiffeId {
  return SpiffeId.fromSegments(trustDomain, 'svidkit', 'agent', 'join_token', tokenHash);
}

/** The ID of an agent attested with a projected service account token: `.../svidkit/agent/k8s_psat/<cluster>/<node>`. */
export function psatAgentId(trustDomain: TrustDomain | string, cluster: string, node: string): SpiffeId {
  return SpiffeId.fromSegments(trustDomain, 'svidkit', 'agent', 'k8s_psat', cluster, node);
}
