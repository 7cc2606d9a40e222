// A function name and everything the gateway knows about serving it.
import type { FunctionSpec } from '@easyremote/protocol';
import type { Strategy } from '../strategies/strategy.js';
import { createStrategy } from '../strategies/registry.js';
import { Provider } from './provider.js';
import type { NodeSession } from './node-session.js';

export const DEFAULT_STRATEGY = 'round_robin';

/** The function-level settings, resolved from declarations and gateway configuration. */
export interface FunctionConfig {
  strategy: string;
  fallbackStrategy: string;
  /** Options object handed to the strategy (the loadBalancing config). */
  strategyOptions: Record<string, unknown>;
  idempotent: boolean;
  timeoutMs: number;
  kind: 'unary' | 'stream';
  cacheable: boolean;
  cacheTtlMs: number;
  version: string;
}

export class FunctionEntry {
  readonly providers = new Map<string, Provider>();
  config: FunctionConfig;
  private readonly strategies = new Map<string, Strategy>();

  constructor(
    readonly name: string,
    first: FunctionSpec,
    private readonly override: Partial<FunctionConfig> = {},
  ) {
    this.config = FunctionEntry.resolve(first, override);
  }

  static resolve(spec: FunctionSpec, override: Partial<FunctionConfig>): FunctionConfig {
    const lb: Record<string, unknown> = spec.loadBalancingJson ? JSON.parse(spec.loadBalancingJson) : {};
    return {
      strategy: (lb.strategy as string) || DEFAULT_STRATEGY,
      fallbackStrategy: (lb.fallbackStrategy as string) || '',
      strategyOptions: lb,
      idempotent: spec.idempotent,
      timeoutMs: spec.timeoutMs,
      kind: spec.kind === 'stream' ? 'stream' : 'unary',
      cacheable: spec.cacheable,
      cacheTtlMs: spec.cacheTtlMs,
      version: spec.version,
      ...override,
    };
  }

  addProvider(session: NodeSession, spec: FunctionSpec): Provider {
    const existing = this.providers.get(session.nodeId);
    if (existing && existing.session === session) {
      existing.spec = spec;
      return existing;
    }
    const provider = new Provider(session, spec);
    this.providers.set(session.nodeId, provider);
    return provider;
  }

  /** The function's declaration is the first provider's; later ones only add capacity. */
  refreshConfig(): void {
    const first = this.providers.values().next().value;
    if (first) this.config = FunctionEntry.resolve(first.spec, this.override);
  }

  /** One strategy instance per (function, strategy name): strategies keep per-function state. */
  strategy(name: string): Strategy {
    let s = this.strategies.get(name);
    if (s === undefined) {
      s = createStrategy(name, name === this.config.strategy ? this.config.strategyOptions : {});
      this.strategies.set(name, s);
    }
    return s;
  }
}
