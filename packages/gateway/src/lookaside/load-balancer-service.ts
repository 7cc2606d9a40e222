// gRPC handlers of the LoadBalancer service. Callers were authenticated on their headers
// by the intake interceptor (backends' own RPCs as nodes, the rest as clients); every
// refusal is a gRPC status with the `easyremote-error-bin` trailer, as for calls.
import type * as grpc from '@grpc/grpc-js';
import { principalOf, toEasyRemoteError, toServiceError, type Authenticator, type BackendInfo, type BackendRequest, type Outcome, type Principal } from '@easyremote/protocol';
import { certifiedNodeId } from '../tls/node-identity.js';
import type { BackendRegistrations } from './backend-registrations.js';

/** What the service asks of the look-aside part of the gateway. */
export interface LoadBalancing {
  readonly backends: Pick<BackendRegistrations, 'register' | 'report' | 'deregister'>;
  pick(request: BackendRequest, principal: Principal, one: boolean): BackendInfo[];
  outcome(o: Outcome, principal: Principal): void;
}

type Handler = (call: grpc.ServerUnaryCall<any, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

export function loadBalancerHandlers(lookAside: LoadBalancing, auth: Authenticator, nodeCertificates: boolean): Record<string, Handler> {
  const wrap =
    (fn: (request: any, by: Principal, call: grpc.ServerUnaryCall<any, unknown>) => unknown): Handler =>
    (call, callback) => {
      try {
        callback(null, fn(call.request, principalOf(call.metadata, auth), call));
      } catch (err) {
        callback(toServiceError(toEasyRemoteError(err)) as grpc.ServiceError);
      }
    };
  const { backends } = lookAside;
  return {
    registerBackend: wrap((info, by, call) => backends.register(info, by, call.getPeer(), nodeCertificates ? { nodeId: certifiedNodeId(call.getAuthContext()) } : undefined)),
    reportLoad: wrap((report, by) => backends.report(report, by)),
    getBackend: wrap((request, by) => lookAside.pick(request, by, true)[0]),
    getBackends: wrap((request, by) => ({ picks: lookAside.pick(request, by, false) })),
    reportOutcome: wrap((outcome, by) => (lookAside.outcome(outcome, by), {})),
    deregister: wrap((ref: { id: string }, by) => ({ removed: backends.deregister(ref.id, by) })),
  };
}
