import { describe, expect, it } from 'vitest';
import { SmartAdaptiveStrategy } from '../../src/strategies/smart-adaptive.js';
import type { Candidate } from '../../src/strategies/strategy.js';
import { candidate, context, mulberry32, nodes, outcome, withFields, type FakeContext } from './fixtures.js';

/** Runs select → observe `rounds` times; `execMs(nodeId)` is each node's true speed right now. */
function run(
  s: SmartAdaptiveStrategy,
  list: readonly Candidate[],
  ctx: FakeContext,
  rounds: number,
  execMs: (nodeId: string) => number,
  noise: () => number,
): string[] {
  const picks: string[] = [];
  for (let i = 0; i < rounds; i++) {
    const c = s.select(list, ctx)!;
    picks.push(c.nodeId);
    const ms = execMs(c.nodeId) * (0.9 + 0.2 * noise());
    s.observe(outcome(c, ctx, { execMs: ms, latencyMs: ms + 2 }));
    ctx.advance(1_000);
  }
  return picks;
}

const count = (picks: readonly string[], id: string) => picks.filter((p) => p === id).length;

describe('smart_adaptive', () => {
  it('moves traffic away from a node whose execution time jumps 10×, within a few dozen calls', () => {
    const s = new SmartAdaptiveStrategy();
    const list = nodes(3);
    const ctx = context({ seed: 1 });
    const noise = mulberry32(99);
    const speed: Record<string, number> = { n0: 100, n1: 100, n2: 100 };

    const warm = run(s, list, ctx, 300, (id) => speed[id]!, noise);
    // Equal nodes all stay in play during the warm-up.
    for (const id of ['n0', 'n1', 'n2']) expect(count(warm, id)).toBeGreaterThan(45);

    speed['n1'] = 1_000;
    const after = run(s, list, ctx, 60, (id) => speed[id]!, noise);
    // At most a couple of calls find out; after the first dozen n1 is essentially avoided.
    expect(count(after.slice(0, 12), 'n1')).toBeLessThanOrEqual(3);
    expect(count(after.slice(12), 'n1')).toBeLessThanOrEqual(1);
    expect(s.predictExecMs(list[1]!, ctx)).toBeGreaterThan(3 * s.predictExecMs(list[0]!, ctx));
  });

  it('tries a node that joins, and brings back a node that recovers', () => {
    const s = new SmartAdaptiveStrategy();
    const ctx = context({ seed: 2 });
    const noise = mulberry32(7);
    const speed: Record<string, number> = { n0: 100, n1: 100, n2: 1_000, n3: 100 };
    const three = nodes(3);
    const slow = run(s, three, ctx, 300, (id) => speed[id]!, noise);
    expect(count(slow.slice(100), 'n2')).toBeLessThan(10); // slow from the start: avoided

    const four = nodes(4);
    const joined = run(s, four, ctx, 5, (id) => speed[id]!, noise);
    expect(joined[0]).toBe('n3');

    speed['n2'] = 100;
    const later = run(s, four, ctx, 2_000, (id) => speed[id]!, noise);
    // n2 is slow no more: it is retried, believed, and gets a fair share again.
    expect(count(later.slice(-500), 'n2')).toBeGreaterThan(75);
  });

  it('learns from features: a node with calls in flight is predicted slower and avoided', () => {
    const s = new SmartAdaptiveStrategy();
    const ctx = context({ seed: 3 });
    const rng = mulberry32(5);
    const base = nodes(4, { maxConcurrent: 4 });
    for (let i = 0; i < 600; i++) {
      // Load varies per call; a call runs 50 ms per call already in flight on that node.
      const list = base.map((c) => withFields(c, { inFlight: Math.floor(rng() * 4) }));
      const c = s.select(list, ctx)!;
      s.observe(outcome(c, ctx, { execMs: 50 * (1 + c.inFlight) }));
    }
    const idle = withFields(base[0]!, { inFlight: 0 });
    const busy = withFields(base[0]!, { inFlight: 3 });
    expect(s.predictExecMs(busy, ctx)).toBeGreaterThan(2 * s.predictExecMs(idle, ctx));
    const list = base.map((c, i) => withFields(c, { inFlight: i === 2 ? 0 : 3 }));
    let picksOfIdle = 0;
    for (let i = 0; i < 20; i++) if (s.select(list, ctx)!.nodeId === 'n2') picksOfIdle += 1;
    expect(picksOfIdle).toBeGreaterThanOrEqual(18);
  });

  it('avoids a node whose calls fail, even quickly', () => {
    const s = new SmartAdaptiveStrategy();
    const ctx = context({ seed: 4 });
    const list = nodes(2);
    const picks: string[] = [];
    for (let i = 0; i < 200; i++) {
      const c = s.select(list, ctx)!;
      picks.push(c.nodeId);
      const broken = c.nodeId === 'n0';
      s.observe(outcome(c, ctx, { ok: !broken, execMs: broken ? 1 : 100, latencyMs: broken ? 2 : 102 }));
    }
    expect(count(picks.slice(100), 'n0')).toBeLessThan(10);

    // Thousands of failures in a row (the only node left) must not overflow the model.
    for (let i = 0; i < 3_000; i++) {
      const c = s.select([list[0]!], ctx)!;
      s.observe(outcome(c, ctx, { ok: false, execMs: 1 }));
    }
    const predicted = s.predictExecMs(list[0]!, ctx);
    expect(Number.isFinite(predicted)).toBe(true);
    expect(predicted).toBeGreaterThan(s.predictExecMs(list[1]!, ctx));
  });

  it('optimises the chosen target: cost and throughput', () => {
    const ctx = context({ seed: 5 });
    const cheap = candidate({ nodeId: 'cheap', costPerHour: 1 });
    const dear = candidate({ nodeId: 'dear', costPerHour: 10 });
    const byCost = new SmartAdaptiveStrategy({ target: 'cost' });
    const picks = run(byCost, [cheap, dear], ctx, 200, () => 100, mulberry32(1));
    expect(count(picks.slice(100), 'cheap')).toBeGreaterThan(90);

    const wide = candidate({ nodeId: 'wide', maxConcurrent: 8, inFlight: 2 });
    const narrow = candidate({ nodeId: 'narrow', maxConcurrent: 1, inFlight: 0 });
    const byThroughput = new SmartAdaptiveStrategy({ target: 'throughput' });
    const tp = run(byThroughput, [wide, narrow], ctx, 200, () => 100, mulberry32(2));
    // wide: 100 × 3 / 8 per slot; narrow: 100 × 1 / 1.
    expect(count(tp.slice(100), 'wide')).toBeGreaterThan(90);
    expect(() => new SmartAdaptiveStrategy({ target: 'speed' as never })).toThrow(TypeError);
  });

  it('describes what it has learned', () => {
    const s = new SmartAdaptiveStrategy();
    const ctx = context();
    run(s, nodes(2), ctx, 50, (id) => (id === 'n0' ? 20 : 200), mulberry32(3));
    const d = s.describe() as { target: string; nodes: Record<string, { observed: number }> };
    expect(d.target).toBe('latency');
    expect(d.nodes['n0']!.observed + d.nodes['n1']!.observed).toBe(50);
  });

  it('is not poisoned by one heartbeat with cpuPercent NaN, before or after healthy nodes join', () => {
    const s = new SmartAdaptiveStrategy();
    const ctx = context({ seed: 6 });
    const broken = candidate({ nodeId: 'broken', cpu: NaN, telemetry: { memoryUsedBytes: NaN, gpus: [{ index: 0, utilizationPercent: NaN, vramUsedBytes: Infinity, vramTotalBytes: -1 }] } });
    for (let i = 0; i < 5; i++) {
      const c = s.select([broken], ctx)!;
      expect(c.nodeId).toBe('broken');
      s.observe(outcome(c, ctx, { execMs: 50 }));
    }
    const healthy = nodes(3, { cpu: 30 });
    const picks: string[] = [];
    for (let i = 0; i < 60; i++) {
      const list = i < 30 ? [broken, ...healthy] : healthy; // the broken node leaves half-way
      const c = s.select(list, ctx)!;
      picks.push(c.nodeId);
      s.observe(outcome(c, ctx, { execMs: c.nodeId === 'n0' ? 20 : 80 }));
    }
    expect(picks.slice(30).every((id) => id.startsWith('n'))).toBe(true);
    for (const c of healthy) expect(Number.isFinite(s.predictExecMs(c, ctx))).toBe(true);
    expect(s.predictExecMs(healthy[0]!, ctx)).toBeLessThan(s.predictExecMs(healthy[1]!, ctx));
  });

  it('learns the time of day from the wall clock, not from the monotonic clock', () => {
    const s = new SmartAdaptiveStrategy();
    const noon = Date.UTC(2024, 0, 1, 12);
    const midnight = Date.UTC(2024, 0, 1, 0);
    const at = (epochMs: number) =>
      context({
        epochMs: () => epochMs,
        now: () => {
          throw new Error('smart_adaptive must not read the monotonic clock');
        },
      });
    const list = nodes(2);
    for (let i = 0; i < 400; i++) {
      // Busy at noon (a shared machine during the working day), quick at midnight.
      const ctx = at(i % 2 === 0 ? noon : midnight);
      const c = s.select(list, ctx)!;
      s.observe(outcome(c, ctx, { execMs: i % 2 === 0 ? 400 : 50 }));
    }
    expect(s.predictExecMs(list[0]!, at(noon))).toBeGreaterThan(2 * s.predictExecMs(list[0]!, at(midnight)));
  });
});
