/**
 * Authorizers: plain functions that look at an authenticated peer's SPIFFE ID (and its verified chain)
 * and throw to refuse. They run after the chain has been verified against the peer's trust domain bundle.
 */
import { SvidkitError } from '../errors/index.js';
import {
  matchAny,
  matchId,
  matchMemberOf,
  matchOneOf,
  matchWith,
  type SpiffeId,
  type TrustDomain,
} from '../spiffeid/index.js';
import type { Certificate } from '../x509/certificate.js';

/** Throws (ERR_AUTHZ_DENIED) to refuse the peer. */
export type Authorizer = (peerId: SpiffeId, verifiedChain: readonly Certificate[]) => void;

function wrap(matcher: (id: SpiffeId) => void): Authorizer {
  return (id) => {
    try {
      matcher(id);
    } catch (err) {
      const why = err instanceof SvidkitError ? err.plainMessage : err instanceof Error ? err.message : 'refused';
      throw new SvidkitError('ERR_AUTHZ_DENIED', `authorize: ${why}`, { cause: err });
    }
  };
}

/** Allows any authenticated peer (its chain still had to verify). */
export function authorizeAny(): Authorizer {
  return wrap(matchAny());
}

/** Allows exactly one ID. */
export function authorizeId(id: SpiffeId | string): Authorizer {
  return wrap(matchId(id));
}

/** Allows any of the IDs. */
export function authorizeOneOf(...ids: (SpiffeId | string)[]): Authorizer {
  return wrap(matchOneOf(...ids));
}

/** Allows any ID of the trust domain. */
export function authorizeMemberOf(td: TrustDomain | string): Authorizer {
  return wrap(matchMemberOf(td));
}

/** Allows IDs for which the predicate is true. */
export function authorizeMatching(predicate: (id: SpiffeId) => boolean, description?: string): Authorizer {
  return wrap(matchWith(predicate, description));
}
