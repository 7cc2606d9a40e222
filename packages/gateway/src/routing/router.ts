// Picks the provider for one attempt: hard filters (health, capacity, requirements), a
// soft filter (nodes loaded past the availability threshold, while others are not), the
// function's strategy (or the call's override), then the fallback strategy.
import { AFFINITY_METADATA_KEY, EasyRemoteError, InternalError, InvalidArgument, NoNodeAvailable, Overloaded, quote, type CallOptions } from '@easyremote/protocol';
import type { Clock, RandomSource } from '../clock.js';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Candidate, Preferences, SelectContext, Strategy } from '../strategies/strategy.js';
import { describeExclusion, filterCandidates, parseRequirements, type ParsedRequirement } from './requirements.js';
import { hasStrategy, strategyNames } from '../strategies/registry.js';

/** Suggested wait before retrying when every provider is busy or none is healthy. */
export const RETRY_AFTER_MS = 200;

/** What routing reads of a call. */
export interface RoutableCall {
  readonly entry: FunctionEntry;
  readonly options: CallOptions | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  /** Size of the arguments (all parts), for strategies that weigh it. */
  readonly requestBytes: number;
  /** Nodes already tried by earlier attempts of this call. */
  readonly tried: ReadonlySet<string> | undefined;
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

/** The health rules routing applies (see NodeHealthMonitor). */
export interface RoutingHealth {
  /** Hard filter: may this provider get a new call of this function? */
  routable(provider: Provider, entry: FunctionEntry): boolean;
  /** Soft filter: false for providers loaded past the availability threshold. */
  available(provider: Provider): boolean;
}

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

  constructor(private readonly options: RouterOptions) {
    const clock = options.clock;
    this.now = () => clock.now();
    this.epochMs = () => clock.epochMs();
  }

  /** Whether any provider of the function could take a call now (waiting calls may move). */
  hasRoom(entry: FunctionEntry): boolean {
    for (const p of entry.providers.values()) if (!p.full && this.options.health.routable(p, entry)) return true;
    return false;
  }

  /** Whether a provider the call has not tried yet could take it (now or once it has room). */
  hasUntried(call: RoutableCall): boolean {
    for (const p of call.entry.providers.values()) if (!call.tried?.has(p.session.nodeId) && this.options.health.routable(p, call.entry)) return true;
    return false;
  }

  route(call: RoutableCall): RouteDecision {
    const { entry } = call;
    const opts = call.options;
    const strategyName = opts?.strategy || entry.config.strategy;
    const refuse = (error: EasyRemoteError, strategy = strategyName): RouteDecision => ({ type: 'refuse', strategyName: strategy, error });
    for (const name of [opts?.strategy, opts?.fallbackStrategy]) {
      if (name && !hasStrategy(name)) return refuse(new InvalidArgument(`unknown load-balancing strategy ${quote(name)}; known: ${strategyNames().join(', ')}`));
    }
    const { health } = this.options;
    let candidates: Provider[] = [];
    let healthy = 0;
    let busy = 0;
    for (const p of entry.providers.values()) {
      if (call.tried?.has(p.session.nodeId)) continue;
      if (!health.routable(p, entry)) continue;
      healthy++;
      if (p.full) continue;
      if (!health.available(p)) busy++;
      candidates.push(p);
    }
    if (candidates.length === 0) {
      if (healthy > 0) {
        return { type: 'queue', reason: 'full', strategyName, error: new Overloaded(`every provider of ${entry.name} is at capacity`, { retryAfterMs: RETRY_AFTER_MS }) };
      }
      const none = new NoNodeAvailable(`no healthy node provides ${entry.name}`, { retryAfterMs: RETRY_AFTER_MS });
      // Providers that exist may recover (lease, drain replacement, probe); a function whose
      // last provider left keeps its entry for the gap window, while a node restarts.
      if (call.tried === undefined) return { type: 'queue', reason: 'gap', strategyName, error: none };
      return refuse(none);
    }

    const requirements = this.requirementsFor(entry, opts);
    if (requirements instanceof EasyRemoteError) return refuse(requirements);
    if (requirements.length > 0) {
      const total = candidates.length;
      const { kept, excluded } = filterCandidates(candidates, requirements);
      if (kept.length === 0) return refuse(new NoNodeAvailable(`no node meets the requirements of ${entry.name}: ${describeExclusion(excluded, total)}`));
      candidates = kept as Provider[];
      // The loaded nodes counted above may be among those just excluded: count the survivors.
      busy = 0;
      for (const p of candidates) if (!health.available(p)) busy++;
    }
    // Loaded nodes are avoided while others have headroom, but still used when all are loaded.
    if (busy > 0 && busy < candidates.length) candidates = candidates.filter((p) => health.available(p));

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
      if (err instanceof EasyRemoteError) return refuse(err, used);
      return refuse(new InternalError(`strategy ${used} failed for ${entry.name}: ${(err as Error)?.message ?? String(err)}`), used);
    }
    if (picked === undefined || strategy === undefined) {
      return refuse(
        new NoNodeAvailable(`strategy ${strategyName}${fallback ? ` and fallback ${fallback}` : ''} found no node for ${entry.name} among ${candidates.length}`, {
          retryAfterMs: RETRY_AFTER_MS,
        }),
        used,
      );
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
