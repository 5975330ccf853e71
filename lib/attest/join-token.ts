/**
 * Join tokens: one-time secrets an operator hands to a node agent for its first attestation.
 *
 * The CA keeps only the SHA-256 of a token, so a leaked datastore does not leak usable tokens, and
 * the agent ID derived from a token names that hash, never the token: SVIDs and logs are public.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SvidkitError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';

/** Shortest token accepted; 16 base64url characters carry 96 bits, the least we trust for a secret. */
export const MIN_JOIN_TOKEN_LENGTH = 16;
/** Longest token accepted; bounds what an unauthenticated caller can make us hash. */
export const MAX_JOIN_TOKEN_LENGTH = 256;

// 32 random bytes: the same strength as the CA's own keys, and 43 characters of base64url.
const TOKEN_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Throws ERR_ATTEST_JOIN_TOKEN_MALFORMED unless `token` is 16..256 characters of the base64url alphabet. */
export function validateJoinToken(token: unknown): asserts token is string {
  // The value usually comes straight off the wire, so a wrong type is bad input, not a programming error.
  if (typeof token !== 'string') {
    throw new SvidkitError('ERR_ATTEST_JOIN_TOKEN_MALFORMED', 'attest: join token must be a string');
  }
  // The message never repeats the token: a near-miss is still most of a secret.
  if (token.length < MIN_JOIN_TOKEN_LENGTH || token.length > MAX_JOIN_TOKEN_LENGTH) {
    throw new SvidkitError(
      'ERR_ATTEST_JOIN_TOKEN_MALFORMED',
      `attest: join token must be ${MIN_JOIN_TOKEN_LENGTH} to ${MAX_JOIN_TOKEN_LENGTH} characters long`,
    );
  }
  if (!BASE64URL.test(token)) {
    throw new SvidkitError(
      'ERR_ATTEST_JOIN_TOKEN_MALFORMED',
      'attest: join token may contain only letters, digits, "-" and "_"',
    );
  }
}

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
  return SpiffeId.fromSegments(trustDomain, 'svidkit', 'agent', 'join_token', hashJoinToken(token));
}
