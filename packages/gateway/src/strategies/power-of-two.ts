import { inFlightOf, randomIndex } from './candidate-math.js';
import type { Candidate, CandidatePool, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

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
    const i = randomIndex(n, context.random);
    // Draw the second from the n − 1 others so the pair is always distinct.
    let j = randomIndex(n - 1, context.random);
    if (j >= i) j += 1;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return inFlightOf(b) < inFlightOf(a) ? b : a;
  }

  /** Two distinct eligible members drawn by the pool: the same choice without a list of all. */
  selectFrom(pool: CandidatePool, context: SelectContext): Candidate | undefined {
    const pair = pool.sample(2, context.random);
    const a = pair[0];
    const b = pair[1];
    if (a === undefined || b === undefined) return a;
    return inFlightOf(b) < inFlightOf(a) ? b : a;
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'power_of_two', create: () => new PowerOfTwoStrategy() });
}
