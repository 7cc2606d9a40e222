import { costPerHourOf, cpuFraction, nonNegative } from './candidate-math.js';
import { COST_AWARE_OPTIONS, CostAwareStrategy, type CostAwareOptions } from './cost-aware.js';
import { LATENCY_BASED_OPTIONS, LatencyBasedStrategy, type LatencyBasedOptions } from './latency-based.js';
import type { OptionsOf } from './option-schema.js';
import { RESOURCE_AWARE_OPTIONS, ResourceAwareStrategy, type ResourceAwareOptions } from './resource-aware.js';
import { SMART_ADAPTIVE_OPTIONS, SmartAdaptiveStrategy, type SmartAdaptiveOptions } from './smart-adaptive.js';
import type { Candidate, Outcome, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Above 80 % average CPU, placing work where resources are free matters most. */
export const DEFAULT_CPU_THRESHOLD = 0.8;
/** Average call latency (ms) above which latency is what to optimise. */
export const DEFAULT_LATENCY_THRESHOLD_MS = 500;
/** Share of the budget spent after which cost is what to optimise. */
export const DEFAULT_BUDGET_THRESHOLD = 0.8;
/** Weight of the newest call in the latency average: about the last ten calls count. */
const LATENCY_EWMA_ALPHA = 0.2;
/** A condition that caused a switch holds until its metric falls below 90 % of the
 *  threshold, so a metric hovering at the threshold does not flip strategies every call. */
const HYSTERESIS = 0.9;
const MS_PER_HOUR = 3_600_000;

type InnerName = 'resource_aware' | 'latency_based' | 'cost_aware' | 'smart_adaptive';
const INNER_NAMES: readonly InnerName[] = ['resource_aware', 'latency_based', 'cost_aware', 'smart_adaptive'];

/** Its own thresholds, and the options of the four strategies it switches between. */
export const DYNAMIC_OPTIONS = {
  ...RESOURCE_AWARE_OPTIONS,
  ...LATENCY_BASED_OPTIONS,
  ...COST_AWARE_OPTIONS,
  ...SMART_ADAPTIVE_OPTIONS,
  /** Average CPU as a fraction (0.8 = 80 %). */
  cpuThreshold: { type: 'number', min: 0 },
  latencyThresholdMs: { type: 'number', min: 0 },
  /** Total spend allowed for this function, in the unit of costPerHour. */
  budget: { type: 'number', min: 0 },
  budgetThreshold: { type: 'number', min: 0 },
} as const;

export type DynamicOptions = Omit<OptionsOf<typeof DYNAMIC_OPTIONS>, 'requirements'> &
  ResourceAwareOptions &
  LatencyBasedOptions &
  CostAwareOptions &
  SmartAdaptiveOptions;

/**
 * Picks the strategy from live metrics, checked in order on every call:
 *   average CPU of the candidates > cpuThreshold          → resource_aware
 *   EWMA of observed call latency > latencyThresholdMs   → latency_based
 *   spent / budget > budgetThreshold                     → cost_aware
 *   otherwise                                             → smart_adaptive
 * Spend is summed from observed calls (cost per hour × execution time). Every inner strategy
 * sees every result, so the one switched to is already trained. Spending past the budget is
 * not refused here: that is what cost_aware's per-call maxCost is for.
 */
export class DynamicStrategy implements Strategy {
  readonly name = 'dynamic';
  private readonly inner: Readonly<Record<InnerName, Strategy>>;
  private readonly cpuThreshold: number;
  private readonly latencyThresholdMs: number;
  private readonly budget: number | undefined;
  private readonly budgetThreshold: number;
  private current: InnerName = 'smart_adaptive';
  /** The metric that decided the last selection; the reason is worded only when asked for. */
  private decidedOn: number | undefined;
  private since: number | null = null;
  private averageCpu: number | undefined;
  private averageLatencyMs: number | undefined;
  private spent = 0;

  constructor(options: DynamicOptions = {}) {
    this.inner = {
      resource_aware: new ResourceAwareStrategy(options),
      latency_based: new LatencyBasedStrategy(options),
      cost_aware: new CostAwareStrategy(options),
      smart_adaptive: new SmartAdaptiveStrategy(options),
    };
    this.cpuThreshold = options.cpuThreshold ?? DEFAULT_CPU_THRESHOLD;
    this.latencyThresholdMs = options.latencyThresholdMs ?? DEFAULT_LATENCY_THRESHOLD_MS;
    this.budget = options.budget !== undefined && options.budget > 0 && options.budget < Infinity ? options.budget : undefined;
    this.budgetThreshold = options.budgetThreshold ?? DEFAULT_BUDGET_THRESHOLD;
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    this.averageCpu = meanCpu(candidates);
    const next = this.decide();
    if (next !== this.current || this.since === null) {
      this.current = next;
      const now = context.now();
      this.since = Number.isFinite(now) ? now : 0;
    }
    return this.inner[this.current].select(candidates, context);
  }

  observe(outcome: Outcome): void {
    // Unusable times are skipped rather than averaged in: one NaN would stick forever.
    const latencyMs = outcome.latencyMs;
    if (latencyMs >= 0 && latencyMs < Infinity) {
      this.averageLatencyMs =
        this.averageLatencyMs === undefined ? latencyMs : this.averageLatencyMs + LATENCY_EWMA_ALPHA * (latencyMs - this.averageLatencyMs);
    }
    const execMs = nonNegative(outcome.execMs);
    const ms = execMs > 0 ? execMs : nonNegative(latencyMs);
    const cost = (costPerHourOf(outcome.candidate) * ms) / MS_PER_HOUR;
    if (cost < Infinity) this.spent += cost;
    for (const name of INNER_NAMES) this.inner[name].observe?.(outcome);
  }

  describe(): Record<string, unknown> {
    return {
      current: this.current,
      reason: this.since === null ? 'initial: no metrics yet' : this.reason(),
      since: this.since,
      metrics: {
        averageCpu: this.averageCpu ?? null,
        averageLatencyMs: this.averageLatencyMs ?? null,
        spent: this.spent,
        budget: this.budget ?? null,
      },
    };
  }

  /** The strategy for this selection; records the metric that decided it in `decidedOn`. */
  private decide(): InnerName {
    const cpu = this.averageCpu;
    if (cpu !== undefined && this.over(cpu, this.cpuThreshold, 'resource_aware')) {
      this.decidedOn = cpu;
      return 'resource_aware';
    }
    const latency = this.averageLatencyMs;
    if (latency !== undefined && this.over(latency, this.latencyThresholdMs, 'latency_based')) {
      this.decidedOn = latency;
      return 'latency_based';
    }
    if (this.budget !== undefined && this.over(this.spent / this.budget, this.budgetThreshold, 'cost_aware')) {
      this.decidedOn = this.spent / this.budget;
      return 'cost_aware';
    }
    this.decidedOn = undefined;
    return 'smart_adaptive';
  }

  private over(value: number, threshold: number, holding: InnerName): boolean {
    return value > (this.current === holding ? threshold * HYSTERESIS : threshold);
  }

  /** Why the last selection used the current strategy, with the figures it was decided on. */
  private reason(): string {
    const value = this.decidedOn ?? NaN;
    switch (this.current) {
      case 'resource_aware':
        return `average CPU ${pct(value)} is above ${pct(this.cpuThreshold)}`;
      case 'latency_based':
        return `average latency ${Math.round(value)} ms is above ${this.latencyThresholdMs} ms`;
      case 'cost_aware':
        return `${pct(value)} of the budget ${this.budget} is spent (threshold ${pct(this.budgetThreshold)})`;
      case 'smart_adaptive':
        return 'CPU, latency and budget are within their thresholds';
    }
  }
}

/** Mean CPU fraction over the candidates that have reported a usable figure. */
function meanCpu(candidates: readonly Candidate[]): number | undefined {
  let sum = 0;
  let count = 0;
  for (const c of candidates) {
    const cpu = cpuFraction(c.telemetry);
    if (cpu !== undefined) {
      sum += cpu;
      count += 1;
    }
  }
  return count === 0 ? undefined : sum / count;
}

function pct(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

export function setup(register: RegisterStrategy): void {
  register({
    name: 'dynamic',
    schema: DYNAMIC_OPTIONS,
    // The schema's check has parsed the requirements, so they are a string record.
    create: (options) => new DynamicStrategy(options as DynamicOptions),
  });
}
