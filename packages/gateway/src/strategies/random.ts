import type { Candidate, SelectContext, Strategy } from './strategy.js';

/** One element chosen uniformly with the injected random source; undefined when empty. */
export function pickRandom<T>(items: readonly T[], random: () => number): T | undefined {
  if (items.length === 0) return undefined;
  // Guard against a source that returns exactly 1 (outside its contract, but cheap to absorb).
  const index = Math.min(items.length - 1, Math.floor(random() * items.length));
  return items[index];
}

/** Uniform choice: no state, no feedback; a baseline that spreads load without herding. */
export class RandomStrategy implements Strategy {
  readonly name = 'random';

  select(candidates: readonly Candidate[], context: SelectContext): Candidate | undefined {
    return pickRandom(candidates, context.random);
  }
}
