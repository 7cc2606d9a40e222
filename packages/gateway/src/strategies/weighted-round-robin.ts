import { effectiveWeight } from './candidate-math.js';
import type { Candidate, CandidatePool, RegisterStrategy, Strategy } from './strategy.js';

/** Departed nodes' entries are swept once the table holds this many more than are present. */
const SWEEP_SLACK = 64;
/**
 * The largest step a pick moves a member's finish time (1 / weight): a weight near 0 would
 * otherwise push it to infinity, where it would stay after its weight recovered.
 */
const MAX_STRIDE = 1e6;

interface Slot {
  score: number;
  /** The pick in which the node was last a candidate. */
  seenAt: number;
}

/**
 * The large-pool schedule: each member's virtual finish time, and a binary min-heap of
 * member indices ordered by it (ties by registration order).
 */
interface Schedule {
  readonly version: number;
  readonly ids: readonly string[];
  readonly finish: Float64Array;
  readonly heap: Uint32Array;
}

/**
 * Smooth weighted round robin, as nginx does it: each pick, every node's running score
 * grows by its weight (performance tier × slow-start factor), the highest score wins and
 * pays back the total. Over any window the shares match the weights, and a heavy node's
 * picks are interleaved with the others (a, a, b, a rather than a, a, a, b), which keeps
 * bursts off any one node.
 *
 * That costs O(n) per pick, so a large pool is scheduled earliest-deadline-first instead:
 * each member has a virtual finish time that moves by 1 / weight whenever its turn comes,
 * and the member with the earliest one goes next (a heap: O(log n) per pick). Every member
 * is picked in proportion to its weight, and picks interleave as the finish times do.
 * A member that cannot take the call when its turn comes loses that turn rather than
 * banking it, so a node back from a drain or an ejection rejoins at the current pace
 * instead of taking a burst; and a newcomer starts one turn ahead of the current time.
 */
export class WeightedRoundRobinStrategy implements Strategy {
  readonly name = 'weighted_round_robin';
  private readonly slots = new Map<string, Slot>();
  private picks = 0;
  private schedule: Schedule | undefined;
  /** The finish time of the last member picked from a pool: "now" for newcomers. */
  private virtualTime = 0;

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

  selectFrom(pool: CandidatePool): Candidate | undefined {
    const n = pool.size;
    if (n === 0) return undefined;
    const s = this.scheduleFor(pool);
    const heap = s.heap;
    let size = n;
    let picked: Candidate | undefined;
    while (size > 0) {
      const m = heap[0]!;
      const c = pool.at(m);
      const finish = s.finish[m]!;
      s.finish[m] = finish + stride(c);
      if (pool.eligible(c)) {
        siftDown(s, 0, size);
        this.virtualTime = finish;
        picked = c;
        break;
      }
      // Passed over: out of the heap until this call ends, so no member is asked twice.
      size -= 1;
      heap[0] = heap[size]!;
      heap[size] = m;
      siftDown(s, 0, size);
    }
    for (let i = size; i < n; i++) siftUp(s, i);
    return picked;
  }

  private sweep(pick: number): void {
    for (const [id, slot] of this.slots) if (slot.seenAt !== pick) this.slots.delete(id);
  }

  /**
   * The schedule for the pool's members, rebuilt when they change: members that stay keep
   * their finish times (so a join elsewhere does not reset anyone's place), newcomers
   * start one turn after the current time, and every time is rebased so "now" is 0 and the
   * figures stay small however long the function runs.
   */
  private scheduleFor(pool: CandidatePool): Schedule {
    const current = this.schedule;
    if (current !== undefined && current.version === pool.version && current.ids.length === pool.size) return current;
    const kept = new Map<string, number>();
    if (current !== undefined) for (let m = 0; m < current.ids.length; m++) kept.set(current.ids[m]!, current.finish[m]!);
    const n = pool.size;
    const ids: string[] = new Array<string>(n);
    const finish = new Float64Array(n);
    const heap = new Uint32Array(n);
    const now = this.virtualTime;
    for (let m = 0; m < n; m++) {
      const c = pool.at(m);
      ids[m] = c.nodeId;
      const previous = kept.get(c.nodeId);
      finish[m] = (previous === undefined ? now + stride(c) : Math.max(previous, now)) - now;
      heap[m] = m;
    }
    const schedule: Schedule = { version: pool.version, ids, finish, heap };
    for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(schedule, i, n);
    this.virtualTime = 0;
    this.schedule = schedule;
    return schedule;
  }
}

/** How far one pick moves a member's finish time: 1 / its weight, capped. */
function stride(c: Candidate): number {
  const s = 1 / effectiveWeight(c);
  return s < MAX_STRIDE ? s : MAX_STRIDE;
}

/** Earlier finish first; equal finishes in registration order, so the schedule is deterministic. */
function before(s: Schedule, a: number, b: number): boolean {
  const fa = s.finish[a]!;
  const fb = s.finish[b]!;
  return fa < fb || (fa === fb && a < b);
}

function siftUp(s: Schedule, from: number): void {
  const heap = s.heap;
  let i = from;
  const m = heap[i]!;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(s, m, heap[parent]!)) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = m;
}

function siftDown(s: Schedule, from: number, n: number): void {
  const heap = s.heap;
  let i = from;
  const m = heap[i]!;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= n) break;
    const right = left + 1;
    const child = right < n && before(s, heap[right]!, heap[left]!) ? right : left;
    if (!before(s, heap[child]!, m)) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = m;
}

export function setup(register: RegisterStrategy): void {
  register({ name: 'weighted_round_robin', create: () => new WeightedRoundRobinStrategy() });
}
