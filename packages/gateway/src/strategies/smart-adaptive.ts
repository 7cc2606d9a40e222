import {
  clamp,
  concurrencySlots,
  costPerHourOf,
  cpuFraction,
  ewmaExecOf,
  gpuBusyFraction,
  inFlightOf,
  memoryUsedFraction,
  nonNegative,
  occupancy,
  replacesTie,
  rttOf,
} from './candidate-math.js';
import type { OptionsOf } from './option-schema.js';
import type { Candidate, Outcome, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

export const SMART_ADAPTIVE_OPTIONS = {
  target: { type: 'string', values: ['latency', 'throughput', 'cost'] },
  /** NLMS is stable for any step below 2. */
  learningRate: { type: 'number', min: 0, max: 2 },
  exploration: { type: 'number', min: 0 },
  discount: { type: 'number', min: 0, max: 1 },
} as const;

export type SmartAdaptiveOptions = OptionsOf<typeof SMART_ADAPTIVE_OPTIONS>;
export type AdaptiveTarget = NonNullable<SmartAdaptiveOptions['target']>;

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
/** Floor on a score before its log, so a predicted 0 ms does not read as −∞. */
const MIN_SCORE = 1e-9;
/** Nodes unseen for this many selections are forgotten (bounded memory under churn)... */
const FORGET_AFTER_SELECTIONS = 10_000;
/** ...checked every this many selections, so no selection walks every node. */
const SWEEP_EVERY_SELECTIONS = 1_024;
const OCCUPANCY_CAP = 4;
const LOG_MS_SCALE = Math.log(1e5);
const LOG_BYTES_SCALE = Math.log(1e9);
const COMPLEXITY_LOG_CAP = 5;
const MS_PER_HOUR = 3_600_000;
/** Features 0..NODE_FEATURES−1 describe the node; the rest describe the call. */
const NODE_FEATURES = 6;
const FEATURE_COUNT = 10;
/** The feature mean follows the last few hundred results. */
const FEATURE_MEAN_RATE = 0.01;

interface NodeState {
  /** Per-node intercept in log(1 + ms); undefined until the node's first result. */
  offset: number | undefined;
  /** Discounted count of selections: drives the exploration bonus. */
  selections: number;
  /** Discounted count of results: drives how far one result moves the intercept. */
  evidence: number;
  /** The selection up to which `selections` and `evidence` are discounted. */
  discountedTo: number;
  lastSelectedAt: number;
  observed: number;
}

/**
 * Learns, per function, how long each node takes, and routes to the best predicted node.
 *
 * Model: log(1 + execMs) ≈ offset[node] + w · x, where x holds normalised features of the
 * node and the call (CPU, memory and GPU use, in-flight and queued per slot, the gateway's
 * EWMA of the node's execution time, request size, complexity, wall-clock time of day as
 * sin/cos). Why this shape:
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
 * evidence decayed too, one good result is enough to bring it back. The discount is
 * applied lazily, as discount^(selections since the node was last touched), so a
 * selection costs the same however many nodes the function has ever seen.
 * Targets: latency = the expected wait for the result: predicted execution × (calls
 * already on the node ÷ its slots + 1) + RTT ("shortest expected delay"; the model
 * learns service time, which a node's own queue does not change, so the queue must be
 * counted explicitly or the fastest node would attract every call until its queue
 * explodes, as the first strategies benchmark showed); throughput = predicted execution
 * × (inFlight + 1) ÷ slots, which spreads work by capacity; cost = predicted execution ×
 * cost per hour.
 * Unusable telemetry (NaN, ±∞, out of range) reads as "unknown" in the features, and a
 * result without a usable time teaches nothing, so one bad report cannot poison the model.
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
  /** Scratch feature vector, reused by every select and observe. */
  private readonly x = new Float64Array(FEATURE_COUNT);
  /** Σ w·x over the call's features minus Σ w·mean, for the call being scored. */
  private callTerm = 0;
  private readonly nodes = new Map<string, NodeState>();
  /** Sum and count of the known intercepts, kept as they change: their mean is the prior. */
  private offsetSum = 0;
  private offsetCount = 0;
  private selectionsMade = 0;

  constructor(options: SmartAdaptiveOptions = {}) {
    const target = options.target ?? DEFAULT_TARGET;
    if (target !== 'latency' && target !== 'throughput' && target !== 'cost') {
      throw new TypeError(`smart_adaptive target must be latency, throughput or cost, got ${JSON.stringify(target)}`);
    }
    this.target = target;
    // Clamped as the schema bounds them, for callers that construct the class directly.
    this.learningRate = clamp(options.learningRate ?? DEFAULT_LEARNING_RATE, 0, 2);
    this.exploration = clamp(options.exploration ?? DEFAULT_EXPLORATION, 0, Number.MAX_VALUE);
    this.discount = clamp(options.discount ?? DEFAULT_DISCOUNT, 0, 1);
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const t = ++this.selectionsMade;
    if (t % SWEEP_EVERY_SELECTIONS === 0) this.sweep();
    this.prepareCall(context);
    const logT = Math.log(t + 1);
    const prior = this.meanOffset();
    let picked: Candidate | undefined;
    let pickedState: NodeState | undefined;
    let best = Infinity;
    let ties = 0;
    for (const c of candidates) {
      const state = this.nodes.get(c.nodeId);
      let value: number;
      if (state === undefined) {
        value = -Infinity; // never tried: explore first
      } else {
        this.discountToNow(state);
        const n = state.selections;
        let bonus = n > 0 ? this.exploration * Math.sqrt(logT / n) : Infinity;
        if (!(bonus < Infinity)) bonus = Infinity; // 0 × ∞ and overflows: unexplored
        value = bonus === Infinity ? -Infinity : Math.log(Math.max(this.score(c, state.offset ?? prior), MIN_SCORE)) - bonus;
        if (value !== value) value = Infinity; // NaN: cannot be ranked, so ranked last
      }
      if (picked === undefined || value < best) {
        picked = c;
        pickedState = state;
        best = value;
        ties = 1;
      } else if (value === best && replacesTie(++ties, context.random)) {
        picked = c;
        pickedState = state;
      }
    }
    const state = pickedState ?? this.state(picked!.nodeId);
    state.selections += 1;
    state.lastSelectedAt = t;
    return picked;
  }

  observe(outcome: Outcome): void {
    const ms = usableMs(outcome);
    // A success without a usable time teaches nothing; a failure still teaches "slower".
    if (ms === undefined && outcome.ok) return;
    const state = this.state(outcome.nodeId);
    this.discountToNow(state);
    const x = this.x;
    writeCallFeatures(outcome.context, x);
    writeNodeFeatures(outcome.candidate, x);
    this.centreAndLearnMean(x);
    const predicted = this.offsetOf(state) + dot(this.weights, x);
    let target = ms ?? 0;
    if (!outcome.ok) target = Math.max(target, Math.expm1(predicted)) * FAILURE_PENALTY;
    const residual = Math.min(Math.log1p(target), MAX_LOG_MS) - predicted;
    if (!Number.isFinite(residual)) return;

    const step = (this.learningRate * residual) / (1 + dot(x, x));
    for (let i = 0; i < FEATURE_COUNT; i++) this.weights[i]! += step * x[i]!;
    // The first result sets the intercept outright; later ones blend, faster when what we
    // knew is old (low evidence, so a recovered node is believed quickly) or when the
    // result is far off (the node changed).
    const floor = Math.abs(residual) > SURPRISE_LOG ? SURPRISE_RATE : MIN_OFFSET_RATE;
    const rate = state.offset === undefined ? 1 : Math.max(floor, 1 / (1 + state.evidence));
    this.setOffset(state, this.offsetOf(state) + rate * residual);
    state.evidence += 1;
    state.observed += 1;
  }

  /** Predicted execution time (ms) of a call on this node, before exploration. */
  predictExecMs(c: Candidate, context: SelectContext): number {
    this.prepareCall(context);
    const state = this.nodes.get(c.nodeId);
    return this.predictMs(c, state?.offset ?? this.meanOffset());
  }

  describe(): Record<string, unknown> {
    const nodes: Record<string, unknown> = {};
    for (const [id, s] of this.nodes) {
      nodes[id] = { baselineMs: Math.round(Math.expm1(this.offsetOf(s))), observed: s.observed };
    }
    return { target: this.target, selections: this.selectionsMade, nodes };
  }

  /** The call's own features and the constant part of every node's prediction for it. */
  private prepareCall(context: SelectContext): void {
    const x = this.x;
    writeCallFeatures(context, x);
    const w = this.weights;
    const m = this.featureMean;
    let term = 0;
    for (let i = NODE_FEATURES; i < FEATURE_COUNT; i++) term += w[i]! * x[i]!;
    // Features are centred on their running mean; before the first result there is none
    // (and the weights are still zero).
    if (this.meanInitialised) for (let i = 0; i < FEATURE_COUNT; i++) term -= w[i]! * m[i]!;
    this.callTerm = term;
  }

  /** expm1 of the model for node `c` and the call last prepared, never negative. */
  private predictMs(c: Candidate, offset: number): number {
    const x = this.x;
    writeNodeFeatures(c, x);
    const w = this.weights;
    let s = offset + this.callTerm;
    for (let i = 0; i < NODE_FEATURES; i++) s += w[i]! * x[i]!;
    return Math.max(0, Math.expm1(s));
  }

  private score(c: Candidate, offset: number): number {
    const execMs = this.predictMs(c, offset);
    switch (this.target) {
      case 'latency':
        return execMs * (occupancy(c) + 1) + (rttOf(c) ?? 0);
      case 'throughput':
        return (execMs * (inFlightOf(c) + 1)) / concurrencySlots(c);
      case 'cost':
        return execMs * Math.max(costPerHourOf(c), MIN_COST_PER_HOUR);
    }
  }

  /**
   * Subtracts the running feature mean in place, updating the mean first. Centred, the
   * shared weights explain only how a call differs from the usual one and the per-node
   * intercepts carry the level; uncentred, every weight step would also move the level
   * and the two would keep undoing each other's updates.
   */
  private centreAndLearnMean(x: Float64Array): void {
    const m = this.featureMean;
    if (!this.meanInitialised) {
      m.set(x);
      this.meanInitialised = true;
    }
    for (let i = 0; i < FEATURE_COUNT; i++) {
      m[i]! += FEATURE_MEAN_RATE * (x[i]! - m[i]!);
      x[i] = x[i]! - m[i]!;
    }
  }

  /** Applies the discount for every selection since the node's counts were last brought up to date. */
  private discountToNow(s: NodeState): void {
    const elapsed = this.selectionsMade - s.discountedTo;
    if (elapsed <= 0) return;
    // Nodes offered on every call are one selection behind: skip the power for them.
    const factor = elapsed === 1 ? this.discount : this.discount ** elapsed;
    s.selections *= factor;
    s.evidence *= factor;
    s.discountedTo = this.selectionsMade;
  }

  /** Forgets nodes not selected for a long while, and re-sums the intercepts exactly. */
  private sweep(): void {
    let sum = 0;
    let count = 0;
    for (const [id, s] of this.nodes) {
      if (this.selectionsMade - s.lastSelectedAt > FORGET_AFTER_SELECTIONS) {
        this.nodes.delete(id);
      } else if (s.offset !== undefined) {
        sum += s.offset;
        count += 1;
      }
    }
    this.offsetSum = sum;
    this.offsetCount = count;
  }

  private state(nodeId: string): NodeState {
    let s = this.nodes.get(nodeId);
    if (s === undefined) {
      const now = this.selectionsMade;
      s = { offset: undefined, selections: 0, evidence: 0, discountedTo: now, lastSelectedAt: now, observed: 0 };
      this.nodes.set(nodeId, s);
    }
    return s;
  }

  private setOffset(s: NodeState, offset: number): void {
    if (s.offset === undefined) this.offsetCount += 1;
    else this.offsetSum -= s.offset;
    this.offsetSum += offset;
    s.offset = offset;
  }

  private offsetOf(s: NodeState): number {
    return s.offset ?? this.meanOffset();
  }

  /** A node without results is assumed average: exploration, not the prior, gets it tried. */
  private meanOffset(): number {
    return this.offsetCount === 0 ? Math.log1p(PRIOR_EXEC_MS) : this.offsetSum / this.offsetCount;
  }
}

/** The outcome's time in ms: execution as the node reported it, else the gateway's latency. */
function usableMs(outcome: Outcome): number | undefined {
  if (outcome.execMs > 0 && outcome.execMs < Infinity) return outcome.execMs;
  if (outcome.latencyMs >= 0 && outcome.latencyMs < Infinity) return outcome.latencyMs;
  return undefined;
}

/**
 * The node's features, x[0..5], each finite and roughly in [−1, 1]; a figure the node has
 * not reported (or reported unusably) reads mid-scale.
 */
function writeNodeFeatures(c: Candidate, x: Float64Array): void {
  const t = c.telemetry;
  let gpuSum = 0;
  let gpuCards = 0;
  if (t !== undefined) {
    for (const g of t.gpus) {
      const busy = gpuBusyFraction(g);
      if (busy !== undefined) {
        gpuSum += busy;
        gpuCards += 1;
      }
    }
  }
  x[0] = cpuFraction(t) ?? 0.5;
  x[1] = memoryUsedFraction(c) ?? 0.5;
  x[2] = gpuCards === 0 ? 0 : gpuSum / gpuCards;
  x[3] = Math.min(OCCUPANCY_CAP, occupancy(c));
  x[4] = Math.min(OCCUPANCY_CAP, nonNegative(c.queued) / concurrencySlots(c));
  x[5] = Math.log1p(ewmaExecOf(c)) / LOG_MS_SCALE;
}

/** The call's features, x[6..9]: request size, complexity and the wall-clock hour as sin/cos. */
function writeCallFeatures(context: SelectContext, x: Float64Array): void {
  const logComplexity = Math.log(Math.max(context.complexity, 1e-6));
  const epochMs = context.epochMs();
  x[6] = Math.log1p(nonNegative(context.requestBytes)) / LOG_BYTES_SCALE;
  // NaN complexity reads as typical (log 1 = 0).
  x[7] = logComplexity === logComplexity ? clamp(logComplexity, -COMPLEXITY_LOG_CAP, COMPLEXITY_LOG_CAP) : 0;
  if (Number.isFinite(epochMs)) {
    const hourAngle = (2 * Math.PI * ((epochMs / MS_PER_HOUR) % 24)) / 24;
    x[8] = Math.sin(hourAngle);
    x[9] = Math.cos(hourAngle);
  } else {
    x[8] = 0;
    x[9] = 0;
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'smart_adaptive', schema: SMART_ADAPTIVE_OPTIONS, create: (options) => new SmartAdaptiveStrategy(options) });
}
