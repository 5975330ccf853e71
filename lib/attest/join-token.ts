/**
 * Join tokens: one-time secrets an operator hands to a node agent for its first attestation.
 *
 * The CA keeps only the SHA-256 of a token, so a leaked datastore does not leak usable tokens, and
 * the agent ID derived from a token names that hash, never the token: SVIDs and logs are public.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { joinTokenAgentId } from '../ca-api/ids.js';
import { validateJoinToken } from '../ca-api/limits.js';
import type { SpiffeId, TrustDomain } from '../spiffeid/index.js';

// The format of a token is part of the CA API (the agent checks its own before sending it).
export { MAX_JOIN_TOKEN_LENGTH, MIN_JOIN_TOKEN_LENGTH, validateJoinToken } from '../ca-api/limits.js';

// 32 random bytes: the same strength as the CA's own keys, and 43 characters of base64url.
const TOKEN_BYTES = 32;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A new random join token: 32 bytes as unpadded base64url, safe in URLs and shell commands. */
export function generateJoinToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** The lowercase SHA-256 hex of a valid join token; the only form of the token the CA stores. */
export function hashJoinToken(token: string): string {
  validateJoinToken(token);
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `token` hashes to `storedHash`; compares in constant time so the check leaks nothing. */
export function joinTokenMatchesHash(token: string, storedHash: string): boolean {
  if (typeof storedHash !== 'string' || !SHA256_HEX.test(storedHash)) {
    throw new TypeError('attest: storedHash must be a lowercase SHA-256 hex string');
  }
  return timingSafeEqual(Buffer.from(hashJoinToken(token), 'hex'), Buffer.from(storedHash, 'hex'));
}

/** The agent ID for a join token: `spiffe://<td>/svidkit/agent/join_token/<sha256 hex>`. */
export function agentIdForJoinToken(trustDomain: TrustDomain | string, token: string): SpiffeId {
  return joinTokenAgentId(trustDomain, hashJoinToken(token));
}
