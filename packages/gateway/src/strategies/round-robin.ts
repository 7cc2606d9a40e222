import type { Candidate, CandidatePool, RegisterStrategy, Strategy } from './strategy.js';

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

  /**
   * A cursor into the members in registration order, passing over those that cannot take
   * the call: every eligible member gets its turn, and a step costs O(1) while most are.
   */
  selectFrom(pool: CandidatePool): Candidate | undefined {
    const n = pool.size;
    if (n === 0) return undefined;
    const start = this.next % n;
    for (let step = 0; step < n; step++) {
      const i = start + step < n ? start + step : start + step - n;
      const c = pool.at(i);
      if (pool.eligible(c)) {
        this.next = (i + 1) % n;
        return c;
      }
    }
    return undefined;
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'round_robin', create: () => new RoundRobinStrategy() });
}
