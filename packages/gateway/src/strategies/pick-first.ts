import type { Candidate, RegisterStrategy, Strategy } from './strategy.js';

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
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'pick_first', create: () => new PickFirstStrategy() });
}
