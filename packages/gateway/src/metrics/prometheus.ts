// Prometheus figures at /metrics. The per-call families (calls, errors, queue wait,
// execution) are plain counters and bucket counts that recording bumps in place, through
// a PromSeries per (function, node) that the recorder keeps: no label hashing per call.
// They become exposition text only when scraped, formatted by prom-client's registry, so
// the text is what prom-client's own Counter and Histogram would print. Function and node
// label values are capped so a flood of names cannot grow the exposition forever.
//
// Process figures (CPU, memory, heap, event-loop lag, handles, GC) are prom-client's default
// collectors, set up once per process and shown by every gateway in it: they describe the
// process, not a gateway.
import { collectDefaultMetrics, Gauge, Registry, type Metric } from 'prom-client';
import type { CallRecord } from './call-record.js';

/** Distinct values per label beyond which new values are reported as "other". */
export const MAX_LABEL_VALUES = 200;
export const LATENCY_BUCKETS_S: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** The caller label of calls from the anonymous principal (clients do not authenticate). */
export const ANONYMOUS_CALLER = 'anonymous';
/** Error code for a failed call that carries none. */
const UNKNOWN_CODE = 'UNKNOWN';

/** Registry reads only name, type, help and get() (or getForPromString()); its parameter type names prom-client's own classes. */
function register(registry: Registry, metric: CounterFamily | HistogramFamily | ReadCounter): void {
  registry.registerMetric(metric as unknown as Metric);
}

let processMetrics: Registry | undefined;

/** prom-client's default collectors, created on first use (each holds an event-loop monitor and a GC observer for the life of the process). */
function processRegistry(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

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

type Labels = Record<string, string>;

/** One labelled sample of a counter. */
export class CounterCell {
  value = 0;
  constructor(readonly labels: Labels) {}
}

/** One labelled histogram: a count per bucket (not cumulative), the sum and the count. */
export class HistogramCell {
  readonly buckets = new Float64Array(LATENCY_BUCKETS_S.length);
  sum = 0;
  count = 0;
  constructor(readonly labels: Labels) {}
}

// What prom-client's Registry reads from a metric: name, help, type and get() (or
// getForPromString(), which it prefers for the text format).
interface Sample {
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  value: number;
  metricName?: string;
}

interface CollectedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

class CounterFamily {
  readonly type = 'counter';
  /** Cells in order of their first increment, the order prom-client lists label sets in. */
  private readonly cells: CounterCell[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(cell: CounterCell): void {
    if (cell.value === 0) this.cells.push(cell);
    cell.value++;
  }

  async get(): Promise<CollectedMetric> {
    return { name: this.name, help: this.help, type: this.type, values: this.cells.map((c) => ({ labels: c.labels, value: c.value })), aggregator: 'sum' };
  }
}

/** A counter whose one value is read when scraped. */
class ReadCounter {
  readonly type = 'counter';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => number,
  ) {}

  async get(): Promise<CollectedMetric> {
    return { name: this.name, help: this.help, type: this.type, values: [{ labels: {}, value: this.read() }], aggregator: 'sum' };
  }
}

class HistogramFamily {
  readonly type = 'histogram';
  private readonly cells: HistogramCell[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** A value goes in the first bucket whose bound it does not exceed; above the last, only in the count (as prom-client does). */
  observe(cell: HistogramCell, seconds: number): void {
    // prom-client throws on a non-finite value; a figure nobody can plot is left out instead.
    if (!Number.isFinite(seconds)) return;
    if (cell.count === 0) this.cells.push(cell);
    cell.sum += seconds;
    cell.count++;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      if (seconds <= LATENCY_BUCKETS_S[i]!) {
        cell.buckets[i]++;
        return;
      }
    }
  }

  async getForPromString(): Promise<CollectedMetric> {
    const bucket = `${this.name}_bucket`;
    const values: Sample[] = [];
    for (const cell of this.cells) {
      let acc = 0;
      for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
        acc += cell.buckets[i]!;
        values.push({ labels: { le: LATENCY_BUCKETS_S[i]! }, sharedLabels: cell.labels, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: cell.labels, value: cell.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: cell.labels, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: cell.labels, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  async get(): Promise<CollectedMetric> {
    const metric = await this.getForPromString();
    metric.values = metric.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return metric;
  }
}

/** The cells of one function label. */
class FunctionCells {
  readonly queueWait: HistogramCell;
  private readonly errors = new Map<string, CounterCell>();

  constructor(readonly label: string) {
    this.queueWait = new HistogramCell({ function: label });
  }

  error(code: string): CounterCell {
    let cell = this.errors.get(code);
    if (cell === undefined) {
      cell = new CounterCell({ function: this.label, code });
      this.errors.set(code, cell);
    }
    return cell;
  }
}

/** Calls per principal and outcome: a separate family, so the per-call series keep their labels. */
class CallerCells {
  readonly family = new CounterFamily('easyremote_caller_calls_total', 'Finished calls by the principal that made them');
  private readonly label = new BoundedLabel();
  private readonly cells = new Map<string, { ok: CounterCell; error: CounterCell; cached: CounterCell }>();

  add(r: CallRecord): void {
    const caller = this.label.of(r.caller === '' ? ANONYMOUS_CALLER : r.caller);
    let cells = this.cells.get(caller);
    if (cells === undefined) {
      const cell = (outcome: string) => new CounterCell({ caller, outcome });
      cells = { ok: cell('ok'), error: cell('error'), cached: cell('cached') };
      this.cells.set(caller, cells);
    }
    this.family.inc(r.cached ? cells.cached : r.success ? cells.ok : cells.error);
  }
}

/** Where one (function, node) pair's calls are counted; made by PrometheusMetrics.series(). */
export interface PromSeries {
  readonly fn: FunctionCells;
  readonly ok: CounterCell;
  readonly error: CounterCell;
  readonly cached: CounterCell;
  /** Undefined for calls that reached no node. */
  readonly execution: HistogramCell | undefined;
}

/** What the up gauge reads of each node the gateway knows. */
export interface NodeUpState {
  nodeId: string;
  /** Connected with a live lease, not draining and not ejected for everything it serves (NodeInfo.healthy). */
  healthy: boolean;
}

export interface PrometheusSources {
  nodes: () => number;
  /** Nodes for easyremote_node_up, read when scraped. */
  nodeStates?: () => readonly NodeUpState[];
  inFlight: () => number;
  cache?: () => { hits: number; misses: number; bytes: number };
  droppedRows?: () => number;
  /** Look-aside: backends registered, picks open, and picks and outcomes since start. */
  lookAside?: () => { backends: number; openPicks: number; picks: number; outcomes: number };
}

export interface PrometheusOptions {
  /** Expose the per-call families (false when the gateway records no calls). Default true. */
  calls?: boolean;
  /** Also count calls per principal: easyremote_caller_calls_total{caller, outcome}. Default false. */
  callerLabel?: boolean;
  /** Expose prom-client's default process collectors. Default true. */
  processMetrics?: boolean;
}

export class PrometheusMetrics {
  readonly registry = new Registry();
  private readonly fnLabel = new BoundedLabel();
  private readonly nodeLabel = new BoundedLabel();
  private readonly calls = new CounterFamily('easyremote_calls_total', 'Finished calls');
  private readonly errors = new CounterFamily('easyremote_errors_total', 'Failed calls by error code');
  private readonly queueWait = new HistogramFamily('easyremote_queue_wait_seconds', 'Arrival to dispatch');
  private readonly execution = new HistogramFamily('easyremote_execution_seconds', 'Execution time reported by the node');
  private readonly functions = new Map<string, FunctionCells>();
  /** easyremote_caller_calls_total, when asked for (callerLabel). */
  private readonly byCaller: CallerCells | undefined;
  /** Call counters and execution histogram by function label, then node label. */
  private readonly pairs = new Map<string, Map<string, { ok: CounterCell; error: CounterCell; cached: CounterCell; execution: HistogramCell }>>();

  constructor(collect: PrometheusSources, options: PrometheusOptions = {}) {
    const registers = [this.registry];
    if (options.calls !== false) {
      for (const family of [this.calls, this.errors, this.queueWait, this.execution]) register(this.registry, family);
      if (options.callerLabel === true) {
        this.byCaller = new CallerCells();
        register(this.registry, this.byCaller.family);
      }
    }
    new Gauge({ name: 'easyremote_nodes', help: 'Connected nodes', registers, collect() { this.set(collect.nodes()); } });
    new Gauge({ name: 'easyremote_in_flight', help: 'Attempts in flight', registers, collect() { this.set(collect.inFlight()); } });
    if (collect.nodeStates) {
      const states = collect.nodeStates;
      new Gauge({
        name: 'easyremote_node_up',
        help: '1 while the node is connected and routable (lease alive, not draining, not ejected for everything it serves), 0 otherwise; absent once the node is gone',
        labelNames: ['node'],
        registers,
        collect() {
          // Rebuilt from the registry at each scrape: a node that left has no series.
          this.reset();
          for (const n of states()) this.set({ node: n.nodeId }, n.healthy ? 1 : 0);
        },
      });
    }
    if (collect.cache) {
      const cache = collect.cache;
      // Hits and misses only grow: counters, so rate() works on them.
      register(this.registry, new ReadCounter('easyremote_cache_hits_total', 'Result cache hits since start', () => cache().hits));
      register(this.registry, new ReadCounter('easyremote_cache_misses_total', 'Result cache misses since start', () => cache().misses));
      new Gauge({ name: 'easyremote_cache_bytes', help: 'Bytes held by the result cache', registers, collect() { this.set(cache().bytes); } });
    }
    if (collect.lookAside) {
      const lookAside = collect.lookAside;
      new Gauge({ name: 'easyremote_lookaside_backends', help: 'Look-aside backends registered', registers, collect() { this.set(lookAside().backends); } });
      new Gauge({ name: 'easyremote_lookaside_open_picks', help: 'Look-aside picks holding a call slot', registers, collect() { this.set(lookAside().openPicks); } });
      register(this.registry, new ReadCounter('easyremote_lookaside_picks', 'Look-aside picks handed out since start', () => lookAside().picks));
      register(this.registry, new ReadCounter('easyremote_lookaside_outcomes', 'Look-aside call outcomes reported since start', () => lookAside().outcomes));
    }
    if (collect.droppedRows) {
      const dropped = collect.droppedRows;
      new Gauge({ name: 'easyremote_metrics_dropped_rows', help: 'Call rows the metrics store could not write', registers, collect() { this.set(dropped()); } });
    }
    if (options.processMetrics !== false) for (const metric of processRegistry().getMetricsAsArray()) this.registry.registerMetric(metric as unknown as Metric);
  }

  /** The cells one (function, node) pair's calls go to; nodeId '' for calls that reached no node. */
  series(functionName: string, nodeId: string): PromSeries {
    const fnLabel = this.fnLabel.of(functionName);
    let fn = this.functions.get(fnLabel);
    if (fn === undefined) {
      fn = new FunctionCells(fnLabel);
      this.functions.set(fnLabel, fn);
    }
    const node = nodeId ? this.nodeLabel.of(nodeId) : 'none';
    let byNode = this.pairs.get(fnLabel);
    if (byNode === undefined) {
      byNode = new Map();
      this.pairs.set(fnLabel, byNode);
    }
    let pair = byNode.get(node);
    if (pair === undefined) {
      const cell = (outcome: string) => new CounterCell({ function: fnLabel, node, outcome });
      pair = { ok: cell('ok'), error: cell('error'), cached: cell('cached'), execution: new HistogramCell({ function: fnLabel, node }) };
      byNode.set(node, pair);
    }
    return { fn, ok: pair.ok, error: pair.error, cached: pair.cached, execution: nodeId ? pair.execution : undefined };
  }

  /** Counts one finished call of `series`. */
  add(series: PromSeries, r: CallRecord): void {
    this.calls.inc(r.cached ? series.cached : r.success ? series.ok : series.error);
    if (!r.success) this.errors.inc(series.fn.error(r.errorCode || UNKNOWN_CODE));
    if (this.byCaller !== undefined) this.byCaller.add(r);
    if (!r.cached && series.execution !== undefined) {
      this.queueWait.observe(series.fn.queueWait, r.queueWaitMs / 1000);
      if (r.execMs > 0) this.execution.observe(series.execution, r.execMs / 1000);
    }
  }

  /** Counts one finished call, finding its cells by name (the recorder keeps series instead). */
  observe(r: CallRecord): void {
    this.add(this.series(r.functionName, r.nodeId), r);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
