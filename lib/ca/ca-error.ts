/** The error helpers of the CA key modules: every message starts with `ca: `, as callers expect. */
import { type ErrorCode, SvidkitError } from '../errors/index.js';

/** A SvidkitError of the CA with `cause` kept for the log. */
export function caError(code: ErrorCode, message: string, cause?: unknown): SvidkitError {
  return new SvidkitError(code, `ca: ${message}`, cause === undefined ? undefined : { cause });
}

/** The message of a caught value, for a log field or a wrapped error. */
export function errorDetail(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
