// A node's offer of one function. It is the Candidate strategies see: live figures are
// read through getters, so routing a call allocates no per-candidate objects.
import type { FunctionSpec } from '@easyremote/protocol';
import type { Candidate, ProviderHistory } from '../strategies/strategy.js';
import { slowStartWeight } from '../health/slow-start.js';
import type { NodeSession } from './node-session.js';

/** Weight of the newest sample in the latency averages. */
export const EWMA_ALPHA = 0.2;

/** Calls in flight over a set of providers, kept as each one's count moves. */
export interface InFlightTally {
  total: number;
}

export class Provider implements Candidate {
  readonly history: ProviderHistory = { completed: 0, failures: 0, ewmaLatencyMs: 0, ewmaExecMs: 0 };

  /**
   * Calls of this function the node reported queued at its last heartbeat (set there, see
   * registry/reported-load.ts): a field, since routing reads it for every candidate it scores.
   */
  queued = 0;

  private declaration = '';
  private inFlightValue = 0;
  private elsewhereValue = 0;
  /** maxConcurrent + queueSize when the declaration limits calls, else Infinity: what `full` compares with. */
  private capacity = Infinity;

  constructor(
    readonly session: NodeSession,
    private specValue: FunctionSpec,
    /** The function's tally, so routing reads the total without summing every provider. */
    private tally: InFlightTally = { total: 0 },
  ) {
    this.spec = specValue;
    this.queued = session.reported.get(specValue.name)?.queued ?? 0;
  }

  /** Calls of this function on this node in flight at the gateway (kept by the dispatcher). */
  get inFlight(): number {
    return this.inFlightValue;
  }

  set inFlight(n: number) {
    this.tally.total += n - this.inFlightValue;
    this.inFlightValue = n;
  }

  /**
   * Calls of this function the node reported beyond this gateway's own (its other
   * gateways' share): set by each heartbeat, see registry/reported-load.ts. Counted in the
   * function's tally and, through inFlightOf, by every strategy that counts calls.
   */
  get inFlightElsewhere(): number {
    return this.elsewhereValue;
  }

  set inFlightElsewhere(n: number) {
    this.tally.total += n - this.elsewhereValue;
    this.elsewhereValue = n;
  }

  /**
   * The provider left its function: its counts leave the function's tally, and the calls
   * still running on it (they end later) no longer move that tally.
   */
  detach(): void {
    this.tally.total -= this.inFlightValue + this.elsewhereValue;
    this.tally = { total: this.inFlightValue + this.elsewhereValue };
  }

  get spec(): FunctionSpec {
    return this.specValue;
  }

  set spec(spec: FunctionSpec) {
    this.specValue = spec;
    this.declaration = '';
    this.capacity = spec.maxConcurrent > 0 ? spec.maxConcurrent + spec.queueSize : Infinity;
  }

  /** The parts of the declaration that define the function (not capacity or cost), as a comparable string; computed once per spec. */
  get declarationKey(): string {
    return (this.declaration ||= declarationKey(this.specValue));
  }

  get nodeId() {
    return this.session.nodeId;
  }
  get capabilities() {
    return this.session.capabilities;
  }
  get telemetry() {
    return this.session.telemetry;
  }
  get rttMs() {
    return this.session.rttMs;
  }
  get nodeInFlight() {
    return this.session.inFlight;
  }
  get maxConcurrent() {
    return this.spec.maxConcurrent;
  }
  get costPerHour() {
    return this.spec.costPerHour || this.session.capabilities.costPerHour;
  }
  /** Slow start: a node that just joined (or came back) ramps up to full weight. */
  get weight() {
    return this.session.slowStartMs > 0 ? slowStartWeight(this.session.joinedAt, this.session.clock.now(), this.session.slowStartMs) : 1;
  }
  get performanceTier() {
    return this.spec.performanceTier || 1;
  }

  /** No room for one more call: the node's slots plus its queue, counting the calls its other gateways sent it. */
  get full(): boolean {
    return this.inFlightValue + this.elsewhereValue >= this.capacity;
  }

  /** The live figures frozen into a plain Candidate (features at decision time). */
  snapshot(): Candidate {
    return {
      nodeId: this.nodeId,
      capabilities: this.capabilities,
      telemetry: this.telemetry,
      rttMs: this.rttMs,
      inFlight: this.inFlight,
      inFlightElsewhere: this.inFlightElsewhere,
      nodeInFlight: this.nodeInFlight,
      maxConcurrent: this.maxConcurrent,
      queued: this.queued,
      costPerHour: this.costPerHour,
      performanceTier: this.performanceTier,
      weight: this.weight,
      history: { ...this.history },
    };
  }

  recordOutcome(ok: boolean, latencyMs: number, execMs: number): void {
    const h = this.history;
    h.completed++;
    if (!ok) h.failures++;
    h.ewmaLatencyMs = h.ewmaLatencyMs === 0 ? latencyMs : h.ewmaLatencyMs + EWMA_ALPHA * (latencyMs - h.ewmaLatencyMs);
    if (execMs > 0) h.ewmaExecMs = h.ewmaExecMs === 0 ? execMs : h.ewmaExecMs + EWMA_ALPHA * (execMs - h.ewmaExecMs);
  }
}

/** The parts of a declaration that define the function (not capacity or cost), as a comparable string. */
export function declarationKey(s: FunctionSpec): string {
  return JSON.stringify([s.kind, s.idempotent, s.timeoutMs, s.cacheable, s.cacheTtlMs, s.version, s.requirements, s.loadBalancingJson]);
}
