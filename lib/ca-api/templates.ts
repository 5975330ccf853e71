/**
 * SPIFFE ID templates of registration entries (`spiffe://{{trust_domain}}/ns/{{k8s:ns}}/sa/{{k8s:sa}}`):
 * the one home of their syntax. The CA parses a template when an entry is created and checks every ID
 * an agent asks for against it; the agent fills it from an attested caller's selectors. Both ends use
 * this module, so they agree on what a template may say and which IDs it can yield.
 *
 * A placeholder is `{{trust_domain}}` or `{{<type>:<key>}}` naming a selector key that a caller has
 * at most once (its namespace, its service account). A filled value must be a non-empty run of SPIFFE
 * path characters without `/`, so a value can never add a path segment, climb out of one (`..`) or
 * reach the reserved `/svidkit` tree; a caller whose value is not such a run does not get the ID.
 */
import { SvidkitError } from '../errors/index.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';
import { isReservedPath } from './ids.js';

/** Longest template accepted, in bytes (a SPIFFE ID is at most 2048). */
export const MAX_TEMPLATE_BYTES = 1024;
/** Most placeholders one template may hold. */
export const MAX_TEMPLATE_PLACEHOLDERS = 8;

/** The placeholder of the trust domain's name. */
export const TRUST_DOMAIN_PLACEHOLDER = 'trust_domain';

/**
 * Selector keys a template may name: those an attested caller has exactly once. Labels, owners and
 * supplementary groups can be many, so they are for matching (selectors), never for naming.
 */
export const TEMPLATE_SELECTOR_KEYS: readonly string[] = [
  'k8s:ns',
  'k8s:sa',
  'k8s:pod-name',
  'k8s:pod-uid',
  'k8s:node-name',
  'k8s:container-name',
  'unix:uid',
  'unix:gid',
  'unix:user',
  'unix:group',
];

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
// What a filled value may be: SPIFFE path characters, never "/", never "." or ".." alone.
const VALUE = /^[A-Za-z0-9._-]+$/;

function refuse(reason: string, message: string): SvidkitError {
  return new SvidkitError('ERR_TEMPLATE_INVALID', `template: ${message}`, { detail: { reason } });
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

/** A parsed SPIFFE ID template of one trust domain. */
export class SpiffeIdTemplate {
  /** The template as written (and stored). */
  readonly text: string;
  /** The selector keys it names (`k8s:ns`), in order of appearance, without the trust domain. */
  readonly keys: readonly string[];
  readonly #trustDomain: TrustDomain;
  readonly #pattern: RegExp;

  private constructor(text: string, trustDomain: TrustDomain, keys: string[], pattern: RegExp) {
    this.text = text;
    this.#trustDomain = trustDomain;
    this.keys = keys;
    this.#pattern = pattern;
  }

  /**
   * Parses a template for `trustDomain`. Throws ERR_TEMPLATE_INVALID (detail.reason) for a template
   * that is too long, names an unknown placeholder, has none, is not a SPIFFE ID of the trust domain
   * once filled, or could name an ID under the reserved `/svidkit` path.
   */
  static parse(text: unknown, trustDomain: TrustDomain): SpiffeIdTemplate {
    if (typeof text !== 'string' || text === '') throw refuse('empty', 'a template must be a non-empty string');
    if (text.length > MAX_TEMPLATE_BYTES || Buffer.byteLength(text, 'utf8') > MAX_TEMPLATE_BYTES) {
      throw refuse('too_long', `a template must be at most ${MAX_TEMPLATE_BYTES} bytes`);
    }
    const keys: string[] = [];
    let source = '';
    let sample = '';
    let last = 0;
    let count = 0;
    for (const m of text.matchAll(PLACEHOLDER)) {
      const name = m[1]!.trim();
      if (++count > MAX_TEMPLATE_PLACEHOLDERS) {
        throw refuse('too_many', `at most ${MAX_TEMPLATE_PLACEHOLDERS} placeholders per template`);
      }
      const literal = text.slice(last, m.index);
      if (literal.includes('{') || literal.includes('}')) {
        throw refuse('bad_brace', `${quote(text)} has a brace outside a {{placeholder}}`);
      }
      source += escapeRegExp(literal);
      sample += literal;
      if (name === TRUST_DOMAIN_PLACEHOLDER) {
        source += escapeRegExp(trustDomain.name);
        sample += trustDomain.name;
      } else if (TEMPLATE_SELECTOR_KEYS.includes(name)) {
        keys.push(name);
        source += '([A-Za-z0-9._-]+)';
        sample += 'x';
      } else {
        throw refuse(
          'unknown_placeholder',
          `unknown placeholder {{${quote(name).slice(1, -1)}}}; expected one of ${[TRUST_DOMAIN_PLACEHOLDER, ...TEMPLATE_SELECTOR_KEYS].join(', ')}`,
        );
      }
      last = m.index + m[0].length;
    }
    const tail = text.slice(last);
    if (tail.includes('{') || tail.includes('}')) {
      throw refuse('bad_brace', `${quote(text)} has a brace outside a {{placeholder}}`);
    }
    source += escapeRegExp(tail);
    sample += tail;
    if (keys.length === 0) {
      throw refuse('no_placeholder', 'a template must name at least one selector key (for example {{k8s:sa}})');
    }
    const id = SpiffeId.tryParse(sample);
    if (id === undefined) throw refuse('not_an_id', `${quote(text)} does not fill into a SPIFFE ID`);
    if (!id.memberOf(trustDomain)) {
      throw refuse('foreign_trust_domain', `${quote(text)} is not in trust domain ${trustDomain.name}`);
    }
    // A value is one segment's characters, so only a literal prefix could reach /svidkit: check it
    // with every value both as a harmless name and as "svidkit" itself.
    const reservedSample = SpiffeId.tryParse(fillWith(text, trustDomain, () => 'svidkit'));
    if (isReservedPath(id.path) || (reservedSample !== undefined && isReservedPath(reservedSample.path))) {
      throw refuse('reserved', `${quote(text)} could name an ID under svidkit's reserved /svidkit path`);
    }
    return new SpiffeIdTemplate(text, trustDomain, keys, new RegExp(`^${source}$`));
  }

  /**
   * The ID this template names for a caller with `selectors` (canonical `type:key:value` strings), or
   * undefined when the caller lacks a named key, has it more than once, or its value is not one path
   * segment's characters.
   */
  fill(selectors: Iterable<string>): SpiffeId | undefined {
    const values = new Map<string, string | null>();
    const wanted = new Set(this.keys);
    for (const s of selectors) {
      const second = s.indexOf(':', s.indexOf(':') + 1);
      if (second < 0) continue;
      const key = s.slice(0, second);
      if (!wanted.has(key)) continue;
      values.set(key, values.has(key) ? null : s.slice(second + 1));
    }
    let ok = true;
    const text = fillWith(this.text, this.#trustDomain, (key) => {
      const v = values.get(key);
      if (typeof v !== 'string' || !VALUE.test(v) || v === '.' || v === '..') ok = false;
      return typeof v === 'string' ? v : '';
    });
    if (!ok) return undefined;
    const id = SpiffeId.tryParse(text);
    return id !== undefined && this.matches(id) ? id : undefined;
  }

  /** True when `id` is an ID this template can name (what the CA checks before it signs). */
  matches(id: SpiffeId): boolean {
    const s = id.toString();
    const m = this.#pattern.exec(s);
    if (m === null) return false;
    return m.slice(1).every((v) => v !== '.' && v !== '..') && !isReservedPath(id.path);
  }
}

function fillWith(text: string, trustDomain: TrustDomain, value: (key: string) => string): string {
  return text.replace(PLACEHOLDER, (_all, raw: string) => {
    const name = raw.trim();
    return name === TRUST_DOMAIN_PLACEHOLDER ? trustDomain.name : value(name);
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
