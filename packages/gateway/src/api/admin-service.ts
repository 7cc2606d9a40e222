// gRPC handlers of the Admin service: each returns the AdminApi document as JSON.
import type * as grpc from '@grpc/grpc-js';
import { AUTH_METADATA_KEY, toEasyRemoteError, toServiceError, type EasyRemoteError, type JsonReply } from '@easyremote/protocol';
import { metadataString } from './metadata.js';
import type { AdminApi } from './admin-api.js';

type Handler = (call: grpc.ServerUnaryCall<any, JsonReply>, callback: grpc.sendUnaryData<JsonReply>) => void;

export function adminHandlers(api: AdminApi, authorize: (authorization: string | undefined) => EasyRemoteError | undefined): Record<string, Handler> {
  const wrap =
    (fn: (req: any) => unknown): Handler =>
    (call, callback) => {
      try {
        const denied = authorize(metadataString(call.metadata, AUTH_METADATA_KEY));
        if (denied) return callback(toServiceError(denied) as grpc.ServiceError);
        callback(null, { json: JSON.stringify(fn(call.request)) });
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
    drainNode: wrap((req: { nodeId: string }) => api.drain(req.nodeId)),
    invalidateCache: wrap((req: { function: string }) => api.invalidateCache(req.function)),
  };
}
