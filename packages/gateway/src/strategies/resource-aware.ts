import { meetsRequirement, parseRequirements, type ParsedRequirement } from '../routing/requirements.js';
import { concurrencySlots } from './least-load.js';
import { pickRandom } from './random.js';
import type { Candidate, SelectContext, Strategy } from './strategy.js';

/** Seed 002 scores a node without GPUs at 0.5 on the GPU term: neither free nor busy. */
const NO_GPU_SCORE = 0.5;
/** Score of each resource term for a node that has sent no telemetry yet. */
const NO_TELEMETRY_SCORE = 0.5;
/** Scores closer than this are a tie, broken at random. */
const SCORE_EPSILON = 1e-9;

export interface ResourceAwareOptions {
  /**
   * The function's requirements (same syntax as the hard requirements). The router has
   * already removed nodes that fail hard ones; listed here they become a preference, and
   * a function may list soft ones that are only scored.
   */
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
 * The most free resources, scored as seed 002 does:
 *
 *   base  = (cpuFree + memoryFree + gpuFree + requirementMatch) / 4      each in [0, 1]
 *   score = base / (1 + inFlight / slots)
 *
 * gpuFree is the mean over the node's cards of the free share of compute and of VRAM.
 * requirementMatch is the share of `options.requirements` the node meets (1 when none).
 * The in-flight discount is ours: telemetry is as old as the last heartbeat, so without it
 * every call until the next heartbeat would go to the same best-looking node.
 */
export class ResourceAwareStrategy implements Strategy {
  readonly name = 'resource_aware';
  private readonly requirements: readonly ParsedRequirement[];

  constructor(options: ResourceAwareOptions = {}) {
    this.requirements = parseRequirements(options.requirements ?? {});
  }

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const scores = candidates.map((c) => this.score(c).total);
    const best = Math.max(...scores);
    const top = candidates.filter((_, i) => scores[i]! >= best - SCORE_EPSILON);
    return pickRandom(top, context.random);
  }

  score(c: Candidate): ResourceScore {
    const t = c.telemetry;
    let cpuFree = NO_TELEMETRY_SCORE;
    let memoryFree = NO_TELEMETRY_SCORE;
    let gpuFree = c.capabilities.gpus.length === 0 ? NO_GPU_SCORE : NO_TELEMETRY_SCORE;
    if (t !== undefined) {
      cpuFree = clamp01(1 - t.cpuPercent / 100);
      const memTotal = t.memoryTotalBytes > 0 ? t.memoryTotalBytes : c.capabilities.memoryTotalBytes;
      memoryFree = memTotal > 0 ? clamp01(1 - t.memoryUsedBytes / memTotal) : NO_TELEMETRY_SCORE;
      if (t.gpus.length > 0) {
        let sum = 0;
        for (const g of t.gpus) {
          const vramFree = g.vramTotalBytes > 0 ? 1 - g.vramUsedBytes / g.vramTotalBytes : 0;
          sum += (clamp01(1 - g.utilizationPercent / 100) + clamp01(vramFree)) / 2;
        }
        gpuFree = sum / t.gpus.length;
      }
    }
    const requirementMatch =
      this.requirements.length === 0
        ? 1
        : this.requirements.filter((r) => meetsRequirement(c, r)).length / this.requirements.length;
    const base = (cpuFree + memoryFree + gpuFree + requirementMatch) / 4;
    const total = base / (1 + c.inFlight / concurrencySlots(c));
    return { cpuFree, memoryFree, gpuFree, requirementMatch, total };
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
