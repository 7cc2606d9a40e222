// Turns finished calls and node events into metrics: one SQLite row per call (buffered,
// written off the call path), live in-memory aggregates, and Prometheus figures.
import type { Clock } from '../clock.js';
import type { CallRecorder } from '../calls/dispatcher.js';
import type { PendingCall } from '../calls/pending-call.js';
import { callRecord, type CallFacts, type CallRecord, type NodeEvent } from './call-record.js';
import { LiveMetrics } from './live.js';
import type { PrometheusMetrics } from './prometheus.js';
import type { MetricsStore } from './store.js';

export class MetricsRecorder implements CallRecorder {
  readonly live: LiveMetrics;

  constructor(
    readonly store: MetricsStore | undefined,
    readonly prometheus: PrometheusMetrics,
    private readonly clock: Clock,
  ) {
    this.live = new LiveMetrics({ clock: () => clock.epochMs() });
  }

  /** A call the dispatcher finished (errorCode '' on success). */
  callFinished(call: PendingCall, errorCode: string, cached = false): void {
    this.record(callRecord(factsOf(call), errorCode, cached, this.clock.epochMs(), this.clock.now()));
  }

  /** A call refused before it became a PendingCall (unknown function, bad request, auth). */
  refused(facts: Pick<CallFacts, 'functionName' | 'client' | 'requestBytes' | 'arrivedAt'>, errorCode: string): void {
    this.record(
      callRecord({ ...facts, nodeId: '', strategy: '', dispatchedAt: 0, execMs: 0, responseBytes: 0, attempts: 0 }, errorCode, false, this.clock.epochMs(), this.clock.now()),
    );
  }

  record(row: CallRecord): void {
    this.store?.record(row);
    this.live.record(row);
    this.prometheus.observe(row);
  }

  event(e: Omit<NodeEvent, 'at'>): void {
    this.store?.recordEvent({ at: this.clock.epochMs(), ...e });
  }

  close(): void {
    this.store?.close();
  }
}

function factsOf(call: PendingCall): CallFacts {
  return {
    functionName: call.entry.name,
    nodeId: call.nodeId,
    strategy: call.strategy,
    client: call.client,
    arrivedAt: call.arrivedAt,
    dispatchedAt: call.dispatchedAt,
    execMs: call.execMs,
    requestBytes: call.requestBytes,
    responseBytes: call.responseBytes,
    attempts: call.attempts,
  };
}
