/**
 * Structured JSON logs for the CA daemon and the node agent, built on pino.
 *
 * A log line is read by more people and systems than the daemon's own memory is, so secrets are
 * stripped on three layers: by key name at any depth (a field called `token`, `privateKey`, ...),
 * by shape inside every string (PEM private key blocks, compact JWS/JWT, `Bearer` credentials), and
 * once more on the serialized line, which catches what reaches pino without passing through a log
 * call (child bindings, message prefixes, format arguments that only form a secret once joined).
 */
import { KeyObject } from 'node:crypto';
import type { Writable } from 'node:stream';
import pino from 'pino';

/** What replaces a secret in a log line. */
export const REDACTED = '[REDACTED]';

/** Deepest nesting redactSecrets copies; deeper values are replaced, which also stops cycles early. */
export const MAX_REDACT_DEPTH = 8;
/** Most properties or array items kept per object; a log line is no place for a whole table. */
export const MAX_REDACT_ENTRIES = 100;
/** Most values one redactSecrets call visits, so one log call costs bounded time whatever it is given. */
export const MAX_REDACT_NODES = 2000;
/** Longest string kept, in UTF-16 units; it also bounds the regex work per string. */
export const MAX_REDACT_STRING = 16384;

// PEM private key blocks of any flavour (PKCS#8, "RSA", "EC", "ENCRYPTED", "OPENSSH"). A block with
// no END line (a truncated or sliced key) is cut to the end of the string: a key prefix is still a leak.
const PEM_PRIVATE_KEY = /-----BEGIN[ A-Z0-9]*PRIVATE KEY-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY-----|$)/g;
// HTTP credentials as they appear in header dumps ("authorization: Bearer abc"); the scheme is kept
// so the line still says what kind of credential was there.
const HTTP_CREDENTIAL = /\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/-]+=*/gi;

// The same PEM shape inside a serialized JSON line: the body is JSON string content (escaped pairs
// or anything but a quote), and a block with no END line stops before the closing quote, so the
// line stays valid JSON after replacement.
const PEM_PRIVATE_KEY_IN_JSON =
  /-----BEGIN[ A-Z0-9]*PRIVATE KEY-----(?:[^"\\]|\\.)*?(?:-----END[ A-Z0-9]*PRIVATE KEY-----|(?="))/g;

// Keys whose value is a credential whatever it looks like. Compared after lower-casing and removing
// "-" and "_", so privateKey, private_key and private-key are one entry.
const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'jwt',
  'jwtsvid',
  'key',
  'keypem',
  'passphrase',
  'secret',
  'bearer',
  'credential',
  'credentials',
]);
// Suffixes that make a key a credential: join_token, accessToken, clientSecret, dbPassword, caPrivateKey.
const SECRET_KEY_SUFFIXES = ['token', 'secret', 'password', 'passwd', 'privatekey'] as const;

/** True when a property of this name holds a credential and its value must never be logged. */
export function isSecretKey(name: string): boolean {
  const k = name.toLowerCase().replace(/[-_]/g, '');
  return SECRET_KEYS.has(k) || SECRET_KEY_SUFFIXES.some((s) => k.endsWith(s));
}

/**
 * Replaces every compact JWS/JWE: a run of base64url characters and dots that starts with "eyJ"
 * (base64 of '{"', a JSON header) and has at least three segments. An empty signature (an
 * unsecured JWT) is still a bearer credential. A scanner, not a regex: a regex over "eyJeyJeyJ..."
 * backtracks quadratically, while this visits each character at most twice.
 */
function redactCompactJws(s: string): string {
  let out = '';
  let copied = 0;
  let from = 0;
  for (;;) {
    const start = s.indexOf('eyJ', from);
    if (start < 0) break;
    let end = start;
    let dots = 0;
    for (; end < s.length; end++) {
      const c = s.charCodeAt(end);
      if (c === 0x2e) dots++;
      else if (!isBase64UrlChar(c)) break;
    }
    if (dots >= 2) {
      out += s.slice(copied, start) + REDACTED;
      copied = end;
    }
    // A later "eyJ" in the same run has no more dots after it than this one: skip the whole run.
    from = Math.max(end, start + 3);
  }
  return copied === 0 ? s : out + s.slice(copied);
}

function isBase64UrlChar(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

/** Replaces private key PEM blocks, compact JWS/JWTs and HTTP credentials inside one string. */
export function redactString(s: string): string {
  // Cheap substring checks first: almost no log string holds a secret, and these skip the regexes.
  let out = s;
  if (out.includes('PRIVATE KEY-----')) out = out.replace(PEM_PRIVATE_KEY, REDACTED);
  if (out.includes('eyJ')) out = redactCompactJws(out);
  if (/bearer|basic/i.test(out)) out = out.replace(HTTP_CREDENTIAL, `$1$2${REDACTED}`);
  return out;
}

/** The last-chance scan of a serialized line: the same shapes, matched inside JSON string syntax. */
function redactJsonLine(line: string): string {
  let out = line;
  if (out.includes('PRIVATE KEY-----')) out = out.replace(PEM_PRIVATE_KEY_IN_JSON, REDACTED);
  if (out.includes('eyJ')) out = redactCompactJws(out);
  if (/bearer|basic/i.test(out)) out = out.replace(HTTP_CREDENTIAL, `$1$2${REDACTED}`);
  return out;
}

function truncate(s: string): string {
  if (s.length <= MAX_REDACT_STRING) return s;
  // Cut first, then scan: the scan is bounded, and a key cut in half is still caught by the
  // no-END-line rule. The marker keeps the result under the limit so a second pass is a no-op.
  const marker = `...[truncated ${s.length} chars]`;
  return s.slice(0, MAX_REDACT_STRING - marker.length) + marker;
}

interface Walk {
  nodes: number;
  ancestors: Set<object>;
}

/**
 * A copy of `value` that is safe to log: secrets removed by key name and by shape, Errors turned
 * into plain `{ type, message, stack, code, cause, ... }` objects (pino would otherwise print the
 * raw stack, which repeats the message), binary data and key objects replaced by a description,
 * and depth, width, string length and total size bounded. The input is never modified.
 */
export function redactSecrets(value: unknown): unknown {
  return walk(value, 0, { nodes: 0, ancestors: new Set() });
}

function walk(value: unknown, depth: number, w: Walk): unknown {
  w.nodes++;
  switch (typeof value) {
    case 'string':
      return redactString(truncate(value));
    case 'number':
    case 'boolean':
    case 'undefined':
      return value;
    case 'bigint':
      // JSON has no bigint; a string keeps every digit.
      return value.toString();
    case 'symbol':
      return value.toString();
    case 'function':
      return undefined;
  }
  if (value === null) return null;
  const obj = value as object;
  if (w.ancestors.has(obj)) return '[Circular]';
  if (depth >= MAX_REDACT_DEPTH || w.nodes > MAX_REDACT_NODES) return '[Truncated]';
  // Raw bytes may be a DER private key or a token; nothing in them can be told apart from noise.
  if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer) return `[Binary ${obj.byteLength} bytes]`;
  if (obj instanceof KeyObject) return `[KeyObject ${obj.type}]`;
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();

  w.ancestors.add(obj);
  try {
    if (obj instanceof Error) return walkError(obj, depth, w);
    if (Array.isArray(obj)) return walkArray(obj, depth, w);
    if (obj instanceof Map) return walkEntries(obj.entries(), obj.size, depth, w);
    if (obj instanceof Set) return walkArray(obj, depth, w, obj.size);
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      // Classes such as SpiffeId or URL say how they want to be shown; their output is scanned too.
      let shown: unknown;
      try {
        shown = toJSON.call(obj);
      } catch {
        return '[Unserializable]';
      }
      return walk(shown, depth + 1, w);
    }
    return walkEntries(ownEntries(obj), Object.keys(obj).length, depth, w);
  } finally {
    w.ancestors.delete(obj);
  }
}

function* ownEntries(obj: object): Generator<[unknown, unknown]> {
  for (const key of Object.keys(obj)) {
    let v: unknown;
    try {
      v = (obj as Record<string, unknown>)[key];
    } catch {
      // A throwing getter must not turn a log call into a crash.
      v = '[Unreadable]';
    }
    yield [key, v];
  }
}

function walkEntries(entries: Iterable<[unknown, unknown]>, size: number, depth: number, w: Walk) {
  const out: Record<string, unknown> = {};
  let kept = 0;
  for (const [k, v] of entries) {
    if (kept >= MAX_REDACT_ENTRIES || w.nodes > MAX_REDACT_NODES) {
      out['...'] = `${size - kept} more`;
      break;
    }
    const key = redactString(truncate(typeof k === 'string' ? k : String(k)));
    out[key] = isSecretKey(key) && v !== undefined && v !== null ? REDACTED : walk(v, depth + 1, w);
    kept++;
  }
  return out;
}

function walkArray(items: Iterable<unknown>, depth: number, w: Walk, size?: number): unknown[] {
  const out: unknown[] = [];
  const total = size ?? (items as unknown[]).length;
  for (const item of items) {
    if (out.length >= MAX_REDACT_ENTRIES || w.nodes > MAX_REDACT_NODES) {
      out.push(`...${total - out.length} more`);
      break;
    }
    out.push(walk(item, depth + 1, w));
  }
  return out;
}

function walkError(err: Error, depth: number, w: Walk): Record<string, unknown> {
  // The shape of pino's standard error serializer, so log queries work on both.
  const out: Record<string, unknown> = {
    type: err.constructor?.name || err.name || 'Error',
    message: walk(String(err.message), depth + 1, w),
    stack: walk(typeof err.stack === 'string' ? err.stack : '', depth + 1, w),
  };
  for (const [k, v] of ownEntries(err)) {
    const key = k as string;
    if (key in out || key === 'cause' || key === 'errors') continue;
    out[key] = isSecretKey(key) && v !== undefined && v !== null ? REDACTED : walk(v, depth + 1, w);
  }
  // `cause` and AggregateError's `errors` are not enumerable, yet they are where the real reason is.
  if (err.cause !== undefined) out.cause = walk(err.cause, depth + 1, w);
  if (err instanceof AggregateError) out.errors = walk(err.errors, depth + 1, w);
  return out;
}

/** Pino's names for the standard levels, plus 'silent'. */
export type LogLevel = pino.LevelWithSilent;

/** The logger both daemons pass around: a pino logger. */
export type Logger = pino.Logger;

/** Options for createLogger. */
export interface LoggerOptions {
  /** Component name written on every line, e.g. "svidkit-ca". */
  name: string;
  /** Lowest level written; 'info' by default. */
  level?: LogLevel;
  /** Where lines go: a pino destination or any writable stream (tests capture lines this way). Stdout by default. */
  destination?: pino.DestinationStream | Writable;
}

// Fixed paths pino redacts before our own pass; they also cover child bindings, which the
// logMethod hook never sees. Wildcards reach one level down; the key-name rule in redactSecrets
// reaches every level.
const REDACT_FIELDS = [
  'token',
  'jwt',
  'key',
  'privateKey',
  'private_key',
  'password',
  'secret',
  'authorization',
  'cookie',
] as const;
const REDACT_PATHS = [
  ...REDACT_FIELDS,
  ...REDACT_FIELDS.map((f) => `*.${f}`),
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.headers.authorization',
];

/** Creates a pino logger that writes one JSON object per line and keeps secrets out of every line. */
export function createLogger(options: LoggerOptions): Logger {
  const opts: pino.LoggerOptions = {
    name: options.name,
    level: options.level ?? 'info',
    // ISO times and level names read well in `kubectl logs` and need no mapping in log pipelines.
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    // Errors reach `err` already redacted by the hook; one given through other routes (child
    // bindings) is redacted here instead of by pino's serializer, which would print the raw stack.
    serializers: { err: (v: unknown) => (v instanceof Error ? redactSecrets(v) : v) },
    hooks: {
      logMethod(args, method) {
        const safe: unknown[] = args.map((a) => redactSecrets(a));
        // pino treats a leading Error specially (msg taken from it); after redaction it is a plain
        // object, so restore that meaning explicitly.
        if (args[0] instanceof Error) safe[0] = { err: safe[0] };
        (method as (...a: unknown[]) => void).apply(this, safe);
      },
      streamWrite: redactJsonLine,
    },
  };
  const dest = options.destination as pino.DestinationStream | undefined;
  const logger = dest ? pino(opts, dest) : pino(opts);
  // Child bindings are serialized once, at child() time, without passing the logMethod hook, and
  // a child's bindings formatter cannot be inherited; so bindings are redacted on the way in. Set
  // on the root as an own property, it is inherited by every child (pino children are
  // Object.create(parent)) and by theirs.
  const child = logger.child;
  const safeChild = function (this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions) {
    const safeOptions =
      typeof childOptions?.msgPrefix === 'string'
        ? { ...childOptions, msgPrefix: redactString(childOptions.msgPrefix) }
        : childOptions;
    return Reflect.apply(child, this, [redactSecrets(bindings), safeOptions]) as Logger;
  };
  Object.defineProperty(logger, 'child', { value: safeChild, writable: true, configurable: true });
  return logger;
}

// Loggers whose level is above info get an info-level child for audit lines, made once.
const auditChildren = new WeakMap<Logger, Logger>();

/** Fields of the audit line written for each issued SVID. */
export interface AuditFields {
  [field: string]: unknown;
}

/**
 * Writes one audit line: the given fields plus `audit: true`, at info level even when the logger
 * is set higher, because a verbosity setting must not drop the record of an issuance. Only a
 * 'silent' logger writes nothing. Fields are redacted like any other log line.
 */
export function audit(logger: Logger, fields: AuditFields, msg = 'audit'): void {
  if (logger.level === 'silent') return;
  let target = logger;
  if (!logger.isLevelEnabled('info')) {
    target = auditChildren.get(logger) ?? logger.child({}, { level: 'info' });
    auditChildren.set(logger, target);
  }
  // `audit` is written last so no field can turn an audit line into an ordinary one.
  target.info({ ...fields, audit: true }, msg);
}
