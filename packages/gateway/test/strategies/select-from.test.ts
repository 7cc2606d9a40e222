// selectFrom: how each strategy that picks from a large pool by itself keeps its meaning
// without a list of every candidate. Pools here are plain lists (fixtures' listPool).
import { describe, expect, it } from 'vitest';
import { ConsistentHashStrategy } from '../../src/strategies/consistent-hash.js';
import { PickFirstStrategy } from '../../src/strategies/pick-first.js';
import { PowerOfTwoStrategy } from '../../src/strategies/power-of-two.js';
import { RandomStrategy } from '../../src/strategies/random.js';
import { RoundRobinStrategy } from '../../src/strategies/round-robin.js';
import type { Candidate, CandidatePool, SelectContext, Strategy } from '../../src/strategies/strategy.js';
import { WeightedRoundRobinStrategy } from '../../src/strategies/weighted-round-robin.js';
import { candidate, context, listPool, nodes, withFields } from './fixtures.js';

const KEYS = Array.from({ length: 2000 }, (_, i) => `machine-${i}`);
const except = (...ids: string[]) => (c: Candidate) => !ids.includes(c.nodeId);
const from = (s: Strategy, pool: CandidatePool, ctx: SelectContext) => s.selectFrom!(pool, ctx);

describe('pick_first.selectFrom', () => {
  it('picks the first eligible member in order, and none when none is eligible', () => {
    const s = new PickFirstStrategy();
    const list = nodes(50);
    expect(from(s, listPool(list), context())?.nodeId).toBe('n0');
    expect(from(s, listPool(list, except('n0', 'n1')), context())?.nodeId).toBe('n2');
    expect(from(s, listPool(list, () => false), context())).toBeUndefined();
    expect(from(s, listPool([]), context())).toBeUndefined();
  });
});

describe('round_robin.selectFrom', () => {
  it('gives every eligible member one turn per cycle, in registration order, passing over the others', () => {
    const s = new RoundRobinStrategy();
    const list = nodes(40);
    const pool = listPool(list, except('n3', 'n17'));
    const cycle = Array.from({ length: 38 }, () => from(s, pool, context())!.nodeId);
    expect(cycle).toEqual(list.map((c) => c.nodeId).filter((id) => id !== 'n3' && id !== 'n17'));
    expect(from(s, pool, context())?.nodeId).toBe('n0');
    // A member that becomes eligible gets its turn when the cursor reaches it.
    const all = listPool(list);
    expect(Array.from({ length: 3 }, () => from(s, all, context())!.nodeId)).toEqual(['n1', 'n2', 'n3']);
    expect(from(s, listPool(list, () => false), context())).toBeUndefined();
  });
});

describe('weighted_round_robin.selectFrom', () => {
  const weighted = (count: number) => Array.from({ length: count }, (_, i) => candidate({ nodeId: `n${i}`, performanceTier: 1 + (i % 4) }));

  it('with equal weights is round robin in registration order', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = nodes(40);
    const pool = listPool(list);
    const picks = Array.from({ length: 80 }, () => from(s, pool, context())!.nodeId);
    expect(picks).toEqual([...list, ...list].map((c) => c.nodeId));
  });

  it('gives each member a share within 1 % of its weight, and spreads a heavy member through the cycle', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = weighted(60);
    const pool = listPool(list);
    const totalWeight = list.reduce((sum, c) => sum + c.performanceTier, 0); // 150
    const picks = Array.from({ length: 100 * totalWeight }, () => from(s, pool, context())!.nodeId);
    const counts = new Map<string, number>();
    for (const id of picks) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const c of list) {
      const share = counts.get(c.nodeId)! / picks.length;
      expect(Math.abs(share - c.performanceTier / totalWeight)).toBeLessThan(0.01 * (c.performanceTier / totalWeight));
    }
    // Interleaved: in any window of one cycle (total weight picks) a member's count is
    // within one of its weight, so a heavy node never takes its share in one burst.
    for (let start = 0; start + totalWeight <= 10 * totalWeight; start += 7) {
      const window = picks.slice(start, start + totalWeight);
      for (const c of list) {
        const n = window.filter((id) => id === c.nodeId).length;
        expect(Math.abs(n - c.performanceTier)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('a member that cannot take calls loses its turns instead of banking them', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = nodes(40);
    const without = listPool(list, except('n5'));
    for (let i = 0; i < 400; i++) expect(from(s, without, context())!.nodeId).not.toBe('n5');
    // Back in rotation: one turn per cycle, no catching up on the ten cycles it missed.
    const all = listPool(list);
    const picks = Array.from({ length: 80 }, () => from(s, all, context())!.nodeId);
    expect(picks.filter((id) => id === 'n5').length).toBe(2);
    expect(from(s, listPool(list, () => false), context())).toBeUndefined();
  });

  it('keeps its schedule when a member joins or leaves: a newcomer joins at the current pace', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = nodes(40);
    for (let i = 0; i < 1000; i++) from(s, listPool(list, () => true, 1), context());
    const grown = [...list, candidate({ nodeId: 'new' })];
    const picks = Array.from({ length: 41 * 5 }, () => from(s, listPool(grown, () => true, 2), context())!.nodeId);
    for (const c of grown) expect(picks.filter((id) => id === c.nodeId).length).toBe(5);
    const shrunk = grown.filter((c) => c.nodeId !== 'n7');
    const after = Array.from({ length: 40 * 3 }, () => from(s, listPool(shrunk, () => true, 3), context())!.nodeId);
    expect(after).not.toContain('n7');
    for (const c of shrunk) expect(after.filter((id) => id === c.nodeId).length).toBe(3);
  });

  it('scales a member by its slow-start factor', () => {
    const s = new WeightedRoundRobinStrategy();
    const list = [...nodes(39), candidate({ nodeId: 'warming', weight: 0.25 })];
    const pool = listPool(list);
    // Ten of its cycles: 39 × 4 turns of the others for each of its own.
    const picks = Array.from({ length: 10 * (39 * 4 + 1) }, () => from(s, pool, context())!.nodeId);
    expect(picks.filter((id) => id === 'warming').length).toBe(10);
  });
});

describe('consistent_hash.selectFrom', () => {
  function assignFrom(s: ConsistentHashStrategy, list: readonly Candidate[], eligible?: (c: Candidate) => boolean, version = 1): Map<string, string> {
    const pool = listPool(list, eligible, version);
    return new Map(KEYS.map((k) => [k, from(s, pool, context({ affinityKey: k }))!.nodeId]));
  }
  function assignList(list: readonly Candidate[]): Map<string, string> {
    const s = new ConsistentHashStrategy();
    return new Map(KEYS.map((k) => [k, s.select(list, context({ affinityKey: k }))!.nodeId]));
  }

  it('maps each key to the node the candidate-list path maps it to, for the same members', () => {
    const list = nodes(40);
    expect([...assignFrom(new ConsistentHashStrategy(), list)]).toEqual([...assignList(list)]);
  });

  it('passes over members that cannot take the call, landing where a ring without them would', () => {
    const list = nodes(40);
    const out = except('n3', 'n11', 'n29');
    expect([...assignFrom(new ConsistentHashStrategy(), list, out)]).toEqual([...assignList(list.filter(out))]);
  });

  it('moves only the keys of a member that leaves, and rebuilds the ring only when the members change', () => {
    const s = new ConsistentHashStrategy({ virtualNodes: 64 });
    const list = nodes(40);
    const before = assignFrom(s, list, undefined, 1);
    assignFrom(s, list, undefined, 1);
    expect(s.describe()).toEqual({ nodes: 40, points: 40 * 64, ringBuilds: 1 });
    const after = assignFrom(s, list.filter((c) => c.nodeId !== 'n9'), undefined, 2);
    expect(s.describe()).toMatchObject({ nodes: 39, ringBuilds: 2 });
    let moved = 0;
    for (const k of KEYS) {
      if (before.get(k) === 'n9') moved += 1;
      else expect(after.get(k)).toBe(before.get(k));
    }
    expect(moved).toBeGreaterThan(10);
    for (const k of KEYS) expect(after.get(k)).not.toBe('n9');
  });

  it('spills a hot key past its home when the home is over the bound', () => {
    const s = new ConsistentHashStrategy();
    const list = nodes(40);
    const key = 'hot-key';
    const home = from(s, listPool(list), context({ affinityKey: key }))!.nodeId;
    // 40 in flight on home: bound ceil(1.25 × 41 / 40) = 2.
    const hot = list.map((c) => (c.nodeId === home ? withFields(c, { inFlight: 40 }) : c));
    const spill = from(s, listPool(hot, () => true, 1), context({ affinityKey: key }))!.nodeId;
    expect(spill).not.toBe(home);
    for (let seed = 0; seed < 5; seed++) expect(from(s, listPool(hot, () => true, 1), context({ affinityKey: key, seed }))!.nodeId).toBe(spill);
  });

  it('sends a call without a key to the fewest in flight of a sample, and finds none when none is eligible', () => {
    const s = new ConsistentHashStrategy();
    const list = Array.from({ length: 40 }, (_, i) => candidate({ nodeId: `n${i}`, inFlight: i === 7 ? 0 : 3 }));
    // A pool of 40 probed for 16: n7 is in the sample about 40 % of the time, and wins then.
    let idle = 0;
    const ctx = context({ seed: 3 });
    for (let i = 0; i < 500; i++) if (from(s, listPool(list), ctx)!.nodeId === 'n7') idle += 1;
    expect(idle).toBeGreaterThan(150);
    expect(from(s, listPool(list, () => false), context({ affinityKey: 'k' }))).toBeUndefined();
    expect(from(s, listPool(list, () => false), context())).toBeUndefined();
  });
});

describe('random.selectFrom and power_of_two.selectFrom', () => {
  it('random spreads evenly over the eligible members only', () => {
    const s = new RandomStrategy();
    const pool = listPool(nodes(40), except('n0', 'n1'));
    const ctx = context({ seed: 5 });
    const counts = new Map<string, number>();
    for (let i = 0; i < 7600; i++) {
      const id = from(s, pool, ctx)!.nodeId;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(counts.size).toBe(38);
    for (const n of counts.values()) expect(Math.abs(n - 200)).toBeLessThan(70);
  });

  it('power_of_two compares two distinct eligible members: the busiest is never picked', () => {
    const s = new PowerOfTwoStrategy();
    const list = Array.from({ length: 40 }, (_, i) => candidate({ nodeId: `n${i}`, inFlight: i }));
    const ctx = context({ seed: 9 });
    const picked = new Set(Array.from({ length: 2000 }, () => from(s, listPool(list, except('n0')), ctx)!.nodeId));
    expect(picked.has('n39')).toBe(false);
    expect(picked.has('n0')).toBe(false);
    expect(picked.has('n1')).toBe(true);
    expect(from(s, listPool(list, (c) => c.nodeId === 'n39'), ctx)?.nodeId).toBe('n39');
    expect(from(s, listPool(list, () => false), ctx)).toBeUndefined();
  });
});
