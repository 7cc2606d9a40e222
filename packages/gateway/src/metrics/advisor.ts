// The optimisation report and alerts, as pure functions over figures the caller
// gathers (live aggregates, telemetry, health flags), plus a small log that turns
// repeated checks into one alert per condition and forwards new ones to a webhook.
//
// "Variance" of utilisation is measured as the coefficient of variation (population
// standard deviation / mean) of the healthy nodes' figures. The thresholds (0.3,
// 0.5) are meant as "noticeably uneven"; a plain variance of figures in 0..1 can never
// exceed 0.25, so those thresholds would never fire, while the coefficient of variation
// is independent of scale and reads the same for 0..1 utilisation or in-flight counts.
import type { Alert, AlertCondition, AlertKind, AlertSeverity, OptimisationReport, Recommendation, RecommendationType, WebhookStats } from '@easyremote/protocol';
export type { Alert, AlertCondition, AlertKind, AlertSeverity, OptimisationReport, Recommendation, RecommendationType, WebhookStats };
import { EventEmitter } from 'node:events';

/** Recommend a resource-aware strategy when utilisation imbalance exceeds this. */
export const DEFAULT_RECOMMEND_IMBALANCE = 0.3;
/** Recommend a latency-based strategy when average latency exceeds this. */
export const DEFAULT_RECOMMEND_LATENCY_MS = 500;
/** Alert on load imbalance above this. */
export const DEFAULT_ALERT_IMBALANCE = 0.5;
/** Alert on average latency above this. */
export const DEFAULT_ALERT_LATENCY_MS = 1_000;
/**
 * Below this mean figure imbalance reads 0: in a nearly idle cluster one node at 2% and
 * the rest at 0% is a huge relative spread that nobody should be alerted about.
 */
export const DEFAULT_MIN_MEAN_FOR_IMBALANCE = 0.05;
export const DEFAULT_MAX_ALERTS = 100;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 5_000;

export interface NodeFigures {
  nodeId: string;
  /** 0..1: the node's busiest resource, or in-flight / capacity. */
  utilisation: number;
  /** Load figure for the imbalance alert (any non-negative scale); defaults to utilisation. */
  load?: number;
  healthy: boolean;
}

export interface SystemFigures {
  nodes: readonly NodeFigures[];
  /** Average total latency over the period looked at (ms). */
  averageLatencyMs: number;
  /** The strategy in use, so the report does not suggest what is already there. */
  currentStrategy?: string;
}

export interface AdvisorThresholds {
  recommendImbalance?: number;
  recommendLatencyMs?: number;
  alertImbalance?: number;
  alertLatencyMs?: number;
  minMeanForImbalance?: number;
}

export const GATEWAY_SUBJECT = '*';

/**
 * Coefficient of variation (population standard deviation / mean) of non-negative
 * figures; 0 for fewer than two figures or a mean below `minMean`.
 */
export function imbalance(values: readonly number[], minMean: number = DEFAULT_MIN_MEAN_FOR_IMBALANCE): number {
  const xs = values.filter((v) => Number.isFinite(v));
  if (xs.length < 2) return 0;
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  if (!(mean >= minMean) || mean <= 0) return 0;
  const variance = xs.reduce((s, v) => s + (v - mean) * (v - mean), 0) / xs.length;
  return Math.sqrt(variance) / mean;
}

function healthyFigures(figures: SystemFigures, pick: (n: NodeFigures) => number): number[] {
  // Unhealthy nodes take no calls; their zeros would make a balanced cluster look uneven.
  return figures.nodes.filter((n) => n.healthy).map(pick);
}

export function optimisationReport(figures: SystemFigures, thresholds: AdvisorThresholds = {}): OptimisationReport {
  const recommendImbalance = thresholds.recommendImbalance ?? DEFAULT_RECOMMEND_IMBALANCE;
  const recommendLatencyMs = thresholds.recommendLatencyMs ?? DEFAULT_RECOMMEND_LATENCY_MS;
  const minMean = thresholds.minMeanForImbalance ?? DEFAULT_MIN_MEAN_FOR_IMBALANCE;
  const utilisationImbalance = imbalance(healthyFigures(figures, (n) => n.utilisation), minMean);
  const recommendations: Recommendation[] = [];
  if (utilisationImbalance > recommendImbalance && figures.currentStrategy !== 'resource_aware') {
    recommendations.push({
      type: 'load_distribution',
      message: `node utilisation is uneven (imbalance ${utilisationImbalance.toFixed(2)} > ${recommendImbalance}): consider the resource_aware strategy`,
      suggestedStrategy: 'resource_aware',
      value: utilisationImbalance,
      threshold: recommendImbalance,
    });
  }
  if (figures.averageLatencyMs > recommendLatencyMs && figures.currentStrategy !== 'latency_based') {
    recommendations.push({
      type: 'latency_optimization',
      message: `average latency ${Math.round(figures.averageLatencyMs)} ms is above ${recommendLatencyMs} ms: consider the latency_based strategy`,
      suggestedStrategy: 'latency_based',
      value: figures.averageLatencyMs,
      threshold: recommendLatencyMs,
    });
  }
  const healthyNodes = figures.nodes.filter((n) => n.healthy).length;
  return {
    healthyNodes,
    unhealthyNodes: figures.nodes.length - healthyNodes,
    utilisationImbalance,
    averageLatencyMs: figures.averageLatencyMs,
    recommendations,
  };
}

/** The alert conditions that hold for these figures (feed them to AlertLog.update). */
export function evaluateAlerts(figures: SystemFigures, thresholds: AdvisorThresholds = {}): AlertCondition[] {
  const alertImbalance = thresholds.alertImbalance ?? DEFAULT_ALERT_IMBALANCE;
  const alertLatencyMs = thresholds.alertLatencyMs ?? DEFAULT_ALERT_LATENCY_MS;
  const minMean = thresholds.minMeanForImbalance ?? DEFAULT_MIN_MEAN_FOR_IMBALANCE;
  const out: AlertCondition[] = [];
  const unhealthy = figures.nodes.filter((n) => !n.healthy);
  const noneHealthy = figures.nodes.length > 0 && unhealthy.length === figures.nodes.length;
  for (const node of unhealthy) {
    out.push({
      kind: 'node_unhealthy',
      subject: node.nodeId,
      severity: noneHealthy ? 'critical' : 'warning',
      message: `node ${node.nodeId} is unhealthy (${unhealthy.length} of ${figures.nodes.length} nodes unhealthy)`,
      value: unhealthy.length,
      threshold: 0,
    });
  }
  const loadImbalance = imbalance(healthyFigures(figures, (n) => n.load ?? n.utilisation), minMean);
  if (loadImbalance > alertImbalance) {
    out.push({
      kind: 'load_imbalance',
      subject: GATEWAY_SUBJECT,
      severity: 'warning',
      message: `significant load imbalance across nodes (imbalance ${loadImbalance.toFixed(2)} > ${alertImbalance})`,
      value: loadImbalance,
      threshold: alertImbalance,
    });
  }
  if (figures.averageLatencyMs > alertLatencyMs) {
    out.push({
      kind: 'high_latency',
      subject: GATEWAY_SUBJECT,
      severity: 'warning',
      message: `average latency ${Math.round(figures.averageLatencyMs)} ms is above ${alertLatencyMs} ms`,
      value: figures.averageLatencyMs,
      threshold: alertLatencyMs,
    });
  }
  return out;
}

export interface AlertLogOptions {
  /** Alerts kept for list(), newest first. */
  maxAlerts?: number;
  /** Each new alert is POSTed here as JSON. */
  webhookUrl?: string;
  webhookTimeoutMs?: number;
  clock?: () => number;
  /** Defaults to global fetch; injectable for tests. */
  fetch?: typeof fetch;
}

type AlertEvents = { alert: [Alert]; resolved: [Alert] };

function keyOf(kind: string, subject: string): string {
  return `${kind}\u0000${subject}`;
}

/** Keeps the last N alerts, one per active condition, and emits 'alert' / 'resolved'. */
export class AlertLog extends EventEmitter<AlertEvents> {
  private readonly maxAlerts: number;
  private readonly clock: () => number;
  private readonly webhookUrl: string | undefined;
  private readonly webhookTimeoutMs: number;
  private readonly fetchFn: typeof fetch;
  /** Oldest first. */
  private readonly log: Alert[] = [];
  private readonly activeByKey = new Map<string, Alert>();
  private readonly pending = new Set<Promise<void>>();
  private nextId = 1;
  private sent = 0;
  private failed = 0;
  private lastWebhookError: string | null = null;

  constructor(options: AlertLogOptions = {}) {
    super();
    this.maxAlerts = Math.max(1, Math.floor(options.maxAlerts ?? DEFAULT_MAX_ALERTS));
    this.clock = options.clock ?? Date.now;
    this.webhookTimeoutMs = options.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    if (options.webhookUrl !== undefined) {
      const url = new URL(options.webhookUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new TypeError(`alert webhook must be an http(s) URL, got ${options.webhookUrl}`);
      }
      this.webhookUrl = url.href;
    }
  }

  /**
   * Reports a condition. A condition already active (same kind and subject) is not
   * raised again: its lastSeenAt, occurrences and figures are refreshed and it is
   * returned with `isNew` false.
   */
  raise(condition: AlertCondition): { alert: Alert; isNew: boolean } {
    const now = this.clock();
    const key = keyOf(condition.kind, condition.subject);
    const existing = this.activeByKey.get(key);
    if (existing !== undefined) {
      existing.lastSeenAt = now;
      existing.occurrences++;
      existing.value = condition.value;
      existing.message = condition.message;
      existing.severity = condition.severity;
      return { alert: { ...existing }, isNew: false };
    }
    const alert: Alert = { ...condition, id: this.nextId++, raisedAt: now, lastSeenAt: now, occurrences: 1, resolvedAt: null };
    this.activeByKey.set(key, alert);
    this.log.push(alert);
    if (this.log.length > this.maxAlerts) this.log.splice(0, this.log.length - this.maxAlerts);
    if (this.webhookUrl !== undefined) this.post(this.webhookUrl, alert);
    this.emit('alert', { ...alert });
    return { alert: { ...alert }, isNew: true };
  }

  /** Marks an active condition as over; the next raise of it is a new alert. */
  resolve(kind: AlertKind, subject: string): Alert | undefined {
    const key = keyOf(kind, subject);
    const alert = this.activeByKey.get(key);
    if (alert === undefined) return undefined;
    this.activeByKey.delete(key);
    alert.resolvedAt = this.clock();
    this.emit('resolved', { ...alert });
    return { ...alert };
  }

  /**
   * Takes `conditions` as everything that holds now: raises the new ones, refreshes the
   * active ones and resolves active ones that are absent. Returns the newly raised.
   */
  update(conditions: readonly AlertCondition[]): Alert[] {
    const raised: Alert[] = [];
    const present = new Set<string>();
    for (const c of conditions) {
      present.add(keyOf(c.kind, c.subject));
      const { alert, isNew } = this.raise(c);
      if (isNew) raised.push(alert);
    }
    for (const [key, alert] of [...this.activeByKey]) {
      if (!present.has(key)) this.resolve(alert.kind, alert.subject);
    }
    return raised;
  }

  /** The last maxAlerts alerts, newest first (copies). */
  list(): Alert[] {
    return this.log.map((a) => ({ ...a })).reverse();
  }

  active(): Alert[] {
    return [...this.activeByKey.values()].map((a) => ({ ...a })).sort((a, b) => b.id - a.id);
  }

  webhookStats(): WebhookStats {
    return { sent: this.sent, failed: this.failed, pending: this.pending.size, lastError: this.lastWebhookError };
  }

  /** Resolves when every webhook POST started so far has finished (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private post(url: string, alert: Alert): void {
    const body = JSON.stringify(alert);
    const task = (async () => {
      try {
        const res = await this.fetchFn(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.webhookTimeoutMs),
        });
        // Read the body so the connection goes back to the pool.
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.sent++;
        } else {
          this.failed++;
          this.lastWebhookError = `webhook answered HTTP ${res.status}`;
        }
      } catch (err) {
        this.failed++;
        this.lastWebhookError = err instanceof Error ? err.message : String(err);
      }
    })();
    this.pending.add(task);
    void task.finally(() => this.pending.delete(task));
  }
}
