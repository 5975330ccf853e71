/**
 * The flags of `svidkit upstream ...`: their defaults, bounds and parsing. A malformed or
 * out-of-range value (--ttl, --path-len, --subject-cn) fails with ERR_CONFIG like parseDuration,
 * whose errors it extends.
 */
import { parseDuration } from '../config/index.js';
import { type ErrorCode, isSvidkitError, SvidkitError } from '../errors/index.js';
import type { TrustDomain } from '../spiffeid/index.js';

/** One hour, the unit of the lifetime bounds in messages. */
export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const YEAR_MS = 365 * DAY_MS;

/** Defaults of create-root. */
export const ROOT_DEFAULTS = { keyType: 'ec-p384', ttl: '87600h' } as const;
/** Defaults of create-intermediate. */
export const INTERMEDIATE_DEFAULTS = { keyType: 'ec-p256', ttl: '720h', pathLen: '0' } as const;

/** Bounds of create-root's --ttl (an intermediate is further capped at its root's notAfter). */
export const ROOT_TTL_MS = { min: DAY_MS, max: 100 * YEAR_MS };
/** Bounds of create-intermediate's --ttl; a root must outlive the shortest by now. */
export const INTERMEDIATE_TTL_MS = { min: HOUR_MS, max: 100 * YEAR_MS };
/** Largest --path-len accepted: a chain holds at most 10 certificates. */
const MAX_PATH_LEN = 8;
/** ub-common-name (RFC 5280 appendix A). */
export const MAX_CN_LENGTH = 64;
/** Largest private key file read (an RSA-4096 PKCS#8 PEM is about 3.3 KiB). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/** Throws the command's error: `upstream: <message>` with `code`. */
export function fail(code: ErrorCode, message: string): never {
  throw new SvidkitError(code, `upstream: ${message}`);
}

function badOption(option: string, message: string): never {
  fail('ERR_CONFIG', `${option}: ${message}`);
}

/** A --ttl value in ms, within [min, max]; the parse errors are parseDuration's, renamed to this command. */
export function parseTtl(value: string, bounds: { min: number; max: number }): number {
  let ms: number;
  try {
    ms = parseDuration(value, '--ttl');
  } catch (err) {
    if (isSvidkitError(err)) throw new SvidkitError(err.code, `upstream: ${err.plainMessage}`, { detail: err.detail });
    throw err;
  }
  if (ms < bounds.min || ms > bounds.max) {
    badOption('--ttl', `must be between ${bounds.min / HOUR_MS}h and ${bounds.max / HOUR_MS}h`);
  }
  return ms;
}

/** A --path-len value: 0 to MAX_PATH_LEN. */
export function parsePathLen(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) > MAX_PATH_LEN) {
    badOption('--path-len', `must be a whole number from 0 to ${MAX_PATH_LEN}`);
  }
  return Number(value);
}

/** A --subject-cn value: 1 to 64 characters, no control characters. */
export function checkCommonName(cn: string): string {
  // eslint-disable-next-line no-control-regex
  if (cn.length === 0 || cn.length > MAX_CN_LENGTH || /[\u0000-\u001f\u007f]/.test(cn)) {
    badOption('--subject-cn', `must be 1 to ${MAX_CN_LENGTH} characters without control characters`);
  }
  return cn;
}

/** `<prefix> <trust domain>`, or the prefix alone when that would pass the 64 characters a CN may have. */
export function defaultCommonName(prefix: string, td: TrustDomain): string {
  const cn = `${prefix} ${td.name}`;
  return cn.length <= MAX_CN_LENGTH ? cn : prefix;
}

/** The options of create-root, as commander gives them. */
export interface RootOptions {
  trustDomain: string;
  outCert: string;
  outKey: string;
  keyType: string;
  ttl: string;
  subjectCn?: string;
  force?: boolean;
}

/** The options of create-intermediate, as commander gives them. */
export interface IntermediateOptions {
  rootCert: string;
  rootKey: string;
  outCert: string;
  outKey: string;
  keyType: string;
  ttl: string;
  pathLen: string;
  subjectCn?: string;
  trustDomain?: string;
  force?: boolean;
}
