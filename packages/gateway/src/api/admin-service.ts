// gRPC handlers of the Admin service: each returns the AdminApi document as JSON. Callers
// were authenticated by the intake interceptor before their request was read; operator
// actions check the principal's role.
import type * as grpc from '@grpc/grpc-js';
import { toEasyRemoteError, toServiceError, type JsonReply } from '@easyremote/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principals.js';
import type { AdminApi } from './admin-api.js';
import { principalOf } from './metadata.js';

type Handler = (call: grpc.ServerUnaryCall<any, JsonReply>, callback: grpc.sendUnaryData<JsonReply>) => void;

export function adminHandlers(api: AdminApi, auth: Authenticator): Record<string, Handler> {
  const wrap =
    (fn: (req: any, by: Principal) => unknown): Handler =>
    (call, callback) => {
      try {
        callback(null, { json: JSON.stringify(fn(call.request, principalOf(call.metadata, auth))) });
      } catch (err) {
        callback(toServiceError(toEasyRemoteError(err)) as grpc.ServiceError);
      }
    };
  const window = (req: { windowMs: number }) => (req.windowMs > 0 ? req.windowMs : undefined);
  return {
    listNodes: wrap(() => api.nodes()),
    getNode: wrap((req: { nodeId: string }) => api.node(req.nodeId)),
    listFunctions: wrap(() => api.functions()),
    getMetrics: wrap((req) => api.metrics(window(req))),
    nodeStats: wrap((req) => api.nodeStats(window(req))),
    functionStats: wrap((req) => api.functionStats(window(req))),
    recommendations: wrap((req) => api.recommendations(window(req))),
    alerts: wrap(() => api.alerts()),
    drainNode: wrap((req: { nodeId: string }, by) => api.drain(req.nodeId, by)),
    invalidateCache: wrap((req: { function: string }, by) => api.invalidateCache(req.function, by)),
    peers: wrap(() => api.peers()),
    listBackends: wrap(() => api.backends()),
  };
}
