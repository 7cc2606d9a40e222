// Typed helpers for the gateway's Admin service (the same documents as its HTTP /api/).
import * as grpc from '@grpc/grpc-js';
import {
  AdminService,
  AUTH_METADATA_KEY,
  channelSecurity,
  transportError,
  type ClientTls,
  type AlertsDocument,
  type BackendDocument,
  type CacheInvalidation,
  type DrainResult,
  type FunctionInfo,
  type FunctionStatsDocument,
  type JsonReply,
  type MetricsDocument,
  type NodeInfo,
  type NodeStatsDocument,
  type OptimisationReport,
  type PeersDocument,
} from '@easyremote/protocol';

const AdminClientCtor = grpc.makeGenericClientConstructor(AdminService, 'Admin');

export interface AdminClientOptions {
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Time limit of one request, ms (default 10 000). */
  timeoutMs?: number;
  /** Connect with TLS and verify the gateway, as the client's `tls` option. */
  tls?: ClientTls;
}

export class AdminClient {
  private readonly client: grpc.Client & Record<string, Function>;
  private readonly secure: boolean;

  constructor(readonly address: string, private readonly options: AdminClientOptions = {}) {
    const security = channelSecurity(options.tls);
    this.secure = security.secure;
    // A connection of its own, so that a failure to connect comes with its cause (see Client).
    this.client = new AdminClientCtor(address, security.credentials, { ...security.options, 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & Record<string, Function>;
  }

  private call<T>(method: string, request: object): Promise<T> {
    const metadata = new grpc.Metadata();
    if (this.options.token) metadata.set(AUTH_METADATA_KEY, `Bearer ${this.options.token}`);
    return new Promise((resolve, reject) => {
      this.client[method]!.call(this.client, request, metadata, { deadline: Date.now() + (this.options.timeoutMs ?? 10_000) }, (err: grpc.ServiceError | null, reply: JsonReply) => {
        if (err) reject(transportError(err, this.address, this.secure));
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
  nodeStats(windowMs = 0): Promise<NodeStatsDocument> {
    return this.call('nodeStats', { windowMs });
  }
  functionStats(windowMs = 0): Promise<FunctionStatsDocument> {
    return this.call('functionStats', { windowMs });
  }
  recommendations(windowMs = 0): Promise<OptimisationReport> {
    return this.call('recommendations', { windowMs });
  }
  alerts(): Promise<AlertsDocument> {
    return this.call('alerts', {});
  }
  drain(nodeId: string): Promise<DrainResult> {
    return this.call('drainNode', { nodeId });
  }
  invalidateCache(functionName: string): Promise<CacheInvalidation> {
    return this.call('invalidateCache', { function: functionName });
  }
  /** This gateway, its configured peers and the gateways its nodes report links to. */
  peers(): Promise<PeersDocument> {
    return this.call('peers', {});
  }
  /** Look-aside backends, and nodes that take calls directly. */
  backends(): Promise<BackendDocument[]> {
    return this.call('listBackends', {});
  }
  close(): void {
    this.client.close();
  }
}
