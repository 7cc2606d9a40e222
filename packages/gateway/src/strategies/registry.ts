// Strategies are looked up by name from configuration; users may add their own.
import { ConsistentHashStrategy } from './consistent-hash.js';
import { CostAwareStrategy } from './cost-aware.js';
import { DynamicStrategy } from './dynamic.js';
import { LatencyBasedStrategy } from './latency-based.js';
import { LeastConnectionsStrategy } from './least-connections.js';
import { LeastLoadStrategy } from './least-load.js';
import { PickFirstStrategy } from './pick-first.js';
import { PowerOfTwoStrategy } from './power-of-two.js';
import { RandomStrategy } from './random.js';
import { ResourceAwareStrategy } from './resource-aware.js';
import { RoundRobinStrategy } from './round-robin.js';
import { SmartAdaptiveStrategy } from './smart-adaptive.js';
import type { StrategyFactory, StrategyOptions } from './strategy.js';
import { WeightedRoundRobinStrategy } from './weighted-round-robin.js';

const factories = new Map<string, StrategyFactory>();

export function registerStrategy(name: string, factory: StrategyFactory): void {
  if (!/^[a-z][a-z0-9_]*$/.test(name)) {
    throw new TypeError(`strategy name must be lower_snake_case, got ${JSON.stringify(name)}`);
  }
  factories.set(name, factory);
}

export function hasStrategy(name: string): boolean {
  return factories.has(name);
}

export function strategyNames(): string[] {
  return [...factories.keys()].sort();
}

export function createStrategy(name: string, options: Readonly<Record<string, unknown>> = {}) {
  const factory = factories.get(name);
  if (factory === undefined) {
    throw new TypeError(`unknown load-balancing strategy ${JSON.stringify(name)}; known: ${strategyNames().join(', ')}`);
  }
  return factory(options);
}

type OptionType = 'number' | 'string' | 'object';

/**
 * Reads a built-in strategy's options from the function's load-balancing config: keys may
 * be camelCase or snake_case (node declarations come from any language), keys the strategy
 * does not use are left to the router (strategy, fallback_strategy, ...), and a known key
 * of the wrong type is refused when the function registers rather than misbehaving later.
 */
function readOptions(
  strategy: string,
  options: StrategyOptions,
  types: Readonly<Record<string, OptionType>>,
  aliases: Readonly<Record<string, string>> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [raw, value] of Object.entries(options)) {
    const camel = raw.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
    const key = aliases[camel] ?? camel;
    const type = types[key];
    if (type === undefined || value === undefined || value === null) continue;
    const ok =
      type === 'number' ? typeof value === 'number' && Number.isFinite(value) : type === 'object' ? typeof value === 'object' : typeof value === type;
    if (!ok) throw new TypeError(`${strategy}: option ${raw} must be a ${type}, got ${JSON.stringify(value)}`);
    out[key] = value;
  }
  return out;
}

const LATENCY_OPTIONS = { priorLatencyMs: 'number', loadPenalty: 'number', maxLatencyMs: 'number', preferLocation: 'string' } as const;
// DESIGN.md and seed 002 spell the latency limit `max_latency` (ms).
const LATENCY_ALIASES = { maxLatency: 'maxLatencyMs' };
const COST_OPTIONS = { priorExecMs: 'number', maxCost: 'number' } as const;
const SMART_OPTIONS = { target: 'string', learningRate: 'number', exploration: 'number', discount: 'number' } as const;

registerStrategy('pick_first', () => new PickFirstStrategy());
registerStrategy('round_robin', () => new RoundRobinStrategy());
registerStrategy('weighted_round_robin', () => new WeightedRoundRobinStrategy());
registerStrategy('random', () => new RandomStrategy());
registerStrategy('least_connections', () => new LeastConnectionsStrategy());
registerStrategy('least_load', (o) => new LeastLoadStrategy(readOptions('least_load', o, { tolerance: 'number', cpuWeight: 'number' })));
registerStrategy('power_of_two', () => new PowerOfTwoStrategy());
registerStrategy('resource_aware', (o) => new ResourceAwareStrategy(readOptions('resource_aware', o, { requirements: 'object' })));
registerStrategy('latency_based', (o) => new LatencyBasedStrategy(readOptions('latency_based', o, LATENCY_OPTIONS, LATENCY_ALIASES)));
registerStrategy('cost_aware', (o) => new CostAwareStrategy(readOptions('cost_aware', o, COST_OPTIONS)));
registerStrategy(
  'consistent_hash',
  (o) => new ConsistentHashStrategy(readOptions('consistent_hash', o, { virtualNodes: 'number', loadFactor: 'number' })),
);
registerStrategy('smart_adaptive', (o) => new SmartAdaptiveStrategy(readOptions('smart_adaptive', o, SMART_OPTIONS)));
registerStrategy(
  'dynamic',
  (o) =>
    new DynamicStrategy(
      readOptions(
        'dynamic',
        o,
        {
          ...LATENCY_OPTIONS,
          ...COST_OPTIONS,
          ...SMART_OPTIONS,
          requirements: 'object',
          cpuThreshold: 'number',
          latencyThresholdMs: 'number',
          budget: 'number',
          budgetThreshold: 'number',
        },
        LATENCY_ALIASES,
      ),
    ),
);

/** Checks a loadBalancing options object against every registered strategy's options. */
export function validateStrategyOptions(options: Readonly<Record<string, unknown>>): void {
  for (const name of factories.keys()) createStrategy(name, options);
}
