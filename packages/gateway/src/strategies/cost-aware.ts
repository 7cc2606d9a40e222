import { BudgetExceeded } from '@easyremote/protocol';
import { clamp, costPerHourOf, ewmaExecOf, inFlightOf, occupancy, performanceTierOf, replacesTie } from './candidate-math.js';
import type { OptionsOf } from './option-schema.js';
import type { Candidate, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Execution time assumed for a node that has not run the function yet (ms). */
export const DEFAULT_PRIOR_EXEC_MS = 1_000;
const MS_PER_HOUR = 3_600_000;
/** Floor on cost in the performance-per-cost ratio, so free nodes rank by tier, not by 1/0. */
const MIN_COST = 1e-12;

export const COST_AWARE_OPTIONS = {
  priorExecMs: { type: 'number', min: 0 },
  /** Function-level default per-call budget; a call's preferences.maxCost overrides it. */
  maxCost: { type: 'number', min: 0 },
} as const;

export type CostAwareOptions = OptionsOf<typeof COST_AWARE_OPTIONS>;

/**
 * Best performance per cost within the budget:
 *
 *   duration = history.ewmaExecMs, else the mean of the candidates that have one,
 *              else priorExecMs (an untried node is assumed typical, so it gets tried)
 *   cost     = costPerHour × duration / 3 600 000          (what one call costs)
 *   ratio    = performanceTier / (cost × (inFlight / slots + 1))
 *
 * The queue term is what makes it usable under load: without it every call goes to the
 * single best-ratio node until its queue, which costs nothing, times calls out (the
 * strategies benchmark showed exactly that). With it the cheapest capacity fills first
 * and work spills to the next cheapest as the queue grows. Free nodes: cost floored at
 * 1e-12. Nodes whose cost exceeds maxCost are ineligible; when that leaves none,
 * BudgetExceeded is thrown rather than returning none, because a fallback strategy would
 * ignore the budget and spend the money anyway. Equal ratios go to fewer calls in flight.
 */
export class CostAwareStrategy implements Strategy {
  readonly name = 'cost_aware';
  private readonly priorExecMs: number;
  private readonly maxCost: number | undefined;

  constructor(options: CostAwareOptions = {}) {
    this.priorExecMs = clamp(options.priorExecMs ?? DEFAULT_PRIOR_EXEC_MS, 0, Number.MAX_VALUE);
    this.maxCost = options.maxCost;
  }

  /** Per-call cost estimate; a free node costs 0 however long it runs. */
  estimatedCost(c: Candidate, priorMs = this.priorExecMs): number {
    const rate = costPerHourOf(c);
    if (rate === 0) return 0;
    const ewma = ewmaExecOf(c);
    return (rate * (ewma > 0 ? ewma : priorMs)) / MS_PER_HOUR;
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const budget = context.preferences.maxCost;
    // A budget that is not a number (NaN from a broken client) is no budget.
    const maxCost = typeof budget === 'number' && !Number.isNaN(budget) ? budget : this.maxCost;

    // Running mean, so that huge figures cannot overflow a sum.
    let prior = 0;
    let known = 0;
    for (const c of candidates) {
      const ewma = ewmaExecOf(c);
      if (ewma > 0) prior += (ewma - prior) / ++known;
    }
    if (known === 0) prior = this.priorExecMs;

    let picked: Candidate | undefined;
    let bestRatio = -Infinity;
    let bestInFlight = Infinity;
    let ties = 0;
    let cheapest = Infinity;
    for (const c of candidates) {
      const cost = this.estimatedCost(c, prior);
      if (cost < cheapest) cheapest = cost;
      if (maxCost !== undefined && !(cost <= maxCost)) continue;
      let ratio = performanceTierOf(c) / (Math.max(cost, MIN_COST) * (occupancy(c) + 1));
      if (!(ratio >= 0)) ratio = 0;
      const inFlight = inFlightOf(c);
      if (picked === undefined || ratio > bestRatio || (ratio === bestRatio && inFlight < bestInFlight)) {
        picked = c;
        bestRatio = ratio;
        bestInFlight = inFlight;
        ties = 1;
      } else if (ratio === bestRatio && inFlight === bestInFlight && replacesTie(++ties, context.random)) {
        picked = c;
      }
    }
    if (picked === undefined) {
      throw new BudgetExceeded(
        `no node of ${context.functionName} fits the budget: cheapest estimate ${formatCost(cheapest)} per call exceeds maxCost ${formatCost(maxCost!)} (${candidates.length} node(s) considered)`,
      );
    }
    return picked;
  }
}

function formatCost(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'cost_aware', schema: COST_AWARE_OPTIONS, create: (options) => new CostAwareStrategy(options) });
}
