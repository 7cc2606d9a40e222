import { pickRandom } from './random.js';
import type { Candidate, SelectContext, Strategy } from './strategy.js';

/** Loads within this distance of the lowest count as equally low (seed 001 used 0.001). */
export const DEFAULT_LOAD_TOLERANCE = 0.05;
/** Share of the load figure taken from reported CPU; the rest is slot occupancy. */
export const DEFAULT_CPU_WEIGHT = 0.5;

export interface LeastLoadOptions {
  /** Absolute tolerance on the load figure; 0 = strict minimum. */
  tolerance?: number;
  /** Weight of telemetry CPU in the blend, in [0, 1]. */
  cpuWeight?: number;
}

/** How many calls of the function the node can run at once, for occupancy. */
export function concurrencySlots(c: Candidate): number {
  if (c.maxConcurrent > 0) return c.maxConcurrent;
  // Unlimited: a core per call is the natural unit for CPU-bound handlers.
  return Math.max(1, c.capabilities.cpuCores);
}

/**
 * The load figure used by least_load, latency_based and dynamic:
 *
 *   occupancy = inFlight / slots         (slots = maxConcurrent, or cpuCores when unlimited)
 *   load      = w × cpuPercent/100 + (1 − w) × occupancy      with telemetry
 *   load      = occupancy                                      without telemetry
 *
 * 0 is idle and 1 is full; occupancy is not capped, so a node with unlimited concurrency
 * and more calls than cores reads above 1. Telemetry arrives only with heartbeats, so
 * CPU alone would send a whole burst to the node that looked idle at the last heartbeat;
 * the gateway's own in-flight count moves with every dispatch and damps that herding.
 */
export function candidateLoad(c: Candidate, cpuWeight: number = DEFAULT_CPU_WEIGHT): number {
  const occupancy = c.inFlight / concurrencySlots(c);
  if (c.telemetry === undefined) return occupancy;
  const cpu = Math.min(1, Math.max(0, c.telemetry.cpuPercent / 100));
  return cpuWeight * cpu + (1 - cpuWeight) * occupancy;
}

/** Lowest load; every candidate within `tolerance` of it is an equal choice (seed 001). */
export class LeastLoadStrategy implements Strategy {
  readonly name = 'least_load';
  private readonly tolerance: number;
  private readonly cpuWeight: number;

  constructor(options: LeastLoadOptions = {}) {
    this.tolerance = Math.max(0, options.tolerance ?? DEFAULT_LOAD_TOLERANCE);
    this.cpuWeight = Math.min(1, Math.max(0, options.cpuWeight ?? DEFAULT_CPU_WEIGHT));
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const loads = candidates.map((c) => candidateLoad(c, this.cpuWeight));
    const lowest = Math.min(...loads);
    const near = candidates.filter((_, i) => loads[i]! <= lowest + this.tolerance);
    return pickRandom(near, context.random);
  }
}
