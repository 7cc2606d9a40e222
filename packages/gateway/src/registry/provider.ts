// A node's offer of one function. It is the Candidate strategies see: live figures are
// read through getters, so routing a call allocates no per-candidate objects.
import type { FunctionSpec } from '@easyremote/protocol';
import type { Candidate, ProviderHistory } from '../strategies/strategy.js';
import { slowStartWeight } from '../health/slow-start.js';
import type { NodeSession } from './node-session.js';

/** Weight of the newest sample in the latency averages. */
export const EWMA_ALPHA = 0.2;

export class Provider implements Candidate {
  inFlight = 0;
  readonly history: ProviderHistory = { completed: 0, failures: 0, ewmaLatencyMs: 0, ewmaExecMs: 0 };

  private declaration = '';

  constructor(
    readonly session: NodeSession,
    private specValue: FunctionSpec,
  ) {
    this.spec = specValue;
  }

  get spec(): FunctionSpec {
    return this.specValue;
  }

  set spec(spec: FunctionSpec) {
    this.specValue = spec;
    this.declaration = '';
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
  get queued() {
    return this.session.reported.get(this.spec.name)?.queued ?? 0;
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

  /** Room for one more call: the node's slots plus its queue. */
  get full(): boolean {
    const max = this.spec.maxConcurrent;
    return max > 0 && this.inFlight >= max + this.spec.queueSize;
  }

  /** The live figures frozen into a plain Candidate (features at decision time). */
  snapshot(): Candidate {
    return {
      nodeId: this.nodeId,
      capabilities: this.capabilities,
      telemetry: this.telemetry,
      rttMs: this.rttMs,
      inFlight: this.inFlight,
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
