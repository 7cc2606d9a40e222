// The JSON documents of the operators' API. The gateway serves exactly these shapes over
// HTTP (/api/...) and in the gRPC Admin service's JsonReply; the admin client parses them
// with these types. Defined once here so the producer and every consumer agree.

/** Live figures a node last reported in a heartbeat. */
export interface TelemetryDocument {
  /** 0..100 */
  cpuPercent: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  gpus: ReadonlyArray<{ index: number; utilizationPercent: number; vramUsedBytes: number; vramTotalBytes: number }>;
  /** Gateway clock (monotonic ms) when it arrived. */
  receivedAt: number;
}

/** What a node declared about itself at registration. */
export interface CapabilitiesDocument {
  cpuCores: number;
  memoryTotalBytes: number;
  gpus: ReadonlyArray<{ index: number; model: string; vramTotalBytes: number }>;
  labels: Readonly<Record<string, string>>;
  costPerHour: number;
}

/** One node as the gateway sees it: GET /api/nodes, Admin.ListNodes / GetNode. */
export interface NodeInfo {
  nodeId: string;
  /** 'active', 'draining' or 'closed'. */
  state: string;
  /** Lease alive, not draining, and not ejected for every function it serves. */
  healthy: boolean;
  /** Healthy and machine load under the gateway's threshold. */
  available: boolean;
  /** 0..1: the larger of CPU and average GPU utilisation from telemetry (0 without telemetry). */
  load: number;
  /** 0..1: share of the node's declared call slots in use (0 when any function is unlimited). */
  occupancy: number;
  /** Why not healthy or not available; '' when both. */
  reason: string;
  lastSeenMsAgo: number;
  /** Round trip of the node's stream (ping/pong), ms; absent before the first pong. */
  rttMs?: number;
  /** Attempts this gateway has in flight on the node. */
  inFlight: number;
  /**
   * Calls the node reported in its last heartbeat beyond this gateway's own (sent by its
   * other gateways): its reported running + queued calls less what this gateway had in
   * flight on it when the heartbeat arrived, per function, never below 0.
   */
  inFlightElsewhere: number;
  /** The node's links to gateways as it last reported them (empty when it reports none). */
  gateways: NodeGatewayLink[];
  /** Absent until the first heartbeat that carries usable telemetry. */
  telemetry?: TelemetryDocument;
  /** Why the node's last telemetry was dropped (e.g. "telemetry dropped: cpuPercent NaN is not within 0..100"); '' when usable. */
  telemetryIssue: string;
  /** Functions the node is currently ejected for (outlier detection). */
  ejected: string[];
  /** The node's address as the gateway sees it (ipv4:host:port). */
  peer: string;
  /** Seconds since the node joined. */
  uptimeS: number;
  functions: string[];
  capabilities: CapabilitiesDocument;
  /** 'node' (a compute node's stream) or 'backend' (registered over the LoadBalancer service; the gateway never relays calls to it). */
  kind: 'node' | 'backend';
  /** Where look-aside clients call it directly (host:port); '' for a node reachable only through the gateway. */
  direct: string;
}

/**
 * One provider look-aside clients may be given (GET /api/backends, Admin.ListBackends): a
 * backend, or a compute node that advertises a direct address.
 */
export interface BackendDocument {
  id: string;
  kind: 'node' | 'backend';
  /** host:port clients dial. */
  address: string;
  /** The services (functions) it provides. */
  services: string[];
  /** As NodeInfo: lease alive, active, not ejected for all its services. */
  healthy: boolean;
  available: boolean;
  reason: string;
  /** 0..1 (a backend's reported load; a node's telemetry). */
  load: number;
  /** Calls in flight on it as the gateway counts them: relayed attempts and open picks. */
  inFlight: number;
  /** Picks handed out, their outcomes reported, and how many of those failed, since it registered; picks open now. */
  picks: number;
  outcomes: number;
  failures: number;
  openPicks: number;
  lastSeenMsAgo: number;
  /** The principal that registered it. */
  principal: string;
  peer: string;
  uptimeS: number;
  labels: Record<string, string>;
}

/** One of a node's links to a gateway, as the node reports it (Register / Heartbeat `gateways`). */
export interface NodeGatewayLink {
  /** The address the node dials. */
  address: string;
  /** The id of the gateway that accepted the link's registration; '' before one did. */
  gatewayId: string;
  registered: boolean;
  /** The link to the gateway answering (the stream the report came on). */
  self: boolean;
}

/** What one gateway knows of another: from the links its nodes report to it. */
export interface PeerInfo {
  address: string;
  /** Distinct gateway ids the nodes' links to this address registered with, sorted ('' never listed). */
  ids: string[];
  /** Nodes connected here that report a link to this address. */
  nodesLinked: number;
  /** Of those, the nodes whose link is registered. */
  nodesRegistered: number;
}

/** GET /api/peers, Admin.Peers. */
export interface PeersDocument {
  /** This gateway: its id, the address it listens on, the addresses its nodes dial it by, and its compute nodes (look-aside backends not counted). */
  self: { id: string; address: string; knownAs: string[]; nodes: number };
  /** One entry per configured peer (the `peers` option), in the configured order. */
  peers: PeerInfo[];
  /** Gateways the nodes report links to that are neither this one nor a configured peer, by address. */
  unlisted: PeerInfo[];
}

/** A function's settings after node declaration < gateway configuration < defaults. */
export interface ResolvedFunctionConfig {
  strategy: string;
  fallbackStrategy: string;
  /** The loadBalancing object every strategy reads its own options from. */
  strategyOptions: Record<string, unknown>;
  healthCheck: { enabled: boolean; timeout: number; retryCount: number };
  requirements: Record<string, string>;
  preferences: { preferLocal?: boolean | string; maxLatency?: number; costLimit?: number };
  idempotent: boolean;
  timeoutMs: number;
  kind: 'unary' | 'stream';
  cacheable: boolean;
  cacheTtlMs: number;
  version: string;
}

export interface ProviderInfo {
  nodeId: string;
  /** Attempts of the function this gateway has in flight on the node. */
  inFlight: number;
  /** The node's reported calls of the function beyond this gateway's own (see NodeInfo.inFlightElsewhere). */
  inFlightElsewhere: number;
  maxConcurrent: number;
  queueSize: number;
  costPerHour: number;
  performanceTier: number;
  /** Slow-start weight in (0, 1]. */
  weight: number;
  /** Outlier detection state: 'closed' (routable), 'open' (ejected) or 'half_open' (probing). */
  circuit: string;
  /** Node-side scheduling priority among this node's waiting calls. */
  priority: number;
  /** Runs in worker threads on the node. */
  worker: boolean;
  tags: string[];
  description: string;
  history: { completed: number; failures: number; ewmaLatencyMs: number; ewmaExecMs: number };
}

/** GET /api/functions, Admin.ListFunctions. */
export interface FunctionInfo {
  name: string;
  config: ResolvedFunctionConfig;
  /** Non-empty when providers declared the function differently. */
  conflict: string;
  /** Calls waiting at the gateway for a provider with room. */
  queued: number;
  /** The configured strategy's own report (e.g. dynamic's current choice), when it has one. */
  strategyState?: Record<string, unknown>;
  providers: ProviderInfo[];
}

/** Figures over the live window (the last minute by default). */
export interface WindowFigures {
  calls: number;
  errors: number;
  /** (calls - errors) / calls, 0..1; 0 when there were no calls. */
  successRate: number;
  /** calls / window length in seconds. */
  ratePerSecond: number;
  /** Total time seen at the gateway (what the caller waited), ms. */
  avgMs: number;
  minMs: number;
  maxMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface NodeCounter {
  nodeId: string;
  calls: number;
  errors: number;
  /** calls / calls served by all nodes since start (or since the counters were last reset). */
  share: number;
}

export interface LiveSnapshot {
  /** Epoch ms. */
  at: number;
  windowMs: number;
  overall: WindowFigures;
  functions: Array<WindowFigures & { functionName: string }>;
  nodes: Array<WindowFigures & { nodeId: string }>;
  distribution: NodeCounter[];
}

/**
 * Figures for one node or one function. Execution figures cover only the calls a node
 * actually ran (a node id is set and the result was not a cache hit); success and
 * total-time figures cover every call of the group.
 */
export interface PerformanceStats {
  calls: number;
  successes: number;
  failures: number;
  /** successes / calls, 0..1. */
  successRate: number;
  cachedCalls: number;
  /** Calls the execution figures are computed over. */
  executedCalls: number;
  avgExecMs: number;
  p50ExecMs: number;
  p95ExecMs: number;
  p99ExecMs: number;
  avgTotalMs: number;
}

export interface NodeStats extends PerformanceStats {
  nodeId: string;
}

export interface FunctionStats extends PerformanceStats {
  functionName: string;
}

/** How calls routed by each strategy fared, by total time seen at the gateway. */
export interface StrategyStats {
  strategy: string;
  calls: number;
  successes: number;
  successRate: number;
  avgTotalMs: number;
  p50TotalMs: number;
  p95TotalMs: number;
  p99TotalMs: number;
}

/** How one principal's calls fared, by total time seen at the gateway. */
export interface CallerStats {
  /** The principal's name (calls from the anonymous principal, '' in the rows, are left out). */
  caller: string;
  calls: number;
  successes: number;
  failures: number;
  successRate: number;
  avgTotalMs: number;
  p50TotalMs: number;
  p95TotalMs: number;
  p99TotalMs: number;
}

export interface NodeShare {
  nodeId: string;
  calls: number;
  /** calls / calls served by any node in the window, 0..1. */
  share: number;
}

export interface ErrorRate {
  code: string;
  count: number;
  /** count / all calls in the window, 0..1. */
  rate: number;
}

export interface WindowSummary {
  /** Epoch ms, exclusive. */
  since: number;
  /** Epoch ms, inclusive. */
  until: number;
  calls: number;
  successes: number;
  failures: number;
  successRate: number;
  cachedCalls: number;
  /** calls / window length in seconds. */
  requestsPerSecond: number;
  avgTotalMs: number;
  p50TotalMs: number;
  p95TotalMs: number;
  p99TotalMs: number;
}

/** Exact statistics from the call history (SQLite) over a window. */
export interface MetricsStatistics {
  summary: WindowSummary;
  nodes: NodeStats[];
  functions: FunctionStats[];
  strategies: StrategyStats[];
  /** Per authenticated caller (principal), busiest first; empty when clients do not authenticate. */
  callers: CallerStats[];
  distribution: NodeShare[];
  errors: ErrorRate[];
}

/** The call-history store's state. */
export interface MetricsHealth {
  /** False while the latest write or retention attempt failed. */
  ok: boolean;
  lastError: string | null;
  lastErrorAt: number | null;
  /** All rows lost: buffer overflow, failed writes, records after close(). */
  droppedRows: number;
  droppedOnOverflow: number;
  droppedOnWriteError: number;
  bufferedRows: number;
  writtenRows: number;
  closed: boolean;
}

export interface ResultCacheStats {
  hits: number;
  misses: number;
  /** Callers that joined a computation already in flight instead of starting one. */
  coalesced: number;
  evictions: number;
  expirations: number;
  /** Results too large to keep. */
  uncacheable: number;
  entries: number;
  /** Bytes counted against the cache's limit (values plus a fixed overhead each). */
  bytes: number;
  inflight: number;
}

/** GET /api/metrics?window_ms=, Admin.GetMetrics. */
export interface MetricsDocument {
  /** Empty (zeros, no functions, nodes or distribution) when the gateway records no calls (metrics: false). */
  live: LiveSnapshot;
  /** null when the gateway runs without a call-history database (metrics: false). */
  statistics: MetricsStatistics | null;
  store: MetricsHealth | { ok: false; disabled: true };
  cache: ResultCacheStats;
}

/** GET /api/stats/nodes, Admin.NodeStats. */
export interface NodeStatsDocument {
  nodes: NodeStats[];
  distribution: NodeShare[] | NodeCounter[];
}

/** GET /api/stats/functions, Admin.FunctionStats. */
export interface FunctionStatsDocument {
  functions: FunctionStats[];
  strategies: StrategyStats[];
  /** Per authenticated caller (principal); empty when clients do not authenticate. */
  callers: CallerStats[];
  errors: ErrorRate[];
}

export type RecommendationType = 'load_distribution' | 'latency_optimization';

export interface Recommendation {
  type: RecommendationType;
  message: string;
  suggestedStrategy: string;
  value: number;
  threshold: number;
}

/** GET /api/recommendations, Admin.Recommendations. */
export interface OptimisationReport {
  healthyNodes: number;
  unhealthyNodes: number;
  utilisationImbalance: number;
  averageLatencyMs: number;
  recommendations: Recommendation[];
}

export type AlertKind = 'node_unhealthy' | 'load_imbalance' | 'high_latency';
export type AlertSeverity = 'warning' | 'critical';

/** A condition that holds now. Conditions with the same kind and subject are the same alert. */
export interface AlertCondition {
  kind: AlertKind;
  /** The node id, or '*' for the whole gateway. */
  subject: string;
  severity: AlertSeverity;
  message: string;
  value: number;
  threshold: number;
}

export interface Alert extends AlertCondition {
  /** Increasing per gateway. */
  id: number;
  /** Epoch ms. */
  raisedAt: number;
  /** Last time the condition was reported again while active (epoch ms). */
  lastSeenAt: number;
  /** Times the condition was reported while active (1 when first raised). */
  occurrences: number;
  /** When the condition stopped holding (epoch ms); null while active. */
  resolvedAt: number | null;
}

export interface WebhookStats {
  sent: number;
  failed: number;
  pending: number;
  lastError: string | null;
}

/** GET /api/alerts, Admin.Alerts. */
export interface AlertsDocument {
  active: Alert[];
  /** Newest first, resolved ones included. */
  recent: Alert[];
  webhook: WebhookStats;
}

/** POST /api/nodes/{id}/drain, Admin.DrainNode. */
export interface DrainResult {
  nodeId: string;
  /** False when the node was already draining. */
  draining: boolean;
}

/** POST /api/cache/invalidate?function=, Admin.InvalidateCache. */
export interface CacheInvalidation {
  function: string;
  removed: number;
}

/** GET /healthz: the process is up and its event loop answers (always 200). */
export interface HealthDocument {
  alive: true;
}

/** Where a gateway is in its life: listening only once `start()` has finished, until `stop()` begins. */
export type GatewayState = 'starting' | 'serving' | 'stopping';

/** The metrics store as /readyz sees it: `failing` while its latest write failed. */
export type MetricsStoreState = 'ok' | 'disabled' | 'failing' | 'closed';

/** GET /readyz: 200 when `ready`, 503 otherwise, with the first reason why not. */
export interface ReadinessDocument {
  ready: boolean;
  state: GatewayState;
  metricsStore: MetricsStoreState;
  /** Only when not ready. */
  reason?: string;
}
