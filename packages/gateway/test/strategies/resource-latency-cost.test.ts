import { BudgetExceeded, InvalidArgument } from '@easyremote/protocol';
import { describe, expect, it } from 'vitest';
import { CostAwareStrategy } from '../../src/strategies/cost-aware.js';
import { LatencyBasedStrategy } from '../../src/strategies/latency-based.js';
import { ResourceAwareStrategy } from '../../src/strategies/resource-aware.js';
import { candidate, context, GB, tally } from './fixtures.js';

describe('resource_aware', () => {
  const gpu = (utilizationPercent: number, vramUsedBytes: number) => ({ index: 0, utilizationPercent, vramUsedBytes, vramTotalBytes: 24 * GB });
  const gpuCaps = { gpus: [{ index: 0, model: 'RTX 4090', vramTotalBytes: 24 * GB }] };

  it('picks the node with the most free CPU, memory and GPU', () => {
    const list = [
      candidate({ nodeId: 'busy', cpu: 90, capabilities: gpuCaps, telemetry: { gpus: [gpu(95, 20 * GB)] } }),
      candidate({ nodeId: 'free', cpu: 10, capabilities: gpuCaps, telemetry: { gpus: [gpu(5, 2 * GB)] } }),
      candidate({ nodeId: 'mid', cpu: 50, capabilities: gpuCaps, telemetry: { gpus: [gpu(50, 12 * GB)] } }),
    ];
    expect(tally(new ResourceAwareStrategy(), list, context(), 20).get('free')).toBe(20);
  });

  it('scores the mean of free CPU, memory, GPU and requirement match', () => {
    const s = new ResourceAwareStrategy({ requirements: { gpu_memory: '>=16GB', 'label.location': 'eu' } });
    const c = candidate({
      nodeId: 'a',
      cpu: 40,
      location: 'us',
      capabilities: gpuCaps,
      telemetry: { memoryUsedBytes: 8 * GB, memoryTotalBytes: 32 * GB, gpus: [gpu(20, 12 * GB)] },
    });
    const score = s.score(c);
    expect(score.cpuFree).toBeCloseTo(0.6);
    expect(score.memoryFree).toBeCloseTo(0.75);
    expect(score.gpuFree).toBeCloseTo((0.8 + 0.5) / 2);
    expect(score.requirementMatch).toBeCloseTo(0.5); // GPU memory met, location not
    expect(score.total).toBeCloseTo((0.6 + 0.75 + 0.65 + 0.5) / 4);
  });

  it('prefers the node meeting soft requirements when resources are equal', () => {
    const s = new ResourceAwareStrategy({ requirements: { 'label.location': 'eu' } });
    const list = [candidate({ nodeId: 'us', location: 'us' }), candidate({ nodeId: 'eu', location: 'eu' })];
    expect(tally(s, list, context(), 10).get('eu')).toBe(10);
  });

  it('gives a node without telemetry a neutral score', () => {
    const s = new ResourceAwareStrategy();
    const unknown = candidate({ nodeId: 'unknown', telemetry: null });
    expect(s.score(unknown).total).toBeCloseTo((0.5 + 0.5 + 0.5 + 1) / 4);
    // Beats a saturated node, loses to an idle one.
    const saturated = candidate({ nodeId: 'sat', cpu: 100, telemetry: { memoryUsedBytes: 32 * GB } });
    const idle = candidate({ nodeId: 'idle', cpu: 0, telemetry: { memoryUsedBytes: 0 } });
    expect(s.select([saturated, unknown], context())?.nodeId).toBe('unknown');
    expect(s.select([unknown, idle], context())?.nodeId).toBe('idle');
  });

  it('discounts calls already in flight so a burst does not all land on one node', () => {
    const s = new ResourceAwareStrategy();
    const list = [candidate({ nodeId: 'a', cpu: 10, inFlight: 8 }), candidate({ nodeId: 'b', cpu: 30, inFlight: 0 })];
    expect(s.select(list, context())?.nodeId).toBe('b');
  });

  it('refuses malformed requirements at construction', () => {
    expect(() => new ResourceAwareStrategy({ requirements: { gpu_memory: 'lots' } })).toThrow(InvalidArgument);
  });
});

describe('latency_based', () => {
  it('expects EWMA latency × (1 + load × 0.5), falling back to RTT then the prior', () => {
    const s = new LatencyBasedStrategy();
    // load = 0.5 × 0.2 + 0.5 × 0 = 0.1
    expect(s.expectedLatencyMs(candidate({ nodeId: 'a', cpu: 20, history: { ewmaLatencyMs: 100 } }))).toBeCloseTo(105);
    expect(s.expectedLatencyMs(candidate({ nodeId: 'b', cpu: 0, rttMs: 7 }))).toBeCloseTo(7);
    expect(s.expectedLatencyMs(candidate({ nodeId: 'c', cpu: 0, rttMs: undefined }))).toBeCloseTo(100);
  });

  it('picks the lowest expected latency, load included', () => {
    const list = [
      candidate({ nodeId: 'fast-but-busy', cpu: 100, inFlight: 8, maxConcurrent: 8, history: { ewmaLatencyMs: 60 } }), // 60 × 1.5
      candidate({ nodeId: 'steady', cpu: 0, history: { ewmaLatencyMs: 80 } }), // 80
      candidate({ nodeId: 'slow', cpu: 0, history: { ewmaLatencyMs: 200 } }),
    ];
    expect(tally(new LatencyBasedStrategy(), list, context(), 20).get('steady')).toBe(20);
  });

  it('drops candidates above maxLatencyMs and returns none when all are dropped', () => {
    const list = [
      candidate({ nodeId: 'a', cpu: 0, history: { ewmaLatencyMs: 50 } }),
      candidate({ nodeId: 'b', cpu: 0, location: 'eu', history: { ewmaLatencyMs: 90 } }),
      candidate({ nodeId: 'c', cpu: 0, location: 'eu', history: { ewmaLatencyMs: 300 } }),
    ];
    const s = new LatencyBasedStrategy();
    // preferLocation narrows to eu; the limit then removes c.
    const ctx = context({ preferences: { maxLatencyMs: 100, preferLocation: 'eu' } });
    expect(tally(s, list, ctx, 10).get('b')).toBe(10);
    expect(s.select(list, context({ preferences: { maxLatencyMs: 40 } }))).toBeUndefined();
    // Function-level default from options; the call's preference overrides it.
    const limited = new LatencyBasedStrategy({ maxLatencyMs: 40 });
    expect(limited.select(list, context())).toBeUndefined();
    expect(limited.select(list, context({ preferences: { maxLatencyMs: 60 } }))?.nodeId).toBe('a');
  });

  it('prefers the location when any candidate has it, else ignores the preference', () => {
    const list = [
      candidate({ nodeId: 'us-fast', cpu: 0, location: 'us', history: { ewmaLatencyMs: 10 } }),
      candidate({ nodeId: 'eu-slow', cpu: 0, location: 'eu', history: { ewmaLatencyMs: 40 } }),
    ];
    const s = new LatencyBasedStrategy();
    expect(s.select(list, context({ preferences: { preferLocation: 'eu' } }))?.nodeId).toBe('eu-slow');
    expect(s.select(list, context({ preferences: { preferLocation: 'ap' } }))?.nodeId).toBe('us-fast');
  });
});

describe('cost_aware', () => {
  // cost per call = costPerHour × ewmaExecMs / 3 600 000
  const list = [
    candidate({ nodeId: 'premium', costPerHour: 36, performanceTier: 4, history: { ewmaExecMs: 1000 } }), // 0.01, ratio 400
    candidate({ nodeId: 'budget', costPerHour: 3.6, performanceTier: 1, history: { ewmaExecMs: 2000 } }), // 0.002, ratio 500
    candidate({ nodeId: 'mid', costPerHour: 7.2, performanceTier: 2, history: { ewmaExecMs: 1500 } }), // 0.003, ratio 667
  ];

  it('estimates per-call cost from the hourly rate and the execution EWMA or prior', () => {
    const s = new CostAwareStrategy({ priorExecMs: 500 });
    expect(s.estimatedCost(list[0]!)).toBeCloseTo(0.01, 10);
    expect(s.estimatedCost(candidate({ nodeId: 'x', costPerHour: 7.2 }))).toBeCloseTo(0.001, 10);
    // The node's rate applies when the function declares none.
    expect(s.estimatedCost(candidate({ nodeId: 'y', capabilities: { costPerHour: 3.6 } }))).toBeCloseTo(0.0005, 10);
  });

  it('picks the best performance per cost', () => {
    expect(tally(new CostAwareStrategy(), list, context(), 10).get('mid')).toBe(10);
  });

  it('only considers nodes within maxCost', () => {
    const ctx = context({ preferences: { maxCost: 0.0025 } });
    expect(tally(new CostAwareStrategy(), list, ctx, 10).get('budget')).toBe(10);
  });

  it('throws BudgetExceeded naming the cheapest estimate and the budget', () => {
    const s = new CostAwareStrategy();
    const ctx = context({ preferences: { maxCost: 0.001 } });
    expect(() => s.select(list, ctx)).toThrow(BudgetExceeded);
    expect(() => s.select(list, ctx)).toThrow(/cheapest estimate 0\.002 .*maxCost 0\.001/);
    expect(() => new CostAwareStrategy({ maxCost: 0.0001 }).select(list, context())).toThrow(BudgetExceeded);
  });

  it('ranks free nodes by tier and spreads equal ones by in-flight count', () => {
    const free = [
      candidate({ nodeId: 'free-low', performanceTier: 1 }),
      candidate({ nodeId: 'free-high', performanceTier: 3, inFlight: 2 }),
      candidate({ nodeId: 'free-high-idle', performanceTier: 3, inFlight: 0 }),
      candidate({ nodeId: 'paid', performanceTier: 10, costPerHour: 1 }),
    ];
    expect(tally(new CostAwareStrategy(), free, context(), 10).get('free-high-idle')).toBe(10);
  });

  it('spills to the next best value as the best node queues up', () => {
    const s = new CostAwareStrategy();
    // mid (ratio 667) with one slot: at 1 in flight its ratio halves to 333, below budget's 500.
    const queued = list.map((c) => (c.nodeId === 'mid' ? { ...c, maxConcurrent: 1, inFlight: 1 } : { ...c, maxConcurrent: 1 }));
    expect(s.select(queued, context())!.nodeId).toBe('budget');
    const idle = list.map((c) => ({ ...c, maxConcurrent: 1 }));
    expect(s.select(idle, context())!.nodeId).toBe('mid');
  });

  it('assumes an untried node is typical (the mean of the others), so it gets tried', () => {
    const s = new CostAwareStrategy({ priorExecMs: 1_000_000 });
    const fresh = candidate({ nodeId: 'fresh', costPerHour: 3.6, performanceTier: 2 }); // 2 / (3.6 × 1500 / 3.6e6) = 1333
    expect(s.select([...list, fresh], context())!.nodeId).toBe('fresh');
  });
});
