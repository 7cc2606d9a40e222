// Turns finished calls and node events into metrics: one SQLite row per call (copied into
// a columnar chunk, written on the writer thread), live in-memory aggregates, and
// Prometheus figures. Recording runs on the gateway's thread after every reply, so it
// allocates nothing per call: the row is one object refilled each time, and a series per
// (function, node) holds that pair's live windows and Prometheus cells, so a call finds
// them with two map lookups instead of one per part and per label.
import type { Clock } from '../clock.js';
import type { CallRecorder } from '../calls/dispatcher.js';
import type { PendingCall } from '../calls/pending-call.js';
import { fillCallRecord, newCallRow, type CallFacts, type CallRecord, type NodeEvent } from './call-record.js';
import { LiveMetrics, type LiveSeries } from './live.js';
import type { PrometheusMetrics, PromSeries } from './prometheus.js';
import type { MetricsStore } from './store.js';

/**
 * Series kept before the cache is emptied. Refused calls name functions that do not
 * exist, so the names are the callers' to choose; the figures themselves live in the
 * parts (bounded there), the series only find them.
 */
const MAX_SERIES = 10_000;
/** A call refused before anyone was authenticated. */
const NO_CALLER = { callerName: '' };

interface CallSeries {
  readonly live: LiveSeries;
  readonly prom: PromSeries;
}

export interface MetricsRecorderOptions {
  /** False: no row, no live figure, no Prometheus count for any call (metrics: false). Default true. */
  recordCalls?: boolean;
}

export class MetricsRecorder implements CallRecorder {
  readonly live: LiveMetrics;
  /** Whether calls are recorded at all. */
  readonly recording: boolean;
  private readonly row = newCallRow();
  private readonly byFunction = new Map<string, Map<string, CallSeries>>();
  private seriesCount = 0;

  constructor(
    readonly store: MetricsStore | undefined,
    readonly prometheus: PrometheusMetrics,
    private readonly clock: Clock,
    options: MetricsRecorderOptions = {},
  ) {
    this.live = new LiveMetrics({ clock: () => clock.epochMs() });
    this.recording = options.recordCalls !== false;
  }

  /** A call the dispatcher finished (errorCode '' on success). */
  callFinished(call: PendingCall, errorCode: string, cached = false): void {
    if (!this.recording) return;
    this.take(fillCallRecord(this.row, call.entry.name, call, errorCode, cached, this.clock.epochMs(), this.clock.now()));
  }

  /** A call refused before it became a PendingCall (unknown function, bad request, auth). */
  refused(facts: { functionName: string; client: string; caller?: CallFacts['caller']; requestBytes: number; arrivedAt: number }, errorCode: string): void {
    if (!this.recording) return;
    const never: CallFacts = { nodeId: '', strategy: '', client: facts.client, caller: facts.caller ?? NO_CALLER, arrivedAt: facts.arrivedAt, dispatchedAt: 0, execMs: 0, requestBytes: facts.requestBytes, responseBytes: 0, attempts: 0 };
    this.take(fillCallRecord(this.row, facts.functionName, never, errorCode, false, this.clock.epochMs(), this.clock.now()));
  }

  /** Records a row built elsewhere (the parts copy what they keep; `row` is not held). */
  record(row: CallRecord): void {
    if (this.recording) this.take(row);
  }

  event(e: Omit<NodeEvent, 'at'>): void {
    this.store?.recordEvent({ at: this.clock.epochMs(), ...e });
  }

  close(): void {
    this.store?.close();
  }

  private take(row: CallRecord): void {
    const series = this.series(row.functionName, row.nodeId);
    this.store?.record(row);
    this.live.add(series.live, row.finishedAt, row.success, row.totalMs);
    this.prometheus.add(series.prom, row);
  }

  private series(functionName: string, nodeId: string): CallSeries {
    let byNode = this.byFunction.get(functionName);
    let series = byNode?.get(nodeId);
    if (series !== undefined) return series;
    if (this.seriesCount >= MAX_SERIES) {
      this.byFunction.clear();
      this.seriesCount = 0;
      byNode = undefined;
    }
    if (byNode === undefined) {
      byNode = new Map();
      this.byFunction.set(functionName, byNode);
    }
    series = { live: this.live.series(functionName, nodeId), prom: this.prometheus.series(functionName, nodeId) };
    byNode.set(nodeId, series);
    this.seriesCount++;
    return series;
  }
}
