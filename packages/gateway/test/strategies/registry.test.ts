import { InvalidArgument } from '@easyremote/protocol';
import { describe, expect, it } from 'vitest';
import {
  createStrategy,
  hasStrategy,
  registerStrategy,
  StrategyOptionError,
  strategyNames,
  strategySchema,
  validateStrategyOptions,
} from '../../src/strategies/registry.js';
import type { Strategy, StrategyOptions } from '../../src/strategies/strategy.js';
import { candidate, context, nodes, tally } from './fixtures.js';

/** The error createStrategy / validateStrategyOptions threw, for inspection. */
function refusal(f: () => unknown): StrategyOptionError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(StrategyOptionError);
    return err as StrategyOptionError;
  }
  throw new Error('expected a StrategyOptionError');
}

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

  it('refuses with a StrategyOptionError naming the strategy, the key as written, what was expected and the value', () => {
    const e = refusal(() => createStrategy('latency_based', { prior_latency_ms: 'soon' }));
    expect(e).toBeInstanceOf(InvalidArgument);
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.strategy).toBe('latency_based');
    expect(e.option).toBe('prior_latency_ms');
    expect(e.message).toBe('latency_based: option prior_latency_ms must be a number >= 0, got "soon"');
    expect(refusal(() => createStrategy('latency_based', { priorLatencyMs: -1 })).message).toBe(
      'latency_based: option priorLatencyMs must be a number >= 0, got -1',
    );
    expect(refusal(() => createStrategy('least_load', { cpu_weight: 2 })).message).toMatch(/cpu_weight must be a number between 0 and 1, got 2$/);
    expect(refusal(() => createStrategy('consistent_hash', { virtualNodes: 2.5 })).message).toMatch(/virtualNodes must be an integer between 1 and 1000/);
    expect(refusal(() => createStrategy('smart_adaptive', { discount: NaN })).message).toMatch(/discount must be a number between 0 and 1, got NaN$/);
    expect(refusal(() => createStrategy('resource_aware', { requirements: ['gpu'] })).message).toMatch(/requirements must be an object, got \["gpu"\]$/);
    expect(refusal(() => createStrategy('resource_aware', { requirements: { gpu_memory: 'lots' } })).message).toMatch(
      /^resource_aware: option requirements must be a valid object \(.*gpu_memory.*\), got \{"gpu_memory":"lots"\}$/,
    );
  });

  it('quotes at most about 100 characters of a refused value', () => {
    const e = refusal(() => createStrategy('latency_based', { preferLocation: { text: 'x'.repeat(10_000) } }));
    expect(e.message.length).toBeLessThan(200);
    expect(e.message).toMatch(/…$/);
  });

  it('accepts aliases and either spelling, and ignores null, undefined and keys no strategy reads', () => {
    const s = createStrategy('latency_based', { maxLatency: 5, healthCheck: { enabled: 'yes' }, requirements_typo: 1, loadPenalty: null });
    expect(s.select([candidate({ nodeId: 'a', history: { ewmaLatencyMs: 50 } })], context())).toBeUndefined();
    expect(() => validateStrategyOptions({ strategy: 'round_robin', fallbackStrategy: 'random', preferences: { maxLatency: 'x' } })).not.toThrow();
  });

  it('validates one options object against every strategy, since a call may name any of them', () => {
    // round_robin reads no options, but a call routed by smart_adaptive would get these.
    const e = refusal(() => validateStrategyOptions({ strategy: 'round_robin', target: 'fastest' }));
    expect(e.strategy).toBe('smart_adaptive');
    expect(e.option).toBe('target');
    expect(e.message).toBe('smart_adaptive: option target must be latency, throughput or cost, got "fastest"');
    const good = { strategy: 'round_robin', target: 'cost', max_latency: 250, requirements: { 'label.location': 'eu' }, budget: 10 };
    validateStrategyOptions(good);
    for (const name of strategyNames()) expect(() => createStrategy(name, good)).not.toThrow();
  });

  it("parses a user strategy's options by the schema it registers with, in either form", () => {
    let seen: StrategyOptions | undefined;
    const pick = (): Strategy => ({ name: 'mine', select: (cs) => cs[0] });
    registerStrategy(
      'with_schema',
      (o) => {
        seen = o;
        return pick();
      },
      { sticky: { type: 'boolean' }, maxTries: { type: 'number', integer: true, min: 1, aliases: ['tries'] } },
    );
    createStrategy('with_schema', { sticky: true, max_tries: 3, other: 'x' });
    expect(seen).toEqual({ sticky: true, maxTries: 3 });
    createStrategy('with_schema', { tries: 2 });
    expect(seen).toEqual({ maxTries: 2 });
    expect(refusal(() => createStrategy('with_schema', { sticky: 'yes' })).message).toBe('with_schema: option sticky must be true or false, got "yes"');
    expect(strategySchema('with_schema')).toHaveProperty('sticky');
    expect(() => validateStrategyOptions({ tries: 0 })).toThrow(/with_schema: option tries must be an integer >= 1, got 0/);

    registerStrategy({ name: 'as_definition', schema: { level: { type: 'string', values: ['low', 'high'] } }, create: (o) => ({ name: `as_definition ${o.level}`, select: () => undefined }) });
    expect(createStrategy('as_definition', { level: 'high' }).name).toBe('as_definition high');
    expect(refusal(() => createStrategy('as_definition', { level: 'mid' })).message).toBe('as_definition: option level must be low or high, got "mid"');
  });

  it('wraps whatever a user factory throws in a StrategyOptionError naming the strategy', () => {
    registerStrategy('fragile', (o) => {
      if (o['mode'] !== 'ok') throw new Error('mode must be ok');
      return { name: 'fragile', select: (cs) => cs[0] };
    });
    expect(createStrategy('fragile', { mode: 'ok' }).name).toBe('fragile');
    const e = refusal(() => createStrategy('fragile', { mode: 'bad' }));
    expect(e.strategy).toBe('fragile');
    expect(e.option).toBeUndefined();
    expect(e.message).toBe('fragile: the options were refused: mode must be ok');
    expect(e.cause).toBeInstanceOf(Error);
  });
});
