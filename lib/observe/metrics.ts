/**
 * A small Prometheus registry rendering the text exposition format 0.0.4.
 *
 * Written here instead of taken from prom-client because the daemons need three metric types, a
 * hard bound on memory per metric, and nothing global: each daemon owns its registry, tests make
 * their own, and no default process metrics appear unless someone registers them.
 */

/** The Content-Type of the text exposition format this module renders. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Series kept per metric unless the metric says otherwise; label sets past it are dropped, not stored. */
export const DEFAULT_MAX_SERIES = 1000;
/** Longest label value accepted; a longer one is dropped like a series past the cap, since it would grow memory the same way. */
export const MAX_LABEL_VALUE_LENGTH = 1024;
/** Name of the counter, rendered by every Registry, of label sets dropped by the series cap. */
export const DROPPED_SERIES_METRIC = 'svidkit_metrics_dropped_series_total';

/** Histogram buckets (seconds) for request and signing latencies: 1 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values by label name. Numbers and booleans are written as their string form. */
export type Labels = Readonly<Record<string, string | number | boolean>>;

/** Options shared by every metric type. */
export interface MetricOptions {
  /** Metric name, matching [a-zA-Z_:][a-zA-Z0-9_:]*. */
  name: string;
  /** One-line description rendered on the HELP line. */
  help: string;
  /** Label names, each matching [a-zA-Z_][a-zA-Z0-9_]* and not starting with "__". */
  labelNames?: readonly string[];
  /** Most label sets kept; DEFAULT_MAX_SERIES unless given. */
  maxSeries?: number;
}

/** Escapes a label value: backslash, double quote and line feed, as the format requires. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and line feed only (quotes are literal there). */
function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value as Prometheus parses it: +Inf, -Inf and NaN spelled its way. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function checkMetricName(name: unknown): string {
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) {
    throw new TypeError(`metrics: invalid metric name ${JSON.stringify(name)}`);
  }
  return name;
}

function checkLabelNames(names: readonly unknown[], reserved: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const n of names) {
    if (typeof n !== 'string' || !LABEL_NAME.test(n) || n.startsWith('__')) {
      throw new TypeError(`metrics: invalid label name ${JSON.stringify(n)}`);
    }
    if (reserved.includes(n)) throw new TypeError(`metrics: label name "${n}" is reserved for this metric type`);
    if (seen.has(n)) throw new TypeError(`metrics: duplicate label name "${n}"`);
    seen.add(n);
  }
  return [...seen];
}

/** Renders `{a="x",b="y"}` from label names and values, with optional extra pairs; '' when empty. */
function renderLabels(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

interface Series<T> {
  values: string[];
  data: T;
}

/** Common ground of the three metric types: naming, label handling and the series cap. */
export abstract class Metric<T> {
  /** Metric name. */
  readonly name: string;
  /** HELP text. */
  readonly help: string;
  /** Label names in rendering order. */
  readonly labelNames: readonly string[];
  /** Most label sets kept. */
  readonly maxSeries: number;
  /** The TYPE line's word. */
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  #series = new Map<string, Series<T>>();
  #dropped = 0;

  constructor(opts: MetricOptions, reservedLabels: readonly string[] = []) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('metrics: options object required');
    this.name = checkMetricName(opts.name);
    if (typeof opts.help !== 'string') throw new TypeError(`metrics: ${this.name}: help must be a string`);
    this.help = opts.help;
    this.labelNames = Object.freeze(checkLabelNames(opts.labelNames ?? [], reservedLabels));
    const max = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`metrics: ${this.name}: maxSeries must be >= 1`);
    this.maxSeries = max;
  }

  /** Label sets refused so far because of the series cap or an over-long value. */
  get droppedSeries(): number {
    return this.#dropped;
  }

  /** Forgets every series (for tests and for metrics whose label sets go stale). */
  reset(): void {
    this.#series.clear();
  }

  /** The per-series state for `labels`, created on first use; undefined when the label set is dropped. */
  protected series(labels: Labels | undefined, init: () => T): T | undefined {
    const values = this.labelValues(labels);
    if (values === undefined) {
      this.#dropped++;
      return undefined;
    }
    // JSON of the value list: unambiguous whatever characters the values contain.
    const key = JSON.stringify(values);
    const found = this.#series.get(key);
    if (found) return found.data;
    if (this.#series.size >= this.maxSeries) {
      this.#dropped++;
      return undefined;
    }
    const s = { values, data: init() };
    this.#series.set(key, s);
    return s.data;
  }

  /** Every stored series, in creation order (which keeps rendering deterministic). */
  protected entries(): IterableIterator<Series<T>> {
    return this.#series.values();
  }

  /** Label values in labelNames order; throws on unknown names (a coding error), undefined when too long. */
  protected labelValues(labels: Labels | undefined): string[] | undefined {
    const given = labels ?? {};
    for (const k of Object.keys(given)) {
      if (!this.labelNames.includes(k)) throw new TypeError(`metrics: ${this.name}: unknown label "${k}"`);
    }
    const values: string[] = [];
    for (const n of this.labelNames) {
      const v = Object.hasOwn(given, n) ? given[n] : undefined;
      // A missing label is the empty string, which Prometheus treats as an absent label.
      const s = v === undefined ? '' : String(v);
      if (s.length > MAX_LABEL_VALUE_LENGTH) return undefined;
      values.push(s);
    }
    return values;
  }

  /** The HELP and TYPE lines. */
  protected header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }

  /** This metric in the text format, ending with a newline. */
  abstract render(): string;
}

function checkAmount(name: string, n: number, allowNegative: boolean): number {
  // NaN or an infinity added once poisons the series for the life of the process.
  if (typeof n !== 'number' || !Number.isFinite(n) || (!allowNegative && n < 0)) {
    throw new RangeError(`metrics: ${name}: invalid amount ${String(n)}`);
  }
  return n;
}

/** A value that only goes up (requests served, SVIDs issued); rate() is taken over it. */
export class Counter extends Metric<{ v: number }> {
  readonly type = 'counter';

  /** Adds `n` (default 1, never negative) to the series for `labels`; `inc(n)` for an unlabeled counter. */
  inc(labels?: Labels | number, n = 1): void {
    if (typeof labels === 'number') return this.inc(undefined, labels);
    checkAmount(this.name, n, false);
    const s = this.series(labels, () => ({ v: 0 }));
    if (s) s.v += n;
  }

  /** Current value for `labels` (0 when never incremented). */
  get(labels?: Labels): number {
    const values = this.labelValues(labels);
    for (const s of this.entries()) if (values && s.values.every((v, i) => v === values[i])) return s.data.v;
    return 0;
  }

  /** Text format; an unlabeled counter renders 0 before its first increment so the series exists from the start. */
  render(): string {
    let out = this.header();
    if (this.labelNames.length === 0) this.series(undefined, () => ({ v: 0 }));
    for (const s of this.entries())
      out += `${this.name}${renderLabels(this.labelNames, s.values)} ${formatValue(s.data.v)}\n`;
    return out;
  }
}

/** One labeled sample returned by a gauge's collect callback. */
export interface GaugeSample {
  /** Label values. */
  labels?: Labels;
  /** Sample value. */
  value: number;
}

/** Options of a Gauge. */
export interface GaugeOptions extends MetricOptions {
  /**
   * Computes the value at scrape time instead of storing it (e.g. seconds until CA expiry, which
   * changes every second without anyone calling set). Returns one number for an unlabeled gauge,
   * or samples; undefined renders no sample. set, inc and dec throw on such a gauge.
   */
  collect?: () => number | undefined | readonly GaugeSample[];
}

/** A value that goes up and down (connected agents, queue depth), or one computed at scrape time. */
export class Gauge extends Metric<{ v: number }> {
  readonly type = 'gauge';
  readonly #collect: GaugeOptions['collect'];
  #collectErrors = 0;

  constructor(opts: GaugeOptions) {
    super(opts);
    if (opts.collect !== undefined && typeof opts.collect !== 'function') {
      throw new TypeError(`metrics: ${this.name}: collect must be a function`);
    }
    this.#collect = opts.collect;
  }

  /** Times the collect callback threw; such a scrape shows no sample for this gauge rather than failing. */
  get collectErrors(): number {
    return this.#collectErrors;
  }

  /** Sets the series for `labels` to `value`. */
  set(value: number, labels?: Labels): void {
    this.#stored();
    checkAmount(this.name, value, true);
    const s = this.series(labels, () => ({ v: 0 }));
    if (s) s.v = value;
  }

  /** Adds `n` (default 1); `inc(n)` for an unlabeled gauge. */
  inc(labels?: Labels | number, n = 1): void {
    if (typeof labels === 'number') return this.inc(undefined, labels);
    this.#stored();
    checkAmount(this.name, n, true);
    const s = this.series(labels, () => ({ v: 0 }));
    if (s) s.v += n;
  }

  /** Subtracts `n` (default 1); `dec(n)` for an unlabeled gauge. */
  dec(labels?: Labels | number, n = 1): void {
    if (typeof labels === 'number') return this.dec(undefined, labels);
    this.inc(labels, -checkAmount(this.name, n, true));
  }

  #stored(): void {
    if (this.#collect) throw new TypeError(`metrics: ${this.name}: value is computed by collect`);
  }

  /** Text format: stored series, or what collect returns right now. */
  render(): string {
    let out = this.header();
    if (!this.#collect) {
      if (this.labelNames.length === 0) this.series(undefined, () => ({ v: 0 }));
      for (const s of this.entries()) {
        out += `${this.name}${renderLabels(this.labelNames, s.values)} ${formatValue(s.data.v)}\n`;
      }
      return out;
    }
    let result: ReturnType<NonNullable<GaugeOptions['collect']>>;
    try {
      result = this.#collect();
    } catch {
      this.#collectErrors++;
      return out;
    }
    if (typeof result === 'number') return out + `${this.name}${renderLabels([], [])} ${formatValue(result)}\n`;
    if (!Array.isArray(result)) return out;
    let count = 0;
    for (const sample of result as readonly GaugeSample[]) {
      // The cap holds for computed series too: collect may be fed by outside data.
      if (count >= this.maxSeries) break;
      const values = this.labelValues(sample.labels);
      if (values === undefined || typeof sample.value !== 'number') continue;
      out += `${this.name}${renderLabels(this.labelNames, values)} ${formatValue(sample.value)}\n`;
      count++;
    }
    return out;
  }
}

/** Options of a Histogram. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, strictly increasing and finite; +Inf is added. DEFAULT_BUCKETS unless given. */
  buckets?: readonly number[];
}

interface HistogramData {
  counts: number[];
  sum: number;
  count: number;
}

/** Observations sorted into fixed buckets (latencies, sizes); rendered cumulatively as Prometheus expects. */
export class Histogram extends Metric<HistogramData> {
  readonly type = 'histogram';
  /** Bucket upper bounds without the implicit +Inf. */
  readonly buckets: readonly number[];

  constructor(opts: HistogramOptions) {
    super(opts, ['le']);
    const buckets = [...(opts.buckets ?? DEFAULT_BUCKETS)];
    if (buckets.length === 0) throw new TypeError(`metrics: ${this.name}: at least one bucket is required`);
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!)) {
        throw new TypeError(`metrics: ${this.name}: buckets must be finite and strictly increasing`);
      }
    }
    this.buckets = Object.freeze(buckets);
  }

  /** Records one observation of `value` in the series for `labels`. */
  observe(value: number, labels?: Labels): void {
    checkAmount(this.name, value, true);
    const s = this.series(labels, () => ({ counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    if (!s) return;
    // Stored per bucket, not cumulatively, so observe touches one slot; render accumulates.
    const i = this.buckets.findIndex((b) => value <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  /** Text format: cumulative _bucket lines ending with le="+Inf", then _sum and _count. */
  render(): string {
    let out = this.header();
    if (this.labelNames.length === 0) {
      this.series(undefined, () => ({ counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }));
    }
    for (const s of this.entries()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += s.data.counts[i]!;
        const le = `le="${formatValue(this.buckets[i]!)}"`;
        out += `${this.name}_bucket${renderLabels(this.labelNames, s.values, le)} ${cumulative}\n`;
      }
      out += `${this.name}_bucket${renderLabels(this.labelNames, s.values, 'le="+Inf"')} ${s.data.count}\n`;
      const labels = renderLabels(this.labelNames, s.values);
      out += `${this.name}_sum${labels} ${formatValue(s.data.sum)}\n`;
      out += `${this.name}_count${labels} ${s.data.count}\n`;
    }
    return out;
  }
}

/** Any of the three metric types. */
export type AnyMetric = Counter | Gauge | Histogram;

/** A set of metrics rendered together for one /metrics endpoint. */
export class Registry {
  #metrics = new Map<string, AnyMetric>();

  /** Adds a metric and returns it, so `const c = registry.register(new Counter(...))` reads naturally. */
  register<M extends AnyMetric>(metric: M): M {
    if (!(metric instanceof Metric)) throw new TypeError('metrics: register takes a Counter, Gauge or Histogram');
    if (metric.name === DROPPED_SERIES_METRIC) throw new TypeError(`metrics: ${DROPPED_SERIES_METRIC} is reserved`);
    if (this.#metrics.has(metric.name)) throw new TypeError(`metrics: ${metric.name} is already registered`);
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /** The registered metric of that name, if any. */
  get(name: string): AnyMetric | undefined {
    return this.#metrics.get(name);
  }

  /** Every registered metric, then the dropped-series counter, in the text exposition format 0.0.4. */
  render(): string {
    let out = '';
    const labeled: AnyMetric[] = [];
    for (const m of this.#metrics.values()) {
      out += m.render();
      if (m.labelNames.length > 0) labeled.push(m);
    }
    // Computed from each metric's own tally at scrape time: counting a drop must never itself
    // allocate a series. Listed only for labeled metrics, the only ones that can drop.
    if (labeled.length > 0) {
      out += `# HELP ${DROPPED_SERIES_METRIC} Label sets refused because a metric reached its series cap.\n`;
      out += `# TYPE ${DROPPED_SERIES_METRIC} counter\n`;
      for (const m of labeled) {
        out += `${DROPPED_SERIES_METRIC}{metric="${escapeLabelValue(m.name)}"} ${m.droppedSeries}\n`;
      }
    }
    return out;
  }
}
