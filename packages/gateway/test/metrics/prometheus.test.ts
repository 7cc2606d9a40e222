import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CallRecord } from '../../src/metrics/call-record.js';
import { LATENCY_BUCKETS_S, MAX_LABEL_VALUES, PrometheusMetrics, type NodeUpState } from '../../src/metrics/prometheus.js';
import { mulberry32 } from '../strategies/fixtures.js';
import { callRecord } from './helpers.js';

/** What the gateway exposed when every call went through prom-client's observe(): the reference text. */
class PromClientReference {
  readonly registry = new Registry();
  private readonly seenFn = new Set<string>();
  private readonly seenNode = new Set<string>();
  private readonly calls: Counter<'function' | 'node' | 'outcome'>;
  private readonly errors: Counter<'function' | 'code'>;
  private readonly queueWait: Histogram<'function'>;
  private readonly execution: Histogram<'function' | 'node'>;

  constructor(cache: () => { hits: number; misses: number; bytes: number }) {
    const registers = [this.registry];
    this.calls = new Counter({ name: 'easyremote_calls_total', help: 'Finished calls', labelNames: ['function', 'node', 'outcome'], registers });
    this.errors = new Counter({ name: 'easyremote_errors_total', help: 'Failed calls by error code', labelNames: ['function', 'code'], registers });
    this.queueWait = new Histogram({ name: 'easyremote_queue_wait_seconds', help: 'Arrival to dispatch', labelNames: ['function'], buckets: [...LATENCY_BUCKETS_S], registers });
    this.execution = new Histogram({ name: 'easyremote_execution_seconds', help: 'Execution time reported by the node', labelNames: ['function', 'node'], buckets: [...LATENCY_BUCKETS_S], registers });
    new Gauge({ name: 'easyremote_nodes', help: 'Connected nodes', registers, collect() { this.set(3); } });
    new Gauge({ name: 'easyremote_in_flight', help: 'Attempts in flight', registers, collect() { this.set(7); } });
    new Counter({ name: 'easyremote_cache_hits_total', help: 'Result cache hits since start', registers, collect() { this.reset(); this.inc(cache().hits); } });
    new Counter({ name: 'easyremote_cache_misses_total', help: 'Result cache misses since start', registers, collect() { this.reset(); this.inc(cache().misses); } });
    new Gauge({ name: 'easyremote_cache_bytes', help: 'Bytes held by the result cache', registers, collect() { this.set(cache().bytes); } });
    new Gauge({ name: 'easyremote_metrics_dropped_rows', help: 'Call rows the metrics store could not write', registers, collect() { this.set(2); } });
  }

  private bounded(seen: Set<string>, value: string): string {
    if (seen.has(value)) return value;
    if (seen.size >= MAX_LABEL_VALUES) return 'other';
    seen.add(value);
    return value;
  }

  observe(r: CallRecord): void {
    const fn = this.bounded(this.seenFn, r.functionName);
    const node = r.nodeId ? this.bounded(this.seenNode, r.nodeId) : 'none';
    this.calls.inc({ function: fn, node, outcome: r.cached ? 'cached' : r.success ? 'ok' : 'error' });
    if (!r.success) this.errors.inc({ function: fn, code: r.errorCode || 'UNKNOWN' });
    if (!r.cached && r.nodeId) {
      this.queueWait.observe({ function: fn }, r.queueWaitMs / 1000);
      if (r.execMs > 0) this.execution.observe({ function: fn, node }, r.execMs / 1000);
    }
  }
}

describe('PrometheusMetrics', () => {
  it('exposes exactly the text prom-client did, for the same calls', async () => {
    const random = mulberry32(7);
    const cache = { hits: 12, misses: 5, bytes: 4096 };
    const ours = new PrometheusMetrics({ nodes: () => 3, inFlight: () => 7, cache: () => cache, droppedRows: () => 2 }, { processMetrics: false });
    const reference = new PromClientReference(() => cache);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
    // Bucket bounds themselves, values past the last bound, zero, and a label value that needs escaping.
    const seconds = [...LATENCY_BUCKETS_S, 0, 1e-6, 0.0007, 0.3, 42, 301, 10_000];
    for (let i = 0; i < 3_000; i++) {
      const cached = random() < 0.1;
      const success = cached || random() < 0.8;
      const row = callRecord({
        functionName: pick(['f', 'g', 'with "quotes" \\ and\nnewline', '']),
        nodeId: cached ? '' : pick(['a', 'b', 'c', '']),
        success,
        cached,
        errorCode: success ? '' : pick(['REMOTE_ERROR', 'DEADLINE_EXCEEDED', '']),
        queueWaitMs: pick(seconds) * 1000,
        execMs: pick([...seconds, -1]) * 1000,
      });
      ours.observe(row);
      reference.observe(row);
    }
    expect(await ours.text()).toBe(await reference.registry.metrics());
  });

  it('caps function and node labels at MAX_LABEL_VALUES, the rest reported as "other", like prom-client did', async () => {
    const ours = new PrometheusMetrics({ nodes: () => 3, inFlight: () => 7, cache: () => ({ hits: 0, misses: 0, bytes: 0 }), droppedRows: () => 2 }, { processMetrics: false });
    const reference = new PromClientReference(() => ({ hits: 0, misses: 0, bytes: 0 }));
    for (let i = 0; i < MAX_LABEL_VALUES + 30; i++) {
      for (const row of [callRecord({ functionName: `fn-${i}`, nodeId: `node-${i % 250}` }), callRecord({ functionName: `fn-${i % 7}`, nodeId: `node-${i}`, success: false, errorCode: 'X' })]) {
        ours.observe(row);
        reference.observe(row);
      }
    }
    const text = await ours.text();
    expect(text).toContain('function="other"');
    expect(text).toBe(await reference.registry.metrics());
  });

  it('exposes cache hits and misses as counters', async () => {
    const text = await new PrometheusMetrics({ nodes: () => 0, inFlight: () => 0, cache: () => ({ hits: 3, misses: 1, bytes: 0 }) }).text();
    expect(text).toMatch(/^# TYPE easyremote_cache_hits_total counter\neasyremote_cache_hits_total 3$/m);
    expect(text).toMatch(/^# TYPE easyremote_cache_misses_total counter\neasyremote_cache_misses_total 1$/m);
  });

  it('leaves the call families out when calls are not recorded', async () => {
    const text = await new PrometheusMetrics({ nodes: () => 2, inFlight: () => 0 }, { calls: false }).text();
    expect(text).not.toContain('easyremote_calls_total');
    expect(text).not.toContain('easyremote_execution_seconds');
    expect(text).toContain('easyremote_nodes 2');
  });

  it('easyremote_node_up: 1 for a healthy node, 0 otherwise, and no series once the node is gone', async () => {
    let states: NodeUpState[] = [
      { nodeId: 'gpu-1', healthy: true },
      { nodeId: 'cpu "2"', healthy: false },
    ];
    const prom = new PrometheusMetrics({ nodes: () => states.length, inFlight: () => 0, nodeStates: () => states }, { processMetrics: false });
    let text = await prom.text();
    expect(text).toMatch(/^# TYPE easyremote_node_up gauge$/m);
    expect(text).toMatch(/^easyremote_node_up\{node="gpu-1"\} 1$/m);
    expect(text).toMatch(/^easyremote_node_up\{node="cpu \\"2\\""\} 0$/m);
    states = [{ nodeId: 'gpu-1', healthy: false }];
    text = await prom.text();
    expect(text).toMatch(/^easyremote_node_up\{node="gpu-1"\} 0$/m);
    expect(text).not.toContain('cpu \\"2\\"');
    states = [];
    expect(await prom.text()).not.toMatch(/^easyremote_node_up\{/m);
  });

  it("shows prom-client's default process collectors, unprefixed and shared by every gateway in the process; processMetrics: false leaves them out", async () => {
    const a = await new PrometheusMetrics({ nodes: () => 0, inFlight: () => 0 }).text();
    const b = await new PrometheusMetrics({ nodes: () => 0, inFlight: () => 0 }).text();
    for (const family of ['process_cpu_user_seconds_total counter', 'process_start_time_seconds gauge', 'nodejs_heap_size_used_bytes gauge', 'nodejs_eventloop_lag_seconds gauge', 'nodejs_version_info gauge', 'nodejs_gc_duration_seconds histogram']) {
      expect(a).toContain(`# TYPE ${family}\n`);
      expect(b).toContain(`# TYPE ${family}\n`);
    }
    const start = (text: string) => /^process_start_time_seconds (\d+)$/m.exec(text)?.[1];
    expect(Number(start(a))).toBeCloseTo((Date.now() - process.uptime() * 1000) / 1000, -1);
    expect(start(a)).toBe(start(b));
    const without = await new PrometheusMetrics({ nodes: () => 0, inFlight: () => 0 }, { processMetrics: false }).text();
    expect(without).not.toMatch(/^# TYPE (process|nodejs)_/m);
    expect(without).toContain('easyremote_nodes 0');
  });
});
