import { describe, expect, it } from 'vitest';
import { recommendStrategy } from '../src/routing/recommend.js';
import { hasStrategy } from '../src/strategies/registry.js';

describe('recommendStrategy', () => {
  it('follows the selection guide per use case', () => {
    expect(recommendStrategy('ml_training', { requiresGpu: true }).strategy).toBe('resource_aware');
    expect(recommendStrategy('HPC').strategy).toBe('resource_aware');
    expect(recommendStrategy('real-time inference').strategy).toBe('latency_based');
    expect(recommendStrategy('realtime').strategy).toBe('latency_based');
    expect(recommendStrategy('batch', { budgetLimited: true }).strategy).toBe('cost_aware');
    expect(recommendStrategy('batch_processing').strategy).toBe('cost_aware');
    expect(recommendStrategy('interactive').strategy).toBe('smart_adaptive');
    expect(recommendStrategy('mixed').strategy).toBe('smart_adaptive');
    expect(recommendStrategy('simple').strategy).toBe('round_robin');
    expect(recommendStrategy('stateful').strategy).toBe('consistent_hash');
  });

  it('falls back to smart_adaptive for an unknown use case, saying so', () => {
    const r = recommendStrategy('video transcoding farm');
    expect(r.strategy).toBe('smart_adaptive');
    expect(r.reason).toMatch(/unknown use case "video transcoding farm"/);
    expect(recommendStrategy('something', { requiresGpu: true }).strategy).toBe('resource_aware');
  });

  it('lets constraints override the use case, budget first', () => {
    expect(recommendStrategy('real_time', { budgetLimited: true, latencyCritical: true })).toMatchObject({
      strategy: 'cost_aware',
      reason: expect.stringMatching(/^budgetLimited overrides/),
    });
    expect(recommendStrategy('batch', { latencyCritical: true }).strategy).toBe('latency_based');
    expect(recommendStrategy('hpc', { highAvailability: true }).strategy).toBe('smart_adaptive');
    expect(recommendStrategy('interactive', { sessionAffinity: true }).strategy).toBe('consistent_hash');
    // A known GPU-free use case is not turned into resource_aware by requiresGpu.
    expect(recommendStrategy('real_time', { requiresGpu: true }).strategy).toBe('latency_based');
  });

  it('always names registered strategies, with a fallback that cannot refuse', () => {
    for (const useCase of ['hpc', 'real_time', 'batch', 'interactive', 'simple', 'stateful', '??']) {
      const r = recommendStrategy(useCase);
      expect(hasStrategy(r.strategy)).toBe(true);
      expect(hasStrategy(r.fallbackStrategy)).toBe(true);
      expect(['least_load', 'least_connections', 'random', 'round_robin']).toContain(r.fallbackStrategy);
      expect(r.reason.length).toBeGreaterThan(10);
    }
  });
});
