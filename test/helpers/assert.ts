/**
 * The one set of assertions for refusals: a SvidkitError with exactly the expected code and its
 * module's message prefix (and, on request, a message pattern, a cause's errno code, and secrets that
 * must not appear in the message), and a gRPC call that fails with exactly the expected status.
 */
import { strict as assert } from 'node:assert';
import { type ServiceError, status } from '@grpc/grpc-js';
import { type ErrorCode, isSvidkitError, SvidkitError } from '../../lib/errors/index.js';

/** The message prefix of each module, by error-code family (longest family first). */
const PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['ERR_X509SVID_', 'x509svid: '],
  ['ERR_X509_', 'x509: '],
  ['ERR_PEM_', 'pem: '],
  ['ERR_DER_', 'der: '],
  ['ERR_KEY_', 'keys: '],
  ['ERR_CSR_', 'csr: '],
  ['ERR_BUNDLE_', 'bundle: '],
  ['ERR_SPIFFEID_', 'spiffeid: '],
  ['ERR_JWTSVID_', 'jwtsvid: '],
  ['ERR_AGENT_', 'agent: '],
  ['ERR_ATTEST_', 'attest: '],
  ['ERR_CA_', 'ca: '],
  ['ERR_SOURCE_', 'source: '],
  ['ERR_STORE_', 'store: '],
  ['ERR_SELECTOR_', 'selectors: '],
  ['ERR_TLS_', 'tls: '],
];

/**
 * The message prefix ("x509svid: ", "bundle: "...) a SvidkitError with this code must start with;
 * undefined for codes several modules raise (ERR_CONFIG, ERR_INTERNAL, ERR_USAGE...).
 */
export function prefixOf(code: ErrorCode): string | undefined {
  return PREFIXES.find(([family]) => code.startsWith(family))?.[1];
}

/** What else a refusal must show, beyond its code. */
export interface Expect {
  /** The message prefix; default the prefix of the code's module (prefixOf), if it has one. */
  readonly prefix?: string;
  /** A pattern the message must match. */
  readonly message?: RegExp;
  /** The errno-style code of the error's cause. */
  readonly causeCode?: string;
  /** Text that must not appear in the message, whole or any dot-separated part of 8 characters or more (tokens, key material). */
  readonly secret?: string;
}

/** Checks that `err` is a SvidkitError with exactly `code` and everything `expect` asks; returns it. */
export function checkError(err: unknown, code: ErrorCode, expect: Expect = {}): SvidkitError {
  assert.ok(err !== undefined, `expected ${code}, but nothing was thrown`);
  assert.ok(err instanceof SvidkitError, `expected SvidkitError ${code}, got ${String(err)}`);
  assert.equal(err.code, code, `wrong code; message was ${JSON.stringify(err.message)}`);
  // A plain SvidkitError is named so; subclasses (FileSourceError, JwtAuthError) carry their own names.
  if (err.constructor === SvidkitError) assert.equal(err.name, 'SvidkitError');
  assert.ok(isSvidkitError(err, code));
  const prefix = expect.prefix ?? prefixOf(code);
  if (prefix !== undefined) {
    assert.ok(err.message.startsWith(prefix), `message ${JSON.stringify(err.message)} lacks "${prefix}"`);
  }
  if (expect.message) assert.match(err.message, expect.message);
  if (expect.causeCode !== undefined) {
    assert.equal((err.cause as { code?: string } | undefined)?.code, expect.causeCode, err.message);
  }
  if (typeof expect.secret === 'string') {
    const parts = [expect.secret, ...expect.secret.split('.')].filter((p) => p.length >= 8);
    for (const part of parts) assert.ok(!err.message.includes(part), 'the message contains secret material');
  }
  return err;
}

/** Asserts that `fn` throws a SvidkitError with exactly `code` (see checkError); returns it. */
export function assertCode(fn: () => unknown, code: ErrorCode, expect: Expect = {}): SvidkitError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  return checkError(caught, code, expect);
}

/** Asserts that `p` rejects with a SvidkitError with exactly `code` (see checkError); returns it. */
export async function rejectsCode(p: Promise<unknown>, code: ErrorCode, expect: Expect = {}): Promise<SvidkitError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  return checkError(caught, code, expect);
}

/** Asserts that a gRPC call fails with exactly `code`; `what` names the call in the failure message. */
export async function rejectsStatus(p: Promise<unknown>, code: status, what = 'the call'): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    const e = err as ServiceError;
    assert.equal(e.code, code, `${what}: expected ${status[code]}, got ${status[e.code]}: ${e.details ?? e.message}`);
    return e;
  }
  assert.fail(`${what}: expected ${status[code]}, the call succeeded`);
}
