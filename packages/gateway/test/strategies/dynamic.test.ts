import { describe, expect, it } from 'vitest';
import { DynamicStrategy } from '../../src/strategies/dynamic.js';
import type { Candidate } from '../../src/strategies/strategy.js';
import { candidate, context, nodes, outcome, type FakeContext } from './fixtures.js';

interface Described {
  current: string;
  reason: string;
  since: number | null;
}

const describeOf = (s: DynamicStrategy) => s.describe() as unknown as Described;

/** One select and, for its pick, one observed result. */
function call(s: DynamicStrategy, list: readonly Candidate[], ctx: FakeContext, latencyMs = 50, execMs = 40): Candidate {
  const c = s.select(list, ctx)!;
  s.observe(outcome(c, ctx, { latencyMs, execMs }));
  ctx.advance(1_000);
  return c;
}

describe('dynamic', () => {
  it('starts on smart_adaptive and stays there while nothing is under pressure', () => {
    const s = new DynamicStrategy();
    expect(describeOf(s)).toMatchObject({ current: 'smart_adaptive', since: null });
    const ctx = context();
    for (let i = 0; i < 20; i++) call(s, nodes(3, { cpu: 30 }), ctx);
    const d = describeOf(s);
    expect(d.current).toBe('smart_adaptive');
    expect(d.reason).toMatch(/within their thresholds/);
    expect(d.since).toBe(1_700_000_000_000);
  });

  it('switches to resource_aware on high average CPU, and uses it', () => {
    const s = new DynamicStrategy();
    const ctx = context();
    call(s, nodes(3, { cpu: 30 }), ctx);
    const hot = [candidate({ nodeId: 'a', cpu: 99 }), candidate({ nodeId: 'b', cpu: 95 }), candidate({ nodeId: 'c', cpu: 60 })];
    const switchedAt = ctx.now();
    for (let i = 0; i < 10; i++) expect(call(s, hot, ctx).nodeId).toBe('c'); // the freest node, every time
    const d = describeOf(s);
    expect(d.current).toBe('resource_aware');
    expect(d.reason).toBe('average CPU 85% is above 80%');
    expect(d.since).toBe(switchedAt);
  });

  it('switches to latency_based when observed latency is high, honouring its threshold option', () => {
    const s = new DynamicStrategy({ latencyThresholdMs: 300 });
    const ctx = context();
    const list = nodes(2, { cpu: 20 });
    for (let i = 0; i < 5; i++) call(s, list, ctx, 100);
    expect(describeOf(s).current).toBe('smart_adaptive');
    for (let i = 0; i < 15; i++) call(s, list, ctx, 900);
    call(s, list, ctx, 900);
    const d = describeOf(s);
    expect(d.current).toBe('latency_based');
    expect(d.reason).toMatch(/^average latency \d+ ms is above 300 ms$/);
  });

  it('switches to cost_aware once most of the budget is spent', () => {
    const s = new DynamicStrategy({ budget: 10 });
    const ctx = context();
    const list = [candidate({ nodeId: 'dear', costPerHour: 36, cpu: 10 }), candidate({ nodeId: 'cheap', costPerHour: 3.6, cpu: 10 })];
    // Each call runs long enough to cost exactly 1 on whichever node ran it.
    const spend = () => {
      const c = s.select(list, ctx)!;
      s.observe(outcome(c, ctx, { latencyMs: 50, execMs: 3_600_000 / c.costPerHour }));
    };
    for (let i = 0; i < 8; i++) spend();
    s.select(list, ctx);
    expect(describeOf(s).current).toBe('smart_adaptive'); // 80 % spent is not above 80 %
    spend();
    s.select(list, ctx);
    const d = describeOf(s);
    expect(d.current).toBe('cost_aware');
    expect(d.reason).toBe('90% of the budget 10 is spent (threshold 80%)');
    expect(s.select(list, ctx)?.nodeId).toBe('cheap');
  });

  it('checks conditions in order: CPU before latency before budget', () => {
    const s = new DynamicStrategy({ budget: 1 });
    const ctx = context();
    const costly = [candidate({ nodeId: 'a', cpu: 90, costPerHour: 3600 })];
    call(s, costly, ctx, 5_000, 1_000); // spends 1: the whole budget; latency 5 s
    s.select(costly, ctx);
    expect(describeOf(s).current).toBe('resource_aware');
    s.select([candidate({ nodeId: 'a', cpu: 10, costPerHour: 3600 })], ctx);
    expect(describeOf(s).current).toBe('latency_based');
  });

  it('does not flap around a threshold (hysteresis)', () => {
    const s = new DynamicStrategy();
    const ctx = context();
    call(s, nodes(2, { cpu: 85 }), ctx);
    expect(describeOf(s).current).toBe('resource_aware');
    call(s, nodes(2, { cpu: 78 }), ctx); // below 80 % but above 72 %: holds
    expect(describeOf(s).current).toBe('resource_aware');
    call(s, nodes(2, { cpu: 60 }), ctx);
    expect(describeOf(s).current).toBe('smart_adaptive');
  });

  it('forwards results to the inner strategies so the one switched to is already trained', () => {
    const s = new DynamicStrategy();
    const ctx = context();
    const list = nodes(2, { cpu: 10 });
    for (let i = 0; i < 30; i++) call(s, list, ctx);
    const inner = (s as unknown as { inner: Record<string, { describe(): Record<string, unknown> }> }).inner;
    expect(inner['smart_adaptive']!.describe()).toMatchObject({ selections: 30 });
    const learned = inner['smart_adaptive']!.describe()['nodes'] as Record<string, { observed: number }>;
    expect(learned['n0']!.observed + learned['n1']!.observed).toBe(30);
  });
});
