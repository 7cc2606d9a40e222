// The text of `easyremote status` and of each `easyremote top` frame.
import type { ClusterSnapshot } from '../commands/cluster-snapshot.js';
import { millis, percent, rate, table } from './table.js';

/** Calls per second per node between two snapshots, from the per-node counters since start. */
export function nodeRates(now: ClusterSnapshot, before: ClusterSnapshot | undefined): Map<string, number> {
  const rates = new Map<string, number>();
  const seconds = before === undefined ? 0 : (now.live.at - before.live.at) / 1000;
  for (const c of now.live.distribution) {
    const previous = before?.live.distribution.find((d) => d.nodeId === c.nodeId);
    if (seconds > 0 && previous !== undefined) rates.set(c.nodeId, Math.max(0, c.calls - previous.calls) / seconds);
  }
  // Without an earlier snapshot (the first frame, or a node new since), the window's average.
  for (const n of now.live.nodes) if (!rates.has(n.nodeId)) rates.set(n.nodeId, n.ratePerSecond);
  return rates;
}

function health(n: ClusterSnapshot['nodes'][number]): string {
  if (!n.healthy) return 'unhealthy';
  return n.available ? 'healthy' : 'busy';
}

function memory(n: ClusterSnapshot['nodes'][number]): string {
  const t = n.telemetry;
  return t && t.memoryTotalBytes > 0 ? percent(t.memoryUsedBytes / t.memoryTotalBytes) : '-';
}

function gpu(n: ClusterSnapshot['nodes'][number]): string {
  const gpus = n.telemetry?.gpus ?? [];
  return gpus.length === 0 ? '-' : percent(gpus.reduce((s, g) => s + g.utilizationPercent, 0) / gpus.length / 100);
}

export function nodesTable(s: ClusterSnapshot, rates: ReadonlyMap<string, number>): string {
  if (s.nodes.length === 0) return 'no nodes connected';
  const windowOf = new Map(s.live.nodes.map((n) => [n.nodeId, n]));
  const rows = s.nodes.map((n) => {
    const w = windowOf.get(n.nodeId);
    return [
      n.nodeId,
      n.state,
      health(n),
      percent(n.load),
      n.telemetry ? percent(n.telemetry.cpuPercent / 100) : '-',
      memory(n),
      gpu(n),
      String(n.inFlight),
      rate(rates.get(n.nodeId) ?? 0),
      w ? millis(w.p50Ms) : '-',
      w ? millis(w.p99Ms) : '-',
      w ? String(w.errors) : '0',
      n.functions.join(', '),
    ];
  });
  return table(['NODE', 'STATE', 'HEALTH', 'LOAD', 'CPU', 'MEM', 'GPU', 'IN-FLIGHT', 'CALLS/S', 'P50 MS', 'P99 MS', 'ERRORS', 'FUNCTIONS'], rows);
}

export function functionsTable(s: ClusterSnapshot): string {
  if (s.functions.length === 0) return 'no functions registered';
  const windowOf = new Map(s.live.functions.map((f) => [f.functionName, f]));
  const rows = s.functions.map((f) => {
    const w = windowOf.get(f.name);
    return [f.name, f.config.strategy, String(f.providers.length), String(f.queued), rate(w?.ratePerSecond ?? 0), w ? millis(w.p50Ms) : '-', w ? millis(w.p99Ms) : '-', String(w?.errors ?? 0)];
  });
  return table(['FUNCTION', 'STRATEGY', 'PROVIDERS', 'QUEUED', 'CALLS/S', 'P50 MS', 'P99 MS', 'ERRORS'], rows);
}

export function alertsText(s: ClusterSnapshot): string {
  if (s.alerts.length === 0) return 'no active alerts';
  return table(
    ['SEVERITY', 'KIND', 'SUBJECT', 'MESSAGE'],
    s.alerts.map((a) => [a.severity, a.kind, a.subject, a.message]),
  );
}

export function summaryLine(s: ClusterSnapshot): string {
  const o = s.live.overall;
  const healthy = s.nodes.filter((n) => n.healthy).length;
  const windowS = Math.round(s.live.windowMs / 1000);
  return `gateway ${s.gateway}: ${s.nodes.length} node(s), ${healthy} healthy; ${s.functions.length} function(s); last ${windowS} s: ${o.calls} call(s), ${rate(o.ratePerSecond)}/s, p50 ${millis(o.p50Ms)} ms, p99 ${millis(o.p99Ms)} ms, ${o.errors} error(s)`;
}

export function statusText(s: ClusterSnapshot): string {
  return [summaryLine(s), '', 'NODES', nodesTable(s, nodeRates(s, undefined)), '', 'FUNCTIONS', functionsTable(s), '', 'ALERTS', alertsText(s), ''].join('\n');
}

export function topFrame(s: ClusterSnapshot, before: ClusterSnapshot | undefined, header: string): string {
  const rates = nodeRates(s, before);
  const total = [...rates.values()].reduce((a, b) => a + b, 0);
  const time = new Date(s.live.at).toISOString().slice(11, 19);
  return [
    `${header} — ${time} UTC — ${rate(total)} calls/s now`,
    summaryLine(s),
    '',
    nodesTable(s, rates),
    '',
    functionsTable(s),
    '',
    alertsText(s),
    '',
  ].join('\n');
}
