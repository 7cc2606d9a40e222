// What operators can ask the gateway, independent of transport: the gRPC Admin service
// and the HTTP JSON API both call these methods and serve the same documents.
import { FunctionNotFound, InvalidArgument } from '@easyremote/protocol';
import type { Gateway, NodeSummary } from '../gateway.js';
import { optimisationReport, type OptimisationReport, type SystemFigures } from '../metrics/advisor.js';

/** Statistics look back this far unless asked otherwise. */
export const DEFAULT_WINDOW_MS = 3_600_000;

export interface FunctionInfo {
  name: string;
  config: Record<string, unknown>;
  conflict: string;
  queued: number;
  strategyState: Record<string, unknown> | undefined;
  providers: Array<{
    nodeId: string;
    inFlight: number;
    maxConcurrent: number;
    queueSize: number;
    costPerHour: number;
    performanceTier: number;
    weight: number;
    circuit: string;
    history: { completed: number; failures: number; ewmaLatencyMs: number; ewmaExecMs: number };
  }>;
}

export class AdminApi {
  constructor(private readonly gw: Gateway) {}

  nodes(): NodeSummary[] {
    return this.gw.nodes();
  }

  node(nodeId: string): NodeSummary {
    const found = this.gw.nodes().find((n) => n.nodeId === nodeId);
    if (!found) throw new FunctionNotFound(`no node ${JSON.stringify(nodeId)} is connected`);
    return found;
  }

  functions(): FunctionInfo[] {
    return [...this.gw.registry.functions.values()].map((entry) => ({
      name: entry.name,
      config: { ...entry.config },
      conflict: entry.conflict,
      queued: this.gw.admission.size(entry.name),
      strategyState: entry.strategy(entry.config.strategy).describe?.(),
      providers: [...entry.providers.values()].map((p) => ({
        nodeId: p.nodeId,
        inFlight: p.inFlight,
        maxConcurrent: p.spec.maxConcurrent,
        queueSize: p.spec.queueSize,
        costPerHour: p.costPerHour,
        performanceTier: p.performanceTier,
        weight: p.weight,
        circuit: this.gw.detector.state(p.nodeId, entry.name),
        history: { ...p.history },
      })),
    }));
  }

  private since(windowMs: number | undefined): { since: number; until: number } {
    const w = windowMs === undefined || windowMs === 0 ? DEFAULT_WINDOW_MS : windowMs;
    if (!(Number.isFinite(w) && w > 0)) throw new InvalidArgument(`window_ms must be a positive number of milliseconds, got ${windowMs}`);
    const until = Date.now();
    return { since: until - w, until };
  }

  metrics(windowMs?: number) {
    const m = this.gw.metrics;
    return {
      live: m.live.snapshot(),
      statistics: m.store?.statistics(this.since(windowMs)) ?? null,
      store: m.store?.health() ?? { ok: false, disabled: true },
      cache: this.gw.cache.stats(),
    };
  }

  nodeStats(windowMs?: number) {
    const stats = this.gw.metrics.store?.statistics(this.since(windowMs));
    return { nodes: stats?.nodes ?? [], distribution: stats?.distribution ?? this.gw.metrics.live.distribution() };
  }

  functionStats(windowMs?: number) {
    const stats = this.gw.metrics.store?.statistics(this.since(windowMs));
    return { functions: stats?.functions ?? [], strategies: stats?.strategies ?? [], errors: stats?.errors ?? [] };
  }

  /** The figures the advisor and the alert loop reason about. */
  figures(windowMs?: number): SystemFigures {
    const live = this.gw.metrics.live.overall();
    const stats = windowMs !== undefined ? this.gw.metrics.store?.statistics(this.since(windowMs)) : undefined;
    const strategies = new Set([...this.gw.registry.functions.values()].map((f) => f.config.strategy));
    return {
      nodes: this.gw.nodes().map((n) => ({ nodeId: n.nodeId, utilisation: Math.max(n.load, n.occupancy), healthy: n.healthy })),
      averageLatencyMs: stats ? stats.summary.avgTotalMs : live.avgMs,
      ...(strategies.size === 1 ? { currentStrategy: [...strategies][0]! } : {}),
    };
  }

  recommendations(windowMs?: number): OptimisationReport {
    return optimisationReport(this.figures(windowMs), this.gw.alertThresholds);
  }

  alerts() {
    return { active: this.gw.alerts.active(), recent: this.gw.alerts.list(), webhook: this.gw.alerts.webhookStats() };
  }

  drain(nodeId: string) {
    this.node(nodeId);
    return { nodeId, draining: this.gw.drainNode(nodeId) };
  }

  invalidateCache(functionName: string) {
    if (!functionName) throw new InvalidArgument('name the function whose cached results to drop');
    return { function: functionName, removed: this.gw.cache.invalidate(functionName) };
  }
}
