import type { Candidate, Strategy } from './strategy.js';

/** Tier assumed when a function declares none (0). */
const DEFAULT_PERFORMANCE_TIER = 1;

/** performanceTier × slow-start factor: a joining node ramps up to its full share. */
export function effectiveWeight(c: Candidate): number {
  const tier = c.performanceTier > 0 ? c.performanceTier : DEFAULT_PERFORMANCE_TIER;
  // The factor is in (0, 1] by contract; anything else is treated as "no slow-start".
  const slowStart = Number.isFinite(c.weight) && c.weight > 0 ? Math.min(1, c.weight) : 1;
  return tier * slowStart;
}

/**
 * Smooth weighted round robin, as nginx does it: each pick, every node's running score
 * grows by its weight, the highest score wins and pays back the total. Over any window
 * the shares match the weights, and a heavy node's picks are interleaved with the others
 * (a, a, b, a rather than a, a, a, b), which keeps bursts off any one node.
 */
export class WeightedRoundRobinStrategy implements Strategy {
  readonly name = 'weighted_round_robin';
  private current = new Map<string, number>();

  select(candidates: readonly Candidate[]): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    // Rebuilt each pick so departed nodes drop out and newcomers start from zero.
    const next = new Map<string, number>();
    let total = 0;
    let best: Candidate | undefined;
    let bestScore = -Infinity;
    for (const c of candidates) {
      const w = effectiveWeight(c);
      const score = (this.current.get(c.nodeId) ?? 0) + w;
      next.set(c.nodeId, score);
      total += w;
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    next.set(best!.nodeId, bestScore - total);
    this.current = next;
    return best;
  }
}
