import type { Candidate, RegisterStrategy, Strategy } from './strategy.js';

/** The counter wraps here, well inside the range where integer arithmetic is exact. */
const COUNTER_WRAP = 1_000_000_007;

/** Cycles through the candidates, one per call, per function. */
export class RoundRobinStrategy implements Strategy {
  readonly name = 'round_robin';
  private next = 0;

  select(candidates: readonly Candidate[]): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const picked = candidates[this.next % candidates.length];
    this.next = (this.next + 1) % COUNTER_WRAP;
    return picked;
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'round_robin', create: () => new RoundRobinStrategy() });
}
