// Strategies are looked up by name from configuration; users may add their own.
import { RoundRobinStrategy } from './round-robin.js';
import type { StrategyFactory } from './strategy.js';

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

registerStrategy('round_robin', () => new RoundRobinStrategy());
