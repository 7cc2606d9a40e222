// What operators can ask the gateway, independent of transport: the gRPC Admin service
// and the HTTP JSON API both call these methods and serve the same documents.
import {
  InvalidArgument,
  NodeNotFound,
  PermissionDenied,
  quote,
  type AlertsDocument,
  type BackendDocument,
  type CacheInvalidation,
  type DashboardSnapshot,
  type DrainResult,
  type FunctionInfo,
  type FunctionStatsDocument,
  type MetricsDocument,
  type NodeEventKind,
  type NodeInfo,
  type NodeStatsDocument,
  type OptimisationReport,
  type PeersDocument,
} from '@easyremote/protocol';
import type { Principal } from '../auth/principals.js';
import type { ResultCache } from '../cache/result-cache.js';
import type { AdmissionQueue } from '../calls/admission-queue.js';
import type { Clock } from '../clock.js';
import type { NodeHealthMonitor } from '../health/health-monitor.js';
import type { OutlierDetector } from '../health/outlier-detector.js';
import { optimisationReport, type AdvisorThresholds, type AlertLog, type SystemFigures } from '../metrics/advisor.js';
import type { MetricsRecorder } from '../metrics/recorder.js';
import type { Registry } from '../registry/registry.js';
import { dashboardSnapshot } from './dashboard-snapshot.js';

export type { FunctionInfo };

/** Statistics look back this far unless asked otherwise. */
export const DEFAULT_WINDOW_MS = 3_600_000;

export interface AdminParts {
  health: Pick<NodeHealthMonitor, 'nodes'>;
  registry: Pick<Registry, 'functions'>;
  admission: Pick<AdmissionQueue, 'size'>;
  detector: Pick<OutlierDetector, 'state'>;
  metrics: Pick<MetricsRecorder, 'live' | 'store'>;
  cache: Pick<ResultCache, 'stats' | 'invalidate'>;
  alerts: Pick<AlertLog, 'active' | 'list' | 'webhookStats'>;
  thresholds: AdvisorThresholds;
  /** Asks a node to drain on an operator's behalf; false when it is not active. */
  drain(nodeId: string, by: string): boolean;
  /** Records an operator's action (the audit trail). */
  audit(kind: NodeEventKind, nodeId: string, functionName: string, detail: string): void;
  /** This gateway, its configured peers, and the gateways its nodes report (api/peers.ts). */
  peers(): PeersDocument;
  /** What look-aside clients may be given. */
  backends(): BackendDocument[];
  clock: Clock;
}

export class AdminApi {
  constructor(private readonly parts: AdminParts) {}

  nodes(): NodeInfo[] {
    return this.parts.health.nodes();
  }

  node(nodeId: string): NodeInfo {
    const found = this.nodes().find((n) => n.nodeId === nodeId);
    if (!found) throw new NodeNotFound(`no node ${quote(nodeId)} is connected`);
    return found;
  }

  backends(): BackendDocument[] {
    return this.parts.backends();
  }

  functions(): FunctionInfo[] {
    const { registry, admission, detector } = this.parts;
    return [...registry.functions.values()].map((entry) => ({
      name: entry.name,
      config: { ...entry.config },
      conflict: entry.conflict,
      queued: admission.size(entry.name),
      strategyState: entry.strategy(entry.config.strategy).describe?.(),
      providers: [...entry.providers.values()].map((p) => ({
        nodeId: p.nodeId,
        inFlight: p.inFlight,
        inFlightElsewhere: p.inFlightElsewhere,
        maxConcurrent: p.spec.maxConcurrent,
        queueSize: p.spec.queueSize,
        costPerHour: p.costPerHour,
        performanceTier: p.performanceTier,
        weight: p.weight,
        circuit: detector.state(p.nodeId, entry.name),
        priority: p.spec.priority,
        worker: p.spec.worker,
        tags: p.spec.tags,
        description: p.spec.description,
        history: { ...p.history },
      })),
    }));
  }

  private since(windowMs: number | undefined): { since: number; until: number } {
    const w = windowMs === undefined || windowMs === 0 ? DEFAULT_WINDOW_MS : windowMs;
    if (!(Number.isFinite(w) && w > 0)) throw new InvalidArgument(`window_ms must be a positive number of milliseconds, got ${windowMs}`);
    const until = this.parts.clock.epochMs();
    return { since: until - w, until };
  }

  metrics(windowMs?: number): MetricsDocument {
    const m = this.parts.metrics;
    return {
      live: m.live.snapshot(),
      statistics: m.store?.statistics(this.since(windowMs)) ?? null,
      store: m.store?.health() ?? { ok: false, disabled: true },
      cache: this.parts.cache.stats(),
    };
  }

  nodeStats(windowMs?: number): NodeStatsDocument {
    const stats = this.parts.metrics.store?.statistics(this.since(windowMs));
    return { nodes: stats?.nodes ?? [], distribution: stats?.distribution ?? this.parts.metrics.live.distribution() };
  }

  functionStats(windowMs?: number): FunctionStatsDocument {
    const stats = this.parts.metrics.store?.statistics(this.since(windowMs));
    return { functions: stats?.functions ?? [], strategies: stats?.strategies ?? [], callers: stats?.callers ?? [], errors: stats?.errors ?? [] };
  }

  /** The figures the advisor and the alert loop reason about. */
  figures(windowMs?: number): SystemFigures {
    const live = this.parts.metrics.live.overall();
    const stats = windowMs !== undefined ? this.parts.metrics.store?.statistics(this.since(windowMs)) : undefined;
    const strategies = new Set([...this.parts.registry.functions.values()].map((f) => f.config.strategy));
    return {
      nodes: this.nodes().map((n) => ({ nodeId: n.nodeId, utilisation: Math.max(n.load, n.occupancy), healthy: n.healthy })),
      averageLatencyMs: stats ? stats.summary.avgTotalMs : live.avgMs,
      ...(strategies.size === 1 ? { currentStrategy: [...strategies][0]! } : {}),
    };
  }

  recommendations(windowMs?: number): OptimisationReport {
    return optimisationReport(this.figures(windowMs), this.parts.thresholds);
  }

  peers(): PeersDocument {
    return this.parts.peers();
  }

  alerts(): AlertsDocument {
    const { alerts } = this.parts;
    return { active: alerts.active(), recent: alerts.list(), webhook: alerts.webhookStats() };
  }

  /** What the dashboard shows, from memory only (GET /api/events pushes it once a second). */
  dashboard(): DashboardSnapshot {
    const { metrics, clock } = this.parts;
    return dashboardSnapshot({
      nodes: () => this.nodes(),
      functions: () => this.functions(),
      alerts: () => this.alerts(),
      recommendations: () => this.recommendations(),
      live: metrics.live,
      epochMs: () => clock.epochMs(),
    });
  }

  /** Operator actions need the admin role. */
  private operator(by: Principal, action: string): void {
    if (!by.mayOperate) throw new PermissionDenied(`${by.name} may not ${action}: it needs the admin role`);
  }

  drain(nodeId: string, by: Principal): DrainResult {
    this.operator(by, 'drain nodes');
    this.node(nodeId);
    return { nodeId, draining: this.parts.drain(nodeId, by.name) };
  }

  invalidateCache(functionName: string, by: Principal): CacheInvalidation {
    this.operator(by, 'invalidate cached results');
    if (!functionName) throw new InvalidArgument('name the function whose cached results to drop');
    const removed = this.parts.cache.invalidate(functionName);
    this.parts.audit('cache-invalidated', '', functionName, `by ${by.name}: ${removed} result(s) removed`);
    return { function: functionName, removed };
  }
}
