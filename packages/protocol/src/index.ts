export * from './codec.js';
export * from './errors.js';
export * from './constants.js';
export * from './limits.js';
export type * from './admin-documents.js';
export { CallOptions, ErrorDetail } from './generated/easyremote/v1/common.js';
export { CallReply, CallRequest, GatewayService, Progress, StreamReply } from './generated/easyremote/v1/gateway.js';
export * from './generated/easyremote/v1/node.js';
export { AdminService, AdminEmpty, NodeRef, FunctionRef, Window, JsonReply } from './generated/easyremote/v1/admin.js';
