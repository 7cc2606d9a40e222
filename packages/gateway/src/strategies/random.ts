import { pickRandom } from './candidate-math.js';
import type { Candidate, CandidatePool, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Uniform choice: no state, no feedback; a baseline that spreads load without herding. */
export class RandomStrategy implements Strategy {
  readonly name = 'random';

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    return pickRandom(candidates, context.random);
  }

  /**
   * The pool's first random probe that may take the call: uniform over the eligible members
   * with headroom (over the loaded ones only when its probes found none with headroom).
   */
  selectFrom(pool: CandidatePool, context: SelectContext): Candidate | undefined {
    return pool.sample(1, context.random)[0];
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'random', create: () => new RandomStrategy() });
}
