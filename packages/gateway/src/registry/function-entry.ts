// A function name and everything the gateway knows about serving it: providers, the
// resolved configuration and one strategy instance per strategy name.
import type { FunctionSpec } from '@easyremote/protocol';
import { parseRequirements, type ParsedRequirement } from '../routing/requirements.js';
import type { Strategy } from '../strategies/strategy.js';
import { createStrategy } from '../strategies/registry.js';
import { Provider } from './provider.js';
import type { NodeSession } from './node-session.js';

/** Chosen from bench/strategies: see the README, "Choosing the default". */
export const DEFAULT_STRATEGY = 'smart_adaptive';

export interface HealthCheckConfig {
  /** Outlier ejection applies to this function (default true). */
  enabled: boolean;
  /** Per-attempt time limit (ms, 0 = none): a node that takes longer is cancelled, counted as failing, and an idempotent call moves on. */
  timeout: number;
  /** Retries after a lost node, a node-side refusal or an attempt timeout. */
  retryCount: number;
}

export interface PreferencesConfig {
  /** true: prefer nodes in the gateway's own location; a string: that location. */
  preferLocal?: boolean | string;
  /** Skip nodes whose expected latency is above this (ms). */
  maxLatency?: number;
  /** Budget per call (cost_aware). */
  costLimit?: number;
}

/** The function-level settings, resolved from declarations and gateway configuration. */
export interface FunctionConfig {
  strategy: string;
  fallbackStrategy: string;
  /** Options object handed to the strategy (the loadBalancing config). */
  strategyOptions: Record<string, unknown>;
  healthCheck: HealthCheckConfig;
  requirements: Record<string, string>;
  preferences: PreferencesConfig;
  idempotent: boolean;
  timeoutMs: number;
  kind: 'unary' | 'stream';
  cacheable: boolean;
  cacheTtlMs: number;
  version: string;
}

/** What a gateway configuration file may set per function (every field optional). */
export type FunctionConfigOverride = Partial<Omit<FunctionConfig, 'healthCheck' | 'preferences' | 'kind'>> & {
  healthCheck?: Partial<HealthCheckConfig>;
  preferences?: PreferencesConfig;
};

export interface ConfigDefaults {
  /** Strategy for functions that name none. */
  strategy: string;
  /** Retries when a function's healthCheck names none. */
  retryCount: number;
}

export class FunctionEntry {
  readonly providers = new Map<string, Provider>();
  config!: FunctionConfig;
  requirements: ParsedRequirement[] = [];
  /** Set when providers declared different configurations (the first one's wins). */
  conflict = '';
  private readonly strategies = new Map<string, Strategy>();
  private configKey = '';
  /** The provider (and its declaration) the config was last resolved from. */
  private definedBy: { provider: Provider; declaration: string } | undefined;

  constructor(
    readonly name: string,
    first: FunctionSpec,
    private readonly override: FunctionConfigOverride,
    private readonly defaults: ConfigDefaults,
  ) {
    this.apply(FunctionEntry.resolve(first, override, defaults), first.loadBalancingJson);
  }


  /** Node declaration, overridden by the gateway's configuration. Throws InvalidArgument on bad requirements. */
  static resolve(spec: FunctionSpec, override: FunctionConfigOverride, defaults: ConfigDefaults): FunctionConfig {
    const lb: Record<string, unknown> = spec.loadBalancingJson ? JSON.parse(spec.loadBalancingJson) : {};
    const lbHealth = (lb.healthCheck ?? {}) as Partial<HealthCheckConfig>;
    const lbPrefs = (lb.preferences ?? {}) as PreferencesConfig;
    const lbReqs = (lb.requirements ?? {}) as Record<string, string>;
    return {
      strategy: override.strategy || (lb.strategy as string) || defaults.strategy,
      fallbackStrategy: override.fallbackStrategy ?? ((lb.fallbackStrategy as string) || ''),
      strategyOptions: { ...lb, ...override.strategyOptions },
      healthCheck: {
        enabled: override.healthCheck?.enabled ?? lbHealth.enabled ?? true,
        timeout: override.healthCheck?.timeout ?? lbHealth.timeout ?? 0,
        retryCount: override.healthCheck?.retryCount ?? lbHealth.retryCount ?? defaults.retryCount,
      },
      requirements: { ...spec.requirements, ...lbReqs, ...override.requirements },
      preferences: { ...lbPrefs, ...override.preferences },
      idempotent: override.idempotent ?? spec.idempotent,
      timeoutMs: override.timeoutMs ?? spec.timeoutMs,
      kind: spec.kind === 'stream' ? 'stream' : 'unary',
      cacheable: override.cacheable ?? spec.cacheable,
      cacheTtlMs: override.cacheTtlMs ?? spec.cacheTtlMs,
      version: override.version ?? spec.version,
    };
  }

  private apply(config: FunctionConfig, lbJson: string): void {
    this.requirements = parseRequirements(config.requirements);
    const key = JSON.stringify([config.strategy, config.fallbackStrategy, lbJson]);
    if (key !== this.configKey) this.strategies.clear();
    this.configKey = key;
    this.config = config;
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

  /**
   * The rule for providers that declare different configurations: the earliest
   * registered provider still connected defines the function; the others only add
   * capacity. Returns a description of the disagreement ('' when all agree).
   */
  refreshConfig(): string {
    const first = this.providers.values().next().value;
    if (first === undefined) return '';
    const key = first.declarationKey;
    // Re-resolving parses JSON and requirements: only when the defining declaration changed,
    // so a fleet of N nodes joining costs O(N) string comparisons each, not N resolutions.
    if (this.definedBy?.provider !== first || this.definedBy.declaration !== key) {
      this.apply(FunctionEntry.resolve(first.spec, this.override, this.defaults), first.spec.loadBalancingJson);
      this.definedBy = { provider: first, declaration: key };
    }
    const differing: string[] = [];
    for (const p of this.providers.values()) if (p.declarationKey !== key) differing.push(p.nodeId);
    this.conflict = differing.length > 0 ? `${differing.join(', ')} declare ${this.name} differently from ${first.nodeId}; ${first.nodeId}'s declaration is used` : '';
    return this.conflict;
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
