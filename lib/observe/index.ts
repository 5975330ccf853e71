/** Logs, metrics and health endpoints shared by svidkit-ca and svidkit-agent. */

/** JSON logger that keeps private keys, tokens and credentials out of every line, plus audit lines. */
export {
  audit,
  type AuditFields,
  createLogger,
  isSecretKey,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  MAX_REDACT_DEPTH,
  MAX_REDACT_ENTRIES,
  MAX_REDACT_NODES,
  MAX_REDACT_STRING,
  REDACTED,
  redactSecrets,
  redactString,
} from './log.js';

/** Counters, gauges and histograms over prom-client, one registry per daemon, with a series cap per metric. */
export {
  type AnyMetric,
  Counter,
  DEFAULT_BUCKETS,
  DEFAULT_MAX_SERIES,
  DROPPED_SERIES_METRIC,
  Gauge,
  type GaugeOptions,
  type GaugeSample,
  Histogram,
  type HistogramOptions,
  type Labels,
  MAX_LABEL_VALUE_LENGTH,
  Metric,
  type MetricOptions,
  PROMETHEUS_CONTENT_TYPE,
  Registry,
} from './metrics.js';

/** The /metrics, /healthz and /readyz HTTP server. */
export { type ObservabilityServer, type ObservabilityServerOptions, startObservabilityServer } from './http.js';
