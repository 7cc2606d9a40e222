// Turns finished calls and node events into metrics: one SQLite row per call (buffered,
// written off the call path), live in-memory aggregates, and Prometheus figures.
import type { CallRecord, NodeEvent } from './call-record.js';
import { LiveMetrics } from './live.js';
import type { PrometheusMetrics } from './prometheus.js';
import type { MetricsStore } from './store.js';

export class MetricsRecorder {
  readonly live = new LiveMetrics();

  constructor(
    readonly store: MetricsStore | undefined,
    readonly prometheus: PrometheusMetrics,
  ) {}

  record(row: CallRecord): void {
    this.store?.record(row);
    this.live.record(row);
    this.prometheus.observe(row);
  }

  event(e: NodeEvent): void {
    this.store?.recordEvent(e);
  }

  close(): void {
    this.store?.close();
  }
}
