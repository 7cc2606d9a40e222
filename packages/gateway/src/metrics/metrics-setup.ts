// The metrics side of a gateway as its options ask for it: the call-history database
// (or none), the Prometheus figures, and the recorder every finished call goes through.
import type { Clock } from '../clock.js';
import { DEFAULT_METRICS_PATH, type GatewayOptions } from '../options.js';
import { PrometheusMetrics } from './prometheus.js';
import { MetricsRecorder } from './recorder.js';
import { MetricsStore } from './store.js';

/** Live figures Prometheus reads from the rest of the gateway when scraped. */
export interface GatewayFigures {
  nodes: () => number;
  inFlight: () => number;
  cache: () => { hits: number; misses: number; bytes: number };
}

/** Opens the database first: a corrupt or unwritable file stops the gateway here, with its path in the error. */
export function createMetricsRecorder(options: GatewayOptions['metrics'], clock: Clock, log: (line: string) => void, figures: GatewayFigures): MetricsRecorder {
  const store =
    options === false
      ? undefined
      : new MetricsStore({ ...options, path: options?.path ?? DEFAULT_METRICS_PATH, clock: () => clock.epochMs(), onError: (e) => log(`metrics: ${e.message}`) });
  const prometheus = new PrometheusMetrics({ ...figures, droppedRows: () => store?.health().droppedRows ?? 0 });
  return new MetricsRecorder(store, prometheus, clock);
}
