// Picks the provider for one attempt: filter to routable candidates, run the function's
// strategy (or the call's override), then the fallback strategy.
import { EasyRemoteError, NoNodeAvailable, Overloaded } from '@easyremote/protocol';
import type { FunctionEntry } from '../registry/function-entry.js';
import type { Provider } from '../registry/provider.js';
import type { Candidate, SelectContext } from '../strategies/strategy.js';
import type { PendingCall } from '../calls/pending-call.js';

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
  /** Extra health filter (leases, ejection); true = routable. */
  routable?: (provider: Provider, functionName: string) => boolean;
}

export class Router {
  constructor(private readonly options: RouterOptions) {}

  route(entry: FunctionEntry, call: PendingCall): RouteDecision {
    const candidates: Provider[] = [];
    let healthy = 0;
    const routable = this.options.routable;
    for (const p of entry.providers.values()) {
      if (p.session.state !== 'active') continue;
      if (call.tried?.has(p.session.nodeId)) continue;
      if (routable && !routable(p, entry.name)) continue;
      healthy++;
      if (p.full) continue;
      candidates.push(p);
    }
    const opts = call.options;
    const strategyName = opts?.strategy || entry.config.strategy;
    if (candidates.length === 0) {
      if (healthy > 0) {
        return {
          strategy: strategyName,
          allFull: true,
          error: new Overloaded(`every provider of ${entry.name} is at capacity`, { retryAfterMs: RETRY_AFTER_MS }),
        };
      }
      return {
        strategy: strategyName,
        error: new NoNodeAvailable(`no healthy node provides ${entry.name}`, { retryAfterMs: RETRY_AFTER_MS }),
      };
    }
    const context: SelectContext = {
      functionName: entry.name,
      random: this.options.random,
      now: this.options.now,
      affinityKey: opts?.affinityKey || call.metadata['x-easyremote-affinity'] || undefined,
      complexity: opts?.complexity || 1,
      requestBytes: call.args.length,
      preferences: {
        ...(opts?.preferLocation ? { preferLocation: opts.preferLocation } : {}),
        ...(opts?.maxLatencyMs ? { maxLatencyMs: opts.maxLatencyMs } : {}),
        ...(opts?.maxCost ? { maxCost: opts.maxCost } : {}),
      },
    };
    let picked: Candidate | undefined = entry.strategy(strategyName).select(candidates, context);
    let used = strategyName;
    const fallback = opts?.fallbackStrategy || entry.config.fallbackStrategy;
    if (picked === undefined && fallback) {
      picked = entry.strategy(fallback).select(candidates, context);
      used = fallback;
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
}
