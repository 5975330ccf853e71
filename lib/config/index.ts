/**
 * Strict reading of daemon configuration: YAML files, then environment variables, then flags, each
 * overriding the one before. Each daemon describes its file as a zod schema built from the pieces
 * below; the same schema checks a document and, through z.toJSONSchema, gives editors a JSON Schema.
 * Unknown keys are errors (a typo must not silently fall back to a default), every value is
 * type-checked, and every failure is ERR_CONFIG naming the key that is wrong.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { isSvidkitError, SvidkitError } from '../errors/index.js';

/** Largest configuration file accepted. */
export const MAX_CONFIG_BYTES = 256 * 1024;
/** Longest string value accepted. */
export const MAX_STRING = 4096;

/** Throws the ERR_CONFIG refusal for one key path (`workloads[3].key_mode`). */
export function bad(path: string, message: string, cause?: unknown): never {
  const options = cause === undefined ? undefined : { cause };
  throw new SvidkitError('ERR_CONFIG', `config: ${path || '(top level)'}: ${message}`, options);
}

/** Runs `fn`, turning any other SvidkitError it throws (e.g. ERR_SPIFFEID_*) into ERR_CONFIG for `path`. */
export function at<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isSvidkitError(err) && err.code !== 'ERR_CONFIG') bad(path, err.message, err);
    throw err;
  }
}

const DURATION = /^(\d+(ms|s|m|h|d))+$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

// Milliseconds, or the reason the value is not a duration.
function durationOf(value: unknown): number | string {
  if (typeof value === 'number') {
    return !Number.isFinite(value) || value < 0 ? 'must be a non-negative duration' : value * 1000;
  }
  if (typeof value !== 'string' || !DURATION.test(value)) {
    return `"${String(value).slice(0, 32)}" is not a duration like 30s, 5m, 1h or 1h30m`;
  }
  let total = 0;
  for (const m of value.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(total) ? total : 'duration is too large';
}

/** Parses a duration such as "90s", "5m", "1h", "24h", "1h30m" into milliseconds; numbers are seconds. */
export function parseDuration(value: unknown, path: string): number {
  const ms = durationOf(value);
  if (typeof ms === 'string') bad(path, ms);
  return ms;
}

// What an editor shows for a duration key.
function durationText(minMs: number, maxMs: number): string {
  const bounds = maxMs === Number.MAX_SAFE_INTEGER ? '' : `, from ${minMs / 1000}s to ${maxMs / 1000}s`;
  return `A duration such as 30s, 5m, 1h or 1h30m (units ms, s, m, h, d; a bare number is seconds)${bounds}.`;
}

/** A zod error option that gives every issue of a schema the same message. */
type Message = string | ((input: unknown) => string);
function says(message: Message): { error: (iss: { input?: unknown }) => string } {
  return { error: (iss) => (typeof message === 'string' ? message : message(iss.input)) };
}

/** Checks a list's length before its items, so that a long list is refused without reading it. */
function bounded<T extends z.ZodType>(max: number, message: string, list: T, stringsOnly = false) {
  return z.preprocess((v, ctx) => {
    // A list of choices is first a list of strings: an item that is none is the list's fault.
    const notString = stringsOnly && Array.isArray(v) && v.some((s) => typeof s !== 'string' || s === '');
    if (Array.isArray(v) && (v.length > max || notString)) ctx.addIssue({ code: 'custom', message, input: v });
    return v;
  }, list);
}

/**
 * A mapping with exactly these keys. A key set to null (`key: ~`) is left out, so its default
 * applies; but the keys in `nullIsUnknown` are optional mappings that the reader never looked at when
 * null, and such a null has always been refused as an unknown key.
 */
function mapping<S extends z.ZodRawShape>(shape: S, nullIsUnknown: readonly string[] = []) {
  return z.preprocess(
    (v, ctx) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        // defineProperty: a `__proto__` key stays a key (refused as unknown), never a prototype.
        if (x !== null)
          Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
        else if (nullIsUnknown.includes(k))
          ctx.addIssue({ code: 'custom', message: 'unknown key', path: [k], input: x });
      }
      return out;
    },
    z.strictObject(shape, says('must be a mapping')),
  );
}

/** Schema pieces in the message style of every daemon's configuration. */
export const cfg = {
  /** A non-empty string of at most MAX_STRING characters. */
  string: () =>
    z
      .string(says('must be a non-empty string'))
      .min(1, says('must be a non-empty string'))
      .max(MAX_STRING, says('is too long')),
  /** An integer in [min, max]. */
  int: (min: number, max: number) => {
    const m = says(`must be an integer from ${min} to ${max}`);
    return z.number(m).int(m).min(min, m).max(max, m);
  },
  /** True or false. */
  bool: () => z.boolean(says('must be true or false')),
  /** One of the given strings. */
  choice: <const T extends readonly [string, ...string[]]>(choices: T) =>
    z.enum(choices, says(`must be one of ${choices.join(', ')}`)),
  /** A duration ("30s", "1h30m", or a number of seconds) read as milliseconds within [minMs, maxMs] when given. */
  duration: (minMs = 0, maxMs = Number.MAX_SAFE_INTEGER) => {
    const m = says((input) => String(durationOf(input)));
    const range = says(`must be between ${minMs / 1000}s and ${maxMs / 1000}s`);
    return z
      .union([z.number(m).min(0, m), z.string(m).regex(DURATION, m)], m)
      .transform((v, ctx) => {
        const ms = durationOf(v);
        if (typeof ms === 'number') return ms;
        ctx.issues.push({ code: 'custom', message: ms, input: v });
        return z.NEVER;
      })
      .pipe(z.number().min(minMs, range).max(maxMs, range))
      .meta({ description: durationText(minMs, maxMs) });
  },
  /** A number in [min, max], given as a YAML number or, from an environment variable, as decimal text. */
  fraction: (min: number, max: number) => {
    const m = says(`must be a number from ${min} to ${max}`);
    return z
      .union([z.number(m).min(min, m).max(max, m), z.string(m).regex(/^\d+(\.\d+)?$/, m)], m)
      .transform(Number)
      .pipe(z.number().min(min, m).max(max, m));
  },
  /**
   * A file mode: a number (YAML 0o644, or 420) or an octal string ('0644', '644', '0o644'). Only
   * permission bits (at most 0o777) are accepted: set-id and sticky bits make no sense on these files.
   */
  fileMode: () => {
    const m = says((input) =>
      typeof input === 'string'
        ? `"${input.slice(0, 16)}" is not an octal file mode like '0644'`
        : typeof input === 'number'
          ? `${String(input).slice(0, 16)} is not a file mode from 0 to 0o777; write it quoted ('0640') or as 0o640`
          : "must be an octal file mode such as '0640' or 0o640",
    );
    // An editor reads an unquoted 0640 as the YAML 1.2 integer 640, which the loader reads as octal:
    // the JSON Schema allows numbers up to 777 so that such a file is not marked wrong.
    const number = z.number(m).int(m).min(0, m).max(0o777, m).meta({ maximum: 777 });
    return z
      .union([number, z.string(m).regex(/^(?:0o?)?[0-7]{3}$/, m)], m)
      .transform((v) => (typeof v === 'number' ? v : parseInt(v.slice(-3), 8)))
      .meta({
        description:
          "Permission bits: a quoted octal string ('0640') or a number. An unquoted number with a leading zero " +
          '(0640) is read as octal; any other number is decimal (420 is 0644).',
      });
  },
  /** A list (empty when absent) of at most `max` non-empty strings; `emptyMessage` makes an empty one wrong. */
  strings: (max: number, emptyMessage?: string) => {
    const text = `must be a list of at most ${max} non-empty strings`;
    const list = z.array(z.string(says(text)).min(1, says(text)), says(text)).max(max, says(text));
    return bounded(max, text, emptyMessage === undefined ? list : list.min(1, says(emptyMessage))).prefault([]);
  },
  /** A list (empty when absent) of at most `max` of the given strings; a bad item is named by its index. */
  choices: <const T extends readonly [string, ...string[]]>(max: number, choices: T) => {
    const text = `must be a list of at most ${max} non-empty strings`;
    const item = z.enum(choices, says(`must be one of ${choices.join(', ')}`));
    return bounded(max, text, z.array(item, says(text)).max(max, says(text)), true).prefault([]);
  },
  mapping,
  /** A mapping (see `mapping`) that may be absent: then it is an empty one, so its defaults apply. */
  section: <S extends z.ZodRawShape>(shape: S, nullIsUnknown: readonly string[] = []) =>
    mapping(shape, nullIsUnknown).prefault({} as never),
  /**
   * A mapping that must set exactly one of `keys`, checked before its keys are (so that a misspelt
   * method is reported as a missing one); `message` gets the keys that are set.
   */
  exactlyOne: <T extends z.ZodType>(keys: readonly string[], message: (found: string[]) => string, mapping: T) =>
    z.preprocess((v, ctx) => {
      if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) return v;
      const found = keys.filter((k) => (v as Record<string, unknown> | undefined)?.[k] != null);
      if (found.length !== 1) ctx.addIssue({ code: 'custom', message: message(found), input: v });
      return v;
    }, mapping),
  /** A list (empty when absent) of at most `max` mappings of one shape. */
  sections: <T extends z.ZodType>(max: number, item: T) => {
    const m = `must be a list of at most ${max} mappings`;
    // A null item is an empty mapping, as a missing section is.
    const entry = z.preprocess((v) => v ?? {}, item);
    return bounded(max, m, z.array(entry, says(m)).max(max, says(m))).prefault([]);
  },
};

/** `workloads[3].key_mode` for the path of a zod issue. */
function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** Checks a decoded document against a schema; the first problem becomes ERR_CONFIG naming its key. */
export function parseWithSchema<T extends z.ZodType>(schema: T, doc: unknown): z.output<T> {
  const result = schema.safeParse(doc ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  let path = [...issue.path];
  if (issue.code === 'unrecognized_keys') return bad(keyPath([...path, issue.keys[0]!]), 'unknown key');
  // A string list names the list, not the item (the message says what the whole list must be).
  if (issue.message.startsWith('must be a list of')) {
    while (typeof path[path.length - 1] === 'number') path = path.slice(0, -1);
  }
  return bad(keyPath(path), issue.message);
}

/** The JSON Schema (draft 2020-12) of a configuration file, describing what may be written in YAML. */
export function configJsonSchema(
  schema: z.ZodType,
  meta: { title: string; description: string },
): Record<string, unknown> {
  // The input side: what the YAML may say (a duration as text), not what the parser turns it into.
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  const { $schema, ...rest } = json;
  return { $schema, title: meta.title, description: meta.description, ...rest };
}

/** Reads and decodes a YAML configuration file (bounded in size); an absent path gives an empty mapping. */
export async function readConfigFile(path: string | undefined): Promise<unknown> {
  if (path === undefined) return {};
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_CONFIG_BYTES) bad('', `${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof SvidkitError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SvidkitError('ERR_CONFIG', `config: cannot read ${path} (${code})`, { cause: err });
  }
  try {
    // Aliases are refused and the document count bounded so that a small file cannot expand hugely.
    return parseYaml(text, { maxAliasCount: 0, uniqueKeys: true, prettyErrors: true }) ?? {};
  } catch (cause) {
    const msg = cause instanceof Error ? cause.message.split('\n')[0] : 'invalid YAML';
    throw new SvidkitError('ERR_CONFIG', `config: ${path}: ${msg}`, { cause });
  }
}

/**
 * Applies overrides to a decoded configuration: each entry maps a dotted key ("ca.ttl") to a string
 * value from the environment or a flag. Numbers and booleans are converted where the text is one.
 */
export function applyOverrides(doc: unknown, overrides: ReadonlyMap<string, string>): Record<string, unknown> {
  const root = (typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? structuredClone(doc) : {}) as Record<
    string,
    unknown
  >;
  for (const [dotted, raw] of overrides) {
    const parts = dotted.split('.');
    let node = root;
    for (const p of parts.slice(0, -1)) {
      const next = node[p];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    const value = /^-?\d+$/.test(raw) ? Number(raw) : raw === 'true' ? true : raw === 'false' ? false : raw;
    node[parts[parts.length - 1]!] = value;
  }
  return root;
}

/**
 * Collects overrides from environment variables named PREFIX_SECTION_KEY (e.g. SVIDKIT_CA_CA_TTL for
 * ca.ttl) for the given dotted keys.
 */
export function envOverrides(prefix: string, keys: readonly string[], env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of keys) {
    const name = `${prefix}_${k.replace(/\./g, '_').toUpperCase()}`;
    const v = env[name];
    if (v !== undefined && v !== '') out.set(k, v);
  }
  return out;
}
