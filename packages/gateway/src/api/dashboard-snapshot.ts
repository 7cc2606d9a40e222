// The dashboard's view of the gateway, built from what is in memory only (the registry,
// health, the live windows and the alert log): it is built once a second for every open
// dashboard, so it never reads the call history on disk.
import type { AlertsDocument, DashboardFunction, DashboardNode, DashboardSnapshot, FunctionInfo, NodeInfo, OptimisationReport } from '@easyremote/protocol';
import type { LiveMetrics } from '../metrics/live.js';

/** Resolved alerts the snapshot carries besides the active ones. */
export const DASHBOARD_RECENT_ALERTS = 20;

export interface DashboardSources {
  nodes(): NodeInfo[];
  functions(): FunctionInfo[];
  alerts(): AlertsDocument;
  recommendations(): OptimisationReport;
  live: Pick<LiveMetrics, 'snapshot' | 'lastBucket'>;
  epochMs(): number;
}

export function dashboardSnapshot(from: DashboardSources): DashboardSnapshot {
  const functions = from.functions();
  // A node's slots are the sum over its functions, unlimited (0) if any function is: the registry's rule for occupancy.
  const slots = new Map<string, number>();
  for (const f of functions) {
    for (const p of f.providers) {
      const sum = slots.get(p.nodeId);
      slots.set(p.nodeId, sum === 0 || p.maxConcurrent === 0 ? 0 : (sum ?? 0) + p.maxConcurrent);
    }
  }
  const nodes: DashboardNode[] = from.nodes().map((n) => ({ ...n, slots: slots.get(n.nodeId) ?? 0 }));
  const summaries: DashboardFunction[] = functions.map((f) => ({
    name: f.name,
    strategy: f.config.strategy,
    kind: f.config.kind,
    providers: f.providers.length,
    inFlight: f.providers.reduce((sum, p) => sum + p.inFlight, 0),
    queued: f.queued,
  }));
  const alerts = from.alerts();
  return {
    at: from.epochMs(),
    nodes,
    functions: summaries,
    bucket: from.live.lastBucket(),
    live: from.live.snapshot(),
    alerts: { ...alerts, recent: alerts.recent.slice(0, DASHBOARD_RECENT_ALERTS) },
    recommendations: from.recommendations(),
  };
}
