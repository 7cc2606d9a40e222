// A function name and everything the gateway knows about serving it: providers, the
// resolved configuration and the strategy instances that route it.
import { clip, InvalidArgument, MAX_QUOTED_CHARS, type FunctionSpec, type ResolvedFunctionConfig } from '@easyremote/protocol';
import { meetsRequirement, parseRequirements, readsLiveFigures, type ParsedRequirement } from '../routing/requirements.js';
import type { Strategy } from '../strategies/strategy.js';
import { createStrategy, validateStrategyOptions } from '../strategies/registry.js';
import { declarationKey, Provider, type InFlightTally } from './provider.js';
import type { NodeSession } from './node-session.js';

/** Chosen by bench/strategies: see the README, "Choosing the default". */
export const DEFAULT_STRATEGY = 'smart_adaptive';

export type FunctionConfig = ResolvedFunctionConfig;
export type HealthCheckConfig = FunctionConfig['healthCheck'];

/** The longest timer Node.js keeps (a longer one fires at once): the largest healthCheck.timeout. */
export const MAX_HEALTH_CHECK_TIMEOUT_MS = 2_147_483_647;
/** Retries one call may make on other nodes. */
export const MAX_RETRY_COUNT = 1_000;

/**
 * healthCheck as a node declared it (or the gateway's configuration set it): a value that
 * cannot be a timer or a count (1e300, -1, "soon") would make every attempt time out at
 * once or retry without end, so it is refused at registration.
 */
function checkHealthCheck(h: HealthCheckConfig): void {
  if (typeof h.enabled !== 'boolean') throw new InvalidArgument(`healthCheck.enabled must be true or false, got ${clip(String(JSON.stringify(h.enabled)), MAX_QUOTED_CHARS)}`);
  if (!Number.isInteger(h.timeout) || h.timeout < 0 || h.timeout > MAX_HEALTH_CHECK_TIMEOUT_MS) {
    throw new InvalidArgument(`healthCheck.timeout must be an integer number of ms from 0 (none) to ${MAX_HEALTH_CHECK_TIMEOUT_MS}, got ${clip(String(JSON.stringify(h.timeout)), MAX_QUOTED_CHARS)}`);
  }
  if (!Number.isInteger(h.retryCount) || h.retryCount < 0 || h.retryCount > MAX_RETRY_COUNT) {
    throw new InvalidArgument(`healthCheck.retryCount must be an integer from 0 to ${MAX_RETRY_COUNT}, got ${clip(String(JSON.stringify(h.retryCount)), MAX_QUOTED_CHARS)}`);
  }
}
export type PreferencesConfig = FunctionConfig['preferences'];

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

/** A configuration with everything routing needs already parsed and instantiated. */
export interface PreparedConfig {
  readonly config: FunctionConfig;
  readonly requirements: readonly ParsedRequirement[];
  /** The configured strategy and fallback, built up front so bad options fail at registration. */
  readonly strategies: ReadonlyMap<string, Strategy>;
}

export class FunctionEntry {
  private readonly byId = new Map<string, Provider>();
  /** Node id → provider, in registration order (a node that re-registers keeps its place). */
  readonly providers: ReadonlyMap<string, Provider> = this.byId;
  config!: FunctionConfig;
  requirements: readonly ParsedRequirement[] = [];
  /** The requirements that read live figures: checked per call, the others once per node. */
  liveRequirements: readonly ParsedRequirement[] = [];
  /** Calls in flight over every provider, kept by the providers as their counts move. */
  readonly inFlight: InFlightTally = { total: 0 };
  /** clock.now when the last provider left; undefined while there are providers. */
  emptySince: number | undefined;
  /** Set when providers declared different configurations (the first one's wins). */
  conflict = '';
  /** The configuration resolved from the defining declaration, before the safety rules. */
  private declared!: FunctionConfig;
  private members: readonly Provider[] = [];
  private membersVersion = 0;
  /** Set when providers or requirements changed; the members are rebuilt when next read. */
  private membersStale = true;
  private strategies = new Map<string, Strategy>();
  /** The declaration the config in use was resolved from. */
  private definedKey: string;

  constructor(
    readonly name: string,
    first: FunctionSpec,
    private readonly override: FunctionConfigOverride,
    private readonly defaults: ConfigDefaults,
  ) {
    this.apply(FunctionEntry.prepare(first, override, defaults));
    this.definedKey = declarationKey(first);
  }

  /** Node declaration, overridden by the gateway's configuration. */
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

  /**
   * Resolves and checks a declaration: requirements parsed, the strategy options valid for
   * every strategy a call may name, the configured strategy and fallback instantiated.
   * Throws InvalidArgument naming what is wrong; nothing routes with a config that failed.
   */
  static prepare(spec: FunctionSpec, override: FunctionConfigOverride, defaults: ConfigDefaults): PreparedConfig {
    const config = FunctionEntry.resolve(spec, override, defaults);
    checkHealthCheck(config.healthCheck);
    const requirements = parseRequirements(config.requirements);
    validateStrategyOptions(config.strategyOptions);
    const strategies = new Map<string, Strategy>();
    for (const name of [config.strategy, config.fallbackStrategy]) {
      if (name && !strategies.has(name)) strategies.set(name, createStrategy(name, config.strategyOptions));
    }
    return { config, requirements, strategies };
  }

  private apply(prepared: PreparedConfig): void {
    this.declared = prepared.config;
    this.config = prepared.config;
    this.requirements = prepared.requirements;
    this.liveRequirements = prepared.requirements.filter(readsLiveFigures);
    this.strategies = new Map(prepared.strategies);
    this.membersStale = true;
  }

  /**
   * The providers that meet the function's requirements on what nodes declared, in
   * registration order: what routing draws from when a function has many providers.
   * Rebuilt when a provider joins or leaves or the requirements change (O(n) then), never
   * per call; a node's capabilities are fixed for its session, so they cannot go stale.
   */
  get routingMembers(): readonly Provider[] {
    if (this.membersStale) this.rebuildMembers();
    return this.members;
  }

  /** Changes exactly when routingMembers does, so a strategy can cache what it derives from them. */
  get membershipVersion(): number {
    if (this.membersStale) this.rebuildMembers();
    return this.membersVersion;
  }

  private rebuildMembers(): void {
    this.membersStale = false;
    const declared = this.requirements.filter((r) => !readsLiveFigures(r));
    const next: Provider[] = [];
    for (const p of this.providers.values()) if (declared.every((r) => meetsRequirement(p, r))) next.push(p);
    const same = next.length === this.members.length && next.every((p, i) => p === this.members[i]);
    if (same) return;
    this.members = next;
    this.membersVersion += 1;
  }

  /** Whether the configuration in use was resolved from exactly this declaration. */
  isDefinedBy(spec: FunctionSpec): boolean {
    return declarationKey(spec) === this.definedKey;
  }

  addProvider(session: NodeSession, spec: FunctionSpec): Provider {
    const existing = this.providers.get(session.nodeId);
    if (existing && existing.session === session) {
      existing.spec = spec;
      return existing;
    }
    existing?.detach();
    const provider = new Provider(session, spec, this.inFlight);
    this.byId.set(session.nodeId, provider);
    this.membersStale = true;
    return provider;
  }

  removeProvider(nodeId: string): void {
    const provider = this.providers.get(nodeId);
    if (provider === undefined) return;
    provider.detach();
    this.byId.delete(nodeId);
    this.membersStale = true;
  }

  /**
   * The rule for providers that declare different configurations: the earliest
   * registered provider still connected defines the function (the earliest compute node,
   * when any serves it); the others only add capacity. Returns a description of the
   * disagreement ('' when all agree).
   */
  refreshConfig(): string {
    // Compute nodes decide for a function they serve: look-aside backends never run a call
    // the gateway relays, so what they declare cannot make it retried or cached.
    let first: Provider | undefined;
    for (const p of this.providers.values()) if (first === undefined || (first.session.kind !== 'node' && p.session.kind === 'node')) first = p;
    if (first === undefined) return '';
    const deciding = first.session.kind;
    const key = first.declarationKey;
    // Re-resolving parses JSON and requirements and rebuilds strategies (losing what they
    // learned): only when the defining declaration changed, so a fleet of N nodes joining
    // costs O(N) string comparisons each, not N resolutions.
    if (key !== this.definedKey) {
      this.apply(FunctionEntry.prepare(first.spec, this.override, this.defaults));
      this.definedKey = key;
    }
    const differing: string[] = [];
    const notIdempotent: string[] = [];
    const notCacheable: string[] = [];
    let minTtl = Infinity;
    let counted = 0;
    for (const p of this.providers.values()) {
      if (p.session.kind !== deciding) continue;
      counted++;
      if (p.declarationKey !== key) differing.push(p.nodeId);
      if (!p.spec.idempotent) notIdempotent.push(p.nodeId);
      if (!p.spec.cacheable || p.spec.version !== first.spec.version) notCacheable.push(p.nodeId);
      else minTtl = Math.min(minTtl, p.spec.cacheTtlMs);
    }
    this.applySafetyRules(notIdempotent, notCacheable, minTtl);
    if (differing.length === 0) {
      this.conflict = '';
      return '';
    }
    const notes = [`${differing.join(', ')} declare ${this.name} differently from ${first.nodeId}; ${first.nodeId}'s declaration is used`];
    if (this.override.idempotent === undefined && notIdempotent.length > 0 && notIdempotent.length < counted) {
      notes.push(`not retried after a node is lost, since ${notIdempotent.join(', ')} do not declare it idempotent`);
    }
    if (this.override.cacheable === undefined && notCacheable.length > 0 && notCacheable.length < counted) {
      notes.push(`results not cached, since ${notCacheable.join(', ')} do not declare it cacheable with version ${JSON.stringify(first.spec.version)}`);
    }
    this.conflict = notes.join('; ');
    return this.conflict;
  }

  /**
   * Declarations that make the gateway run a call twice or answer without running it are
   * decided conservatively: a call is retried after node loss only if every provider
   * declares the function idempotent, and results are cached only if every provider
   * declares it cacheable with the same version (for the shortest TTL any declares). So
   * one node, registering first or not, cannot make the gateway repeat or skip another's
   * work. The gateway's own configuration wins over every node.
   */
  private applySafetyRules(notIdempotent: readonly string[], notCacheable: readonly string[], minTtl: number): void {
    const o = this.override;
    const idempotent = o.idempotent ?? (this.declared.idempotent && notIdempotent.length === 0);
    const cacheable = o.cacheable ?? (this.declared.cacheable && notCacheable.length === 0);
    const cacheTtlMs = o.cacheTtlMs ?? (Number.isFinite(minTtl) ? minTtl : this.declared.cacheTtlMs);
    const c = this.config;
    if (c.idempotent !== idempotent || c.cacheable !== cacheable || c.cacheTtlMs !== cacheTtlMs) this.config = { ...this.declared, idempotent, cacheable, cacheTtlMs };
  }

  /**
   * The instance of a strategy for this function (strategies keep per-function state).
   * A strategy named only by a call is built on first use with the function's options,
   * which `prepare` already checked against every registered strategy.
   */
  strategy(name: string): Strategy {
    let s = this.strategies.get(name);
    if (s === undefined) {
      try {
        s = createStrategy(name, this.config.strategyOptions);
      } catch (err) {
        throw err instanceof InvalidArgument ? err : new InvalidArgument(`strategy ${name} cannot route ${this.name}: ${(err as Error).message}`);
      }
      this.strategies.set(name, s);
    }
    return s;
  }
}
