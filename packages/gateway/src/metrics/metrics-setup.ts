// The metrics side of a gateway as its options ask for it: the call-history database (or
// none), the Prometheus figures, and the recorder every finished call goes through.
import type { Logger } from '@easyremote/protocol';
import type { Clock } from '../clock.js';
import { DEFAULT_METRICS_PATH, type GatewayOptions } from '../options.js';
import { PrometheusMetrics, type PrometheusSources } from './prometheus.js';
import { MetricsRecorder } from './recorder.js';
import { MetricsStore } from './store.js';

/**
 * Opens the database first: a corrupt or unwritable file stops the gateway here, with its
 * path in the error. `metrics: false` records nothing per call: no row, no live figure,
 * no Prometheus count (the gauges that `figures` feed remain).
 */
export function createMetricsRecorder(options: GatewayOptions['metrics'], clock: Clock, logger: Logger, figures: Omit<PrometheusSources, 'droppedRows'>): MetricsRecorder {
  const store =
    options === false
      ? undefined
      : new MetricsStore({ ...options, path: options?.path ?? DEFAULT_METRICS_PATH, clock: () => clock.epochMs(), onError: (e) => logger.error({ reason: e.message }, 'metrics store error') });
  const recordCalls = options !== false;
  const sources = { ...figures, ...(store ? { droppedRows: () => store.health().droppedRows } : {}) };
  const prometheus = new PrometheusMetrics(sources, { calls: recordCalls, callerLabel: options !== false && options?.callerLabel === true });
  return new MetricsRecorder(store, prometheus, clock, { recordCalls });
}
