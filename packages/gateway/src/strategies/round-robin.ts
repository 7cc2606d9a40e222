import type { Candidate, Strategy } from './strategy.js';

/** Cycles through the candidates, one per call, per function. */
export class RoundRobinStrategy implements Strategy {
  readonly name = 'round_robin';
  private next = 0;

  select(candidates: readonly Candidate[]): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const picked = candidates[this.next % candidates.length];
    this.next = (this.next + 1) % 1_000_000_007;
    return picked;
  }
}
