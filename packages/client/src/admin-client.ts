// Typed helpers for the gateway's Admin service (the same documents as its HTTP /api/).
import * as grpc from '@grpc/grpc-js';
import { AdminService, fromServiceError, type JsonReply } from '@easyremote/protocol';

export interface NodeInfo {
  nodeId: string;
  state: string;
  healthy: boolean;
  available: boolean;
  /** Machine load from telemetry: max of CPU and GPU utilisation, 0..1. */
  load: number;
  /** Share of declared call slots in use, 0..1. */
  occupancy: number;
  reason: string;
  lastSeenMsAgo: number;
  rttMs?: number;
  inFlight: number;
  telemetry?: {
    cpuPercent: number;
    memoryUsedBytes: number;
    memoryTotalBytes: number;
    gpus: Array<{ index: number; utilizationPercent: number; vramUsedBytes: number; vramTotalBytes: number }>;
  };
  ejected: string[];
  peer: string;
  uptimeS: number;
  functions: string[];
  capabilities: { cpuCores: number; memoryTotalBytes: number; gpus: Array<{ index: number; model: string; vramTotalBytes: number }>; labels: Record<string, string>; costPerHour: number };
}

export interface FunctionInfo {
  name: string;
  config: { strategy: string; fallbackStrategy: string; idempotent: boolean; cacheable: boolean; cacheTtlMs: number; timeoutMs: number; kind: 'unary' | 'stream'; [key: string]: unknown };
  conflict: string;
  queued: number;
  strategyState?: Record<string, unknown>;
  providers: Array<{ nodeId: string; inFlight: number; maxConcurrent: number; queueSize: number; costPerHour: number; performanceTier: number; weight: number; circuit: string; history: Record<string, number> }>;
}

export interface LatencyStats {
  calls: number;
  successRate: number;
  avgExecMs: number;
  p50ExecMs: number;
  p95ExecMs: number;
  p99ExecMs: number;
  [key: string]: unknown;
}

export interface MetricsDocument {
  live: Record<string, unknown>;
  statistics: {
    summary: { calls: number; successes: number; failures: number; successRate: number; cachedCalls: number; requestsPerSecond: number; avgTotalMs: number; [key: string]: unknown };
    nodes: Array<LatencyStats & { nodeId: string }>;
    functions: Array<LatencyStats & { functionName: string }>;
    strategies: Array<{ strategy: string; calls: number; successRate: number; [key: string]: unknown }>;
    distribution: Array<{ nodeId: string; calls: number; share: number }>;
    errors: Array<{ code: string; count: number; rate: number }>;
  } | null;
  store: Record<string, unknown>;
  cache: { hits: number; misses: number; entries: number; bytes: number; [key: string]: unknown };
}

export interface Recommendations {
  healthyNodes: number;
  unhealthyNodes: number;
  utilisationImbalance: number;
  averageLatencyMs: number;
  recommendations: Array<{ type: string; message: string; suggestedStrategy: string; value: number; threshold: number }>;
}

export interface AlertsDocument {
  active: Array<{ kind: string; subject: string; severity: string; message: string; value: number; threshold: number; [key: string]: unknown }>;
  recent: AlertsDocument['active'];
  webhook: Record<string, unknown>;
}

const AdminClientCtor = grpc.makeGenericClientConstructor(AdminService, 'Admin');

export class AdminClient {
  private readonly client: grpc.Client & Record<string, Function>;

  constructor(address: string, private readonly options: { token?: string; timeoutMs?: number } = {}) {
    this.client = new AdminClientCtor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Function>;
  }

  private call<T>(method: string, request: object): Promise<T> {
    const metadata = new grpc.Metadata();
    if (this.options.token) metadata.set('authorization', `Bearer ${this.options.token}`);
    return new Promise((resolve, reject) => {
      this.client[method]!.call(this.client, request, metadata, { deadline: Date.now() + (this.options.timeoutMs ?? 10_000) }, (err: grpc.ServiceError | null, reply: JsonReply) => {
        if (err) reject(fromServiceError(err));
        else resolve(JSON.parse(reply.json) as T);
      });
    });
  }

  nodes(): Promise<NodeInfo[]> {
    return this.call('listNodes', {});
  }
  node(nodeId: string): Promise<NodeInfo> {
    return this.call('getNode', { nodeId });
  }
  functions(): Promise<FunctionInfo[]> {
    return this.call('listFunctions', {});
  }
  metrics(windowMs = 0): Promise<MetricsDocument> {
    return this.call('getMetrics', { windowMs });
  }
  nodeStats(windowMs = 0): Promise<{ nodes: NonNullable<MetricsDocument['statistics']>['nodes']; distribution: NonNullable<MetricsDocument['statistics']>['distribution'] }> {
    return this.call('nodeStats', { windowMs });
  }
  functionStats(windowMs = 0): Promise<{ functions: NonNullable<MetricsDocument['statistics']>['functions']; strategies: NonNullable<MetricsDocument['statistics']>['strategies']; errors: NonNullable<MetricsDocument['statistics']>['errors'] }> {
    return this.call('functionStats', { windowMs });
  }
  recommendations(windowMs = 0): Promise<Recommendations> {
    return this.call('recommendations', { windowMs });
  }
  alerts(): Promise<AlertsDocument> {
    return this.call('alerts', {});
  }
  drain(nodeId: string): Promise<{ nodeId: string; draining: boolean }> {
    return this.call('drainNode', { nodeId });
  }
  invalidateCache(functionName: string): Promise<{ function: string; removed: number }> {
    return this.call('invalidateCache', { function: functionName });
  }
  close(): void {
    this.client.close();
  }
}
