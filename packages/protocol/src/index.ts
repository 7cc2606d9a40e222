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
export * from './shutdown-signals.js';
