import type { Candidate, CandidatePool, RegisterStrategy, Strategy } from './strategy.js';

/**
 * Always the first candidate. The router keeps candidates in a stable order, so this
 * concentrates every call on one node until it leaves: useful for an active/standby pair,
 * and as the yardstick the other strategies are measured against.
 */
export class PickFirstStrategy implements Strategy {
  readonly name = 'pick_first';

  select(candidates: readonly Candidate[]): Candidate | undefined {
    return candidates[0];
  }

  /** The first eligible member in registration order: a step or two while the first nodes are healthy. */
  selectFrom(pool: CandidatePool): Candidate | undefined {
    for (let i = 0; i < pool.size; i++) {
      const c = pool.at(i);
      if (pool.eligible(c)) return c;
    }
    return undefined;
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'pick_first', create: () => new PickFirstStrategy() });
}
