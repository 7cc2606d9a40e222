// Picks the provider for one attempt: hard filters (health, capacity, requirements), a
// soft filter (nodes loaded past the availability threshold, while others are not), the
// function's strategy (or the call's override), then the fallback strategy.
//
// A function with many providers is routed without filtering them all on every call,
// which would make a call's cost grow with the fleet: the strategy picks from a pool of
// the providers (CandidatePool), either by itself (`selectFrom`: pick_first, round_robin,
// weighted_round_robin, consistent_hash, random, power_of_two, exactly) or from a small
// random sample of eligible providers handed to its `select`. For strategies that score
// candidates (least_connections, least_load, resource_aware, latency_based, cost_aware,
// smart_adaptive, dynamic) that is the "power of K choices": the best of K random
// eligible providers rather than the best of all, which spreads load nearly as well
// (and herds less when counts are stale) at a cost independent of the fleet's size;
// dynamic reads the fleet's average CPU from the sample too.
// Whenever that path finds nothing, the router filters every provider as for a small set,
// so its answer (queue for room, wait for a provider, refuse, and every message) is
// exactly what it always was.
import { AFFINITY_METADATA_KEY, EasyRemoteError, InternalError, InvalidArgument, NoNodeAvailable, Overloaded, quote, type CallOptions } from '@easyremote/protocol';
import type { Clock, RandomSource } from '../clock.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Candidate, Preferences, SelectContext, Strategy } from '../strategies/strategy.js';
import { ProviderPool, type RoutingHealth } from './candidate-pool.js';
import { describeExclusion, filterCandidates, parseRequirements, type ParsedRequirement } from './requirements.js';
import { hasStrategy, strategyNames } from '../strategies/registry.js';

export type { RoutingHealth };

/** Suggested wait before retrying when every provider is busy or none is healthy. */
export const RETRY_AFTER_MS = 200;
/**
 * Up to this many providers a call filters them all and the strategy sees every candidate:
 * that costs less than sampling at this size, and keeps small sets exact.
 */
export const SMALL_POOL_MAX = 32;
/** Candidates sampled for a strategy without `selectFrom` when a function has more providers. */
export const SAMPLE_SIZE = 16;

/** What routing reads of a call. */
export interface RoutableCall {
  readonly entry: FunctionEntry;
  readonly options: CallOptions | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** Size of the arguments (all parts), for strategies that weigh it. */
  readonly requestBytes: number;
  /** Nodes already tried by earlier attempts of this call. */
  readonly tried: ReadonlySet<string> | undefined;
  /**
   * A look-aside pick (GetBackend): the client calls the provider itself, so backends that
   * registered over the LoadBalancer service are candidates too. Otherwise the gateway
   * relays the call, and only compute nodes can take it.
   */
  readonly lookAside?: boolean;
}

/** Whether the gateway could send this call to the provider (a backend takes calls only from clients). */
function reaches(p: Provider, call: RoutableCall): boolean {
  return call.lookAside === true || p.session.kind === 'node';
}

/**
 * The outcome of routing one attempt. `picked` carries the strategy instance and the
 * inputs it decided on, so the attempt's outcome goes back to exactly that instance.
 * `queue`: the call may wait, either for room (`full`: healthy providers exist but all
 * are at capacity) or for a provider (`gap`: none is usable now, but the function had
 * providers recently, as while a node restarts); `error` is the answer if it cannot.
 */
export type RouteDecision =
  | { readonly type: 'picked'; readonly provider: Provider; readonly strategyName: string; readonly strategy: Strategy; readonly context: SelectContext }
  | { readonly type: 'queue'; readonly reason: 'full' | 'gap'; readonly strategyName: string; readonly error: EasyRemoteError }
  | { readonly type: 'refuse'; readonly strategyName: string; readonly error: EasyRemoteError };

export interface RouterOptions {
  health: RoutingHealth;
  random: RandomSource;
  clock: Clock;
  /** The gateway's own location label, for preferLocal: true. */
  location?: string;
}

export class Router {
  private readonly now: () => number;
  private readonly epochMs: () => number;
  /** One pool per function, kept while the function is. */
  private readonly pools = new WeakMap<FunctionEntry, ProviderPool>();

  constructor(private readonly options: RouterOptions) {
    const clock = options.clock;
    this.now = () => clock.now();
    this.epochMs = () => clock.epochMs();
  }

  /** Whether any provider of the function could take a call now (waiting calls may move). */
  hasRoom(entry: FunctionEntry): boolean {
    const now = this.now();
    for (const p of entry.providers.values()) if (p.session.kind === 'node' && !p.full && this.options.health.routable(p, entry, now)) return true;
    return false;
  }

  /** Whether a provider the call has not tried yet could take it (now or once it has room). */
  hasUntried(call: RoutableCall): boolean {
    const now = this.now();
    for (const p of call.entry.providers.values()) if (reaches(p, call) && !call.tried?.has(p.session.nodeId) && this.options.health.routable(p, call.entry, now)) return true;
    return false;
  }

  route(call: RoutableCall): RouteDecision {
    const { entry } = call;
    const opts = call.options;
    const strategyName = opts?.strategy || entry.config.strategy;
    for (const name of [opts?.strategy, opts?.fallbackStrategy]) {
      if (name && !hasStrategy(name)) {
        return refuse(strategyName, new InvalidArgument(`unknown load-balancing strategy ${quote(name)}; known: ${strategyNames().join(', ')}`));
      }
    }
    const context: SelectContext = {
      functionName: entry.name,
      random: this.options.random,
      now: this.now,
      epochMs: this.epochMs,
      affinityKey: opts?.affinityKey || call.metadata[AFFINITY_METADATA_KEY] || undefined,
      complexity: opts?.complexity || 1,
      requestBytes: call.requestBytes,
      preferences: this.preferences(entry, opts),
    };
    // A call's own requirements are rare, and the members are filtered by the function's:
    // such a call filters every provider.
    const extra = opts?.requirements;
    if (entry.providers.size > SMALL_POOL_MAX && (extra === undefined || Object.keys(extra).length === 0)) {
      const picked = this.routeFromPool(call, strategyName, context);
      if (picked !== undefined) return picked;
    }
    return this.routeAll(call, strategyName, context);
  }

  /**
   * The path for a function with many providers: the strategy picks from the pool. Undefined
   * when it found nothing or failed in any way; the caller then filters every provider,
   * which gives the exact answer. Only the primary strategy runs here: a fallback is for
   * when the primary finds none among all candidates, which only the full path can tell.
   */
  private routeFromPool(call: RoutableCall, strategyName: string, context: SelectContext): RouteDecision | undefined {
    const { entry } = call;
    let pool = this.pools.get(entry);
    if (pool === undefined) this.pools.set(entry, (pool = new ProviderPool(entry, this.options.health)));
    pool.begin(call.tried, this.now(), call.lookAside === true);
    if (pool.size === 0) return undefined;
    try {
      const strategy = entry.strategy(strategyName);
      let picked: Candidate | undefined;
      if (strategy.selectFrom !== undefined) {
        picked = strategy.selectFrom(pool, context);
        if (picked === undefined) {
          pool.relax();
          picked = strategy.selectFrom(pool, context);
        }
      } else {
        const sample = pool.sample(SAMPLE_SIZE, context.random);
        if (sample.length > 0) picked = strategy.select(sample, context);
      }
      if (picked === undefined) return undefined;
      return { type: 'picked', provider: picked as Provider, strategyName, strategy, context };
    } catch {
      // A refusal decided on a sample (cost_aware's budget) may not hold for every
      // provider; the full path decides it, and reports a strategy's failure as it always has.
      return undefined;
    }
  }

  /** Filters every provider, then runs the strategy and the fallback over the candidates left. */
  private routeAll(call: RoutableCall, strategyName: string, context: SelectContext): RouteDecision {
    const { entry } = call;
    const opts = call.options;
    const { health } = this.options;
    let candidates: Provider[] = [];
    let healthy = 0;
    let busy = 0;
    let backendsOnly = 0;
    const now = this.now();
    for (const p of entry.providers.values()) {
      if (call.tried?.has(p.session.nodeId)) continue;
      if (!health.routable(p, entry, now)) continue;
      if (!reaches(p, call)) {
        backendsOnly++;
        continue;
      }
      healthy++;
      if (p.full) continue;
      if (!health.available(p)) busy++;
      candidates.push(p);
    }
    if (candidates.length === 0) {
      if (healthy > 0) {
        return { type: 'queue', reason: 'full', strategyName, error: new Overloaded(`every provider of ${entry.name} is at capacity`, { retryAfterMs: RETRY_AFTER_MS }) };
      }
      if (backendsOnly > 0) {
        // Waiting would not help: the gateway can never send a call to a look-aside backend.
        return refuse(strategyName, new NoNodeAvailable(`no node provides ${entry.name} through the gateway; its ${backendsOnly} look-aside backend(s) take calls from clients directly (look-aside mode)`));
      }
      const none = new NoNodeAvailable(`no healthy node provides ${entry.name}`, { retryAfterMs: RETRY_AFTER_MS });
      // Providers that exist may recover (lease, drain replacement, probe); a function whose
      // last provider left keeps its entry for the gap window, while a node restarts.
      if (call.tried === undefined) return { type: 'queue', reason: 'gap', strategyName, error: none };
      return refuse(strategyName, none);
    }

    const requirements = this.requirementsFor(entry, opts);
    if (requirements instanceof EasyRemoteError) return refuse(strategyName, requirements);
    if (requirements.length > 0) {
      const total = candidates.length;
      const { kept, excluded } = filterCandidates(candidates, requirements);
      if (kept.length === 0) return refuse(strategyName, new NoNodeAvailable(`no node meets the requirements of ${entry.name}: ${describeExclusion(excluded, total)}`));
      candidates = kept as Provider[];
      // The loaded nodes counted above may be among those just excluded: count the survivors.
      busy = 0;
      for (const p of candidates) if (!health.available(p)) busy++;
    }
    // Loaded nodes are avoided while others have headroom, but still used when all are loaded.
    if (busy > 0 && busy < candidates.length) {
      let kept = 0;
      for (const p of candidates) if (health.available(p)) candidates[kept++] = p;
      candidates.length = kept;
    }

    const fallback = opts?.fallbackStrategy || entry.config.fallbackStrategy;
    let used = strategyName;
    let strategy: Strategy | undefined;
    let picked: Candidate | undefined;
    try {
      strategy = entry.strategy(strategyName);
      picked = strategy.select(candidates, context);
      if (picked === undefined && fallback) {
        used = fallback;
        strategy = entry.strategy(fallback);
        picked = strategy.select(candidates, context);
      }
    } catch (err) {
      // A strategy's own refusal (cost_aware's BudgetExceeded) is final: a fallback must not spend past a budget.
      if (err instanceof EasyRemoteError) return refuse(used, err);
      return refuse(used, new InternalError(`strategy ${used} failed for ${entry.name}: ${(err as Error)?.message ?? String(err)}`));
    }
    if (picked === undefined || strategy === undefined) {
      const message = `strategy ${strategyName}${fallback ? ` and fallback ${fallback}` : ''} found no node for ${entry.name} among ${candidates.length}`;
      return refuse(used, new NoNodeAvailable(message, { retryAfterMs: RETRY_AFTER_MS }));
    }
    return { type: 'picked', provider: picked as Provider, strategyName: used, strategy, context };
  }

  private requirementsFor(entry: FunctionEntry, opts: CallOptions | undefined): readonly ParsedRequirement[] | EasyRemoteError {
    const extra = opts?.requirements;
    if (extra === undefined || Object.keys(extra).length === 0) return entry.requirements;
    try {
      return parseRequirements({ ...entry.config.requirements, ...extra });
    } catch (err) {
      return err instanceof EasyRemoteError ? err : new InvalidArgument((err as Error).message);
    }
  }

  /** Call options override the function's configured preferences. */
  private preferences(entry: FunctionEntry, opts: CallOptions | undefined): Preferences {
    const cfg = entry.config.preferences;
    const out: { preferLocation?: string; maxLatencyMs?: number; maxCost?: number } = {};
    const local = cfg.preferLocal === true ? this.options.location : typeof cfg.preferLocal === 'string' ? cfg.preferLocal : undefined;
    const location = opts?.preferLocation || local;
    if (location) out.preferLocation = location;
    const maxLatency = opts?.maxLatencyMs || cfg.maxLatency;
    if (maxLatency) out.maxLatencyMs = maxLatency;
    const maxCost = opts?.maxCost || cfg.costLimit;
    if (maxCost) out.maxCost = maxCost;
    return out;
  }
}

function refuse(strategyName: string, error: EasyRemoteError): RouteDecision {
  return { type: 'refuse', strategyName, error };
}
