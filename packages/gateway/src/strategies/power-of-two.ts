import type { Candidate, SelectContext, Strategy } from './strategy.js';

/**
 * Power of two choices (Ray Serve, Envoy): sample two distinct candidates and take the one
 * with fewer calls in flight. Nearly as good as least_connections at spreading load, yet
 * two gateways (or one gateway with stale counts) do not all pile onto the same idle node.
 */
export class PowerOfTwoStrategy implements Strategy {
  readonly name = 'power_of_two';

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const i = Math.min(n - 1, Math.floor(context.random() * n));
    // Draw the second from the n − 1 others so the pair is always distinct.
    let j = Math.min(n - 2, Math.floor(context.random() * (n - 1)));
    if (j >= i) j += 1;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.inFlight < a.inFlight ? b : a;
  }
}
