import { pickRandom } from './candidate-math.js';
import type { Candidate, RegisterStrategy, SelectContext, Strategy } from './strategy.js';

/** Uniform choice: no state, no feedback; a baseline that spreads load without herding. */
export class RandomStrategy implements Strategy {
  readonly name = 'random';

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    return pickRandom(candidates, context.random);
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'random', create: () => new RandomStrategy() });
}
