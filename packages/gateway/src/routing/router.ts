// Picks the provider for one attempt: hard filters (lease, ejection, draining, capacity,
// requirements), a soft filter (nodes loaded past the availability threshold, while
// others are not), the function's strategy (or the call's override), then the fallback.
import { EasyRemoteError, InvalidArgument, NoNodeAvailable, Overloaded, type CallOptions } from '@easyremote/protocol';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Candidate, Preferences, SelectContext } from '../strategies/strategy.js';
import type { PendingCall } from '../calls/pending-call.js';
import { describeExclusion, filterCandidates, parseRequirements, type ParsedRequirement } from './requirements.js';
import { hasStrategy, strategyNames } from '../strategies/registry.js';

/** Suggested wait before retrying when every provider is busy or none is healthy. */
export const RETRY_AFTER_MS = 200;

export interface RouteDecision {
  provider?: Provider;
  strategy: string;
  /** The inputs the strategy decided on (handed back to it with the outcome). */
  context?: SelectContext;
  error?: EasyRemoteError;
  /** True when providers exist and are healthy but all are full (admission may queue). */
  allFull?: boolean;
}

export interface RouterOptions {
  random: () => number;
  now: () => number;
  /** Hard health filter (lease alive, not ejected); true = may get this call. */
  routable?: (provider: Provider, functionName: string, healthCheck: boolean) => boolean;
  /** Soft filter: false for providers loaded past the availability threshold. */
  available?: (provider: Provider) => boolean;
  /** The gateway's own location label, for preferLocal: true. */
  location?: string;
}

export class Router {
  constructor(private readonly options: RouterOptions) {}

  route(entry: FunctionEntry, call: PendingCall): RouteDecision {
    const opts = call.options;
    const strategyName = opts?.strategy || entry.config.strategy;
    for (const name of [opts?.strategy, opts?.fallbackStrategy]) {
      if (name && !hasStrategy(name)) return { strategy: strategyName, error: new InvalidArgument(`unknown load-balancing strategy ${JSON.stringify(name)}; known: ${strategyNames().join(', ')}`) };
    }
    const { routable, available } = this.options;
    const healthCheck = entry.config.healthCheck.enabled;
    let candidates: Provider[] = [];
    let healthy = 0;
    let busy = 0;
    for (const p of entry.providers.values()) {
      if (p.session.state !== 'active') continue;
      if (call.tried?.has(p.session.nodeId)) continue;
      if (routable && !routable(p, entry.name, healthCheck)) continue;
      healthy++;
      if (p.full) continue;
      if (available && !available(p)) busy++;
      candidates.push(p);
    }
    if (candidates.length === 0) {
      if (healthy > 0) {
        return { strategy: strategyName, allFull: true, error: new Overloaded(`every provider of ${entry.name} is at capacity`, { retryAfterMs: RETRY_AFTER_MS }) };
      }
      return { strategy: strategyName, error: new NoNodeAvailable(`no healthy node provides ${entry.name}`, { retryAfterMs: RETRY_AFTER_MS }) };
    }

    const requirements = this.requirementsFor(entry, opts);
    if (requirements instanceof EasyRemoteError) return { strategy: strategyName, error: requirements };
    if (requirements.length > 0) {
      const total = candidates.length;
      const { kept, excluded } = filterCandidates(candidates, requirements);
      if (kept.length === 0) {
        return { strategy: strategyName, error: new NoNodeAvailable(`no node meets the requirements of ${entry.name}: ${describeExclusion(excluded, total)}`) };
      }
      candidates = kept as Provider[];
    }
    // Loaded nodes are avoided while others have headroom, but still used when all are loaded.
    if (busy > 0 && busy < candidates.length && available) candidates = candidates.filter(available);

    const context: SelectContext = {
      functionName: entry.name,
      random: this.options.random,
      now: this.options.now,
      epochMs: Date.now,
      affinityKey: opts?.affinityKey || call.metadata['x-easyremote-affinity'] || undefined,
      complexity: opts?.complexity || 1,
      requestBytes: call.args.length,
      preferences: this.preferences(entry, opts),
    };
    const fallback = opts?.fallbackStrategy || entry.config.fallbackStrategy;
    let picked: Candidate | undefined;
    let used = strategyName;
    try {
      picked = entry.strategy(strategyName).select(candidates, context);
      if (picked === undefined && fallback) {
        used = fallback;
        picked = entry.strategy(fallback).select(candidates, context);
      }
    } catch (err) {
      // A strategy's own refusal (cost_aware's BudgetExceeded) is final: a fallback must not spend past a budget.
      if (err instanceof EasyRemoteError) return { strategy: used, error: err };
      throw err;
    }
    if (picked === undefined) {
      return {
        strategy: used,
        error: new NoNodeAvailable(`strategy ${strategyName}${fallback ? ` and fallback ${fallback}` : ''} found no node for ${entry.name} among ${candidates.length}`, {
          retryAfterMs: RETRY_AFTER_MS,
        }),
      };
    }
    return { provider: picked as Provider, strategy: used, context };
  }

  private requirementsFor(entry: FunctionEntry, opts: CallOptions | undefined): ParsedRequirement[] | EasyRemoteError {
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
