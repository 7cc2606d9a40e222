import { candidateLoad, clamp, DEFAULT_CPU_WEIGHT, replacesTie } from './candidate-math.js';
import type { OptionsOf } from './option-schema.js';
import type { Candidate, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Loads within this distance of the lowest count as equally low. */
export const DEFAULT_LOAD_TOLERANCE = 0.05;

export const LEAST_LOAD_OPTIONS = {
  /** Absolute tolerance on the load figure; 0 = strict minimum. */
  tolerance: { type: 'number', min: 0 },
  /** Weight of telemetry CPU in the blend. */
  cpuWeight: { type: 'number', min: 0, max: 1 },
} as const;

export type LeastLoadOptions = OptionsOf<typeof LEAST_LOAD_OPTIONS>;

/**
 * Lowest load (as candidateLoad defines it: reported CPU blended with slot occupancy);
 * every candidate within `tolerance` of it is an equal choice, picked at random, so small
 * differences between heartbeats do not send a whole burst to one node.
 */
export class LeastLoadStrategy implements Strategy {
  readonly name = 'least_load';
  private readonly tolerance: number;
  private readonly cpuWeight: number;
  /** Loads of the current selection, reused from call to call. */
  private loads = new Float64Array(16);

  constructor(options: LeastLoadOptions = {}) {
    this.tolerance = clamp(options.tolerance ?? DEFAULT_LOAD_TOLERANCE, 0, Number.MAX_VALUE);
    this.cpuWeight = clamp(options.cpuWeight ?? DEFAULT_CPU_WEIGHT, 0, 1);
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (this.loads.length < n) this.loads = new Float64Array(Math.max(n, 2 * this.loads.length));
    const loads = this.loads;
    let lowest = Infinity;
    for (let i = 0; i < n; i++) {
      const load = candidateLoad(candidates[i]!, this.cpuWeight);
      loads[i] = load;
      if (load < lowest) lowest = load;
    }
    const limit = lowest + this.tolerance;
    let picked: Candidate | undefined;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      if (loads[i]! <= limit && replacesTie(++ties, context.random)) picked = candidates[i];
    }
    return picked;
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'least_load', schema: LEAST_LOAD_OPTIONS, create: (options) => new LeastLoadStrategy(options) });
}
