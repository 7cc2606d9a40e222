// Prometheus figures at /metrics, via prom-client on a registry of our own. Function and
// node label values are capped so a flood of names cannot grow the exposition forever.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CallRecord } from './call-record.js';

/** Distinct values per label beyond which new values are reported as "other". */
export const MAX_LABEL_VALUES = 200;
const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max = MAX_LABEL_VALUES) {}
  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(value);
    return value;
  }
}

export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly fnLabel = new BoundedLabel();
  private readonly nodeLabel = new BoundedLabel();
  private readonly calls: Counter<'function' | 'node' | 'outcome'>;
  private readonly errors: Counter<'function' | 'code'>;
  private readonly queueWait: Histogram<'function'>;
  private readonly execution: Histogram<'function' | 'node'>;

  constructor(collect: { nodes: () => number; inFlight: () => number; cache?: () => { hits: number; misses: number; bytes: number }; droppedRows?: () => number }) {
    const registers = [this.registry];
    this.calls = new Counter({ name: 'easyremote_calls_total', help: 'Finished calls', labelNames: ['function', 'node', 'outcome'], registers });
    this.errors = new Counter({ name: 'easyremote_errors_total', help: 'Failed calls by error code', labelNames: ['function', 'code'], registers });
    this.queueWait = new Histogram({ name: 'easyremote_queue_wait_seconds', help: 'Arrival to dispatch', labelNames: ['function'], buckets: LATENCY_BUCKETS_S, registers });
    this.execution = new Histogram({ name: 'easyremote_execution_seconds', help: 'Execution time reported by the node', labelNames: ['function', 'node'], buckets: LATENCY_BUCKETS_S, registers });
    new Gauge({ name: 'easyremote_nodes', help: 'Connected nodes', registers, collect() { this.set(collect.nodes()); } });
    new Gauge({ name: 'easyremote_in_flight', help: 'Attempts in flight', registers, collect() { this.set(collect.inFlight()); } });
    if (collect.cache) {
      const cache = collect.cache;
      new Gauge({ name: 'easyremote_cache_hits', help: 'Result cache hits since start', registers, collect() { this.set(cache().hits); } });
      new Gauge({ name: 'easyremote_cache_misses', help: 'Result cache misses since start', registers, collect() { this.set(cache().misses); } });
      new Gauge({ name: 'easyremote_cache_bytes', help: 'Bytes held by the result cache', registers, collect() { this.set(cache().bytes); } });
    }
    if (collect.droppedRows) {
      const dropped = collect.droppedRows;
      new Gauge({ name: 'easyremote_metrics_dropped_rows', help: 'Call rows the metrics store could not write', registers, collect() { this.set(dropped()); } });
    }
  }

  observe(r: CallRecord): void {
    const fn = this.fnLabel.of(r.functionName);
    const node = r.nodeId ? this.nodeLabel.of(r.nodeId) : 'none';
    this.calls.inc({ function: fn, node, outcome: r.cached ? 'cached' : r.success ? 'ok' : 'error' });
    if (!r.success) this.errors.inc({ function: fn, code: r.errorCode || 'UNKNOWN' });
    if (!r.cached && r.nodeId) {
      this.queueWait.observe({ function: fn }, r.queueWaitMs / 1000);
      if (r.execMs > 0) this.execution.observe({ function: fn, node }, r.execMs / 1000);
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
