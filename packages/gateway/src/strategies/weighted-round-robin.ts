import { effectiveWeight } from './candidate-math.js';
import type { Candidate, RegisterStrategy, Strategy } from './strategy.js';

/** Departed nodes' entries are swept once the table holds this many more than are present. */
const SWEEP_SLACK = 64;

interface Slot {
  score: number;
  /** The pick in which the node was last a candidate. */
  seenAt: number;
}

/**
 * Smooth weighted round robin, as nginx does it: each pick, every node's running score
 * grows by its weight (performance tier × slow-start factor), the highest score wins and
 * pays back the total. Over any window the shares match the weights, and a heavy node's
 * picks are interleaved with the others (a, a, b, a rather than a, a, a, b), which keeps
 * bursts off any one node.
 */
export class WeightedRoundRobinStrategy implements Strategy {
  readonly name = 'weighted_round_robin';
  private readonly slots = new Map<string, Slot>();
  private picks = 0;

  select(candidates: readonly Candidate[]): Candidate | undefined {
    if (candidates.length === 0) return undefined;
    const pick = ++this.picks;
    let total = 0;
    let best: Candidate | undefined;
    let bestSlot: Slot | undefined;
    for (const c of candidates) {
      const w = effectiveWeight(c);
      let slot = this.slots.get(c.nodeId);
      if (slot === undefined) {
        slot = { score: 0, seenAt: -1 };
        this.slots.set(c.nodeId, slot);
      }
      // A node that was not a candidate in the previous pick starts again from zero, as a
      // newcomer does; the same id twice in one list simply accumulates.
      const base = slot.seenAt === pick - 1 || slot.seenAt === pick ? slot.score : 0;
      slot.score = base + w;
      slot.seenAt = pick;
      total += w;
      if (bestSlot === undefined || slot.score > bestSlot.score) {
        best = c;
        bestSlot = slot;
      }
    }
    bestSlot!.score -= total;
    if (this.slots.size > 2 * candidates.length + SWEEP_SLACK) this.sweep(pick);
    return best;
  }

  private sweep(pick: number): void {
    for (const [id, slot] of this.slots) if (slot.seenAt !== pick) this.slots.delete(id);
  }
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'weighted_round_robin', create: () => new WeightedRoundRobinStrategy() });
}
