import { meetsRequirement, parseRequirements, type ParsedRequirement } from '../routing/requirements.js';
import { cpuFraction, gpuBusyFraction, memoryUsedFraction, occupancy, replacesTie, vramUsedFraction } from './candidate-math.js';
import type { OptionsOf } from './option-schema.js';
import type { Candidate, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** A node without GPUs scores 0.5 on the GPU term: neither free nor busy. */
const NO_GPU_SCORE = 0.5;
/** Score of a resource term the node has not reported (or reported unusably). */
const NO_TELEMETRY_SCORE = 0.5;
/** Scores closer than this are a tie, broken at random. */
const SCORE_EPSILON = 1e-9;

export const RESOURCE_AWARE_OPTIONS = {
  /**
   * The function's requirements (same syntax as the hard requirements). The router has
   * already removed nodes that fail hard ones; listed here they become a preference, and
   * a function may list soft ones that are only scored. Parsed when the options are, so
   * a malformed requirement is refused when the function registers.
   */
  requirements: { type: 'object', check: (value: Readonly<Record<string, unknown>>) => void parseRequirements(value as Record<string, string>) },
} as const;

export interface ResourceAwareOptions {
  requirements?: Readonly<Record<string, string>>;
}

export interface ResourceScore {
  cpuFree: number;
  memoryFree: number;
  gpuFree: number;
  requirementMatch: number;
  /** Mean of the four terms, discounted by the calls already sent there. */
  total: number;
}

/**
 * The most free resources:
 *
 *   base  = (cpuFree + memoryFree + gpuFree + requirementMatch) / 4      each in [0, 1]
 *   score = base / (1 + inFlight / slots)
 *
 * gpuFree is the mean over the node's cards of the free share of compute and of VRAM.
 * requirementMatch is the share of `options.requirements` the node meets (1 when none).
 * The in-flight discount matters because telemetry is as old as the last heartbeat:
 * without it every call until the next heartbeat would go to the same best-looking node.
 */
export class ResourceAwareStrategy implements Strategy {
  readonly name = 'resource_aware';
  private readonly requirements: readonly ParsedRequirement[];
  /** Scores of the current selection and the terms of one node, reused from call to call. */
  private scores = new Float64Array(16);
  private readonly terms: ResourceScore = { cpuFree: 0, memoryFree: 0, gpuFree: 0, requirementMatch: 0, total: 0 };

  constructor(options: ResourceAwareOptions = {}) {
    this.requirements = parseRequirements(options.requirements ?? {});
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (this.scores.length < n) this.scores = new Float64Array(Math.max(n, 2 * this.scores.length));
    const scores = this.scores;
    let best = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = this.scoreInto(candidates[i]!, this.terms).total;
      scores[i] = s;
      if (s > best) best = s;
    }
    const floor = best - SCORE_EPSILON;
    let picked: Candidate | undefined;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      if (scores[i]! >= floor && replacesTie(++ties, context.random)) picked = candidates[i];
    }
    return picked;
  }

  score(c: Candidate): ResourceScore {
    return this.scoreInto(c, { cpuFree: 0, memoryFree: 0, gpuFree: 0, requirementMatch: 0, total: 0 });
  }

  private scoreInto(c: Candidate, out: ResourceScore): ResourceScore {
    const t = c.telemetry;
    const cpu = cpuFraction(t);
    const memory = memoryUsedFraction(c);
    const cpuFree = cpu === undefined ? NO_TELEMETRY_SCORE : 1 - cpu;
    const memoryFree = memory === undefined ? NO_TELEMETRY_SCORE : 1 - memory;
    let gpuFree = c.capabilities.gpus.length === 0 ? NO_GPU_SCORE : NO_TELEMETRY_SCORE;
    if (t !== undefined && t.gpus.length > 0) {
      let sum = 0;
      for (const g of t.gpus) {
        const busy = gpuBusyFraction(g);
        // A card that reports no usable VRAM total reads as full, as it always has.
        const vram = g.vramTotalBytes > 0 && g.vramTotalBytes < Infinity ? vramUsedFraction(g) : 1;
        sum += ((busy === undefined ? NO_TELEMETRY_SCORE : 1 - busy) + (vram === undefined ? NO_TELEMETRY_SCORE : 1 - vram)) / 2;
      }
      gpuFree = sum / t.gpus.length;
    }
    let met = 0;
    for (const r of this.requirements) if (meetsRequirement(c, r)) met += 1;
    const requirementMatch = this.requirements.length === 0 ? 1 : met / this.requirements.length;
    const base = (cpuFree + memoryFree + gpuFree + requirementMatch) / 4;
    out.cpuFree = cpuFree;
    out.memoryFree = memoryFree;
    out.gpuFree = gpuFree;
    out.requirementMatch = requirementMatch;
    out.total = base / (1 + occupancy(c));
    return out;
  }
}

export function setup(register: RegisterStrategy): void {
  register({
    name: 'resource_aware',
    schema: RESOURCE_AWARE_OPTIONS,
    // The schema's check has parsed the requirements, so they are a string record.
    create: (options: OptionsOf<typeof RESOURCE_AWARE_OPTIONS>) => new ResourceAwareStrategy(options as ResourceAwareOptions),
  });
}
