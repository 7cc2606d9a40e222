import { describe, expect, it } from 'vitest';
import { createStrategy, hasStrategy, registerStrategy, strategyNames } from '../../src/strategies/registry.js';
import { candidate, context, nodes, tally } from './fixtures.js';

const BUILT_IN = [
  'consistent_hash',
  'cost_aware',
  'dynamic',
  'latency_based',
  'least_connections',
  'least_load',
  'pick_first',
  'power_of_two',
  'random',
  'resource_aware',
  'round_robin',
  'smart_adaptive',
  'weighted_round_robin',
];

describe('strategy registry', () => {
  it('registers every built-in strategy under its own name', () => {
    for (const name of BUILT_IN) {
      expect(hasStrategy(name)).toBe(true);
      const s = createStrategy(name);
      expect(s.name).toBe(name);
      expect(nodes(3).map((c) => c.nodeId)).toContain(s.select(nodes(3), context())?.nodeId);
    }
    expect(strategyNames()).toEqual(expect.arrayContaining(BUILT_IN));
  });

  it('creates a fresh instance per call, so per-function state is not shared', () => {
    expect(createStrategy('weighted_round_robin')).not.toBe(createStrategy('weighted_round_robin'));
  });

  it('reads snake_case options and ignores keys meant for the router', () => {
    const s = createStrategy('latency_based', { strategy: 'latency_based', fallback_strategy: 'random', max_latency: 5 });
    expect(s.select([candidate({ nodeId: 'a', history: { ewmaLatencyMs: 50 } })], context())).toBeUndefined();
    const tight = createStrategy('least_load', { tolerance: 0 });
    const list = [candidate({ nodeId: 'a', cpu: 20 }), candidate({ nodeId: 'b', cpu: 21 })];
    expect(tally(tight, list, context(), 20).get('a')).toBe(20);
  });

  it('refuses a known option of the wrong type', () => {
    expect(() => createStrategy('consistent_hash', { load_factor: '1.5' })).toThrow(/load_factor must be a number/);
    expect(() => createStrategy('smart_adaptive', { target: 'fastest' })).toThrow(/latency, throughput or cost/);
  });

  it('lets users register their own', () => {
    registerStrategy('always_last', () => ({ name: 'always_last', select: (cs) => cs[cs.length - 1] }));
    expect(createStrategy('always_last').select(nodes(3), context())?.nodeId).toBe('n2');
    expect(() => registerStrategy('Bad-Name', () => createStrategy('random'))).toThrow(TypeError);
  });
});
