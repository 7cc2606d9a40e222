import { describe, expect, it } from 'vitest';
import { LeastConnectionsStrategy } from '../../src/strategies/least-connections.js';
import { candidateLoad } from '../../src/strategies/candidate-math.js';
import { LeastLoadStrategy } from '../../src/strategies/least-load.js';
import { PickFirstStrategy } from '../../src/strategies/pick-first.js';
import { PowerOfTwoStrategy } from '../../src/strategies/power-of-two.js';
import { RandomStrategy } from '../../src/strategies/random.js';
import type { Strategy } from '../../src/strategies/strategy.js';
import { WeightedRoundRobinStrategy } from '../../src/strategies/weighted-round-robin.js';
import { candidate, context, nodes, tally } from './fixtures.js';

describe('pick_first', () => {
  it('always picks the first candidate and none from an empty list', () => {
    const s: Strategy = new PickFirstStrategy();
    const list = nodes(3);
    expect(tally(s, list, context(), 50).get('n0')).toBe(50);
    expect(s.select([], context())).toBeUndefined();
  });
});

describe('random', () => {
  it('spreads uniformly over the candidates', () => {
    const counts = tally(new RandomStrategy(), nodes(4), context({ seed: 7 }), 4000);
    for (const n of counts.values()) expect(n).toBeGreaterThan(850);
    for (const n of counts.values()) expect(n).toBeLessThan(1150);
  });

  it('is reproducible with the same seed', () => {
    const a = tally(new RandomStrategy(), nodes(5), context({ seed: 3 }), 100);
    const b = tally(new RandomStrategy(), nodes(5), context({ seed: 3 }), 100);
    expect([...a]).toEqual([...b]);
  });
});

describe('least_connections', () => {
  it('picks the node with fewest calls in flight', () => {
    const list = [candidate({ nodeId: 'a', inFlight: 3 }), candidate({ nodeId: 'b', inFlight: 1 }), candidate({ nodeId: 'c', inFlight: 2 })];
    expect(tally(new LeastConnectionsStrategy(), list, context(), 30).get('b')).toBe(30);
  });

  it('breaks ties at random among the least loaded only', () => {
    const list = [candidate({ nodeId: 'a', inFlight: 0 }), candidate({ nodeId: 'b', inFlight: 5 }), candidate({ nodeId: 'c', inFlight: 0 })];
    const counts = tally(new LeastConnectionsStrategy(), list, context({ seed: 11 }), 1000);
    expect(counts.get('b')).toBe(0);
    expect(counts.get('a')).toBeGreaterThan(400);
    expect(counts.get('c')).toBeGreaterThan(400);
  });
});

describe('least_load', () => {
  it('blends telemetry CPU with slot occupancy', () => {
    // 0.5 × 0.4 + 0.5 × 2/4
    expect(candidateLoad(candidate({ nodeId: 'a', cpu: 40, inFlight: 2, maxConcurrent: 4 }))).toBeCloseTo(0.45);
    // Without telemetry only occupancy counts; unlimited concurrency uses cores as slots.
    expect(candidateLoad(candidate({ nodeId: 'b', telemetry: null, inFlight: 2, capabilities: { cpuCores: 8 } }))).toBeCloseTo(0.25);
  });

  it('picks the lowest load', () => {
    const list = [candidate({ nodeId: 'a', cpu: 90 }), candidate({ nodeId: 'b', cpu: 20 }), candidate({ nodeId: 'c', cpu: 60 })];
    expect(tally(new LeastLoadStrategy(), list, context(), 50).get('b')).toBe(50);
  });

  it('treats loads within the tolerance as equal and picks among them at random', () => {
    // loads 0.10, 0.14, 0.30 with the default CPU weight 0.5
    const list = [candidate({ nodeId: 'a', cpu: 20 }), candidate({ nodeId: 'b', cpu: 28 }), candidate({ nodeId: 'c', cpu: 60 })];
    const counts = tally(new LeastLoadStrategy(), list, context({ seed: 5 }), 1000);
    expect(counts.get('c')).toBe(0);
    expect(counts.get('a')).toBeGreaterThan(400);
    expect(counts.get('b')).toBeGreaterThan(400);
    // A tighter tolerance separates them.
    expect(tally(new LeastLoadStrategy({ tolerance: 0.01 }), list, context(), 100).get('a')).toBe(100);
  });
});

describe('power_of_two', () => {
  it('never picks the busiest of several nodes and compares two distinct ones', () => {
    const list = [0, 1, 2, 3].map((i) => candidate({ nodeId: `n${i}`, inFlight: i }));
    const counts = tally(new PowerOfTwoStrategy(), list, context({ seed: 9 }), 3000);
    // n3 loses every pair it is in; with distinct pairs it can never be picked.
    expect(counts.get('n3')).toBe(0);
    // n0 wins all 3 of its 6 pairs: about half the picks.
    expect(counts.get('n0')! / 3000).toBeGreaterThan(0.45);
    expect(counts.get('n0')! / 3000).toBeLessThan(0.55);
    expect(counts.get('n0')!).toBeGreaterThan(counts.get('n1')!);
    expect(counts.get('n1')!).toBeGreaterThan(counts.get('n2')!);
  });

  it('works with one or two candidates', () => {
    const s = new PowerOfTwoStrategy();
    expect(s.select([candidate({ nodeId: 'x' })], context())?.nodeId).toBe('x');
    const two = [candidate({ nodeId: 'a', inFlight: 4 }), candidate({ nodeId: 'b', inFlight: 1 })];
    expect(tally(s, two, context(), 20).get('b')).toBe(20);
  });
});

describe('weighted_round_robin', () => {
  it('interleaves picks smoothly in proportion to tier', () => {
    const list = [
      candidate({ nodeId: 'a', performanceTier: 5 }),
      candidate({ nodeId: 'b', performanceTier: 1 }),
      candidate({ nodeId: 'c', performanceTier: 1 }),
    ];
    const s: Strategy = new WeightedRoundRobinStrategy();
    const seq = Array.from({ length: 7 }, () => s.select(list, context())!.nodeId).join('');
    // nginx's smooth WRR sequence for weights 5, 1, 1.
    expect(seq).toBe('aabacaa');
  });

  it('scales by the slow-start factor and treats tier 0 as 1', () => {
    const list = [
      candidate({ nodeId: 'new', performanceTier: 0, weight: 0.25 }),
      candidate({ nodeId: 'old', performanceTier: 0, weight: 1 }),
    ];
    const counts = tally(new WeightedRoundRobinStrategy(), list, context(), 500);
    expect(counts.get('new')).toBe(100);
    expect(counts.get('old')).toBe(400);
  });

  it('forgets a departed node and keeps proportions for the rest', () => {
    const s = new WeightedRoundRobinStrategy();
    const three = [candidate({ nodeId: 'a', performanceTier: 2 }), candidate({ nodeId: 'b' }), candidate({ nodeId: 'c' })];
    tally(s, three, context(), 5);
    const counts = tally(s, three.slice(0, 2), context(), 300);
    expect(counts.get('a')).toBe(200);
    expect(counts.get('b')).toBe(100);
  });
});
