/**
 * The daemons' Prometheus metrics: prom-client underneath, a thin wrapper on top.
 *
 * prom-client does the storage, the bucket arithmetic and the text exposition format 0.0.4. The
 * wrapper adds what prom-client does not have: a hard cap on series per metric (prom-client stores
 * every label set it is given, so a flood of label values would grow memory without bound), a
 * refusal of non-finite amounts, TypeErrors for coding mistakes, and one Registry per daemon. Every
 * prom-client metric here is created with `registers: []`, so nothing lands in prom-client's global
 * registry, and no default process metrics appear unless someone registers them.
 */
import {
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  Registry as PromRegistry,
} from 'prom-client';

/** The Content-Type of the text exposition format 0.0.4, which is what prom-client's registry renders. */
export const PROMETHEUS_CONTENT_TYPE: string = PromRegistry.PROMETHEUS_CONTENT_TYPE;

/** Series kept per metric unless the metric says otherwise; label sets past it are dropped, not stored. */
export const DEFAULT_MAX_SERIES = 1000;
/** Longest label value accepted; a longer one is dropped like a series past the cap, since it would grow memory the same way. */
export const MAX_LABEL_VALUE_LENGTH = 1024;
/** Name of the counter, rendered by every Registry, of label sets dropped by the series cap. */
export const DROPPED_SERIES_METRIC = 'svidkit_metrics_dropped_series_total';

/** Histogram buckets (seconds) for request and signing latencies: 1 ms to 10 s. */
export const DEFAULT_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// The same patterns prom-client checks, tested here first so that a bad name is a TypeError.
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

/** What the wrapper needs of a prom-client metric of any type. */
type PromMetric = PromCounter | PromGauge | PromHistogram;

/** Label values as prom-client takes them: every declared name present, in declaration order. */
type PromLabels = Record<string, string>;

// The prom-client metric behind each wrapper, kept off the public surface so that no caller can
// add a series past the cap by going around the wrapper.
const promOf = new WeakMap<Metric, PromMetric>();

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

function checkAmount(name: string, n: number, allowNegative: boolean): number {
  // NaN or an infinity added once poisons the series for the life of the process.
  if (typeof n !== 'number' || !Number.isFinite(n) || (!allowNegative && n < 0)) {
    throw new RangeError(`metrics: ${name}: invalid amount ${String(n)}`);
  }
  return n;
}

/** The configuration every prom-client metric here starts from: no registry, least of all the global one. */
interface PromConfig {
  name: string;
  help: string;
  labelNames: string[];
  registers: PromRegistry[];
}

/** Common ground of the three metric types: naming, label handling and the series cap. */
export abstract class Metric {
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
  // Keys of the label sets admitted so far; prom-client holds the values, this holds the count.
  readonly #admitted = new Set<string>();
  // A registry of this metric alone, so that render() works on a metric no Registry holds.
  readonly #own = new PromRegistry();
  #dropped = 0;

  constructor(opts: MetricOptions, reservedLabels: readonly string[], make: (config: PromConfig) => PromMetric) {
    if (opts === null || typeof opts !== 'object') throw new TypeError('metrics: options object required');
    this.name = checkMetricName(opts.name);
    // prom-client refuses an empty HELP text too; a metric nobody can explain should not ship.
    if (typeof opts.help !== 'string' || opts.help === '') {
      throw new TypeError(`metrics: ${this.name}: help must be a non-empty string`);
    }
    this.help = opts.help;
    this.labelNames = Object.freeze(checkLabelNames(opts.labelNames ?? [], reservedLabels));
    const max = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`metrics: ${this.name}: maxSeries must be >= 1`);
    this.maxSeries = max;
    promOf.set(
      this,
      make({ name: this.name, help: this.help, labelNames: [...this.labelNames], registers: [this.#own] }),
    );
  }

  /** Label sets refused so far because of the series cap or an over-long value. */
  get droppedSeries(): number {
    return this.#dropped;
  }

  /** Forgets every series (for tests and for metrics whose label sets go stale). */
  reset(): void {
    this.#admitted.clear();
    promOf.get(this)!.reset();
  }

  /** This metric in the text format, ending with a newline. */
  async render(): Promise<string> {
    return `${await this.#own.getSingleMetricAsString(this.name)}\n`;
  }

  /**
   * The labels to hand to prom-client for `labels`, or undefined when the label set is dropped
   * (past the cap, or a value too long) and counted as such. Only a new label set can be dropped.
   */
  protected admit(labels: Labels | undefined): PromLabels | undefined {
    const out = this.labelObject(labels);
    if (out === undefined) {
      this.#dropped++;
      return undefined;
    }
    if (this.labelNames.length === 0) return out;
    // JSON of the value list: unambiguous whatever characters the values contain.
    const key = JSON.stringify(Object.values(out));
    if (this.#admitted.has(key)) return out;
    if (this.#admitted.size >= this.maxSeries) {
      this.#dropped++;
      return undefined;
    }
    this.#admitted.add(key);
    return out;
  }

  /** Label values in labelNames order; throws on unknown names (a coding error), undefined when too long. */
  protected labelObject(labels: Labels | undefined): PromLabels | undefined {
    const given = labels ?? {};
    for (const k of Object.keys(given)) {
      if (!this.labelNames.includes(k)) throw new TypeError(`metrics: ${this.name}: unknown label "${k}"`);
    }
    const out: PromLabels = {};
    for (const n of this.labelNames) {
      const v = Object.hasOwn(given, n) ? given[n] : undefined;
      // A missing label is the empty string, which Prometheus treats as an absent label.
      const s = v === undefined ? '' : String(v);
      if (s.length > MAX_LABEL_VALUE_LENGTH) return undefined;
      out[n] = s;
    }
    return out;
  }
}

/** A value that only goes up (requests served, SVIDs issued); rate() is taken over it. */
export class Counter extends Metric {
  readonly type = 'counter';
  readonly #prom: PromCounter;

  constructor(opts: MetricOptions) {
    let prom: PromCounter | undefined;
    super(opts, [], (config) => (prom = new PromCounter(config)));
    this.#prom = prom!;
  }

  /** Adds `n` (default 1, never negative) to the series for `labels`; `inc(n)` for an unlabeled counter. */
  inc(labels?: Labels | number, n = 1): void {
    if (typeof labels === 'number') return this.inc(undefined, labels);
    checkAmount(this.name, n, false);
    const l = this.admit(labels);
    if (l) this.#prom.inc(l, n);
  }

  /** Current value for `labels` (0 when never incremented). */
  async get(labels?: Labels): Promise<number> {
    const want = this.labelObject(labels);
    if (want === undefined) return 0;
    const { values } = await this.#prom.get();
    const found = values.find((v) => this.labelNames.every((n) => v.labels[n] === want[n]));
    return found?.value ?? 0;
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
export class Gauge extends Metric {
  readonly type = 'gauge';
  readonly #prom: PromGauge;
  readonly #collect: GaugeOptions['collect'];
  #collectErrors = 0;

  constructor(opts: GaugeOptions) {
    const collect = opts?.collect;
    if (collect !== undefined && typeof collect !== 'function') {
      throw new TypeError(`metrics: ${String(opts.name)}: collect must be a function`);
    }
    let prom: PromGauge | undefined;
    // Filled in once `this` exists; prom-client only calls collect at scrape time, long after.
    const scrape: { refill?: () => void } = {};
    super(opts, [], (config) => {
      // prom-client calls collect before every scrape of this gauge; it refills the samples from ours.
      prom = new PromGauge(collect ? { ...config, collect: () => scrape.refill?.() } : config);
      return prom;
    });
    scrape.refill = () => this.#refill();
    this.#prom = prom!;
    this.#collect = collect;
  }

  /** Times the collect callback threw; such a scrape shows no sample for this gauge rather than failing. */
  get collectErrors(): number {
    return this.#collectErrors;
  }

  /** Sets the series for `labels` to `value`. */
  set(value: number, labels?: Labels): void {
    this.#stored();
    checkAmount(this.name, value, true);
    const l = this.admit(labels);
    if (l) this.#prom.set(l, value);
  }

  /** Adds `n` (default 1); `inc(n)` for an unlabeled gauge. */
  inc(labels?: Labels | number, n = 1): void {
    if (typeof labels === 'number') return this.inc(undefined, labels);
    this.#stored();
    checkAmount(this.name, n, true);
    const l = this.admit(labels);
    if (l) this.#prom.inc(l, n);
  }

  /** Subtracts `n` (default 1); `dec(n)` for an unlabeled gauge. */
  dec(labels?: Labels | number, n = 1): void {
    if (typeof labels === 'number') return this.dec(undefined, labels);
    this.inc(labels, -checkAmount(this.name, n, true));
  }

  #stored(): void {
    if (this.#collect) throw new TypeError(`metrics: ${this.name}: value is computed by collect`);
  }

  /** Replaces the stored samples with what collect returns right now. */
  #refill(): void {
    const g = this.#prom;
    g.reset();
    // reset() leaves an unlabeled gauge at 0; a collect that gives nothing must render no sample.
    if (this.labelNames.length === 0) g.remove();
    let result: ReturnType<NonNullable<GaugeOptions['collect']>>;
    try {
      result = this.#collect!();
    } catch {
      this.#collectErrors++;
      return;
    }
    if (typeof result === 'number') {
      g.set(result);
      return;
    }
    if (!Array.isArray(result)) return;
    let count = 0;
    for (const sample of result as readonly GaugeSample[]) {
      // The cap holds for computed series too: collect may be fed by outside data.
      if (count >= this.maxSeries) break;
      const l = this.labelObject(sample.labels);
      if (l === undefined || typeof sample.value !== 'number') continue;
      g.set(l, sample.value);
      count++;
    }
  }
}

/** Options of a Histogram. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds, strictly increasing and finite; +Inf is added. DEFAULT_BUCKETS unless given. */
  buckets?: readonly number[];
}

/** One line of a histogram as prom-client hands it to its renderer. */
interface PromHistogramLine {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string | number>;
}

/**
 * prom-client's histogram, with each line's labels in declaration order and `le` last (prom-client
 * writes `le` first). The order carries no meaning to Prometheus, but it keeps the exposition
 * byte for byte what the daemons served before, which is what scrapers' tests and dashboards grep.
 */
class OrderedHistogram extends PromHistogram {
  /** Called by prom-client's registry in place of get() when it renders the text format. */
  async getForPromString(): Promise<{ values: PromHistogramLine[] }> {
    const base = PromHistogram.prototype as unknown as {
      getForPromString(this: PromHistogram): Promise<{ values: PromHistogramLine[] }>;
    };
    const data = await base.getForPromString.call(this);
    data.values = data.values.map((line) => ({
      ...line,
      labels: { ...line.sharedLabels, ...line.labels },
      sharedLabels: {},
    }));
    return data;
  }
}

/** Observations sorted into fixed buckets (latencies, sizes); rendered cumulatively as Prometheus expects. */
export class Histogram extends Metric {
  readonly type = 'histogram';
  /** Bucket upper bounds without the implicit +Inf. */
  readonly buckets: readonly number[];
  readonly #prom: PromHistogram;

  constructor(opts: HistogramOptions) {
    const buckets = [...(opts?.buckets ?? DEFAULT_BUCKETS)];
    let prom: PromHistogram | undefined;
    super(opts, ['le'], (config) => {
      const name = config.name;
      if (buckets.length === 0) throw new TypeError(`metrics: ${name}: at least one bucket is required`);
      for (let i = 0; i < buckets.length; i++) {
        const b = buckets[i]!;
        if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!)) {
          throw new TypeError(`metrics: ${name}: buckets must be finite and strictly increasing`);
        }
      }
      prom = new OrderedHistogram({ ...config, buckets });
      return prom;
    });
    this.#prom = prom!;
    this.buckets = Object.freeze(buckets);
  }

  /** Records one observation of `value` in the series for `labels`. */
  observe(value: number, labels?: Labels): void {
    checkAmount(this.name, value, true);
    const l = this.admit(labels);
    if (l) this.#prom.observe(l, value);
  }
}

/** Any of the three metric types. */
export type AnyMetric = Counter | Gauge | Histogram;

/** A set of metrics rendered together for one /metrics endpoint: a prom-client Registry of its own. */
export class Registry {
  readonly #prom = new PromRegistry();
  readonly #metrics = new Map<string, AnyMetric>();
  readonly #labeled: AnyMetric[] = [];
  // Its value is computed from each metric's own tally at scrape time: counting a drop must never
  // itself allocate a series. Listed only for labeled metrics, the only ones that can drop.
  readonly #dropped = new PromCounter({
    name: DROPPED_SERIES_METRIC,
    help: 'Label sets refused because a metric reached its series cap.',
    labelNames: ['metric'],
    registers: [],
    collect: () => {
      this.#dropped.reset();
      for (const m of this.#labeled) this.#dropped.inc({ metric: m.name }, m.droppedSeries);
    },
  });

  /** Adds a metric and returns it, so `const c = registry.register(new Counter(...))` reads naturally. */
  register<M extends AnyMetric>(metric: M): M {
    if (!(metric instanceof Metric)) throw new TypeError('metrics: register takes a Counter, Gauge or Histogram');
    if (metric.name === DROPPED_SERIES_METRIC) throw new TypeError(`metrics: ${DROPPED_SERIES_METRIC} is reserved`);
    if (this.#metrics.has(metric.name)) throw new TypeError(`metrics: ${metric.name} is already registered`);
    this.#prom.registerMetric(promOf.get(metric)!);
    this.#metrics.set(metric.name, metric);
    if (metric.labelNames.length > 0) {
      if (this.#labeled.length === 0) this.#prom.registerMetric(this.#dropped);
      this.#labeled.push(metric);
    }
    return metric;
  }

  /** The registered metric of that name, if any. */
  get(name: string): AnyMetric | undefined {
    return this.#metrics.get(name);
  }

  /** The Content-Type of what render() returns (prom-client's registry's own). */
  get contentType(): string {
    return this.#prom.contentType;
  }

  /**
   * Every registered metric in registration order, then the dropped-series counter, in the text
   * exposition format 0.0.4. Each metric is rendered by prom-client; they are joined without the
   * blank line prom-client's metrics() puts between them, which keeps the output what it was.
   */
  async render(): Promise<string> {
    const names = [...this.#metrics.keys()];
    if (this.#labeled.length > 0) names.push(DROPPED_SERIES_METRIC);
    const parts = await Promise.all(names.map((n) => this.#prom.getSingleMetricAsString(n)));
    return parts.map((p) => `${p}\n`).join('');
  }
}
