import { costPerHourOf } from './cost-aware.js';
import { concurrencySlots } from './least-load.js';
import { pickRandom } from './random.js';
import type { Candidate, Outcome, SelectContext, Strategy } from './strategy.js';

export type AdaptiveTarget = 'latency' | 'throughput' | 'cost';

export const DEFAULT_TARGET: AdaptiveTarget = 'latency';
/** NLMS step for the shared weights: small, they describe slow-moving structure. */
export const DEFAULT_LEARNING_RATE = 0.05;
/** UCB coefficient, in units of log(time): 0.3 ≈ "30 % slower is worth a look when unsure". */
export const DEFAULT_EXPLORATION = 0.3;
/** Per-selection discount on what we know about each node: memory of about 100 calls. */
export const DEFAULT_DISCOUNT = 0.99;
/** The per-node intercept never moves slower than this share of the error. */
const MIN_OFFSET_RATE = 0.2;
/** A result this far off (×3 either way, in log units) signals a change, not noise... */
const SURPRISE_LOG = Math.log(3);
/** ...and moves the intercept at least this far, so a 10× slowdown shows within two calls. */
const SURPRISE_RATE = 0.5;
/** A failed call teaches "this node costs at least twice what it seemed". */
const FAILURE_PENALTY = 2;
/** Targets are capped at a day, so repeated failure penalties cannot overflow. */
const MAX_LOG_MS = Math.log1p(86_400_000);
/** Execution time assumed before the first result of the function on any node (ms). */
const PRIOR_EXEC_MS = 100;
/** Lets free nodes compare by time under the cost target instead of all scoring 0. */
const MIN_COST_PER_HOUR = 1e-6;
/** Nodes unseen for this many selections are forgotten (bounded memory under churn). */
const FORGET_AFTER_SELECTIONS = 10_000;
const OCCUPANCY_CAP = 4;
const LOG_MS_SCALE = Math.log(1e5);
const LOG_BYTES_SCALE = Math.log(1e9);
const COMPLEXITY_LOG_CAP = 5;
const FEATURE_COUNT = 10;
/** The feature mean follows the last few hundred results. */
const FEATURE_MEAN_RATE = 0.01;

export interface SmartAdaptiveOptions {
  target?: AdaptiveTarget;
  learningRate?: number;
  exploration?: number;
  discount?: number;
}

interface NodeState {
  /** Per-node intercept in log(1 + ms); undefined until the node's first result. */
  offset: number | undefined;
  /** Discounted count of selections: drives the exploration bonus. */
  selections: number;
  /** Discounted count of results: drives how far one result moves the intercept. */
  evidence: number;
  lastSelectedAt: number;
  observed: number;
}

/**
 * Learns, per function, how long each node takes, and routes to the best predicted node.
 *
 * Model: log(1 + execMs) ≈ offset[node] + w · x, where x holds normalised features of the
 * node and the call (CPU, memory and GPU use, in-flight and queued per slot, the gateway's
 * EWMA of the node's execution time, request size, complexity, time of day as sin/cos).
 * Why this shape:
 * - Log time: load, size and complexity act multiplicatively on run time, which is linear
 *   in log space, and a 10× slowdown is the same step (ln 10) on a 10 ms or a 10 s function.
 * - One shared weight vector, trained by normalised LMS (scale-free and stable for any
 *   step below 2): what one node teaches about load or size applies to all, including a
 *   node that just joined. A per-node regression would need about ten results per node
 *   before it could say anything and is numerically fragile when features barely vary.
 * - A per-node intercept, a discounted running mean of the residual: it captures the
 *   node's own speed and follows a change in a handful of results.
 * Exploration: discounted UCB. Every selection discounts each node's counts by `discount`,
 * and a node's score is lowered (made more attractive) by exploration × sqrt(ln t / n),
 * n its discounted selection count. A new node (n = 0) is tried at once; a node avoided for
 * a while, say because it was slow, sees n decay and is retried later, and since its
 * evidence decayed too, one good result is enough to bring it back.
 * Targets: latency = the expected wait for the result: predicted execution × (calls
 * already on the node ÷ its slots + 1) + RTT ("shortest expected delay"; the model
 * learns service time, which a node's own queue does not change, so the queue must be
 * counted explicitly or the fastest node would attract every call until its queue
 * explodes, as the first strategies benchmark showed); throughput = predicted execution
 * × (inFlight + 1) ÷ slots, which spreads work by capacity; cost = predicted execution ×
 * cost per hour.
 */
export class SmartAdaptiveStrategy implements Strategy {
  readonly name = 'smart_adaptive';
  private readonly target: AdaptiveTarget;
  private readonly learningRate: number;
  private readonly exploration: number;
  private readonly discount: number;
  private readonly weights = new Float64Array(FEATURE_COUNT);
  /** Running mean of the features: the weights model deviations from the usual. */
  private readonly featureMean = new Float64Array(FEATURE_COUNT);
  private meanInitialised = false;
  private readonly nodes = new Map<string, NodeState>();
  private selectionsMade = 0;

  constructor(options: SmartAdaptiveOptions = {}) {
    const target = options.target ?? DEFAULT_TARGET;
    if (target !== 'latency' && target !== 'throughput' && target !== 'cost') {
      throw new TypeError(`smart_adaptive target must be latency, throughput or cost, got ${JSON.stringify(target)}`);
    }
    this.target = target;
    this.learningRate = options.learningRate ?? DEFAULT_LEARNING_RATE;
    this.exploration = options.exploration ?? DEFAULT_EXPLORATION;
    this.discount = options.discount ?? DEFAULT_DISCOUNT;
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    this.selectionsMade += 1;
    this.age();
    const logT = Math.log(this.selectionsMade + 1);
    const values = candidates.map((c) => {
      const n = this.nodes.get(c.nodeId)?.selections ?? 0;
      const bonus = n === 0 ? Infinity : this.exploration * Math.sqrt(logT / n);
      return Math.log(Math.max(this.score(c, context), 1e-9)) - bonus;
    });
    const best = Math.min(...values);
    const picked = pickRandom(candidates.filter((_, i) => values[i] === best), context.random)!;
    const state = this.state(picked.nodeId);
    state.selections += 1;
    state.lastSelectedAt = this.selectionsMade;
    return picked;
  }

  observe(outcome: Outcome): void {
    const state = this.state(outcome.nodeId);
    const x = this.centred(features(outcome.candidate, outcome.context));
    const predicted = this.offsetOf(state) + dot(this.weights, x);
    let ms = outcome.execMs > 0 ? outcome.execMs : outcome.latencyMs;
    if (!outcome.ok) ms = Math.max(ms, Math.expm1(predicted)) * FAILURE_PENALTY;
    const residual = Math.min(Math.log1p(Math.max(0, ms)), MAX_LOG_MS) - predicted;
    if (!Number.isFinite(residual)) return; // a malformed report must not poison the model

    const step = (this.learningRate * residual) / (1 + dot(x, x));
    for (let i = 0; i < FEATURE_COUNT; i++) this.weights[i]! += step * x[i]!;
    // The first result sets the intercept outright; later ones blend, faster when what we
    // knew is old (low evidence, so a recovered node is believed quickly) or when the
    // result is far off (the node changed).
    const floor = Math.abs(residual) > SURPRISE_LOG ? SURPRISE_RATE : MIN_OFFSET_RATE;
    const rate = state.offset === undefined ? 1 : Math.max(floor, 1 / (1 + state.evidence));
    state.offset = this.offsetOf(state) + rate * residual;
    state.evidence += 1;
    state.observed += 1;
  }

  /** Predicted execution time (ms) of a call on this node, before exploration. */
  predictExecMs(c: Candidate, context: SelectContext): number {
    const state = this.nodes.get(c.nodeId);
    const offset = state === undefined ? this.meanOffset() : this.offsetOf(state);
    return Math.max(0, Math.expm1(offset + dot(this.weights, this.centred(features(c, context), false))));
  }

  describe(): Record<string, unknown> {
    const nodes: Record<string, unknown> = {};
    for (const [id, s] of this.nodes) {
      nodes[id] = { baselineMs: Math.round(Math.expm1(this.offsetOf(s))), observed: s.observed };
    }
    return { target: this.target, selections: this.selectionsMade, nodes };
  }

  private score(c: Candidate, context: SelectContext): number {
    const execMs = this.predictExecMs(c, context);
    switch (this.target) {
      case 'latency':
        return execMs * (c.inFlight / concurrencySlots(c) + 1) + (c.rttMs ?? 0);
      case 'throughput':
        return (execMs * (c.inFlight + 1)) / concurrencySlots(c);
      case 'cost':
        return execMs * Math.max(costPerHourOf(c), MIN_COST_PER_HOUR);
    }
  }

  /**
   * Subtracts the running feature mean, updating it when learning. Centred, the shared
   * weights explain only how a call differs from the usual one and the per-node intercepts
   * carry the level; uncentred, every weight step would also move the level and the two
   * would keep undoing each other's updates.
   */
  private centred(x: Float64Array, learn = true): Float64Array {
    if (!this.meanInitialised) {
      if (!learn) return new Float64Array(FEATURE_COUNT);
      this.featureMean.set(x);
      this.meanInitialised = true;
    }
    const out = new Float64Array(FEATURE_COUNT);
    for (let i = 0; i < FEATURE_COUNT; i++) {
      if (learn) this.featureMean[i]! += FEATURE_MEAN_RATE * (x[i]! - this.featureMean[i]!);
      out[i] = x[i]! - this.featureMean[i]!;
    }
    return out;
  }

  private age(): void {
    for (const [id, s] of this.nodes) {
      if (this.selectionsMade - s.lastSelectedAt > FORGET_AFTER_SELECTIONS) {
        this.nodes.delete(id);
        continue;
      }
      s.selections *= this.discount;
      s.evidence *= this.discount;
    }
  }

  private state(nodeId: string): NodeState {
    let s = this.nodes.get(nodeId);
    if (s === undefined) {
      s = { offset: undefined, selections: 0, evidence: 0, lastSelectedAt: this.selectionsMade, observed: 0 };
      this.nodes.set(nodeId, s);
    }
    return s;
  }

  private offsetOf(s: NodeState): number {
    return s.offset ?? this.meanOffset();
  }

  /** A node without results is assumed average: exploration, not the prior, gets it tried. */
  private meanOffset(): number {
    let sum = 0;
    let count = 0;
    for (const s of this.nodes.values()) {
      if (s.offset !== undefined) {
        sum += s.offset;
        count += 1;
      }
    }
    return count === 0 ? Math.log1p(PRIOR_EXEC_MS) : sum / count;
  }
}

/** The feature vector, each entry roughly in [−1, 1]; a node without telemetry reads mid-scale. */
function features(c: Candidate, context: SelectContext): Float64Array {
  const t = c.telemetry;
  const slots = concurrencySlots(c);
  const memTotal = t !== undefined && t.memoryTotalBytes > 0 ? t.memoryTotalBytes : c.capabilities.memoryTotalBytes;
  const gpuUse =
    t === undefined || t.gpus.length === 0 ? 0 : t.gpus.reduce((sum, g) => sum + g.utilizationPercent, 0) / (100 * t.gpus.length);
  // If now() is a wall clock this is the UTC hour; a monotonic clock still gives a daily cycle.
  const hourAngle = (2 * Math.PI * ((context.now() / 3_600_000) % 24)) / 24;
  const complexity = Math.log(Math.max(context.complexity, 1e-6));
  const x = new Float64Array(FEATURE_COUNT);
  x[0] = t === undefined ? 0.5 : clamp(t.cpuPercent / 100, 0, 1);
  x[1] = t === undefined || memTotal <= 0 ? 0.5 : clamp(t.memoryUsedBytes / memTotal, 0, 1);
  x[2] = gpuUse;
  x[3] = Math.min(OCCUPANCY_CAP, c.inFlight / slots);
  x[4] = Math.min(OCCUPANCY_CAP, c.queued / slots);
  x[5] = Math.log1p(Math.max(0, c.history.ewmaExecMs)) / LOG_MS_SCALE;
  x[6] = Math.log1p(Math.max(0, context.requestBytes)) / LOG_BYTES_SCALE;
  x[7] = clamp(complexity, -COMPLEXITY_LOG_CAP, COMPLEXITY_LOG_CAP);
  x[8] = Math.sin(hourAngle);
  x[9] = Math.cos(hourAngle);
  return x;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
