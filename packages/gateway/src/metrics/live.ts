// Live figures for the dashboard and for routing decisions that want "now", kept in
// memory and updated once per finished call. History comes from SQLite (stats.ts);
// this answers "what is happening in the last minute" without touching the disk.
//
// Each key (the whole gateway, each function, each node) has a ring of buckets covering
// the window. Recording is O(1): find the bucket for the current time, reset it if it
// belongs to an older lap of the ring, bump its counters and one histogram bin. The
// recorder holds a LiveSeries per (function, node), so a call finds its windows without
// looking them up by name.
//
// Latency accuracy: values go into a fixed log-scale histogram whose bin edges grow by
// HISTOGRAM_GROWTH per bin from HISTOGRAM_MIN_MS up to HISTOGRAM_MAX_MS. A percentile is
// the geometric middle of the bin holding the nearest-rank value, clamped into the
// window's exact min and max, so it is within sqrt(HISTOGRAM_GROWTH) - 1 (about 2.5%)
// of the true nearest-rank value for values between the bounds. Below HISTOGRAM_MIN_MS
// everything is one bin (reported as the exact window minimum); above HISTOGRAM_MAX_MS
// everything is one bin (reported as the exact window maximum). Counts, error counts,
// min, max and mean are exact over the buckets in the window.
import type { LiveBucket, LiveSnapshot, NodeCounter, WindowFigures } from '@easyremote/protocol';
export type { LiveBucket, LiveSnapshot, NodeCounter, WindowFigures };
import type { CallRecord } from './call-record.js';

export const DEFAULT_WINDOW_MS = 60_000;
export const DEFAULT_BUCKET_MS = 1_000;
export const HISTOGRAM_MIN_MS = 0.01;
export const HISTOGRAM_MAX_MS = 3_600_000;
export const HISTOGRAM_GROWTH = 1.05;
/**
 * Windows kept per kind (functions, nodes). Names come from callers (a refused call's
 * function name is the caller's), so past this many, idle windows are freed and, if none
 * is idle, further names share OVERFLOW_NAME's window: memory stays bounded whatever
 * names clients send.
 */
export const MAX_WINDOWS = 1_000;
export const OVERFLOW_NAME = '(other)';

const LOG_GROWTH = Math.log(HISTOGRAM_GROWTH);
/** Bin 0 holds everything under HISTOGRAM_MIN_MS; the last bin everything from HISTOGRAM_MAX_MS. */
const BIN_COUNT = 2 + Math.ceil(Math.log(HISTOGRAM_MAX_MS / HISTOGRAM_MIN_MS) / LOG_GROWTH);

function binOf(ms: number): number {
  if (!(ms >= HISTOGRAM_MIN_MS)) return 0; // also catches NaN
  return Math.min(BIN_COUNT - 1, 1 + Math.floor(Math.log(ms / HISTOGRAM_MIN_MS) / LOG_GROWTH));
}

function binMiddle(bin: number): number {
  if (bin === 0) return 0;
  return HISTOGRAM_MIN_MS * Math.pow(HISTOGRAM_GROWTH, bin - 0.5);
}

/** The fields of a finished call the live figures use. */
export type LiveCall = Pick<CallRecord, 'functionName' | 'nodeId' | 'success' | 'totalMs'>;

/** Where one (function, node) pair's calls are counted; made by LiveMetrics.series(). */
export interface LiveSeries {
  readonly functionName: string;
  readonly nodeId: string;
  generation: number;
  fn: SlidingWindow;
  node: SlidingWindow | undefined;
  counter: { calls: number; errors: number } | undefined;
}

export interface LiveMetricsOptions {
  windowMs?: number;
  bucketMs?: number;
  clock?: () => number;
}

class Bucket {
  epoch = -1;
  calls = 0;
  errors = 0;
  sumMs = 0;
  minMs = Infinity;
  maxMs = -Infinity;
  // Sparse: a one-second bucket usually sees a handful of distinct bins.
  readonly bins = new Map<number, number>();

  reset(epoch: number): void {
    this.epoch = epoch;
    this.calls = 0;
    this.errors = 0;
    this.sumMs = 0;
    this.minMs = Infinity;
    this.maxMs = -Infinity;
    this.bins.clear();
  }
}

const EMPTY: WindowFigures = { calls: 0, errors: 0, successRate: 0, ratePerSecond: 0, avgMs: 0, minMs: 0, maxMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 };

/** One key's ring of buckets. Exported for LiveSeries only. */
export class SlidingWindow {
  private readonly buckets: Array<Bucket | undefined>;

  constructor(private readonly size: number) {
    this.buckets = new Array<Bucket | undefined>(size);
  }

  /** `value` is a finite non-negative latency and `bin` its histogram bin, worked out once per call by the caller. */
  add(epoch: number, ok: boolean, value: number, bin: number): void {
    const slot = epoch % this.size;
    let bucket = this.buckets[slot];
    if (bucket === undefined) {
      bucket = new Bucket();
      this.buckets[slot] = bucket;
    }
    if (bucket.epoch !== epoch) {
      // A slot holding a later lap means the clock stepped back past the window: too old to count.
      if (bucket.epoch > epoch) return;
      bucket.reset(epoch);
    }
    bucket.calls++;
    if (!ok) bucket.errors++;
    bucket.sumMs += value;
    if (value < bucket.minMs) bucket.minMs = value;
    if (value > bucket.maxMs) bucket.maxMs = value;
    bucket.bins.set(bin, (bucket.bins.get(bin) ?? 0) + 1);
  }

  /** Figures over the `span` buckets ending with epoch `nowEpoch` (the whole ring by default). */
  read(nowEpoch: number, windowSeconds: number, span = this.size): WindowFigures {
    let calls = 0;
    let errors = 0;
    let sumMs = 0;
    let minMs = Infinity;
    let maxMs = -Infinity;
    const live: Bucket[] = [];
    for (const bucket of this.buckets) {
      if (bucket === undefined || bucket.epoch <= nowEpoch - span || bucket.epoch > nowEpoch || bucket.calls === 0) continue;
      live.push(bucket);
      calls += bucket.calls;
      errors += bucket.errors;
      sumMs += bucket.sumMs;
      if (bucket.minMs < minMs) minMs = bucket.minMs;
      if (bucket.maxMs > maxMs) maxMs = bucket.maxMs;
    }
    if (calls === 0) return EMPTY;
    const hist = new Uint32Array(BIN_COUNT);
    for (const bucket of live) for (const [bin, n] of bucket.bins) hist[bin] += n;
    const percentile = (p: number): number => {
      const rank = Math.max(1, Math.ceil((p * calls) / 100));
      let seen = 0;
      for (let bin = 0; bin < BIN_COUNT; bin++) {
        seen += hist[bin];
        if (seen >= rank) return Math.min(maxMs, Math.max(minMs, binMiddle(bin)));
      }
      return maxMs;
    };
    return {
      calls,
      errors,
      successRate: (calls - errors) / calls,
      ratePerSecond: calls / windowSeconds,
      avgMs: sumMs / calls,
      minMs,
      maxMs,
      p50Ms: percentile(50),
      p95Ms: percentile(95),
      p99Ms: percentile(99),
    };
  }

  isEmpty(nowEpoch: number): boolean {
    return this.buckets.every((b) => b === undefined || b.calls === 0 || b.epoch <= nowEpoch - this.size);
  }
}

export class LiveMetrics {
  private readonly bucketMs: number;
  private readonly size: number;
  private readonly clock: () => number;
  private readonly all: SlidingWindow;
  private readonly byFunction = new Map<string, SlidingWindow>();
  private readonly byNode = new Map<string, SlidingWindow>();
  private readonly counters = new Map<string, { calls: number; errors: number }>();
  private servedCalls = 0;
  /** Bumped whenever a window or counter is dropped, so series holding it look it up again. */
  private generation = 0;
  private prunedAt = -1;

  readonly windowMs: number;

  constructor(options: LiveMetricsOptions = {}) {
    this.bucketMs = options.bucketMs ?? DEFAULT_BUCKET_MS;
    const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    if (!(this.bucketMs > 0) || !(windowMs >= this.bucketMs)) {
      throw new RangeError(`live metrics need 0 < bucketMs <= windowMs, got bucketMs=${this.bucketMs} windowMs=${windowMs}`);
    }
    this.size = Math.ceil(windowMs / this.bucketMs);
    this.windowMs = this.size * this.bucketMs;
    this.clock = options.clock ?? Date.now;
    this.all = new SlidingWindow(this.size);
  }

  /** Counts one finished call at the current clock time. O(1) amortised. */
  record(call: LiveCall): void {
    this.add(this.series(call.functionName, call.nodeId), this.clock(), call.success, call.totalMs);
  }

  /** The windows one (function, node) pair's calls go to; nodeId '' for calls that reached no node. */
  series(functionName: string, nodeId: string): LiveSeries {
    const s: LiveSeries = { functionName, nodeId, generation: -1, fn: this.all, node: undefined, counter: undefined };
    this.resolve(s);
    return s;
  }

  /** Counts one finished call of `series` that ended at epoch ms `at`. O(1) amortised. */
  add(series: LiveSeries, at: number, ok: boolean, totalMs: number): void {
    const epoch = Math.floor(at / this.bucketMs);
    if (epoch < 0) return;
    // A window forgotten or pruned since the series was made is made afresh, as a new name's would be.
    if (series.generation !== this.generation) this.resolve(series);
    const ms = Number.isFinite(totalMs) && totalMs > 0 ? totalMs : 0;
    const bin = binOf(ms);
    this.all.add(epoch, ok, ms, bin);
    series.fn.add(epoch, ok, ms, bin);
    // A call that reached no node (cache hit, not found) says nothing about any node.
    if (series.node === undefined) return;
    series.node.add(epoch, ok, ms, bin);
    const counter = series.counter!;
    counter.calls++;
    if (!ok) counter.errors++;
    this.servedCalls++;
  }

  private resolve(s: LiveSeries): void {
    s.generation = this.generation;
    s.fn = this.windowOf(this.byFunction, s.functionName);
    if (s.nodeId === '') return;
    s.node = this.windowOf(this.byNode, s.nodeId);
    let counter = this.counters.get(s.nodeId);
    if (counter === undefined) {
      counter = { calls: 0, errors: 0 };
      this.counters.set(s.nodeId, counter);
    }
    s.counter = counter;
  }

  private windowOf(windows: Map<string, SlidingWindow>, name: string): SlidingWindow {
    let w = windows.get(name);
    if (w !== undefined) return w;
    if (windows.size >= MAX_WINDOWS) {
      // At most one scan per bucket: a flood of new names must not buy a scan each.
      const nowEpoch = this.nowEpoch();
      if (nowEpoch !== this.prunedAt) {
        this.prunedAt = nowEpoch;
        this.prune();
      }
      if (windows.size >= MAX_WINDOWS) name = OVERFLOW_NAME;
      w = windows.get(name);
      if (w !== undefined) return w;
    }
    w = new SlidingWindow(this.size);
    windows.set(name, w);
    return w;
  }

  overall(): WindowFigures {
    return this.all.read(this.nowEpoch(), this.windowMs / 1000);
  }

  forFunction(functionName: string): WindowFigures {
    return this.byFunction.get(functionName)?.read(this.nowEpoch(), this.windowMs / 1000) ?? EMPTY;
  }

  forNode(nodeId: string): WindowFigures {
    return this.byNode.get(nodeId)?.read(this.nowEpoch(), this.windowMs / 1000) ?? EMPTY;
  }

  /** Cumulative per-node counters, busiest first. */
  distribution(): NodeCounter[] {
    const out: NodeCounter[] = [];
    for (const [nodeId, c] of this.counters) {
      out.push({ nodeId, calls: c.calls, errors: c.errors, share: this.servedCalls > 0 ? c.calls / this.servedCalls : 0 });
    }
    return out.sort((a, b) => b.calls - a.calls || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Everything at once, leaving out functions and nodes with no calls in the window. */
  snapshot(): LiveSnapshot {
    const nowEpoch = this.nowEpoch();
    const seconds = this.windowMs / 1000;
    const functions: LiveSnapshot['functions'] = [];
    for (const [functionName, w] of this.byFunction) {
      const figures = w.read(nowEpoch, seconds);
      if (figures.calls > 0) functions.push({ functionName, ...figures });
    }
    const nodes: LiveSnapshot['nodes'] = [];
    for (const [nodeId, w] of this.byNode) {
      const figures = w.read(nowEpoch, seconds);
      if (figures.calls > 0) nodes.push({ nodeId, ...figures });
    }
    return { at: this.clock(), windowMs: this.windowMs, overall: this.all.read(nowEpoch, seconds), functions, nodes, distribution: this.distribution() };
  }

  /**
   * The last complete bucket (one second by default): what the dashboard's charts plot,
   * one point per bucket. The bucket still filling is left out, so a point never changes
   * once reported. Functions without calls in that bucket are left out.
   */
  lastBucket(): LiveBucket {
    const epoch = this.nowEpoch() - 1;
    const seconds = this.bucketMs / 1000;
    const functions: LiveBucket['functions'] = [];
    for (const [functionName, w] of this.byFunction) {
      const figures = w.read(epoch, seconds, 1);
      if (figures.calls > 0) functions.push({ functionName, ...figures });
    }
    return { at: epoch * this.bucketMs, seconds, overall: this.all.read(epoch, seconds, 1), functions };
  }

  /** Drops a node's window and counters (it left for good); its past calls leave the distribution. */
  forgetNode(nodeId: string): void {
    this.generation++;
    this.byNode.delete(nodeId);
    const c = this.counters.get(nodeId);
    if (c !== undefined) {
      this.servedCalls -= c.calls;
      this.counters.delete(nodeId);
    }
  }

  forgetFunction(functionName: string): void {
    this.generation++;
    this.byFunction.delete(functionName);
  }

  /** Frees the windows of functions and nodes idle for a whole window; counters stay. */
  prune(): void {
    const nowEpoch = this.nowEpoch();
    this.generation++;
    for (const [k, w] of this.byFunction) if (w.isEmpty(nowEpoch)) this.byFunction.delete(k);
    for (const [k, w] of this.byNode) if (w.isEmpty(nowEpoch)) this.byNode.delete(k);
  }

  private nowEpoch(): number {
    return Math.floor(this.clock() / this.bucketMs);
  }
}
