export * from './codec.js';
export * from './errors.js';
export * from './constants.js';
export * from './limits.js';
export * from './frame-batcher.js';
export type * from './admin-documents.js';
export type * from './dashboard-document.js';
export { CallOptions, ErrorDetail } from './generated/easyremote/v1/common.js';
export {
  ArgsCredit,
  ArgsPart,
  CallReply,
  CallRequest,
  ClientBatch,
  ClientFrame,
  GatewayService,
  Progress,
  ResultPart,
  ServerBatch,
  ServerFrame,
  SessionCall,
  SessionCancel,
  SessionChunk,
  SessionCredit,
  SessionEnd,
  SessionError,
  SessionFunction,
  SessionGoaway,
  SessionProgress,
  SessionRejected,
  SessionResult,
  StreamReply,
} from './generated/easyremote/v1/gateway.js';
export * from './generated/easyremote/v1/node.js';
export { AdminService, AdminEmpty, NodeRef, FunctionRef, Window, JsonReply } from './generated/easyremote/v1/admin.js';
export * from './transport-security.js';
export * from './gateway-addresses.js';
export * from './logger.js';
export {
  BackendInfo,
  BackendLease,
  BackendPicks,
  BackendRef,
  BackendRequest,
  DeregisterReply,
  LoadBalancerService,
  LoadReport,
  Outcome,
  OutcomeAck,
} from './generated/easyremote/v1/lookaside.js';
// What every server of the client-facing service applies (the gateway, and a node serving calls directly).
export * from './serving/principals.js';
export * from './serving/authenticator.js';
export * from './serving/principal-limits.js';
export * from './serving/request-limits.js';
export * from './serving/deadline.js';
export * from './serving/call-metadata.js';
export * from './serving/intake-interceptor.js';
export * from './serving/tolerant-definitions.js';
export * from './serving/session-definition.js';
export * from './serving/flow-control.js';
export * from './serving/session-server.js';
export * from './serving/function-idempotency.js';
export * from './shutdown-signals.js';
export * from './heap-headroom.js';
