import { BudgetExceeded } from '@easyremote/protocol';
import { concurrencySlots } from './least-load.js';
import { pickRandom } from './random.js';
import type { Candidate, SelectContext, Strategy } from './strategy.js';

/** Execution time assumed for a node that has not run the function yet (ms). */
export const DEFAULT_PRIOR_EXEC_MS = 1_000;
const MS_PER_HOUR = 3_600_000;
/** Floor on cost in the performance-per-cost ratio, so free nodes rank by tier, not by 1/0. */
const MIN_COST = 1e-12;

export interface CostAwareOptions {
  priorExecMs?: number;
  /** Function-level default per-call budget; a call's preferences.maxCost overrides it. */
  maxCost?: number;
}

/** The cost rate that applies: the function's declaration, else the node's. */
export function costPerHourOf(c: Candidate): number {
  return c.costPerHour > 0 ? c.costPerHour : Math.max(0, c.capabilities.costPerHour);
}

/**
 * Best performance per cost within the budget (seed 002):
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
    this.priorExecMs = options.priorExecMs ?? DEFAULT_PRIOR_EXEC_MS;
    this.maxCost = options.maxCost;
  }

  estimatedCost(c: Candidate, priorMs = this.priorExecMs): number {
    const durationMs = c.history.ewmaExecMs > 0 ? c.history.ewmaExecMs : priorMs;
    return (costPerHourOf(c) * durationMs) / MS_PER_HOUR;
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const maxCost = context.preferences.maxCost ?? this.maxCost;
    const known = candidates.filter((c) => c.history.ewmaExecMs > 0);
    const prior = known.length > 0 ? known.reduce((sum, c) => sum + c.history.ewmaExecMs, 0) / known.length : this.priorExecMs;
    const priced = candidates.map((c) => ({ c, cost: this.estimatedCost(c, prior) }));
    const eligible = maxCost === undefined ? priced : priced.filter((e) => e.cost <= maxCost);
    if (eligible.length === 0) {
      const cheapest = Math.min(...priced.map((e) => e.cost));
      throw new BudgetExceeded(
        `no node of ${context.functionName} fits the budget: cheapest estimate ${formatCost(cheapest)} per call exceeds maxCost ${formatCost(maxCost!)} (${candidates.length} node(s) considered)`,
      );
    }
    const ratio = (e: { c: Candidate; cost: number }) =>
      (e.c.performanceTier > 0 ? e.c.performanceTier : 1) / (Math.max(e.cost, MIN_COST) * (e.c.inFlight / concurrencySlots(e.c) + 1));
    const bestRatio = Math.max(...eligible.map(ratio));
    const best = eligible.filter((e) => ratio(e) === bestRatio);
    const fewest = Math.min(...best.map((e) => e.c.inFlight));
    return pickRandom(best.filter((e) => e.c.inFlight === fewest), context.random)?.c;
  }
}

function formatCost(x: number): string {
  return Number(x.toPrecision(4)).toString();
}
