/**
 * Limits both ends of the CA API hold to: the join token's format (the agent checks its own token
 * before sending it, the CA checks every token it is sent) and the JWT-SVID audiences of a request.
 */
import { SvidkitError } from '../errors/index.js';

/** Shortest join token accepted; 16 base64url characters carry 96 bits, the least we trust for a secret. */
export const MIN_JOIN_TOKEN_LENGTH = 16;
/** Longest join token accepted; bounds what an unauthenticated caller can make the CA hash. */
export const MAX_JOIN_TOKEN_LENGTH = 256;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

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

/** Most audiences in one JWT-SVID request (and in one workload's configuration). */
export const MAX_AUDIENCES = 16;
/** Longest single audience. */
export const MAX_AUDIENCE_LENGTH = 2048;
/**
 * Most bytes the audiences may take in the token (the UTF-8 JSON of the list). With the longest
 * SPIFFE ID (2048 bytes), the longest kid (256) and an RS512 signature by an RSA-4096 key, the
 * payload may hold 9,376 bytes of audiences before the token passes MAX_TOKEN_BYTES (16 KiB):
 * 8 KiB always fits, so a request inside these limits never fails at signing time.
 */
export const MAX_AUDIENCE_BYTES = 8192;
