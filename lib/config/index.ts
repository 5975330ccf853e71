/**
 * Strict reading of daemon configuration: YAML files, then environment variables, then flags, each
 * overriding the one before. Unknown keys are errors (a typo must not silently fall back to a
 * default), every value is type-checked, and every failure names the key that is wrong.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { SvidkitError } from '../errors/index.js';

/** Largest configuration file accepted. */
export const MAX_CONFIG_BYTES = 256 * 1024;

function bad(path: string, message: string): never {
  throw new SvidkitError('ERR_CONFIG', `config: ${path || '(top level)'}: ${message}`);
}

/** Parses a duration such as "90s", "5m", "1h", "24h", "1h30m" into milliseconds; numbers are seconds. */
export function parseDuration(value: unknown, path: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) bad(path, 'must be a non-negative duration');
    return value * 1000;
  }
  if (typeof value !== 'string' || !/^(\d+(ms|s|m|h|d))+$/.test(value)) {
    bad(path, `"${String(value).slice(0, 32)}" is not a duration like 30s, 5m, 1h or 1h30m`);
  }
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  for (const m of value.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * unit[m[2]!]!;
  if (!Number.isSafeInteger(total)) bad(path, 'duration is too large');
  return total;
}

/** A reader over one mapping of the configuration that tracks which keys were used. */
export class Section {
  readonly #path: string;
  readonly #data: Record<string, unknown>;
  readonly #used = new Set<string>();

  /** Wraps a decoded mapping; `path` names it in error messages (e.g. "ca.upstream"). */
  constructor(data: unknown, path = '') {
    if (data === undefined || data === null) data = {};
    if (typeof data !== 'object' || Array.isArray(data)) bad(path, 'must be a mapping');
    this.#path = path;
    this.#data = data as Record<string, unknown>;
  }

  #key(key: string): string {
    return this.#path ? `${this.#path}.${key}` : key;
  }

  #get(key: string): unknown {
    this.#used.add(key);
    return this.#data[key];
  }

  /** True when the key is present. */
  has(key: string): boolean {
    return this.#data[key] !== undefined && this.#data[key] !== null;
  }

  /** A string value, or the default. */
  string(key: string, def?: string): string {
    const v = this.#get(key) ?? def;
    if (typeof v !== 'string' || v.length === 0) bad(this.#key(key), 'must be a non-empty string');
    if (v.length > 4096) bad(this.#key(key), 'is too long');
    return v;
  }

  /** An optional string value. */
  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : (this.#get(key), undefined);
  }

  /** An integer in [min, max], or the default. */
  int(key: string, def: number, min: number, max: number): number {
    const v = this.#get(key) ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      bad(this.#key(key), `must be an integer from ${min} to ${max}`);
    }
    return v;
  }

  /** A boolean, or the default. */
  bool(key: string, def: boolean): boolean {
    const v = this.#get(key) ?? def;
    if (typeof v !== 'boolean') bad(this.#key(key), 'must be true or false');
    return v;
  }

  /** A duration in milliseconds within [minMs, maxMs], or the default. */
  duration(key: string, defMs: number, minMs: number, maxMs: number): number {
    const raw = this.#get(key);
    const ms = raw === undefined || raw === null ? defMs : parseDuration(raw, this.#key(key));
    if (ms < minMs || ms > maxMs) bad(this.#key(key), `must be between ${minMs / 1000}s and ${maxMs / 1000}s`);
    return ms;
  }

  /** One of the given choices, or the default. */
  choice<T extends string>(key: string, choices: readonly T[], def: T): T {
    const v = this.#get(key) ?? def;
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      bad(this.#key(key), `must be one of ${choices.join(', ')}`);
    }
    return v as T;
  }

  /** A list of strings (empty by default), at most `max` long. */
  strings(key: string, max = 1000): string[] {
    const v = this.#get(key) ?? [];
    if (!Array.isArray(v) || v.length > max || v.some((s) => typeof s !== 'string' || s.length === 0)) {
      bad(this.#key(key), `must be a list of at most ${max} non-empty strings`);
    }
    return v as string[];
  }

  /** A nested mapping. */
  section(key: string): Section {
    return new Section(this.#get(key), this.#key(key));
  }

  /** A list of nested mappings, at most `max` long. */
  sections(key: string, max = 100): Section[] {
    const v = this.#get(key) ?? [];
    if (!Array.isArray(v) || v.length > max) bad(this.#key(key), `must be a list of at most ${max} mappings`);
    return v.map((item, i) => new Section(item, `${this.#key(key)}[${i}]`));
  }

  /** Throws for any key that no accessor asked for: a misspelt key must not be ignored. */
  done(): void {
    for (const k of Object.keys(this.#data)) {
      if (!this.#used.has(k)) bad(this.#key(k), 'unknown key');
    }
  }
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
